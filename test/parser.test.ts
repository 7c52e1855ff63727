// The native read-buffer parser (src-native/parser.cc) and the lazy decoding in
// lib/core/event.ts, fed synthetic buffers laid out as the kernel writes them:
//
//   struct fanotify_event_metadata { u32 event_len; u8 vers; u8 reserved;
//     u16 metadata_len; u64 mask; s32 fd; s32 pid; }              // 24 bytes
//   then info records, each { u8 info_type; u8 pad; u16 len; ... }:
//   FID(1) DFID_NAME(2) DFID(3) OLD_DFID_NAME(10) NEW_DFID_NAME(12):
//     s32 fsid[2]; struct file_handle { u32 handle_bytes; s32 handle_type;
//     u8 f_handle[] }; for the *_NAME types a NUL-terminated name; padded to 4.
//   PIDFD(4): s32 pidfd.  ERROR(5): s32 error; u32 error_count.
//   RANGE(6): u32 pad; u64 offset; u64 count.  MNT(7): u32 pad; u64 mnt_id.
//
// All little-endian (the host order of x86-64 and arm64). Synthetic events use
// fd = FAN_NOFD and pidfds that are never closed, so nothing real is touched.
import { binding } from '../lib/core/binding';
import { FanotifyEvent } from '../lib/core/event';

// Row layouts: src-native/parser.h (EventField, RecordField).
const EV = { offset: 0, length: 1, maskLo: 2, maskHi: 3, fd: 4, pid: 5, firstRecord: 6, recordCount: 7, flags: 8, token: 9, stride: 10 };
const REC = { type: 0, offset: 1, length: 2, valid: 3, a: 4, b: 5, c: 6, d: 7, e: 8, stride: 9 };

const T = { FID: 1, DFID_NAME: 2, DFID: 3, PIDFD: 4, ERROR: 5, RANGE: 6, MNT: 7, OLD_DFID_NAME: 10, NEW_DFID_NAME: 12 };
const FID_TYPES = new Set([T.FID, T.DFID_NAME, T.DFID, T.OLD_DFID_NAME, T.NEW_DFID_NAME]);
const NAME_TYPES = new Set([T.DFID_NAME, T.OLD_DFID_NAME, T.NEW_DFID_NAME]);
const FAN_OPEN = 0x20, FAN_CREATE = 0x100, FAN_RENAME = 0x10000000, FAN_ONDIR = 0x40000000;
const FAN_FS_ERROR = 0x8000, FAN_PRE_ACCESS = 0x100000, FAN_MNT_ATTACH = 0x01000000;
const FAN_NOFD = -1;

// ---- buffer builders -------------------------------------------------------

/** An info record: header (with hdr.len = `len`, default the real length) and body. */
function record(type: number, body: Buffer, len?: number): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt8(type, 0);
  out.writeUInt8(0, 1);
  out.writeUInt16LE(len ?? out.length, 2);
  body.copy(out, 4);
  return out;
}

interface FidSpec {
  fsid?: [number, number];
  handleType?: number;
  handle?: Buffer;
  /** handle_bytes as written, when it should lie about the handle. */
  handleBytes?: number;
  name?: string | Buffer;
  /** Terminate the name with NUL (default true). */
  nul?: boolean;
  /** Pad the record to a multiple of 4, as the kernel does (default true). */
  pad?: boolean;
  /** hdr.len as written (default the real length). */
  len?: number;
}

function fidRecord(type: number, spec: FidSpec = {}): Buffer {
  const fsid = spec.fsid ?? [0x0000fd01, 0x00000000];
  const handle = spec.handle ?? Buffer.from([0x0c, 0, 0, 0, 0x2a, 0, 0, 0]);
  const parts: Buffer[] = [Buffer.alloc(16)];
  parts[0].writeUInt32LE(fsid[0] >>> 0, 0);
  parts[0].writeUInt32LE(fsid[1] >>> 0, 4);
  parts[0].writeUInt32LE(spec.handleBytes ?? handle.length, 8);
  parts[0].writeInt32LE(spec.handleType ?? 1, 12);
  parts.push(handle);
  if (spec.name !== undefined) {
    parts.push(Buffer.isBuffer(spec.name) ? spec.name : Buffer.from(spec.name, 'utf8'));
    if (spec.nul !== false) parts.push(Buffer.alloc(1));
  }
  let body = Buffer.concat(parts);
  if (spec.pad !== false) body = Buffer.concat([body, Buffer.alloc((4 - ((4 + body.length) % 4)) % 4)]);
  return record(type, body, spec.len);
}

