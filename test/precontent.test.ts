// Pre-content events (FAN_CLASS_PRE_CONTENT, FAN_PRE_ACCESS) against the real
// kernel: the scenarios of LTP's fanotify24 as a user of this package sees
// them. A child process (test/fixtures/precontent-child.c, compiled here with
// gcc) mmaps, writes and reads a file; the group answers from JavaScript.
//
// Pre-content marks need a filesystem that opted in (ext4, xfs, btrfs), so
// every test runs on its own ext4 LoopImage. Every wait has a hard bound
// (within(), kill timers), every child is killed and every group closed in
// finally, and every image is disposed in finally.
//
// Ranges as Linux 6.18 reports them (all page aligned): mmap of 2 pages at
// page 100 -> { 409600, 8192 }; pwrite of 1 byte at page 1 -> { 4096, 4096 };
// pread of 256 bytes at page 2 -> { 8192, 4096 }.
//
// Needs root (CAP_SYS_ADMIN, loop devices, mount, SCHED_FIFO), gcc, taskset
// and chrt (util-linux).

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Fanotify, FanotifyEvent, FanotifyOptions } from '../lib';
import { LoopImage } from '../lib/testing';
import { ChildResult, killAll, start } from './children';
import { bound, describeFeature, openFdCount, sleep, within } from './helpers';

jest.setTimeout(bound(60_000));

const PAGE = 4096;
const PAGES = 102;
const CHILD_SOURCE = path.join(__dirname, 'fixtures', 'precontent-child.c');
const EPERM = 1, EIO = 5, EBUSY = 16;

/** The group of the brief: the event fd is writable, so a handler can fill in content. */
const PRE_CONTENT: FanotifyOptions = {
  class: 'pre-content',
  eventFileFlags: 'rw',
  permission: { timeoutMs: 10_000, default: 'allow' },
};

// --- child processes -------------------------------------------------------

interface OpLine {
  op: string;
  ok: boolean;
  errno?: number;
  n?: number;
  data?: string;
  first?: number;
  last?: number;
}

/** The child's JSON lines, by operation. */
function ops(r: ChildResult): Record<string, OpLine> {
  const out: Record<string, OpLine> = {};
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const parsed = JSON.parse(line) as OpLine;
    out[parsed.op] = parsed;
  }
  return out;
}

