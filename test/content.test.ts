// Lazy content (hierarchical storage) against the real kernel: populate()
// makes sparse, offline (mode 000) stubs; serveContent() fills them on first
// access through FAN_PRE_ACCESS events (Linux 6.14+), chunk by chunk.
//
// Rules these tests keep:
// - Readers are other processes (this process's own reads of an incomplete
//   stub fail with EIO, by design; one test checks that), spawned
//   asynchronously (never execSync/spawnSync: a blocked JS thread cannot answer
//   the events the reader waits on), with a kill timer.
// - Every filesystem is a LoopImage (ext4, 128 MiB), disposed in finally;
//   every server is closed in finally; every await on the kernel is bounded.
//
// Needs root (CAP_SYS_ADMIN, loop devices, mount).

import { ChildProcess, execFile, spawn, SpawnOptions } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { ContentServer, Fetch, FetchRequest, populate, serveContent } from '../lib';
import { StubState } from '../lib/content/stub-state';
import { binding } from '../lib/core/binding';
import { LoopImage } from '../lib/testing';
import { bound, describeRoot, sleep, testFeature, within } from './helpers';

jest.setTimeout(bound(60_000));

const execFileAsync = promisify(execFile);
const MiB = 1 << 20;
const STUB_XATTR = 'user.fanotify.stub';
const MMAP_READER =
  'import mmap,sys; f=open(sys.argv[1],"rb"); m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ); sys.stdout.buffer.write(m[:])';

// ---------------------------------------------------------------------------
// Child processes

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

const live = new Set<ChildProcess>();

/** Runs cmd asynchronously; SIGKILLs it after killAfterMs so nothing waits forever. */
function run(cmd: string, args: string[], options: SpawnOptions = {}, killAfterMs = 20_000): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const out: Buffer[] = [];
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, killAfterMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr, timedOut });
    });
  });
}

/** `bash -c script file` with pipefail: the file is $1, never interpolated. */
const sh = (script: string, file: string, options?: SpawnOptions) =>
  run('bash', ['-c', `set -o pipefail; ${script}`, 'bash', file], options);

/** sha256 (hex) of what a reader of `file` sees, for each reader kind. */
const readers: Record<string, (file: string) => Promise<ChildResult>> = {
  cat: (file) => sh('cat "$1" | sha256sum', file),
  sha256sum: (file) => sh('sha256sum < "$1"', file),
  mmap: (file) => run('bash', ['-c', 'set -o pipefail; python3 -c "$1" "$2" | sha256sum', 'bash', MMAP_READER, file]),
};

function hashOf(r: ChildResult, what: string): string {
  if (r.timedOut || r.code !== 0) throw new Error(`${what}: exit ${r.code} ${r.signal ?? ''} ${r.timedOut ? '(timed out) ' : ''}${r.stderr}`);
  return r.stdout.toString().trim().split(/\s+/)[0];
}

const sha256 = (data: Uint8Array): string => crypto.createHash('sha256').update(data).digest('hex');
/** sha256 of a source file (never a stub: this process reads only sources). */
const sourceHash = (file: string): string => sha256(fs.readFileSync(file));

// ---------------------------------------------------------------------------
// Fixtures

interface Ctx {
  img: LoopImage;
  src: string;
  stub: string;
  /** Every fetch made, in order. */
  calls: FetchRequest[];
  /** A fetch from src that records its calls; `fail` picks requests to throw on. */
  fetchFrom(fail?: (req: FetchRequest) => boolean): Fetch;
}