function pidfdRecord(pidfd: number): Buffer {
  const body = Buffer.alloc(4);
  body.writeInt32LE(pidfd, 0);
  return record(T.PIDFD, body);
}

function errorRecord(error: number, count: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeInt32LE(error, 0);
  body.writeUInt32LE(count, 4);
  return record(T.ERROR, body);
}

function rangeRecord(offset: bigint, count: bigint): Buffer {
  const body = Buffer.alloc(20);
  body.writeBigUInt64LE(offset, 4);
  body.writeBigUInt64LE(count, 12);
  return record(T.RANGE, body);
}

function mntRecord(id: bigint): Buffer {
  const body = Buffer.alloc(12);
  body.writeBigUInt64LE(id, 4);
  return record(T.MNT, body);
}

interface EventSpec {
  mask?: number | bigint;
  fd?: number;
  pid?: number;
  records?: Buffer[];
  /** event_len as written (default the real length). */
  eventLen?: number;
  vers?: number;
  metadataLen?: number;
}

function event(spec: EventSpec = {}): Buffer {
  const body = Buffer.concat(spec.records ?? []);
  const head = Buffer.alloc(24);
  head.writeUInt32LE(spec.eventLen ?? 24 + body.length, 0);
  head.writeUInt8(spec.vers ?? 3, 4);
  head.writeUInt8(0, 5);
  head.writeUInt16LE(spec.metadataLen ?? 24, 6);
  head.writeBigUInt64LE(BigInt(spec.mask ?? FAN_OPEN), 8);
  head.writeInt32LE(spec.fd ?? FAN_NOFD, 16);
  head.writeInt32LE(spec.pid ?? 4242, 20);
  return Buffer.concat([head, body]);
}

// ---- parsing and checking --------------------------------------------------

interface Parsed {
  events: Int32Array;
  records: Int32Array;
  truncated: boolean;
  decoded: FanotifyEvent[];
}

function parse(bytes: Buffer): Parsed {
  const { events, records, truncated } = binding.parse(bytes);
  const decoded: FanotifyEvent[] = [];
  for (let i = 0; i < events.length / EV.stride; i++) decoded.push(FanotifyEvent._fromBatch({ bytes, events, records }, i, null, false));
  return { events, records, truncated, decoded };
}

/** The one event of `bytes`. */
function parseOne(bytes: Buffer): FanotifyEvent {
  const p = parse(bytes);
  expect(p.decoded).toHaveLength(1);
  expect(p.truncated).toBe(false);
  return p.decoded[0];
}

/**
 * Every offset in the tables lies inside the buffer (and inside its event, and
 * its record); returns a list of violations, empty when all is well.
 */
function tableViolations(bytes: Buffer, events: Int32Array, records: Int32Array): string[] {
  const bad: string[] = [];
  const n = bytes.length;
  if (events.length % EV.stride !== 0) bad.push(`events length ${events.length}`);
  if (records.length % REC.stride !== 0) bad.push(`records length ${records.length}`);
  const recordRows = records.length / REC.stride;
  let prevEnd = 0;
  let nextRecord = 0;
  for (let i = 0; i < events.length / EV.stride; i++) {
    const ev = events.subarray(i * EV.stride, (i + 1) * EV.stride);
    const off = ev[EV.offset], len = ev[EV.length];
    if (off < prevEnd || len < 24 || off + 24 > n || off + len > n) bad.push(`event ${i}: offset ${off} length ${len} in ${n} bytes`);
    prevEnd = off + len;
    const first = ev[EV.firstRecord], count = ev[EV.recordCount];
    if (first !== nextRecord || count < 0 || first + count > recordRows) bad.push(`event ${i}: records ${first}+${count} of ${recordRows}`);
    nextRecord = first + count;
    for (let r = first; r < first + count && r < recordRows; r++) {
      const row = records.subarray(r * REC.stride, (r + 1) * REC.stride);
      const at = row[REC.offset], rlen = row[REC.length], type = row[REC.type];
      const end = at + rlen;
      if (at < off + 24 || rlen < 4 || end > off + len || end > n) bad.push(`record ${r}: offset ${at} length ${rlen} outside event ${off}+${len}`);
      if (type !== bytes[at]) bad.push(`record ${r}: type ${type} but byte ${bytes[at]}`);
      if (!row[REC.valid]) continue;
      if (FID_TYPES.has(type)) {
        const h = row[REC.b], hb = row[REC.c], nameAt = row[REC.d], nameLen = row[REC.e];
        if (rlen < 20 || h !== at + 20 || hb < 0 || h + hb > end) bad.push(`record ${r}: handle ${h}+${hb} outside ${at}+${rlen}`);
        if (NAME_TYPES.has(type)) {
          if (nameAt < h + hb || nameLen < 0 || nameAt + nameLen + 1 > end || bytes[nameAt + nameLen] !== 0)
            bad.push(`record ${r}: name ${nameAt}+${nameLen} outside ${at}+${rlen} or not NUL-terminated`);
        } else if (nameAt !== -1) bad.push(`record ${r}: type ${type} has a name at ${nameAt}`);
      } else {
        const min: Record<number, number> = { [T.PIDFD]: 8, [T.ERROR]: 12, [T.RANGE]: 24, [T.MNT]: 16 };
        if (!(type in min)) bad.push(`record ${r}: unknown type ${type} marked valid`);
        else if (rlen < min[type]) bad.push(`record ${r}: type ${type} valid with only ${rlen} bytes`);
      }
    }
  }
  if (nextRecord !== recordRows) bad.push(`${recordRows - nextRecord} record rows belong to no event`);
  return bad;
}

