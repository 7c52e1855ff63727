// One fanotify event, decoded lazily from the batch the native reader handed
// over: header fields up front, info records on first access.
import * as fs from 'node:fs';

import { binding } from './binding';
import { constants as C, PERMISSION_EVENTS } from './constants';
import { errnoName } from './errno';
import { invalidArg, stateError, systemError } from './errors';
import { FileId, formatFsid, makeFileId, u32At } from './fileid';
import { Decision, EVENT_BITS, EventName, RespondOptions } from './options';

// Row layouts of the native tables: src-native/parser.h (EventField, RecordField).
const EV = { offset: 0, length: 1, maskLo: 2, maskHi: 3, fd: 4, pid: 5, firstRecord: 6, recordCount: 7, flags: 8, token: 9, stride: 10 } as const;
const REC = { type: 0, offset: 1, length: 2, valid: 3, a: 4, b: 5, c: 6, d: 7, e: 8, stride: 9 } as const;
const MALFORMED = 1;
const ENOENT = 2;
/** @internal */
export const EVENT_STRIDE = EV.stride;

/** @internal */
export interface Batch {
  bytes: Buffer;
  events: Int32Array;
  records: Int32Array;
  /** A row's token is this plus the row's token field (0: none); see src-native/reader.h Batch. */
  tokenBase?: number;
}

// Ints before the tables: src-native/group.h kBatchHeaderInts.
const HEADER_INTS = 6;

/** @internal A row's event fd, or a negative value (FAN_NOFD, -errno). */
export const rowFd = (batch: Batch, row: number): number => batch.events[row * EV.stride + EV.fd];

/** @internal A row's permission-event token (what the addon answers by), 0 if none. */
export function rowToken(batch: Batch, row: number): number {
  const offset = batch.events[row * EV.stride + EV.token];
  return offset === 0 ? 0 : (batch.tokenBase ?? 0) + offset;
}

/** The 64-bit mask of the event row starting at `at`, as a number. */
const maskAt = (t: Int32Array, at: number): number => (t[at + EV.maskLo] >>> 0) + (t[at + EV.maskHi] >>> 0) * 2 ** 32;

/** A permission event has a token (filed natively), or a permission bit. */
const isPermissionEvent = (token: number, mask: number): boolean => token !== 0 || (mask & PERMISSION_EVENTS) !== 0;

/** @internal Whether a row is a permission event, without making the event. */
export function rowIsPermission(batch: Batch, row: number): boolean {
  const at = row * EV.stride;
  return isPermissionEvent(batch.events[at + EV.token], maskAt(batch.events, at));
}

/**
 * The views over a batch's ArrayBuffer (the layout is Group::BatchToJs's), and
 * how many events the addon answered with the default and dropped before it.
 * @internal
 */
export function batchViews(raw: ArrayBuffer): Batch & { dropped: number } {
  const header = new Int32Array(raw, 0, HEADER_INTS);
  const eventInts = header[0];
  const recordInts = header[1];
  const start = HEADER_INTS * 4;
  const events = new Int32Array(raw, start, eventInts);
  const records = new Int32Array(raw, start + eventInts * 4, recordInts);
  const bytes = Buffer.from(raw, start + (eventInts + recordInts) * 4, header[2]);
  const tokenBase = (header[4] >>> 0) + (header[5] >>> 0) * 2 ** 32;
  return { bytes, events, records, tokenBase, dropped: header[3] };
}

/** @internal What the event needs from its group, which owns every fd it hands over. */
export interface EventOwner {
  /**
   * Checks the answer (throws before anything is written), then writes it:
   * 0, ENOENT (not pending any more) or the kernel's errno. `releaseFd` (or
   * -1) is given up in any case once the write is tried: closed just before
   * the answer is written, or at once when the event is not pending.
   */
  respond(token: number, decision: Decision, audit: unknown, releaseFd: number): number;
  /** Done with an fd: closed now, or with the answer of a pending permission event. */
  release(fd: number, token: number): void;
  /** The caller takes the fd over. */
  keep(fd: number): boolean;
}

export interface RawRecord {
  type: number;
  data: Buffer;
}