function expectClean(r: ChildResult): void {
  expect(r.timedOut).toBe(false);
  expect(r.signal).toBeNull();
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

// --- events ----------------------------------------------------------------

interface Seen {
  events: string[];
  pid: number;
  range?: { offset: number; count: number };
  path?: string;
  fd: number | null;
}

interface Consumer {
  seen: Seen[];
  /** Resolves with the loop's error (null when it ended cleanly); never rejects. */
  ended: Promise<unknown>;
  waitFor(pred: (seen: Seen[]) => boolean, ms: number, what: string): Promise<void>;
}

/** Consumes the group in the background; `handler` answers each event. */
function consume(fan: Fanotify, handler: (ev: FanotifyEvent) => void): Consumer {
  const seen: Seen[] = [];
  const ended = (async () => {
    for await (const ev of fan) {
      seen.push({ events: ev.events, pid: ev.pid, range: ev.range, path: ev.path, fd: ev.fd });
      handler(ev);
    }
    return null;
  })().catch((err: unknown) => err);
  return {
    seen,
    ended,
    async waitFor(pred, ms, what) {
      const end = Date.now() + bound(ms);
      while (!pred(seen)) {
        if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms; seen ${JSON.stringify(seen)}`);
        await sleep(10);
      }
    },
  };
}

/** Gives a late event time to arrive, so that "exactly these events" means something. */
const settle = (): Promise<void> => sleep(300);

const summary = (seen: Seen[]) => seen.map((s) => ({ events: s.events, range: s.range }));

// --- files -----------------------------------------------------------------

/** 102 pages of real data: every byte of page p is p. */
function makeDataFile(file: string): void {
  const buf = Buffer.alloc(PAGES * PAGE);
  for (let p = 0; p < PAGES; p++) buf.fill(p, p * PAGE, (p + 1) * PAGE);
  fs.writeFileSync(file, buf);
}

function pageOf(byte: number, length: number): string {
  return Buffer.alloc(length, byte).toString('hex');
}

/** Runs fn with a fresh ext4 image; always disposes it. */
async function onExt4<T>(fn: (img: LoopImage) => Promise<T>): Promise<T> {
  const img = await LoopImage.create({ type: 'ext4', sizeMiB: 32 });
  try {
    return await fn(img);
  } finally {
    await killAll();
    await img.dispose();
  }
}

function expectPageAligned(range: { offset: number; count: number } | undefined): void {
  expect(range).toBeDefined();
  expect(range!.offset % PAGE).toBe(0);
  expect(range!.count % PAGE).toBe(0);
  expect(range!.count).toBeGreaterThan(0);
}

// ---------------------------------------------------------------------------

describeFeature('preAccess', 'pre-content events (LTP fanotify24)', () => {
  let binDir: string;
  let childBin: string;
  const ranges: string[] = [];

  beforeAll(() => {
    binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-precontent-'));
    childBin = path.join(binDir, 'precontent-child');
    const cc = spawnSync('gcc', ['-O1', '-Wall', '-Werror', '-o', childBin, CHILD_SOURCE], { encoding: 'utf8', timeout: 30_000 });
    if (cc.status !== 0) throw new Error(`gcc failed (${cc.status ?? cc.error?.message}): ${cc.stderr}`);
  });

  afterAll(() => {
    fs.rmSync(binDir, { recursive: true, force: true });
    console.log(`ranges the kernel reported:\n  ${ranges.join('\n  ')}`);
  });

  afterEach(async () => {
    await killAll();
  });

  // 1 ------------------------------------------------------------------------
  test('mmap, pwrite and pread: openPerm and page-aligned preAccess ranges; allowed, the child succeeds', async () => {
    await onExt4(async (img) => {
      const file = path.join(img.mountPoint, 'data');
      makeDataFile(file);
      const fan = new Fanotify(PRE_CONTENT);
      try {
        fan.add(file, ['openPerm', 'preAccess']);
        const c = consume(fan, (ev) => {
          expect(typeof ev.fd).toBe('number');  // the answer names it: open until answered
          ev.respond('allow');
        });
        const child = start(childBin, ['ops', file]);
        const r = await within(15_000, child.result, 'child');
        expectClean(r);
        const out = ops(r);
        expect(out.open).toEqual({ op: 'open', ok: true });
        expect(out.mmap).toMatchObject({ ok: true, first: 100, last: 101 });
        expect(out.pwrite).toEqual({ op: 'pwrite', ok: true, n: 1 });
        expect(out.pread).toEqual({ op: 'pread', ok: true, n: 256, data: pageOf(2, 256) });
        await c.waitFor((s) => s.length >= 4, 5000, 'four events');
        await settle();
        const { seen } = c;
        ranges.push(`1 allow: ${JSON.stringify(summary(seen))}`);
        for (const s of seen) {
          expect(s.pid).toBe(child.pid);
          expect(s.path).toBe(file);
        }
        expect(seen.map((s) => s.events)).toEqual([['openPerm'], ['preAccess'], ['preAccess'], ['preAccess']]);
        expect(seen[0].range).toBeUndefined();
        const [, mmap, write, read] = seen;
        // mmap: the mapped range, at mmap() time
        expect(mmap.range).toEqual({ offset: 100 * PAGE, count: 2 * PAGE });
        // pwrite of 1 byte at page 1: pre-content is reported for writes too, page aligned
        expect(write.range).toEqual({ offset: PAGE, count: PAGE });
        // pread of 256 bytes at page 2: page aligned and covering the read
        expectPageAligned(read.range);
        expect(read.range!.offset).toBe(2 * PAGE);
        expect(read.range!.offset + read.range!.count).toBeGreaterThanOrEqual(2 * PAGE + 256);
        await fan.close();
        expect(await within(5000, c.ended, 'the loop to end')).toBeNull();
      } finally {
        await killAll();
        await fan.close();
      }
      expect(fs.readFileSync(file).subarray(PAGE, PAGE + 2).toString('latin1')).toBe('W\x01');
    });
  });

  // 2 ------------------------------------------------------------------------
  describe('denied accesses fail with the errno of the answer', () => {
    test.each([
      // the brief's case: the reader gets EIO (so do mmap and pwrite)
      ['preAccess', { deny: 'EIO' }, { mmap: EIO, pwrite: EIO, pread: EIO }],
      // a plain deny: EPERM
      ['preAccess', 'deny', { mmap: EPERM, pwrite: EPERM, pread: EPERM }],
      // LTP: FAN_OPEN_PERM answered FAN_DENY_ERRNO(EBUSY)
      ['openPerm', { deny: 'EBUSY' }, { open: EBUSY }],
    ] as const)('%s answered %j', async (denied, decision, expected) => {
      await onExt4(async (img) => {
        const file = path.join(img.mountPoint, 'data');
        makeDataFile(file);
        const fan = new Fanotify(PRE_CONTENT);
        try {
          fan.add(file, ['openPerm', 'preAccess']);
          const c = consume(fan, (ev) => ev.respond(ev.events.includes(denied) ? decision : 'allow'));
          const child = start(childBin, ['ops', file]);
          const r = await within(15_000, child.result, 'child');
          expect(r.timedOut).toBe(false);
          expect(r.stderr).toBe('');
          const out = ops(r);
          for (const [op, errno] of Object.entries(expected)) expect(out[op]).toEqual({ op, ok: false, errno });
          const want = denied === 'openPerm' ? [['openPerm']] : [['openPerm'], ['preAccess'], ['preAccess'], ['preAccess']];
          await c.waitFor((s) => s.length >= want.length, 5000, 'events');
          await settle();
          ranges.push(`2 ${denied} ${JSON.stringify(decision)}: ${JSON.stringify(summary(c.seen))}`);
          expect(c.seen.map((s) => s.events)).toEqual(want);
          for (const s of c.seen) expect(s.pid).toBe(child.pid);
          await fan.close();
          expect(await within(5000, c.ended, 'the loop to end')).toBeNull();
        } finally {
          await killAll();
          await fan.close();
        }
        // A denied write left the file as it was.
        if (denied === 'preAccess') expect(fs.readFileSync(file)[PAGE]).toBe(1);
      });
    });
  });

  // 3 ------------------------------------------------------------------------
  describe('exec under openExecPerm', () => {
    /** A copy of /bin/true on the image. */
    function copyTrue(img: LoopImage): string {
      const exe = path.join(img.mountPoint, 'true');
      fs.copyFileSync('/bin/true', exe);
      fs.chmodSync(exe, 0o755);
      return exe;
    }

    // Spawned from another Node process: child_process.spawn blocks its JS
    // thread until exec succeeds or fails, so spawning a watched program from
    // the process that answers would wait for the 10 s default answer.
    const SPAWN_SCRIPT = `
      const { spawn } = require('node:child_process');
      let child;
      try {
        child = spawn(process.argv[1], { stdio: 'ignore' });
      } catch (err) {
        console.log(JSON.stringify({ thrown: true, code: err.code, errno: err.errno, syscall: err.syscall }));
        process.exit(0);
      }
      child.on('error', (err) => console.log(JSON.stringify({ error: true, code: err.code, errno: err.errno })));
      child.on('exit', (code) => console.log(JSON.stringify({ exit: code })));
    `;

    test("denied with { deny: 'EBUSY' }: spawn fails with EBUSY, a shell says 'Device or resource busy'", async () => {
      await onExt4(async (img) => {
        const exe = copyTrue(img);
        const fan = new Fanotify(PRE_CONTENT);
        try {
          fan.add(exe, ['openExecPerm']);
          const c = consume(fan, (ev) => ev.respond({ deny: 'EBUSY' }));
          const node = start(process.execPath, ['-e', SPAWN_SCRIPT, exe]);
          const rn = await within(15_000, node.result, 'node spawn');
          expectClean(rn);
          const spawned = JSON.parse(rn.stdout.trim()) as Record<string, unknown>;
          // Node throws from spawn() for an exec errno other than ENOENT/EACCES-like ones
          expect(spawned).toMatchObject({ code: 'EBUSY', errno: -EBUSY });
          const sh = start('sh', ['-c', '"$1"; echo "status $?"', 'sh', exe]);
          const rs = await within(15_000, sh.result, 'sh');
          expect(rs.timedOut).toBe(false);
          expect(rs.stderr).toContain('Device or resource busy');
          expect(rs.stdout.trim()).toBe('status 126');
          await c.waitFor((s) => s.length >= 2, 5000, 'two openExecPerm events');
          await settle();
          ranges.push(`3 exec deny EBUSY: ${JSON.stringify(summary(c.seen))}`);
          expect(c.seen.map((s) => s.events)).toEqual([['openExecPerm'], ['openExecPerm']]);
          for (const s of c.seen) {
            expect(s.path).toBe(exe);
            expect(s.range).toBeUndefined();
          }
          await fan.close();
          expect(await within(5000, c.ended, 'the loop to end')).toBeNull();
        } finally {
          await killAll();
          await fan.close();
        }
      });
    });

    // An allowed exec, made deterministic: this process (every thread) is
    // pinned to one CPU and the exec'ing shell runs SCHED_FIFO on that CPU,
    // so the moment the answer is written the woken execve runs to
    // completion before this process does anything else. Whatever the
    // library does after writing the answer (closing the event fd) then
    // happens after exec checked the file.
    const EXEC_ROUNDS = 10;

    async function execAllowed(img: LoopImage, options: FanotifyOptions, marked: ('openExecPerm' | 'preAccess')[]): Promise<{ statuses: string[]; seen: Seen[] }> {
      const exe = copyTrue(img);
      const fan = new Fanotify(options);
      const statuses: string[] = [];
      const affinity = (): string => execFileSync('taskset', ['-c', '-p', String(process.pid)], { encoding: 'utf8' }).trim().split(': ').pop()!;
      const before = affinity();
      const cpu = String(Number(before.split(/[,-]/)[0]));
      try {
        fan.add(exe, marked);
        const c = consume(fan, (ev) => ev.respond('allow'));
        execFileSync('taskset', ['-a', '-c', '-p', cpu, String(process.pid)], { stdio: 'pipe' });
        for (let i = 0; i < EXEC_ROUNDS; i++) {
          const sh = start('taskset', ['-c', cpu, 'chrt', '-f', '10', 'sh', '-c', '"$1"; echo "status $?"', 'sh', exe]);
          const r = await within(15_000, sh.result, 'sh');
          const why = /Text file busy/.test(r.stderr) ? ' ETXTBSY' : r.stderr ? ` (${r.stderr.trim()})` : '';
          statuses.push(`${r.stdout.trim()}${why}`);
        }
        await settle();
        await fan.close();
        expect(await within(5000, c.ended, 'the loop to end')).toBeNull();
        return { statuses, seen: c.seen };
      } finally {
        execFileSync('taskset', ['-a', '-c', '-p', before, String(process.pid)], { stdio: 'pipe' });
        expect(affinity()).toBe(before);
        await killAll();
        await fan.close();
      }
    }

    test("allowed, eventFileFlags 'r': exec succeeds every time", async () => {
      await onExt4(async (img) => {
        const { statuses, seen } = await execAllowed(img, { ...PRE_CONTENT, eventFileFlags: 'r' }, ['openExecPerm']);
        expect(statuses).toEqual(Array(EXEC_ROUNDS).fill('status 0'));
        expect(seen.map((s) => s.events)).toEqual(Array(EXEC_ROUNDS).fill(['openExecPerm']));
      });
    });

    // With preAccess on the mark the file is watched for pre-content (HSM),
    // and the kernel lets it stay open for write while it is executed
    // (fanotify24's comment), so the 'rw' event fd does not get in the way.
    test("allowed, eventFileFlags 'rw', preAccess on the mark too: exec succeeds every time, exec's reads are page-aligned preAccess events", async () => {
      await onExt4(async (img) => {
        const { statuses, seen } = await execAllowed(img, PRE_CONTENT, ['openExecPerm', 'preAccess']);
        expect(statuses).toEqual(Array(EXEC_ROUNDS).fill('status 0'));
        expect(seen.filter((s) => s.events.includes('openExecPerm'))).toHaveLength(EXEC_ROUNDS);
        const pre = seen.filter((s) => s.events.includes('preAccess'));
        expect(pre.length).toBeGreaterThanOrEqual(EXEC_ROUNDS);  // exec reads the program
        for (const s of pre) expectPageAligned(s.range);
        const second = seen.findIndex((s, i) => i > 0 && s.events.includes('openExecPerm'));
        ranges.push(`3 exec allowed (openExecPerm+preAccess), one exec: ${JSON.stringify(summary(seen.slice(0, second)))}`);
      });
    });

    // With a writable event fd ('w' or 'rw'), the woken execve denies write
    // access to the file (exe_file_deny_write_access): our fd must be closed
    // before the answer is written, or the exec fails with ETXTBSY (it did,
    // every time when pinned to one CPU, before the fix).
    test("allowed, eventFileFlags 'rw', preAccess on the mark too: exec succeeds every time, exec's reads are page-aligned preAccess events", async () => {
      await onExt4(async (img) => {
        const { statuses, seen } = await execAllowed(img, PRE_CONTENT, ['openExecPerm', 'preAccess']);
        expect(statuses).toEqual(Array(EXEC_ROUNDS).fill('status 0'));
        expect(seen.filter((s) => s.events.includes('openExecPerm'))).toHaveLength(EXEC_ROUNDS);
        const pre = seen.filter((s) => s.events.includes('preAccess'));
        expect(pre.length).toBeGreaterThanOrEqual(EXEC_ROUNDS);  // exec reads the program
        for (const s of pre) expectPageAligned(s.range);
        const second = seen.findIndex((s, i) => i > 0 && s.events.includes('openExecPerm'));
        ranges.push(`3 exec allowed (openExecPerm+preAccess), one exec: ${JSON.stringify(summary(seen.slice(0, second)))}`);
      });
    });

    // LIBRARY BUG (src-native/pending.cc PendingPermissions::WriteLocked and
    // lib/core/event.ts FanotifyEvent.respond): with a writable event fd ('w' or
    // 'rw') on a file not watched for pre-content, an allowed exec fails with
    // ETXTBSY. The event fd, open for write, is closed only after the answer
    // is written; the woken execve denies write access to the file
    // (exe_file_deny_write_access) before that close. Pinned as here it fails
    // every time; unpinned on 2 CPUs, about half the time. The kernel matches
    // an answer by fd number only, so closing the fd before writing the
    // answer is safe and removes the race. Remove `.failing` once fixed.
    test("allowed, eventFileFlags 'rw', openExecPerm only: exec succeeds every time", async () => {
      await onExt4(async (img) => {
        const { statuses } = await execAllowed(img, PRE_CONTENT, ['openExecPerm']);
        console.log(`allowed exec with an rw event fd: ${statuses.filter((x) => x !== 'status 0').length}/${EXEC_ROUNDS} failed (${[...new Set(statuses)].join(', ')})`);
        expect(statuses).toEqual(Array(EXEC_ROUNDS).fill('status 0'));
      });
    });
  });

  // 4 ------------------------------------------------------------------------
  test('a directory mark with eventOnChild: reading a file in it gives preAccess with its path and range', async () => {
    await onExt4(async (img) => {
      const dir = path.join(img.mountPoint, 'dir');
      fs.mkdirSync(dir);
      const file = path.join(dir, 'data');
      makeDataFile(file);
      const fan = new Fanotify(PRE_CONTENT);
      try {
        fan.add(dir, ['preAccess', 'eventOnChild']);
        const c = consume(fan, (ev) => ev.respond('allow'));
        const child = start(childBin, ['read', file, String(5 * PAGE + 100), '300']);
        const r = await within(15_000, child.result, 'reader');
        expectClean(r);
        expect(ops(r).pread).toEqual({ op: 'pread', ok: true, n: 300, data: pageOf(5, 300) });
        await c.waitFor((s) => s.length >= 1, 5000, 'preAccess');
        await settle();
        ranges.push(`4 dir mark, pread 300 at 5*4096+100: ${JSON.stringify(summary(c.seen))}`);
        expect(c.seen).toHaveLength(1);
        const [ev] = c.seen;
        expect(ev.events).toEqual(['preAccess']);
        expect(ev.pid).toBe(child.pid);
        expect(ev.path).toBe(file);
        expectPageAligned(ev.range);
        expect(ev.range!.offset).toBe(5 * PAGE);
        expect(ev.range!.offset + ev.range!.count).toBeGreaterThanOrEqual(5 * PAGE + 400);
        await fan.close();
        expect(await within(5000, c.ended, 'the loop to end')).toBeNull();
      } finally {
        await killAll();
        await fan.close();
      }
    });
  });

  // 5 ------------------------------------------------------------------------
  test("writing through ev.fd ('rw') before allowing: the reader sees the bytes, and the write makes no event", async () => {
    await onExt4(async (img) => {
      const file = path.join(img.mountPoint, 'data');
      makeDataFile(file);
      const fetched = Buffer.alloc(256);
      for (let i = 0; i < fetched.length; i++) fetched[i] = (0xa0 + i) & 0xff;
      const fan = new Fanotify(PRE_CONTENT);
      // Another group watching modify and access: a write through the event
      // fd must not be seen by anyone, the reader's access must.
      const observer = new Fanotify();
      try {
        fan.add(file, ['openPerm', 'preAccess']);
        observer.add(file, ['modify', 'access']);
        const observed = consume(observer, () => undefined);
        const written: number[] = [];
        const c = consume(fan, (ev) => {
          if (ev.events.includes('preAccess')) {
            const n = fs.writeSync(ev.fd!, fetched, 0, fetched.length, ev.range!.offset);
            written.push(n);
          }
          ev.respond('allow');
        });
        const child = start(childBin, ['read', file, String(2 * PAGE), '256']);
        const r = await within(15_000, child.result, 'reader');
        expectClean(r);
        expect(ops(r).pread).toEqual({ op: 'pread', ok: true, n: 256, data: fetched.toString('hex') });
        expect(written).toEqual([256]);
        await observed.waitFor((s) => s.some((e) => e.events.includes('access') && e.pid === child.pid), 5000, 'the reader\'s access');
        await settle();
        ranges.push(`5 write through ev.fd: ${JSON.stringify(summary(c.seen))}`);
        // exactly the reader's open and read: the write through ev.fd made none
        expect(c.seen.map((s) => [s.events, s.pid])).toEqual([[['openPerm'], child.pid], [['preAccess'], child.pid]]);
        expect(c.seen[1].range).toEqual({ offset: 2 * PAGE, count: PAGE });
        expect(observed.seen.map((s) => [s.events, s.pid])).toEqual([[['access'], child.pid]]);
        await fan.close();
        expect(await within(5000, c.ended, 'the loop to end')).toBeNull();
      } finally {
        await killAll();
        await fan.close();
        await observer.close();
      }
      const after = fs.readFileSync(file);
      expect(after.subarray(2 * PAGE, 2 * PAGE + 256)).toEqual(fetched);
      expect(after[2 * PAGE + 256]).toBe(2);
      expect(after.length).toBe(PAGES * PAGE);
    });
  });

  // 6 ------------------------------------------------------------------------
  describe('refused by the kernel', () => {
    test('a preAccess mark on tmpfs: EOPNOTSUPP, with advice about pre-content', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-precontent-tmpfs-'));
      let mounted = false;
      let fan: Fanotify | undefined;
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'fanotify-test', dir], { stdio: 'pipe', timeout: 10_000 });
        mounted = true;
        fs.writeFileSync(path.join(dir, 'f'), 'x');
        fan = new Fanotify(PRE_CONTENT);
        for (const [target, events] of [[dir, ['preAccess', 'eventOnChild']], [path.join(dir, 'f'), ['preAccess']]] as const) {
          let thrown: unknown;
          try {
            fan.add(target, [...events]);
          } catch (err) {
            thrown = err;
          }
          expect(thrown).toBeInstanceOf(Error);
          expect(thrown).toMatchObject({ code: 'EOPNOTSUPP', errno: -95, syscall: 'fanotify_mark', path: target });
          expect((thrown as Error).message).toMatch(/pre-content/);
          expect((thrown as Error).message).toMatch(/tmpfs/);
        }
        // Marks without pre-content events are fine there.
        fan.add(dir, ['openPerm', 'eventOnChild']);
      } finally {
        void fan?.close();
        if (mounted) execFileSync('umount', [dir], { stdio: 'pipe', timeout: 10_000 });
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    test.each([
      ['fid', { fid: true }],
      ['dirFid', { dirFid: true }],
      ['fid + dirFid + name', { fid: true, dirFid: true, name: true }],
    ] as const)("report.%s with class 'pre-content': EINVAL from fanotify_init", (_what, report) => {
      const before = openFdCount();
      let thrown: unknown;
      try {
        new Fanotify({ ...PRE_CONTENT, report }).close();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(Error);
      expect(thrown).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'fanotify_init' });
      expect((thrown as Error).message).toMatch(/pre-content/);
      expect(openFdCount()).toBe(before);
    });
  });

  // 7 ------------------------------------------------------------------------
  describe('deny errnos checked before the kernel', () => {
    test.each([
      ['pre-content', { deny: 'ENOENT' }, /must be one of EIO, EPERM, EBUSY/],
      ['pre-content', { deny: 2 }, /must be one of EIO, EPERM, EBUSY/],
      ['content', { deny: 'EIO' }, /pre-content/],
    ] as const)("class '%s', permission.default %j: TypeError, no group made", (cls, decision, why) => {
      const before = openFdCount();
      let thrown: unknown;
      try {
        new Fanotify({ class: cls, permission: { default: decision } }).close();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(TypeError);
      expect(thrown).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      expect((thrown as Error).message).toMatch(why);
      expect(openFdCount()).toBe(before);
    });

    test.each([
      ['pre-content', { deny: 'ENOENT' }, ['openPerm', 'preAccess'], 'preAccess', /must be one of EIO/, 'allow', null],
      ['content', { deny: 'EIO' }, ['openPerm'], 'openPerm', /pre-content/, 'deny', EPERM],
    ] as const)("class '%s': ev.respond(%j) throws a TypeError and leaves the event pending", async (cls, bad, marked, event, why, then, errno) => {
      await onExt4(async (img) => {
        const file = path.join(img.mountPoint, 'data');
        makeDataFile(file);
        const fan = new Fanotify({ ...PRE_CONTENT, class: cls });
        try {
          fan.add(file, [...marked]);
          const it = fan[Symbol.asyncIterator]();
          const next = async (): Promise<FanotifyEvent> => {
            const r = await within(5000, it.next(), 'next event');
            if (r.done) throw new Error('iteration ended');
            return r.value;
          };
          const child = start(childBin, ['read', file, '0', '16']);
          let ev = await next();
          if (cls === 'pre-content') {
            expect(ev.events).toEqual(['openPerm']);
            ev.respond('allow');
            ev = await next();
          }
          expect(ev.events).toEqual([event]);
          expect(ev.pid).toBe(child.pid);
          let thrown: unknown;
          try {
            ev.respond(bad as never);
          } catch (err) {
            thrown = err;
          }
          expect(thrown).toBeInstanceOf(TypeError);
          expect(thrown).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
          expect((thrown as Error).message).toMatch(why);
          // Nothing reached the kernel: the child still waits, the fd is still open.
          await sleep(200);
          expect(child.child.exitCode).toBeNull();
          expect(typeof ev.fd).toBe('number');
          ev.respond(then);
          const r = await within(15_000, child.result, 'reader');
          expect(r.timedOut).toBe(false);
          expect(r.ms).toBeLessThan(5000);  // our answer, not the 10 s default
          const out = ops(r);
          if (errno === null) expect(out.pread).toEqual({ op: 'pread', ok: true, n: 16, data: pageOf(0, 16) });
          else expect(out.open).toEqual({ op: 'open', ok: false, errno });
        } finally {
          await killAll();
          await fan.close();
        }
      });
    });
  });
});