function expectSaneTables(bytes: Buffer): Parsed {
  const p = parse(bytes);
  expect(tableViolations(bytes, p.events, p.records)).toEqual([]);
  return p;
}

// ---- well-formed records ---------------------------------------------------

describe('well-formed events', () => {
  test('header fields: mask (64-bit), fd, pid, isDir, events, overflow', () => {
    const ev = parseOne(event({ mask: (1n << 32n) | BigInt(FAN_CREATE | FAN_ONDIR), pid: 31337 }));
    expect(ev.mask).toBe(2 ** 32 + FAN_CREATE + FAN_ONDIR);
    expect(ev.events).toEqual(['create']);
    expect(ev.isDir).toBe(true);
    expect(ev.pid).toBe(31337);
    expect(ev.fd).toBeNull();
    expect(ev.fdError).toBeUndefined();
    expect(ev.overflow).toBe(false);
    expect(ev.malformed).toBe(false);
    expect(ev.records).toBeUndefined();
    expect(ev.file).toBeUndefined();
  });

  test('overflow event and an fd error (FAN_REPORT_FD_ERROR: fd = -errno)', () => {
    const p = parse(Buffer.concat([event({ mask: 0x4000 }), event({ fd: -24 })]));
    expect(p.decoded[0].overflow).toBe(true);
    expect(p.decoded[0].events).toEqual(['overflow']);
    expect(p.decoded[1].fd).toBeNull();
    expect(p.decoded[1].fdError).toBe('EMFILE');
  });

  test('FID: fsid as "hhhhhhhh:hhhhhhhh", handleType, handle bytes, ino/generation of INO32_GEN', () => {
    const handle = Buffer.alloc(8);
    handle.writeUInt32LE(0x12345678, 0);
    handle.writeUInt32LE(0xdeadbeef, 4);
    const ev = parseOne(event({ records: [fidRecord(T.FID, { fsid: [0x1234abcd, -0x01234568], handleType: 1, handle })] }));
    expect(ev.malformed).toBe(false);
    expect(ev.file).toEqual({ fsid: '1234abcd:fedcba98', handleType: 1, handle, ino: 0x12345678n, generation: 0xdeadbeef });
    expect(ev.file!.handle).toBeInstanceOf(Buffer);
    expect(ev.dir).toBeUndefined();
  });

  test('FID of type 0x81 (INO64_GEN, 12 bytes): 64-bit ino', () => {
    const handle = Buffer.alloc(12);
    handle.writeBigUInt64LE(0x1_0000_0005n, 0);
    handle.writeUInt32LE(77, 8);
    const ev = parseOne(event({ records: [fidRecord(T.FID, { handleType: 0x81, handle })] }));
    expect(ev.file).toMatchObject({ fsid: '0000fd01:00000000', handleType: 0x81, ino: 0x1_0000_0005n, generation: 77 });
    expect(ev.file!.handle.equals(handle)).toBe(true);
  });

  test('FID whose layout is not known (type 1 with 12 bytes, as tmpfs): no ino', () => {
    const handle = Buffer.from('0102030405060708090a0b0c', 'hex');
    const ev = parseOne(event({ records: [fidRecord(T.FID, { handleType: 1, handle })] }));
    expect(ev.file!.handle.equals(handle)).toBe(true);
    expect(ev.file!.ino).toBeUndefined();
    expect(ev.file!.generation).toBeUndefined();
  });

  test('FID with FILEID_INVALID and no handle bytes', () => {
    const ev = parseOne(event({ mask: FAN_FS_ERROR, records: [fidRecord(T.FID, { handleType: 0xff, handle: Buffer.alloc(0) }), errorRecord(5, 1)] }));
    expect(ev.file).toEqual({ fsid: '0000fd01:00000000', handleType: 0xff, handle: Buffer.alloc(0) });
    expect(ev.malformed).toBe(false);
  });

  test('DFID without a name, DFID_NAME with a name', () => {
    const a = parseOne(event({ records: [fidRecord(T.DFID)] }));
    expect(a.dir).toMatchObject({ handleType: 1, ino: 12n, generation: 42 });
    expect(a.dir!.name).toBeUndefined();
    const b = parseOne(event({ mask: FAN_CREATE, records: [fidRecord(T.DFID_NAME, { name: 'héllo wörld.txt' })] }));
    expect(b.dir).toMatchObject({ fsid: '0000fd01:00000000', handleType: 1, ino: 12n, name: 'héllo wörld.txt' });
    expect(b.file).toBeUndefined();
  });

  test('DFID_NAME without padding, and with more padding than needed', () => {
    expect(parseOne(event({ records: [fidRecord(T.DFID_NAME, { name: 'abc', pad: false })] })).dir!.name).toBe('abc');
    const padded = fidRecord(T.DFID_NAME, { name: 'x' });
    const extra = Buffer.concat([padded, Buffer.alloc(8)]);
    extra.writeUInt16LE(extra.length, 2);
    const ev = parseOne(event({ records: [extra] }));
    expect(ev.dir!.name).toBe('x');
    expect(ev.malformed).toBe(false);
  });

  test('rename: OLD_DFID_NAME is from, NEW_DFID_NAME is to, FID is file', () => {
    const ev = parseOne(event({
      mask: FAN_RENAME,
      records: [
        fidRecord(T.OLD_DFID_NAME, { fsid: [1, 2], name: 'old-name' }),
        fidRecord(T.NEW_DFID_NAME, { fsid: [1, 2], handle: Buffer.from([7, 0, 0, 0, 1, 0, 0, 0]), name: 'new-name' }),
        fidRecord(T.FID, { fsid: [1, 2], handle: Buffer.from([9, 0, 0, 0, 3, 0, 0, 0]) }),
      ],
    }));
    expect(ev.events).toEqual(['rename']);
    expect(ev.from).toMatchObject({ fsid: '00000001:00000002', name: 'old-name', ino: 12n, generation: 42 });
    expect(ev.to).toMatchObject({ fsid: '00000001:00000002', name: 'new-name', ino: 7n, generation: 1 });
    expect(ev.file).toMatchObject({ ino: 9n, generation: 3 });
    expect(ev.dir).toBeUndefined();
  });

  test('ERROR: errno, code with filesystem names, count', () => {
    for (const [errno, code] of [[117, 'EFSCORRUPTED'], [74, 'EFSBADCRC'], [108, 'ESHUTDOWN'], [5, 'EIO']] as const) {
      const ev = parseOne(event({ mask: FAN_FS_ERROR, records: [fidRecord(T.FID), errorRecord(errno, 3)] }));
      expect(ev.events).toEqual(['fsError']);
      expect(ev.error).toEqual({ errno, code, count: 3 });
    }
    // error_count is unsigned
    expect(parseOne(event({ records: [errorRecord(117, 0xffffffff)] })).error!.count).toBe(0xffffffff);
  });

  test('RANGE: offset and count (64-bit)', () => {
    const ev = parseOne(event({ mask: FAN_PRE_ACCESS, records: [rangeRecord(2n ** 40n + 5n, 4096n)] }));
    expect(ev.range).toEqual({ offset: 2 ** 40 + 5, count: 4096 });
  });

  test('PIDFD: a number, FAN_NOPIDFD (-1) and FAN_EPIDFD (-2) are null', () => {
    expect(parseOne(event({ records: [pidfdRecord(123456)] })).pidfd).toBe(123456);
    expect(parseOne(event({ records: [pidfdRecord(-1)] })).pidfd).toBeNull();
    expect(parseOne(event({ records: [pidfdRecord(-2)] })).pidfd).toBeNull();
    expect(parseOne(event()).pidfd).toBeUndefined();
  });

  test('MNT: the 64-bit mount id as a bigint, high bits included', () => {
    const ev = parseOne(event({ mask: FAN_MNT_ATTACH, fd: FAN_NOFD, records: [mntRecord(0x8000_0001_0000_0002n)] }));
    expect(ev.events).toEqual(['mntAttach']);
    expect(ev.mountId).toBe(0x8000_0001_0000_0002n);
    expect(parseOne(event({ records: [mntRecord(0xffff_ffff_ffff_ffffn)] })).mountId).toBe(0xffff_ffff_ffff_ffffn);
  });

  test('several events in one buffer', () => {
    const bytes = Buffer.concat([
      event({ mask: FAN_OPEN, pid: 1 }),
      event({ mask: FAN_CREATE, pid: 2, records: [fidRecord(T.DFID_NAME, { name: 'a' })] }),
      event({ mask: FAN_FS_ERROR, pid: 3, records: [fidRecord(T.FID), errorRecord(117, 2)] }),
      event({ mask: FAN_MNT_ATTACH, pid: 4, records: [mntRecord(99n)] }),
    ]);
    const p = expectSaneTables(bytes);
    expect(p.truncated).toBe(false);
    expect(p.decoded.map((e) => e.pid)).toEqual([1, 2, 3, 4]);
    expect(p.decoded.map((e) => e.events)).toEqual([['open'], ['create'], ['fsError'], ['mntAttach']]);
    expect(p.decoded[1].dir!.name).toBe('a');
    expect(p.decoded[2].error).toEqual({ errno: 117, code: 'EFSCORRUPTED', count: 2 });
    expect(p.decoded[3].mountId).toBe(99n);
    expect(p.decoded.every((e) => !e.malformed)).toBe(true);
    // Each event's records are its own.
    expect(p.decoded[0].dir).toBeUndefined();
    expect(p.decoded[3].error).toBeUndefined();
  });

  test('records in any order', () => {
    const recs = [
      pidfdRecord(-2),
      errorRecord(74, 9),
      fidRecord(T.DFID_NAME, { name: 'n' }),
      mntRecord(5n),
      rangeRecord(1n, 2n),
      fidRecord(T.FID, { handleType: 0x81, handle: Buffer.alloc(12, 1) }),
    ];
    for (const order of [recs, [...recs].reverse(), [recs[3], recs[0], recs[5], recs[2], recs[4], recs[1]]]) {
      const ev = parseOne(event({ records: order }));
      expect(ev.malformed).toBe(false);
      expect(ev.pidfd).toBeNull();
      expect(ev.error).toEqual({ errno: 74, code: 'EFSBADCRC', count: 9 });
      expect(ev.dir!.name).toBe('n');
      expect(ev.mountId).toBe(5n);
      expect(ev.range).toEqual({ offset: 1, count: 2 });
      expect(ev.file!.handleType).toBe(0x81);
      expect(ev.records).toBeUndefined();
    }
  });

  test('metadata_len larger than 24: records start after it', () => {
    const bytes = event({ metadataLen: 32, records: [Buffer.alloc(8, 0xee), errorRecord(5, 1)] });
    const ev = parseOne(bytes);
    expect(ev.malformed).toBe(false);
    expect(ev.error).toEqual({ errno: 5, code: 'EIO', count: 1 });
    expect(ev.records).toBeUndefined();
  });

  test('an unknown record type is kept raw, and is not malformed', () => {
    const data = Buffer.from('0102030405060708', 'hex');
    const ev = parseOne(event({ records: [record(42, data), errorRecord(117, 1), record(200, Buffer.alloc(0))] }));
    expect(ev.malformed).toBe(false);
    expect(ev.records).toEqual([{ type: 42, data }, { type: 200, data: Buffer.alloc(0) }]);
    expect(ev.error!.code).toBe('EFSCORRUPTED');
  });

  test('decoded FileIds do not share memory with the read buffer', () => {
    const bytes = event({ records: [fidRecord(T.DFID_NAME, { name: 'keep' })] });
    const ev = parseOne(bytes);
    const handle = Buffer.from(ev.dir!.handle);
    bytes.fill(0xaa);
    expect(ev.dir!.handle.equals(handle)).toBe(true);
  });
});