/** A fresh ext4 image with src/ and stub/ dirs; disposed (and servers closed) in finally. */
async function withImage(fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const img = await within(30_000, LoopImage.create({ sizeMiB: 128 }), 'LoopImage.create');
  try {
    // mkdtemp made the image's directory 0700: let uid 65534 walk to the files.
    fs.chmodSync(path.dirname(img.mountPoint), 0o755);
    fs.chmodSync(img.mountPoint, 0o755);
    const src = path.join(img.mountPoint, 'src');
    const stub = path.join(img.mountPoint, 'stub');
    fs.mkdirSync(src, { mode: 0o755 });
    const calls: FetchRequest[] = [];
    const fetchFrom = (fail?: (req: FetchRequest) => boolean): Fetch => async (req) => {
      calls.push({ ...req });
      if (fail?.(req)) throw new Error(`fetch of ${req.path} failed (test)`);
      const fh = await fs.promises.open(path.join(src, req.path), 'r');
      try {
        const buf = Buffer.alloc(req.length);
        const { bytesRead } = await fh.read(buf, 0, req.length, req.offset);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    };
    await fn({ img, src, stub, calls, fetchFrom });
  } finally {
    for (const child of live) child.kill('SIGKILL');
    await within(30_000, img[Symbol.asyncDispose](), 'LoopImage dispose');
  }
}

/** Serves ctx.stub for the duration of fn; closed in finally (bounded). */
async function withServer(
  stub: string, fetch: Fetch, fn: (server: ContentServer) => Promise<void>, options = {},
): Promise<ContentServer> {
  const server = await within(10_000, serveContent(stub, fetch, options), 'serveContent');
  try {
    await fn(server);
  } finally {
    await within(10_000, server.close(), 'server.close');
  }
  return server;
}

function writeRandom(file: string, size: number, mode = 0o644): Buffer {
  const data = crypto.randomBytes(size);
  fs.writeFileSync(file, data, { mode });
  fs.chmodSync(file, mode);
  return data;
}

function stubState(file: string): { size: number; mode: number; filled: [number, number][] } | null {
  const s = StubState.read(file);
  return s && { size: s.size, mode: s.mode, filled: s.filled };
}

/** The fetches cover [0, size) exactly once, each starting on a chunk boundary. */
function expectCoveredOnce(calls: FetchRequest[], size: number, chunk = MiB): void {
  const sorted = [...calls].sort((a, b) => a.offset - b.offset);
  let at = 0;
  for (const c of sorted) {
    expect(c.offset).toBe(at);
    expect(c.offset % chunk).toBe(0);
    at = c.offset + c.length;
  }
  expect(at).toBe(size);
}

const modeOf = (file: string): number => fs.statSync(file).mode & 0o7777;

/** The stub's xattr as stored (null when gone): compared byte for byte. */
const rawState = (file: string): Buffer | null => binding.getXattr(file, STUB_XATTR);

/** fn(dir) with dir a read-only bind mount of `target`; unmounted in finally. */
async function withReadOnlyBind(target: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-ro-'));
  try {
    await execFileAsync('mount', ['--bind', target, dir]);
    try {
      await execFileAsync('mount', ['-o', 'remount,ro,bind', dir]);
      await fn(dir);
    } finally {
      await execFileAsync('umount', [dir]);
    }
  } finally {
    fs.rmdirSync(dir);
  }
}

/** The error fn throws (fails the test when it does not throw). */
function thrown(fn: () => unknown): NodeJS.ErrnoException {
  try {
    fn();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  throw new Error('did not throw');
}

/** A shuffled copy, the same every run (a linear congruential generator). */
function shuffled<T>(items: T[], seed = 13): T[] {
  const out = [...items];
  let x = seed;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Reads the 4 KiB pages argv[2] lists (comma-separated, in that order) with pread; prints their sha256. */
const PREAD_READER = [
  'import os, sys, hashlib',
  'fd = os.open(sys.argv[1], os.O_RDONLY)',
  'h = hashlib.sha256()',
  'for p in sys.argv[2].split(","): h.update(os.pread(fd, 4096, int(p) * 4096))',
  'print(h.hexdigest())',
].join('\n');

/** Every entry under dir, relative, with its kind, for comparing trees. */
function tree(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(`d ${r}`, ...tree(dir, r));
    else if (e.isSymbolicLink()) out.push(`l ${r} -> ${fs.readlinkSync(path.join(dir, r))}`);
    else if (e.isFile()) out.push(`f ${r} ${fs.statSync(path.join(dir, r)).size}`);
  }
  return out;
}

// ---------------------------------------------------------------------------

describeRoot('lazy content: populate() and serveContent()', () => {
  afterEach(() => {
    for (const child of live) child.kill('SIGKILL');
  });

  test('populate: sparse stubs, same sizes and tree, mode 000 and the xattr', async () => {
    await withImage(async ({ src, stub }) => {
      writeRandom(path.join(src, 'big.bin'), 32 * MiB + 12345, 0o640);
      fs.mkdirSync(path.join(src, 'sub/deeper'), { recursive: true });
      writeRandom(path.join(src, 'sub/small.txt'), 100);
      writeRandom(path.join(src, 'sub/deeper/exec.sh'), 5000, 0o755);
      fs.writeFileSync(path.join(src, 'empty'), '');
      fs.symlinkSync('sub/small.txt', path.join(src, 'link'));
      fs.symlinkSync('/nonexistent/target', path.join(src, 'sub/dangling'));

      // On every kernel: what is made, whether or not this one can serve it.
      const result = await within(10_000, populate(src, stub, { checkServable: false }), 'populate');
      expect(result).toEqual({ files: 4, dirs: 3, symlinks: 2, bytes: 32 * MiB + 12345 + 100 + 5000 });
      expect(tree(stub)).toEqual(tree(src));

      const big = path.join(stub, 'big.bin');
      // Sparse: a 32 MiB stub holds at most one block (the xattr, if not in the inode).
      expect(fs.statSync(big).size).toBe(32 * MiB + 12345);
      expect(fs.statSync(big).blocks).toBeLessThanOrEqual(8);
      const du = await execFileAsync('du', ['-sk', stub]);
      expect(parseInt(du.stdout, 10)).toBeLessThan(100);  // KiB, for 32 MiB of content

      for (const [rel, mode] of [['big.bin', 0o640], ['sub/small.txt', 0o644], ['sub/deeper/exec.sh', 0o755], ['empty', 0o644]] as const) {
        const f = path.join(stub, rel);
        expect(modeOf(f)).toBe(0);  // offline while unserved
        const st = stubState(f);
        expect(st).toMatchObject({ size: fs.statSync(path.join(src, rel)).size, mode, filled: [] });
        // populate() sets times through Dates: millisecond precision, and the
        // seconds-as-a-double conversion may round down by one (see the report).
        expect(Math.abs(fs.statSync(f).mtimeMs - fs.statSync(path.join(src, rel)).mtimeMs)).toBeLessThan(1.01);
      }
      // Symlinks are links, not stubs.
      expect(fs.lstatSync(path.join(stub, 'link')).isSymbolicLink()).toBe(true);
    });
  });

  for (const kind of Object.keys(readers)) testFeature('preAccess', `a ${kind} reader gets exactly the source bytes (multi-MiB and small file)`, async () => {
    await withImage(async ({ src, stub, calls, fetchFrom }) => {
      writeRandom(path.join(src, 'big.bin'), 5 * MiB + 4321);
      writeRandom(path.join(src, 'small.txt'), 37);
      await populate(src, stub);
      await withServer(stub, fetchFrom(), async (server) => {
        for (const name of ['big.bin', 'small.txt']) {
          const got = hashOf(await readers[kind](path.join(stub, name)), `${kind} ${name}`);
          expect(got).toBe(sourceHash(path.join(src, name)));
        }
        // Every byte fetched once, at chunk-aligned offsets; nothing fetched twice.
        expectCoveredOnce(calls.filter((c) => c.path === 'big.bin'), 5 * MiB + 4321);
        expect(calls.filter((c) => c.path === 'small.txt').map((c) => [c.offset, c.length])).toEqual([[0, 37]]);
        expect(server.stats).toMatchObject({ bytesFetched: 5 * MiB + 4321 + 37, failures: 0, filesCompleted: 2 });
        expect(server.stats.fetches).toBe(calls.length);
      });
    });
  });

  testFeature('preAccess', 'a second read does not fetch again', async () => {
    await withImage(async ({ src, stub, calls, fetchFrom }) => {
      writeRandom(path.join(src, 'data.bin'), 3 * MiB);
      await populate(src, stub);
      await withServer(stub, fetchFrom(), async (server) => {
        const f = path.join(stub, 'data.bin');
        const want = sourceHash(path.join(src, 'data.bin'));
        expect(hashOf(await readers.cat(f), 'first read')).toBe(want);
        const fetches = server.stats.fetches;
        expect(fetches).toBe(3);
        expect(calls).toHaveLength(3);
        expect(hashOf(await readers.cat(f), 'second read')).toBe(want);
        expect(hashOf(await readers.mmap(f), 'third read (mmap)')).toBe(want);
        expect(server.stats.fetches).toBe(fetches);
        expect(calls).toHaveLength(3);
      });
    });
  });

  testFeature('preAccess', 'a fetch that throws gives the reader EIO, never zeros; other files are still served', async () => {
    await withImage(async ({ src, stub, calls, fetchFrom }) => {
      writeRandom(path.join(src, 'bad.bin'), 2 * MiB);
      writeRandom(path.join(src, 'good.bin'), 2 * MiB);
      await populate(src, stub);
      await withServer(stub, fetchFrom((req) => req.path === 'bad.bin'), async (server) => {
        const bad = await run('cat', [path.join(stub, 'bad.bin')]);
        expect(bad.timedOut).toBe(false);
        expect(bad.code).not.toBe(0);
        expect(bad.stderr).toContain('Input/output error');
        expect(bad.stdout.length).toBe(0);  // not a byte of zeros
        expect(server.stats.failures).toBeGreaterThanOrEqual(1);
        expect(stubState(path.join(stub, 'bad.bin'))?.filled).toEqual([]);

        // Still serving: another file, and the failed one again (it failed again).
        expect(hashOf(await readers.cat(path.join(stub, 'good.bin')), 'good')).toBe(sourceHash(path.join(src, 'good.bin')));
        const again = await run('dd', ['if=' + path.join(stub, 'bad.bin'), 'bs=4096', 'count=1', 'skip=300', 'status=none']);
        expect(again.code).not.toBe(0);
        expect(again.stderr).toContain('Input/output error');
        expect(again.stdout.length).toBe(0);
        expect(calls.filter((c) => c.path === 'bad.bin').length).toBeGreaterThanOrEqual(2);
      });
    });
  });

  testFeature('preAccess', '8 concurrent readers of one stub: all get the right bytes, one fetch per chunk', async () => {
    await withImage(async ({ src, stub, calls, fetchFrom }) => {
      writeRandom(path.join(src, 'shared.bin'), 4 * MiB);
      await populate(src, stub);
      const slow: Fetch = async (req) => {
        await new Promise((r) => setTimeout(r, 50));  // let the readers pile up
        return fetchFrom()(req);
      };
      await withServer(stub, slow, async (server) => {
        const f = path.join(stub, 'shared.bin');
        const results = await Promise.all(Array.from({ length: 8 }, () => readers.cat(f)));
        const want = sourceHash(path.join(src, 'shared.bin'));
        results.forEach((r, i) => expect(hashOf(r, `reader ${i}`)).toBe(want));
        expect(calls.map((c) => c.offset).sort((a, b) => a - b)).toEqual([0, 1, 2, 3].map((i) => i * MiB));
        expect(server.stats.fetches).toBe(4);
        expect(server.stats.bytesFetched).toBe(4 * MiB);
      });
    });
  });

  testFeature('preAccess', 'restart: the xattr remembers what was filled; a new server fetches only the rest', async () => {
    await withImage(async ({ src, stub, calls, fetchFrom }) => {
      const data = writeRandom(path.join(src, 'part.bin'), 3 * MiB + 999);
      await populate(src, stub);
      const f = path.join(stub, 'part.bin');

      await withServer(stub, fetchFrom(), async () => {
        const head = await sh('dd if="$1" bs=1M count=1 status=none | sha256sum', f);
        expect(hashOf(head, 'dd of the first MiB')).toBe(sha256(data.subarray(0, MiB)));
      });
      expect(calls.map((c) => [c.offset, c.length])).toEqual([[0, MiB]]);
      expect(stubState(f)).toMatchObject({ size: 3 * MiB + 999, filled: [[0, MiB]] });
      expect(modeOf(f)).toBe(0);  // offline again

      calls.length = 0;
      await withServer(stub, fetchFrom(), async (server) => {
        expect(hashOf(await readers.cat(f), 'full read after restart')).toBe(sha256(data));
        expect(calls.length).toBeGreaterThan(0);
        expect(calls.filter((c) => c.offset < MiB)).toEqual([]);
        expect(calls.map((c) => c.offset)).toEqual([MiB, 2 * MiB, 3 * MiB]);
        expect(server.stats.bytesFetched).toBe(2 * MiB + 999);
      });
    });
  });

  testFeature('preAccess', 'a fully filled file stops costing anything: xattr gone, source mode back, no more fetches', async () => {
    await withImage(async ({ src, stub, calls, fetchFrom }) => {
      writeRandom(path.join(src, 'full.bin'), 2 * MiB + 1, 0o640);
      writeRandom(path.join(src, 'other.bin'), 10);
      await populate(src, stub);
      const f = path.join(stub, 'full.bin');
      await withServer(stub, fetchFrom(), async (server) => {
        expect(modeOf(f)).toBe(0o640);  // online while served
        expect(hashOf(await readers.sha256sum(f), 'full read')).toBe(sourceHash(path.join(src, 'full.bin')));
        expect(server.stats.filesCompleted).toBe(1);
        expect(binding.getXattr(f, STUB_XATTR)).toBeNull();
        expect(modeOf(f)).toBe(0o640);
        const n = calls.length;
        expect(hashOf(await readers.cat(f), 'read again')).toBe(sourceHash(path.join(src, 'full.bin')));
        expect(calls.length).toBe(n);
        expect(server.stats.filesCompleted).toBe(1);
      });
      // After close it is a plain file: not taken offline, no xattr.
      expect(modeOf(f)).toBe(0o640);
      expect(binding.getXattr(f, STUB_XATTR)).toBeNull();
      // A new server has nothing to do for it.
      calls.length = 0;
      await withServer(stub, fetchFrom(), async (server) => {
        expect(hashOf(await readers.cat(f), 'read under a new server')).toBe(sourceHash(path.join(src, 'full.bin')));
        expect(calls).toEqual([]);
        expect(server.stats.fetches).toBe(0);
      });
    });
  });

  testFeature('preAccess', 'unserved: after close() an unfilled stub is mode 000 and a non-root reader gets EACCES, not zeros', async () => {
    await withImage(async ({ src, stub, fetchFrom }) => {
      writeRandom(path.join(src, 'cold.bin'), MiB);
      writeRandom(path.join(src, 'warm.bin'), MiB);
      await populate(src, stub);
      const cold = path.join(stub, 'cold.bin');
      const warm = path.join(stub, 'warm.bin');
      const nobody = { uid: 65534, gid: 65534 };

      // Offline before any server: denied.
      let r = await run('cat', [cold], nobody);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('Permission denied');

      await withServer(stub, fetchFrom(), async () => {
        // Served: a non-root reader gets the content (this also shows the path is walkable for uid 65534).
        expect(hashOf(await sh('cat "$1" | sha256sum', warm, nobody), 'nobody reads warm.bin')).toBe(sourceHash(path.join(src, 'warm.bin')));
        expect(modeOf(cold)).toBe(0o644);
      });

      expect(modeOf(cold)).toBe(0);
      r = await run('cat', [cold], nobody);
      expect(r.timedOut).toBe(false);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('Permission denied');
      expect(r.stdout.length).toBe(0);
      // The filled one is a plain file now, readable by anyone its mode allows.
      expect(hashOf(await sh('cat "$1" | sha256sum', warm, nobody), 'nobody reads warm.bin unserved')).toBe(sourceHash(path.join(src, 'warm.bin')));
    });
  });

  testFeature('preAccess', 'bad inputs: fetch not a function, chunkSize not a multiple of 4096', async () => {
    await withImage(async ({ src, stub, fetchFrom }) => {
      writeRandom(path.join(src, 'x'), 10);
      await populate(src, stub);
      await expect(serveContent(stub, 'nope' as unknown as Fetch)).rejects.toThrow(TypeError);
      await expect(serveContent(stub, undefined as unknown as Fetch)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      await expect(serveContent(stub, fetchFrom(), { chunkSize: 1000 })).rejects.toThrow(TypeError);
      await expect(serveContent(stub, fetchFrom(), { chunkSize: 0 })).rejects.toThrow(TypeError);
      await expect(serveContent('', fetchFrom())).rejects.toThrow(TypeError);
      // Nothing was taken online by the failed calls.
      expect(modeOf(path.join(stub, 'x'))).toBe(0);
    });
  });

  testFeature('preAccess', 'tmpfs: populate refuses (EOPNOTSUPP, nothing made) unless asked (user xattrs), serveContent fails with EOPNOTSUPP and advice', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-tmpfs-'));
    const mnt = path.join(base, 'mnt');
    const src = path.join(base, 'src');
    fs.mkdirSync(mnt);
    fs.mkdirSync(src);
    writeRandom(path.join(src, 'f.bin'), 5000);
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
    try {
      const stub = path.join(mnt, 'stub', 'deeper');
      const refused = await populate(src, stub).then(() => new Error('populate() made stubs nothing can serve'), (e: NodeJS.ErrnoException) => e);
      expect(refused).toMatchObject({ code: 'EOPNOTSUPP', syscall: 'fanotify_mark', path: mnt });
      expect(refused.message).toMatch(new RegExp(`^stubs in ${stub} could not be served: .*pre-content support.*checkServable: false`));
      expect(fs.existsSync(path.join(mnt, 'stub'))).toBe(false);
      await populate(src, stub, { checkServable: false });  // throws ENOTSUP here on kernels whose tmpfs lacks user xattrs (< 6.6)
      expect(stubState(path.join(stub, 'f.bin'))).toMatchObject({ size: 5000, filled: [] });
      const err = await serveContent(stub, () => Buffer.alloc(0)).then(
        (s) => {
          void s.close();
          throw new Error('serveContent on tmpfs succeeded');
        },
        (e: unknown) => e as NodeJS.ErrnoException,
      );
      expect(err.code).toBe('EOPNOTSUPP');
      expect(err.syscall).toBe('fanotify_mark');
      expect(err.message).toMatch(/pre-content support/);
      expect(err.message).toMatch(/ext4, xfs and btrfs/);
      expect(modeOf(path.join(stub, 'f.bin'))).toBe(0);  // still offline
    } finally {
      await execFileAsync('umount', [mnt]);
      fs.rmSync(base, { recursive: true, force: true });
    }
  });


  testFeature('preAccess', 'a filled stub keeps the source mtime (fills write through the event fd)', async () => {
    await withImage(async ({ src, stub, fetchFrom }) => {
      writeRandom(path.join(src, 'old.bin'), MiB + 1);
      fs.utimesSync(path.join(src, 'old.bin'), 1_000_000, 1_000_000);
      await populate(src, stub);
      const f = path.join(stub, 'old.bin');
      expect(fs.statSync(f).mtimeMs).toBe(1_000_000_000);
      await withServer(stub, fetchFrom(), async () => {
        hashOf(await readers.cat(f), 'read');
      });
      expect(fs.statSync(f).mtimeMs).toBe(1_000_000_000);
    });
  });

  test('populate keeps directory modes (the umask does not apply)', async () => {
    await withImage(async ({ src, stub }) => {
      fs.mkdirSync(path.join(src, 'shared'));
      fs.chmodSync(path.join(src, 'shared'), 0o2775);
      const old = process.umask(0o022);
      try {
        await populate(src, stub, { checkServable: false });  // on every kernel: what is made
      } finally {
        process.umask(old);
      }
      expect(modeOf(path.join(stub, 'shared'))).toBe(0o2775);
    });
  });

  testFeature('preAccess', 'an mmap of a whole stub is fetched in chunk-sized pieces, not in one fetch', async () => {
    await withImage(async ({ src, stub, calls, fetchFrom }) => {
      writeRandom(path.join(src, 'mapped.bin'), 5 * MiB + 4321);
      await populate(src, stub);
      await withServer(stub, fetchFrom(), async () => {
        const f = path.join(stub, 'mapped.bin');
        expect(hashOf(await readers.mmap(f), 'mmap')).toBe(sourceHash(path.join(src, 'mapped.bin')));
        expect(calls.map((c) => [c.offset, c.length])).toEqual([
          ...[0, 1, 2, 3, 4].map((i) => [i * MiB, MiB]),
          [5 * MiB, 4321],
        ]);
      });
    });
  });

  testFeature('preAccess', 'close() while a fetch hangs finishes promptly and the waiting reader gets EIO', async () => {
    await withImage(async ({ src, stub }) => {
      writeRandom(path.join(src, 'hang.bin'), MiB);
      await populate(src, stub);
      let giveUp!: (err: Error) => void;
      let fetched!: () => void;
      const fetchCalled = new Promise<void>((r) => (fetched = r));
      const hanging: Fetch = () => {
        fetched();
        return new Promise<Uint8Array>((_, reject) => (giveUp = reject));
      };
      const server = await within(10_000, serveContent(stub, hanging, { timeoutMs: 30_000 }), 'serveContent');
      let reader: Promise<ChildResult> | undefined;
      try {
        reader = run('cat', [path.join(stub, 'hang.bin')]);
        await within(5_000, fetchCalled, 'the fetch');
        await within(3_000, server.close(), 'server.close() with a hanging fetch');
        const r = await within(3_000, reader, 'the reader after close');
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain('Input/output error');
      } finally {
        giveUp?.(new Error('test over'));  // lets a stuck close() finish
        await within(10_000, server.close(), 'server.close');
        if (reader) await within(10_000, reader, 'reader');
      }
    });
  });

  testFeature('preAccess', 'a fetch slower than timeoutMs is dropped: nothing written, not into the stub opened after it either', async () => {
    await withImage(async ({ src, stub, fetchFrom }) => {
      writeRandom(path.join(src, 'slow.bin'), MiB);
      writeRandom(path.join(src, 'next.bin'), MiB);
      await populate(src, stub);
      const slow = path.join(stub, 'slow.bin');
      const next = path.join(stub, 'next.bin');
      const before = { slow: rawState(slow), next: rawState(next) };
      let slowReturned!: () => void;
      const slowDone = new Promise<void>((r) => (slowReturned = r));
      let nextCalled!: () => void;
      const nextFetched = new Promise<void>((r) => (nextCalled = r));
      const fetch: Fetch = async (req) => {
        if (req.path === 'slow.bin') {
          await sleep(1800);  // past timeoutMs, and deaf to the signal
          const data = await fetchFrom()(req);
          slowReturned();
          return data;
        }
        nextCalled();  // next.bin's fetch waits (its stub's event fd stays open) until close()
        return new Promise<Uint8Array>((_, reject) => req.signal.addEventListener('abort', () => reject(req.signal.reason)));
      };
      let reader: Promise<ChildResult> | undefined;
      const server = await withServer(stub, fetch, async () => {
        // One child reads both stubs, so no pipe of ours opens or closes in
        // between: next.bin's event fd gets the number slow.bin's had. The
        // times matter: slow.bin's fetch returns (1.8 s) after next.bin is
        // opened (1.3 s) and before next.bin's own deadline (2.3 s) closes
        // that fd again; tighter, the old code's late write hit EBADF instead.
        reader = run('bash', ['-c', 'cat "$1" >/dev/null 2>&1; echo "slow $?"; sleep 0.3; cat "$2" >/dev/null 2>&1; echo "next $?"', 'bash', slow, next]);
        await within(5_000, nextFetched, "next.bin's fetch");
        await within(5_000, slowDone, 'the slow fetch');
        await sleep(300);  // what the late fetch's handler would write, it has written by now
      }, { timeoutMs: 1000 });
      const r = await within(10_000, reader!, 'the reader');
      expect(r.stdout.toString()).toBe('slow 1\nnext 1\n');  // both got EIO (timeout, close)
      // Unserved now, so this process reads the stubs as they are: still holes, states as populate() left them.
      expect(rawState(next)?.toString()).toBe(before.next?.toString());
      expect(fs.readFileSync(next).equals(Buffer.alloc(MiB))).toBe(true);
      expect(rawState(slow)?.toString()).toBe(before.slow?.toString());
      expect(fs.readFileSync(slow).equals(Buffer.alloc(MiB))).toBe(true);
      expect(server.stats).toMatchObject({ fetches: 0, bytesFetched: 0, filesCompleted: 0 });
      expect(server.stats.timeouts).toBeGreaterThanOrEqual(1);
    });
  });

  testFeature('preAccess', 'a stub read through a read-only bind mount: that reader fails (no zeros), the error is reported, serving goes on', async () => {
    await withImage(async ({ src, stub, fetchFrom }) => {
      writeRandom(path.join(src, 'a.bin'), MiB);
      writeRandom(path.join(src, 'b.bin'), MiB);
      await populate(src, stub);
      const errors: NodeJS.ErrnoException[] = [];
      await withReadOnlyBind(stub, async (ro) => {
        await withServer(stub, fetchFrom(), async (server) => {
          // The kernel cannot open the stub read-write through this mount for the
          // server, so it denies that access itself.
          const r = await run('cat', [path.join(ro, 'a.bin')]);
          expect(r.timedOut).toBe(false);
          expect(r.code).not.toBe(0);
          expect(r.stderr).toContain('Operation not permitted');
          expect(r.stdout.length).toBe(0);
          // Still serving, the same file too.
          for (const name of ['a.bin', 'b.bin'])
            expect(hashOf(await readers.cat(path.join(stub, name)), name)).toBe(sourceHash(path.join(src, name)));
          expect(server.stats).toMatchObject({ readErrors: 1, failures: 1, filesCompleted: 2 });
        }, { onError: (err: NodeJS.ErrnoException) => errors.push(err) });
      });
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: 'EROFS', errno: -30, syscall: 'open' });
      expect(errors[0].message).toMatch(/read-only/);
      expect(errors[0].message).toMatch(/writable mount/);
    });
  });

  testFeature('preAccess', 'random reads of 2048 disjoint 4 KiB chunks: every read is served, the fill state stays small, a restart fetches only the rest', async () => {
    await withImage(async ({ src, stub, calls, fetchFrom }) => {
      const pages = 4096;
      const data = writeRandom(path.join(src, 'disk.img'), pages * 4096);
      await populate(src, stub);
      const f = path.join(stub, 'disk.img');
      // Every other page, in random order: 2048 filled ranges with a hole between each two.
      const even = shuffled(Array.from({ length: pages / 2 }, (_, i) => 2 * i));
      const want = sha256(Buffer.concat(even.map((p) => data.subarray(p * 4096, (p + 1) * 4096))));
      await withServer(stub, fetchFrom(), async (server) => {
        const r = await run('python3', ['-c', PREAD_READER, f, even.join(',')], {}, 60_000);
        expect(hashOf(r, 'pread of every other page')).toBe(want);
        expect(server.stats).toMatchObject({ fetches: pages / 2, failures: 0, stateErrors: 0 });
        // Within ext4's limit for one xattr value with 1 KiB blocks (these images').
        expect(rawState(f)!.length).toBeLessThanOrEqual(900);
      }, { chunkSize: 4096 });
      calls.length = 0;
      await withServer(stub, fetchFrom(), async () => {
        expect(hashOf(await readers.cat(f), 'cat after restart')).toBe(sha256(data));
        const odd = Array.from({ length: pages / 2 }, (_, i) => 2 * i + 1);
        expect(calls.map((c) => c.offset / 4096).sort((a, b) => a - b)).toEqual(odd);
      }, { chunkSize: 4096 });
    });
  }, 120_000);

  testFeature('preAccess', 'stubs an older version left (fill state as JSON ranges) are served after an upgrade', async () => {
    await withImage(async ({ src, stub, calls, fetchFrom }) => {
      const data = writeRandom(path.join(src, 'old.bin'), 3 * MiB);
      await populate(src, stub);
      const f = path.join(stub, 'old.bin');
      // As version 0.1.0 left a stub whose first MiB it had filled.
      const fd = fs.openSync(f, 'r+');
      try {
        fs.writeSync(fd, data, 0, MiB, 0);
      } finally {
        fs.closeSync(fd);
      }
      binding.setXattr(f, STUB_XATTR, Buffer.from(JSON.stringify({ v: 1, size: 3 * MiB, mode: 0o644, filled: [[0, MiB]] })));
      await withServer(stub, fetchFrom(), async (server) => {
        expect(hashOf(await readers.cat(f), 'cat')).toBe(sha256(data));
        expect(calls.map((c) => c.offset)).toEqual([MiB, 2 * MiB]);
        expect(server.stats.filesCompleted).toBe(1);
      });
      expect(rawState(f)).toBeNull();
      expect(modeOf(f)).toBe(0o644);
    });
  });

  testFeature('preAccess', "this process's own reads of an incomplete stub fail with EIO at once, never zeros; a complete one reads normally", async () => {
    await withImage(async ({ src, stub, calls, fetchFrom }) => {
      writeRandom(path.join(src, 'cold.bin'), 2 * MiB);
      const part = writeRandom(path.join(src, 'part.bin'), 2 * MiB);
      const warm = writeRandom(path.join(src, 'warm.bin'), 100);
      await populate(src, stub);
      await withServer(stub, fetchFrom(), async (server) => {
        const cold = path.join(stub, 'cold.bin');
        const started = Date.now();
        // Blocking the JS thread in the read: only a native answer can come.
        expect(thrown(() => fs.readFileSync(cold))).toMatchObject({ code: 'EIO' });
        await expect(within(5_000, fs.promises.readFile(cold), 'readFile')).rejects.toMatchObject({ code: 'EIO' });
        expect(Date.now() - started).toBeLessThan(5_000);  // not the 20 s timeout
        // Partly filled (by another reader): the native answer cannot tell ranges apart, so still EIO.
        const head = await sh('dd if="$1" bs=1M count=1 status=none | sha256sum', path.join(stub, 'part.bin'));
        expect(hashOf(head, 'dd of the first MiB')).toBe(sha256(part.subarray(0, MiB)));
        const fd = fs.openSync(path.join(stub, 'part.bin'), 'r');
        try {
          expect(thrown(() => fs.readSync(fd, Buffer.alloc(4096), 0, 4096, 0))).toMatchObject({ code: 'EIO' });
        } finally {
          fs.closeSync(fd);
        }
        // Complete: no mark, a plain file.
        hashOf(await readers.cat(path.join(stub, 'warm.bin')), 'cat warm.bin');
        expect(fs.readFileSync(path.join(stub, 'warm.bin'))).toEqual(warm);
        expect(calls.map((c) => c.path)).toEqual(['part.bin', 'warm.bin']);
        expect(server.stats.failures).toBe(0);
      }, { timeoutMs: 20_000 });
    });
  });
});