// File ids are made on first access: a FileId is an object, a copy of the
// handle and often a BigInt, and most consumers read one of an event's two or
// three. Until then the field holds the record's row in the record table.
interface DecodedRecords {
  file?: FileId | number;
  dir?: (FileId & { name?: string }) | number;
  from?: (FileId & { name: string }) | number;
  to?: (FileId & { name: string }) | number;
  error?: { errno: number; code: string; count: number };
  range?: { offset: number; count: number };
  pidfd?: number | null;
  mountId?: bigint;
  records?: RawRecord[];
}

const FILE_ID_KEYS = ['file', 'dir', 'from', 'to'] as const;

/** For toJSON(): bigints (ino, mountId) as strings, also inside a FileId. */
function jsonValue(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = typeof v === 'bigint' ? v.toString() : v;
  return out;
}

// Consecutive events almost always share a filesystem: format its fsid once.
let lastFsid = { a: -1, b: -1, text: '' };
function fsidAt(bytes: Buffer, at: number): string {
  const a = u32At(bytes, at);
  const b = u32At(bytes, at + 4);
  if (a !== lastFsid.a || b !== lastFsid.b) lastFsid = { a, b, text: formatFsid(a, b) };
  return lastFsid.text;
}

// Buffer#toString('utf8', a, b) without its argument checks (bounds are the parser's).
const utf8Slice = (b: Buffer, start: number, end: number): string =>
  (b as Buffer & { utf8Slice(start: number, end: number): string }).utf8Slice(start, end);

const u64 = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);

export class FanotifyEvent {
  /** The raw event mask. */
  readonly mask: number;
  readonly isDir: boolean;
  /** The pid (or tid with report.tid) of the process that caused the event. */
  readonly pid: number;
  /** The event fd, null for FAN_NOFD; closed when the iteration step ends unless keepFd() was called. */
  fd: number | null;
  /** With report.fdError: why no fd could be opened (e.g. 'EMFILE'). */
  readonly fdError?: string;
  /** FAN_Q_OVERFLOW: events were lost. */
  readonly overflow: boolean;
  /** Something in the event did not fit its layout; what could be parsed is here. */
  readonly malformed: boolean;

  #batch: Batch;
  #row: number;
  #owner: EventOwner | null;
  #token: number;
  #decoded = false;
  #reportsPidfd: boolean;
  #records: DecodedRecords = {};
  #path: string | undefined | null = null;
  #fdKept = false;
  #pidfdKept = false;
  #responded = false;

  /** @internal Row `index` of a batch, as the group hands it over. */
  static _fromBatch(batch: Batch, index: number, owner: EventOwner | null, reportsPidfd = true): FanotifyEvent {
    return new FanotifyEvent(batch, index, owner, reportsPidfd);
  }

  // Events come from a group's iterator only: not part of the public type.
  private constructor(batch: Batch, index: number, owner: EventOwner | null, reportsPidfd: boolean) {
    const t = batch.events;
    this.#reportsPidfd = reportsPidfd;
    const row = index * EV.stride;
    this.#batch = batch;
    this.#row = row;
    this.#owner = owner;
    this.#token = rowToken(batch, index);
    this.mask = maskAt(t, row);
    this.isDir = (t[row + EV.maskLo] & C.FAN_ONDIR) !== 0;
    this.pid = t[row + EV.pid];
    const fd = t[row + EV.fd];
    this.fd = fd >= 0 ? fd : null;
    if (fd < 0 && fd !== C.FAN_NOFD) this.fdError = errnoName(-fd);
    this.overflow = (t[row + EV.maskLo] & C.FAN_Q_OVERFLOW) !== 0;
    this.malformed = (t[row + EV.flags] & MALFORMED) !== 0;
  }

  /** Decoded event names, flags (onDir, eventOnChild) excluded. */
  get events(): (EventName | 'overflow')[] {
    const names: (EventName | 'overflow')[] = [];
    const lo = this.#batch.events[this.#row + EV.maskLo];
    for (const [name, bit] of EVENT_BITS) if (lo & bit) names.push(name);
    if (this.overflow) names.push('overflow');
    return names;
  }