// ---- malformed input -------------------------------------------------------

describe('malformed input is flagged, never fatal', () => {
  test('an empty buffer: no events, not truncated', () => {
    const p = parse(Buffer.alloc(0));
    expect(p.decoded).toHaveLength(0);
    expect(p.truncated).toBe(false);
  });

  test('a buffer shorter than 24 bytes: truncated, no event', () => {
    for (const n of [1, 4, 23]) {
      const p = parse(event().subarray(0, n));
      expect(p.decoded).toHaveLength(0);
      expect(p.truncated).toBe(true);
    }
    // A good event followed by a short tail: the event, then truncated.
    const p = expectSaneTables(Buffer.concat([event({ pid: 5 }), Buffer.alloc(10)]));
    expect(p.decoded.map((e) => [e.pid, e.malformed])).toEqual([[5, false]]);
    expect(p.truncated).toBe(true);
  });

  test('event_len < 24: malformed, nothing after it is trusted', () => {
    const p = expectSaneTables(Buffer.concat([event({ eventLen: 8, pid: 7 }), event()]));
    expect(p.decoded).toHaveLength(1);
    expect(p.decoded[0].malformed).toBe(true);
    expect(p.decoded[0].pid).toBe(7);
    expect(p.truncated).toBe(true);
  });

  test('event_len past the end of the buffer: malformed', () => {
    const p = expectSaneTables(Buffer.concat([event({ pid: 1 }), event({ eventLen: 1000, pid: 2, records: [errorRecord(5, 1)] })]));
    expect(p.decoded.map((e) => [e.pid, e.malformed])).toEqual([[1, false], [2, true]]);
    expect(p.decoded[1].error).toBeUndefined();
    expect(p.truncated).toBe(true);
  });

  test('metadata_len > event_len, and metadata_len < 24: malformed', () => {
    for (const metadataLen of [200, 40, 23, 0]) {
      const p = expectSaneTables(Buffer.concat([event({ metadataLen, records: [errorRecord(5, 1)] }), event({ pid: 9 })]));
      expect(p.decoded).toHaveLength(2);
      expect(p.decoded[0].malformed).toBe(true);
      // event_len was sound, so the next event is found.
      expect(p.decoded[1].pid).toBe(9);
      expect(p.decoded[1].malformed).toBe(false);
    }
  });

  test('a wrong metadata version: malformed, no records decoded', () => {
    const p = expectSaneTables(Buffer.concat([event({ vers: 2, records: [errorRecord(5, 1)] }), event({ pid: 9 })]));
    expect(p.decoded[0].malformed).toBe(true);
    expect(p.decoded[0].error).toBeUndefined();
    expect(p.decoded[1].malformed).toBe(false);
  });

  test('record hdr.len = 0 (and 1..3): malformed, the next event still parses', () => {
    for (const len of [0, 1, 3]) {
      const bad = errorRecord(5, 1);
      bad.writeUInt16LE(len, 2);
      const p = expectSaneTables(Buffer.concat([event({ records: [errorRecord(74, 1), bad] }), event({ pid: 9 })]));
      expect(p.decoded[0].malformed).toBe(true);
      expect(p.decoded[0].error!.errno).toBe(74);  // what came before is kept
      expect(p.decoded[1].pid).toBe(9);
      expect(p.decoded[1].malformed).toBe(false);
    }
  });

  test('record hdr.len past the end of its event: malformed', () => {
    const bad = errorRecord(5, 1);
    bad.writeUInt16LE(16, 2);
    const p = expectSaneTables(Buffer.concat([event({ records: [bad] }), event({ pid: 9 })]));
    expect(p.decoded[0].malformed).toBe(true);
    expect(p.decoded[0].error).toBeUndefined();
    expect(p.decoded[1].pid).toBe(9);
  });

  test('trailing bytes too short for a record header: malformed', () => {
    const ev = parseOne(event({ records: [errorRecord(5, 1), Buffer.from([1, 0])] }));
    expect(ev.malformed).toBe(true);
    expect(ev.error!.errno).toBe(5);
  });

  test('FID record with handle_bytes larger than the record: malformed, kept raw', () => {
    const rec = fidRecord(T.FID, { handleBytes: 64 });
    const ev = parseOne(event({ records: [rec, errorRecord(5, 1)] }));
    expect(ev.malformed).toBe(true);
    expect(ev.file).toBeUndefined();
    expect(ev.records).toEqual([{ type: T.FID, data: rec.subarray(4) }]);
    expect(ev.error!.errno).toBe(5);  // the next record is still found
    // handle_bytes near 2^32 must not wrap around
    const huge = fidRecord(T.DFID, { handleBytes: 0xfffffffc });
    expect(parseOne(event({ records: [huge] })).malformed).toBe(true);
  });

  test('FID record shorter than its fixed part: malformed', () => {
    const short = record(T.FID, Buffer.alloc(12));
    const ev = parseOne(event({ records: [short] }));
    expect(ev.malformed).toBe(true);
    expect(ev.file).toBeUndefined();
    expect(ev.records).toEqual([{ type: T.FID, data: Buffer.alloc(12) }]);
  });

  test('DFID_NAME whose name has no NUL: malformed, kept raw', () => {
    for (const type of [T.DFID_NAME, T.OLD_DFID_NAME, T.NEW_DFID_NAME]) {
      const rec = fidRecord(type, { name: 'abcd', nul: false, pad: false });
      const ev = parseOne(event({ mask: FAN_RENAME, records: [rec] }));
      expect(ev.malformed).toBe(true);
      expect(ev.dir).toBeUndefined();
      expect(ev.from).toBeUndefined();
      expect(ev.to).toBeUndefined();
      expect(ev.records).toEqual([{ type, data: rec.subarray(4) }]);
    }
    // The name's NUL lies past hdr.len (in the next record): still malformed.
    const rec = fidRecord(T.DFID_NAME, { name: 'abc', pad: false });
    rec.writeUInt16LE(rec.length - 1, 2);
    const ev = parseOne(event({ records: [rec.subarray(0, rec.length - 1), Buffer.from([0]), Buffer.alloc(3)] }));
    expect(ev.malformed).toBe(true);
    expect(ev.dir).toBeUndefined();
  });

  test('ERROR, PIDFD, RANGE and MNT records too short: malformed, kept raw', () => {
    const cases: [number, Buffer][] = [
      [T.ERROR, errorRecord(5, 1).subarray(4, 8)],
      [T.PIDFD, Buffer.alloc(0)],
      [T.RANGE, rangeRecord(1n, 2n).subarray(4, 20)],
      [T.MNT, mntRecord(1n).subarray(4, 8)],
    ];
    for (const [type, body] of cases) {
      const ev = parseOne(event({ records: [record(type, body)] }));
      expect(ev.malformed).toBe(true);
      expect(ev.error).toBeUndefined();
      expect(ev.pidfd).toBeUndefined();
      expect(ev.range).toBeUndefined();
      expect(ev.mountId).toBeUndefined();
      expect(ev.records).toEqual([{ type, data: Buffer.from(body) }]);
    }
  });

  test('a malformed event still delivers what came before the bad record', () => {
    const bad = fidRecord(T.DFID_NAME, { name: 'x', handleBytes: 200 });
    const ev = parseOne(event({ records: [fidRecord(T.FID), mntRecord(3n), bad] }));
    expect(ev.malformed).toBe(true);
    expect(ev.file).toMatchObject({ ino: 12n });
    expect(ev.mountId).toBe(3n);
    expect(ev.dir).toBeUndefined();
    expect(ev.toJSON()).toMatchObject({ malformed: true, mountId: '3' });
  });
});

// ---- randomized ------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('randomized buffers', () => {
  const SEED = 0x5eed_f00d;
  const rand = prng(SEED);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <V>(xs: readonly V[]): V => xs[int(xs.length)];
  const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

  function randomRecord(): Buffer {
    switch (int(9)) {
      case 0: return fidRecord(pick([T.FID, T.DFID]), { fsid: [int(2 ** 32), int(2 ** 32)], handleType: pick([1, 2, 0x81, 0xff, int(256)]), handle: randomBytes(pick([0, 8, 12, 16, 24, int(40)])) });
      case 1: return fidRecord(pick([T.DFID_NAME, T.OLD_DFID_NAME, T.NEW_DFID_NAME]), { handle: randomBytes(pick([8, 12, int(30)])), name: randomBytes(int(20)).toString('latin1').replace(/\0/g, 'z') });
      case 2: return pidfdRecord(pick([-2, -1, 100000 + int(1000)]));
      case 3: return errorRecord(pick([5, 74, 117, 108, int(200)]), int(2 ** 32));
      case 4: return rangeRecord(BigInt(int(2 ** 31)) * 4096n, BigInt(int(2 ** 20)));
      case 5: return mntRecord(BigInt(int(2 ** 32)) << BigInt(int(33)));
      case 6: return record(8 + int(240), randomBytes(int(24)));
      default: return fidRecord(T.FID);
    }
  }

  function randomEvent(): Buffer {
    const records = Array.from({ length: int(5) }, randomRecord);
    return event({ mask: int(2 ** 31) | pick([0, FAN_ONDIR]), pid: int(2 ** 22), fd: FAN_NOFD, records });
  }

  function mutate(src: Buffer): Buffer {
    let buf = Buffer.from(src);
    const rounds = 1 + int(4);
    for (let i = 0; i < rounds && buf.length > 0; i++) {
      const at = int(buf.length);
      switch (int(7)) {
        case 0:  // flip bits
          buf[at] ^= 1 << int(8);
          break;
        case 1:  // a random byte
          buf[at] = int(256);
          break;
        case 2: {  // an interesting u16 (hdr.len, metadata_len)
          if (at + 2 <= buf.length) buf.writeUInt16LE(pick([0, 1, 3, 4, 8, 12, 20, 23, 24, 25, 0xffff, buf.length - at, buf.length - at + 1]) & 0xffff, at);
          break;
        }
        case 3: {  // an interesting u32 (event_len, handle_bytes, error)
          if (at + 4 <= buf.length) buf.writeUInt32LE(pick([0, 1, 8, 23, 24, 0x7fffffff, 0x80000000, 0xffffffff, buf.length - at, buf.length - at + 4]) >>> 0, at);
          break;
        }
        case 4:  // truncate
          buf = buf.subarray(0, at);
          break;
        case 5:  // garbage appended
          buf = Buffer.concat([buf, randomBytes(int(40))]);
          break;
        default: {  // a slice moved elsewhere
          const len = int(Math.min(32, buf.length - at) + 1);
          const piece = Buffer.from(buf.subarray(at, at + len));
          piece.copy(buf, int(buf.length));
        }
      }
    }
    return buf;
  }

  test('the bounds check itself notices rows that point outside', () => {
    const bytes = event({ records: [fidRecord(T.DFID_NAME, { name: 'ab' }), errorRecord(5, 1)] });
    const { events, records } = binding.parse(bytes);
    expect(tableViolations(bytes, events, records)).toEqual([]);
    const tamper = (table: Int32Array, index: number, value: number) => {
      const copy = Int32Array.from(table);
      copy[index] = value;
      return copy;
    };
    expect(tableViolations(bytes, tamper(events, EV.length, bytes.length + 1), records)).not.toEqual([]);
    expect(tableViolations(bytes, tamper(events, EV.recordCount, 3), records)).not.toEqual([]);
    expect(tableViolations(bytes, events, tamper(records, REC.length, 200))).not.toEqual([]);
    expect(tableViolations(bytes, events, tamper(records, REC.c, 100))).not.toEqual([]);
    expect(tableViolations(bytes, events, tamper(records, REC.e, 10))).not.toEqual([]);
    expect(tableViolations(bytes, events, tamper(records, REC.stride + REC.length, 4))).not.toEqual([]);
  });

  test(`2000 random and mutated buffers parse within bounds (seed 0x${SEED.toString(16)})`, () => {
    let events = 0;
    let malformed = 0;
    for (let i = 0; i < 2000; i++) {
      const valid = Buffer.concat(Array.from({ length: 1 + int(4) }, randomEvent));
      const bytes = i % 10 === 0 ? valid : i % 10 === 1 ? randomBytes(int(200)) : mutate(valid);
      let p: Parsed;
      try {
        p = parse(bytes);
      } catch (err) {
        throw new Error(`case ${i}: parse threw ${String(err)} on ${bytes.toString('hex')}`);
      }
      const bad = tableViolations(bytes, p.events, p.records);
      if (bad.length > 0) throw new Error(`case ${i}: ${bad.join('; ')}\n${bytes.toString('hex')}`);
      if (i % 10 === 0) expect(p.decoded.every((e) => !e.malformed)).toBe(true);
      for (const ev of p.decoded) {
        // Every lazy field decodes without throwing, and serializes (bigints
        // such as a FileId's ino become strings).
        const json = ev.toJSON();
        expect(typeof json.mask).toBe('number');
        expect(typeof JSON.stringify(ev)).toBe('string');
        void ev.events;
        void ev.records;
        events++;
        if (ev.malformed) malformed++;
      }
    }
    // The mix exercised both sides.
    expect(events).toBeGreaterThan(2000);
    expect(malformed).toBeGreaterThan(100);
  });
});