  get isPermission(): boolean {
    return isPermissionEvent(this.#token, this.mask);
  }

  /** The path of the event fd (readlink of /proc/self/fd/N), computed on first access. */
  get path(): string | undefined {
    if (this.#path === null) {
      this.#path = undefined;
      if (this.fd !== null) {
        try {
          this.#path = fs.readlinkSync(`/proc/self/fd/${this.fd}`);
        } catch {
          // closed or answered already: no path
        }
      }
    }
    return this.#path;
  }

  get file(): FileId | undefined { return this.#fileId('file'); }
  get dir(): (FileId & { name?: string }) | undefined { return this.#fileId('dir'); }
  get from(): (FileId & { name: string }) | undefined { return this.#fileId('from') as FileId & { name: string }; }
  get to(): (FileId & { name: string }) | undefined { return this.#fileId('to') as FileId & { name: string }; }
  get error(): { errno: number; code: string; count: number } | undefined { return this.#decode().error; }
  get range(): { offset: number; count: number } | undefined { return this.#decode().range; }
  get pidfd(): number | null | undefined { return this.#decode().pidfd; }
  get mountId(): bigint | undefined { return this.#decode().mountId; }
  /** Records of types this version does not know (or could not parse), kept raw. */
  get records(): RawRecord[] | undefined { return this.#decode().records; }

  /** Answers a permission event; exactly once. */
  respond(decision: Decision, options: RespondOptions = {}): void {
    if (!this.isPermission || this.#owner === null)
      throw stateError('ERR_NOT_PERMISSION_EVENT', `respond() is only for permission events; this one is ${this.events.join(', ') || 'not'}`);
    if (typeof options !== 'object' || options === null) throw invalidArg('options', options, 'must be an object');
    if (this.#responded)
      throw stateError('ERR_ALREADY_RESPONDED', 'this permission event was answered already; respond() may be called once');
    // Our fd closes before the waiter wakes (an exec fails with ETXTBSY while
    // a writable fd of the file is open).
    const releaseFd = this.fd !== null && !this.#fdKept ? this.fd : -1;
    const err = this.#owner.respond(this.#token, decision, options.audit ?? false, releaseFd);
    // Given up whatever the outcome: the number may name another file by now.
    if (releaseFd >= 0) this.fd = null;
    if (err === ENOENT) {
      this.#responded = true;
      throw stateError('ERR_ALREADY_RESPONDED',
        'this permission event was already answered with the default (its timeout passed, or the group was closed, or the loop ended)');
    }
    if (err !== 0) {
      throw systemError(err, 'write', {
        details: `the kernel refused the answer ${JSON.stringify(decision)}; the event is still pending: answer it otherwise, or its timeout will`,
      });
    }
    this.#responded = true;
    this.fd = null;
  }

  /** @internal A FAN_Q_OVERFLOW event made here, for events the library had to drop. */
  static overflow(): FanotifyEvent {
    const events = new Int32Array(EV.stride);
    events[EV.length] = C.FAN_EVENT_METADATA_LEN;
    events[EV.maskLo] = C.FAN_Q_OVERFLOW;
    events[EV.fd] = C.FAN_NOFD;
    return new FanotifyEvent({ bytes: Buffer.alloc(0), events, records: new Int32Array(0) }, 0, null, false);
  }

  /** @internal Answers with the group's default, for an event that is dropped unseen. */
  _answerDefault(native: { answerDefault(token: number): void }): void {
    if (this.#token !== 0 && !this.#responded) native.answerDefault(this.#token);
    this.#responded = true;
  }

  /** @internal Marks the event answered by the group (close, break, timeout) without an answer from us. */
  _answeredElsewhere(): void {
    this.#responded = true;
  }

  /** Takes ownership of the event fd; the caller must close it. */
  keepFd(): number | null {
    if (this.fd === null) return null;
    // A permission event's answer names its fd: the caller gets a copy.
    if (this.#token !== 0) return binding.dup(this.fd);
    if (!this.#fdKept && !this.#owner?.keep(this.fd)) return null;
    this.#fdKept = true;
    return this.fd;
  }

  /** Takes ownership of the pidfd; the caller must close it. */
  keepPidfd(): number | null {
    const pidfd = this.pidfd;
    if (pidfd === null || pidfd === undefined) return null;
    if (!this.#pidfdKept && !this.#owner?.keep(pidfd)) return null;
    this.#pidfdKept = true;
    return pidfd;
  }

  /** @internal End of the iteration step: give back what was not kept. */
  _release(): void {
    if (this.fd !== null && !this.#fdKept) this.#owner?.release(this.fd, this.#token);
    this.fd = null;
    if (!this.#reportsPidfd) return;
    const pidfd = this.#decode().pidfd;
    if (typeof pidfd === 'number' && !this.#pidfdKept) this.#owner?.release(pidfd, 0);
    this.#records.pidfd = null;
  }

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      mask: this.mask, events: this.events, isDir: this.isDir, pid: this.pid, fd: this.fd,
      overflow: this.overflow,
    };
    if (this.fdError) out.fdError = this.fdError;
    if (this.malformed) out.malformed = true;
    for (const key of FILE_ID_KEYS) this.#fileId(key);
    for (const [key, value] of Object.entries(this.#decode())) {
      if (value === undefined) continue;
      out[key] = jsonValue(value);
    }
    return out;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): Record<string, unknown> {
    return this.toJSON();
  }

  #fileId(key: (typeof FILE_ID_KEYS)[number]): (FileId & { name?: string }) | undefined {
    const out = this.#decode();
    const row = out[key];
    if (typeof row !== 'number') return row;
    const { bytes, records } = this.#batch;
    const r = row * REC.stride;
    const at = records[r + REC.offset];
    const fsid = fsidAt(bytes, at + 4);
    // A copy, so a kept FileId does not pin the whole batch: from Node's
    // buffer pool (allocUnsafe; every byte is written below), which saves an
    // ArrayBuffer per handle. Handles are short (at most 128 bytes): a plain
    // loop beats Buffer#copy here.
    const handleAt = records[r + REC.b];
    const handleLen = records[r + REC.c];
    const handle = Buffer.allocUnsafe(handleLen);
    for (let k = 0; k < handleLen; k++) handle[k] = bytes[handleAt + k];
    const id = makeFileId(fsid, records[r + REC.a], handle) as FileId & { name?: string };
    const nameAt = records[r + REC.d];
    if (nameAt >= 0) id.name = utf8Slice(bytes, nameAt, nameAt + records[r + REC.e]);
    out[key] = id as FileId & { name: string };
    return id;
  }

  #decode(): DecodedRecords {
    if (this.#decoded) return this.#records;
    this.#decoded = true;
    const { bytes, events, records } = this.#batch;
    const first = events[this.#row + EV.firstRecord];
    const count = events[this.#row + EV.recordCount];
    const out = this.#records;
    for (let i = first; i < first + count; i++) {
      const r = i * REC.stride;
      const type = records[r + REC.type];
      const at = records[r + REC.offset];
      const len = records[r + REC.length];
      if (!records[r + REC.valid]) {
        (out.records ??= []).push({ type, data: Buffer.from(bytes.subarray(at + 4, at + len)) });
        continue;
      }
      switch (type) {
        case C.FAN_EVENT_INFO_TYPE_FID:
        case C.FAN_EVENT_INFO_TYPE_DFID:
        case C.FAN_EVENT_INFO_TYPE_DFID_NAME:
        case C.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
        case C.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
          // Made on first access (#fileId): the row for now.
          if (type === C.FAN_EVENT_INFO_TYPE_FID) out.file = i;
          else if (type === C.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME) out.from = i;
          else if (type === C.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) out.to = i;
          else out.dir = i;
          break;
        case C.FAN_EVENT_INFO_TYPE_ERROR: {
          const errno = Math.abs(records[r + REC.a]);
          out.error = { errno, code: errnoName(errno, { fs: true }), count: records[r + REC.b] >>> 0 };
          break;
        }
        case C.FAN_EVENT_INFO_TYPE_RANGE:
          out.range = {
            offset: Number(u64(records[r + REC.a], records[r + REC.b])),
            count: Number(u64(records[r + REC.c], records[r + REC.d])),
          };
          break;
        case C.FAN_EVENT_INFO_TYPE_PIDFD: {
          const pidfd = records[r + REC.a];
          out.pidfd = pidfd >= 0 ? pidfd : null;
          break;
        }
        case C.FAN_EVENT_INFO_TYPE_MNT:
          out.mountId = u64(records[r + REC.a], records[r + REC.b]);
          break;
      }
    }
    return out;
  }

}
