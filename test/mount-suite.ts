// watchMounts(): attach, detach and move events of this mount namespace
// (FAN_MARK_MNTNS on Linux 6.15+, /proc/self/mountinfo before), after the kernel's mount-notify selftests
// (tools/testing/selftests/filesystems/mount-notify): a plain mount, a move,
// an unmount, a bind mount, a mount made with the new mount API, and the
// detach of a mount that existed before the watch started.
//
// Other processes may (un)mount while this runs: every check picks its
// events by mount point or mount id, never by position alone.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Fanotify, MountEvent, MountWatcher, watchMounts } from '../lib';
import { binding } from '../lib/core/binding';
import { has } from '../lib/kernel/capabilities';
import { readMounts, statMount } from '../lib/kernel/mount-table';
import { bound, describeRoot, expectUnsupported, openFdCount, sleep, testFeature, within } from './helpers';
import { withQueueLimit } from './queue-limit';

/** Runs a command (no shell); throws with its stderr on failure. */
function run(cmd: string, ...args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Is something mounted exactly at p, per /proc/self/mountinfo? */
function mountedAt(p: string): boolean {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .some((line) => line !== '' && unescape(line.split(' ')[4] ?? '') === p);
}

/** Unmounts everything stacked at each path (lazily as a last resort); never throws. */
function unmountAll(...paths: string[]): void {
  for (const p of paths) {
    for (let i = 0; i < 8 && mountedAt(p); i++) {
      try {
        run('umount', p);
      } catch {
        try {
          run('umount', '-l', p);
        } catch {
          // nothing more to do
        }
      }
    }
  }
}

/** A fresh directory under os.tmpdir() (its real path, as the kernel names it). */
function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), `fanotify-mnt-${prefix}-`));
}

function removeDirs(...dirs: string[]): void {
  for (const d of dirs) {
    try {
      if (!mountedAt(d)) fs.rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}

/** The mount id of the mount at p (the topmost one), as this kernel's table names it. */
function mountIdAt(p: string): bigint | undefined {
  let found: bigint | undefined;
  for (const m of readMounts()) if (m.mountPoint === p) found = m.mountId;  // in mount order: a later one is on top
  return found;
}

/** The id /proc/self/mountinfo gives the mount at p. */
function mountinfoIdAt(p: string): number {
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === p).pop()!;
  return Number(line.split(' ')[0]);
}

/** Reads a watcher in the background into `seen`, so tests can wait on what arrived. */
class Recorder {
  readonly seen: MountEvent[] = [];
  error: unknown = null;
  readonly done: Promise<void>;

  constructor(readonly watcher: MountWatcher) {
    this.done = (async () => {
      try {
        for (;;) {
          const r = await watcher.next();
          if (r.done) return;
          this.seen.push(r.value);
        }
      } catch (err) {
        this.error = err;
      }
    })();
  }

  /** The first event matching pred, waiting up to ms for it. */
  async waitFor(pred: (ev: MountEvent) => boolean, what: string, ms = 5000): Promise<MountEvent> {
    const deadline = Date.now() + bound(ms);
    for (;;) {
      const ev = this.seen.find(pred);
      if (ev) return ev;
      if (this.error) throw this.error;
      if (Date.now() > deadline)
        throw new Error(`no ${what} within ${ms} ms; seen: ${JSON.stringify(this.seen, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
      await sleep(10);
    }
  }

  async close(): Promise<void> {
    await this.watcher.close();
    await within(5000, this.done, 'the recorder loop ending');
  }
}

/**
 * The result of the first next() that is not an event: other processes may
 * (un)mount while a test waits, and their events come first.
 */
async function untilEnd(w: MountWatcher): Promise<IteratorResult<MountEvent>> {
  for (;;) {
    const r = await w.next();
    if (r.done) return r;
  }
}

/** Mounts with the new mount API: fsopen/fsconfig/fsmount/move_mount, from python3 via ctypes. */
const NEW_API_MOUNT = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    conv = [ctypes.c_char_p(a) if isinstance(a, bytes) else ctypes.c_void_p(None) if a is None else ctypes.c_long(a) for a in args]
    r = libc.syscall(ctypes.c_long(nr), *conv)
    if r < 0:
        e = ctypes.get_errno()
        sys.exit("syscall %d: %s" % (nr, os.strerror(e)))
    return r
SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount = 429, 430, 431, 432
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE, MOVE_MOUNT_F_EMPTY_PATH, AT_FDCWD = 1, 6, 4, -100
fsfd = sc(SYS_fsopen, b"tmpfs", 0)
sc(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, b"source", b"fanotify-newapi", 0)
sc(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, None, None, 0)
mfd = sc(SYS_fsmount, fsfd, 0, 0)
sc(SYS_move_mount, mfd, b"", AT_FDCWD, sys.argv[1].encode(), MOVE_MOUNT_F_EMPTY_PATH)
`;

/** A process in a mount namespace of its own (private propagation), and its mountinfo ids by mount point. */
class OtherNamespace {
  readonly child: ChildProcess;
  readonly pid: number;

  constructor() {
    this.child = spawn('unshare', ['-m', '--propagation', 'private', 'sleep', '60'], { stdio: 'ignore' });
    this.pid = this.child.pid!;
  }

  get nsPath(): string {
    return `/proc/${this.pid}/ns/mnt`;
  }

  /** Resolves once unshare has made the namespace (its ns link differs from ours). */
  async ready(): Promise<void> {
    const ours = fs.readlinkSync('/proc/self/ns/mnt');
    await within(5000, (async () => {
      for (;;) {
        try {
          if (fs.readlinkSync(this.nsPath) !== ours && fs.readFileSync(`/proc/${this.pid}/comm`, 'utf8').trim() === 'sleep') return;
        } catch {
          // not there yet
        }
        await sleep(10);
      }
    })(), 'the other namespace');
  }

  /** Runs a command in the namespace. */
  run(cmd: string, ...args: string[]): void {
    execFileSync('nsenter', ['-t', String(this.pid), '-m', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** mountinfo id -> mount point, of its table. */
  table(): Map<bigint, string> {
    const out = new Map<bigint, string>();
    for (const line of fs.readFileSync(`/proc/${this.pid}/mountinfo`, 'utf8').split('\n').filter(Boolean))
      out.set(BigInt(line.split(' ')[0]), line.split(' ')[4]);
    return out;
  }

  /** Kills it: its namespace, and the mounts only it had, go with it. */
  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const gone = new Promise((r) => this.child.once('close', r));
      this.child.kill('SIGKILL');
      await within(5000, gone, 'the namespace process ending').catch(() => undefined);
    }
  }
}

/** The suite, also run through the mountinfo fallback on kernels with mount events (mounts-mountinfo.test.ts). */
export function mountSuite(name: string): void {
  describeRoot(name, () => {
    test('the watcher says how it follows mounts, as probe() found', async () => {
      await using w = watchMounts();
      expect(w.mechanism).toBe(has('mountEvents') ? 'fanotify' : 'mountinfo');
      expect(w.mountIds).toBe(has('listmount') ? 'unique' : 'reusable');
    });

    test('tmpfs: attach with statmount names, one move event, detach', async () => {
      const dir = tempDir('a');
      const dir2 = tempDir('b');
      const rec = new Recorder(watchMounts());
      try {
        run('mount', '-t', 'tmpfs', 'none', dir);
        const attach = await rec.waitFor((e) => e.kind === 'attach' && e.mountPoint === dir, `attach at ${dir}`);
        expect(attach).toEqual({ kind: 'attach', mountId: expect.any(BigInt), mountPoint: dir, fsType: 'tmpfs', source: 'none' });
        const id = attach.mountId;
        expect(mountIdAt(dir)).toBe(id);
        if (has('listmount')) {
          expect(binding.listMounts()).toContain(id);
          const sm = binding.statMount(id)!;
          // statmount(2) names no source before 6.14: the library's statMount() takes it from mountinfo.
          expect(sm).toMatchObject({ mountId: id, mountPoint: dir, fsType: 'tmpfs', mountRoot: '/' });
          expect(statMount(id)).toMatchObject({ mountId: id, mountPoint: dir, fsType: 'tmpfs', source: 'none' });
          expect(mountinfoIdAt(dir)).toBe(sm.mountIdOld);  // the old (mountinfo) id of the same mount
        } else {
          expect(id).toBe(BigInt(mountinfoIdAt(dir)));  // no unique ids: mountinfo's
        }
        expect(rec.watcher.mounts.get(id)?.mountPoint).toBe(dir);

        run('mount', '--move', dir, dir2);
        const move = await rec.waitFor((e) => e.mountId === id && e.kind !== 'attach', 'the move event');
        expect(move).toEqual({ kind: 'move', mountId: id, mountPoint: dir2, fsType: 'tmpfs', source: 'none' });
        expect(rec.watcher.mounts.get(id)?.mountPoint).toBe(dir2);
        await sleep(200);  // a second event for the move would have arrived by now
        expect(rec.seen.filter((e) => e.mountId === id).map((e) => e.kind)).toEqual(['attach', 'move']);

        run('umount', dir2);
        const detach = await rec.waitFor((e) => e.mountId === id && e.kind === 'detach', 'the detach event');
        expect(detach).toEqual({ kind: 'detach', mountId: id, mountPoint: dir2, fsType: 'tmpfs', source: 'none' });
        expect(rec.watcher.mounts.has(id)).toBe(false);
        if (has('listmount')) expect(binding.statMount(id)).toBeNull();
        await sleep(100);
        expect(rec.seen.filter((e) => e.mountId === id).map((e) => e.kind)).toEqual(['attach', 'move', 'detach']);
      } finally {
        await rec.close();
        unmountAll(dir, dir2);
        removeDirs(dir, dir2);
      }
    });

    test('a bind mount is an attach at the target', async () => {
      const base = tempDir('base');
      const dst = tempDir('dst');
      // The source is a directory of a fresh tmpfs, so the names are known exactly.
      run('mount', '-t', 'tmpfs', 'fanotify-bindsrc', base);
      const rec = new Recorder(watchMounts());
      try {
        fs.mkdirSync(path.join(base, 'src'));
        run('mount', '--bind', path.join(base, 'src'), dst);
        const attach = await rec.waitFor((e) => e.kind === 'attach' && e.mountPoint === dst, `attach at ${dst}`);
        expect(attach).toEqual({ kind: 'attach', mountId: expect.any(BigInt), mountPoint: dst, fsType: 'tmpfs', source: 'fanotify-bindsrc' });
        expect(mountIdAt(dst)).toBe(attach.mountId);
        expect(readMounts().find((m) => m.mountId === attach.mountId)!.root).toBe('/src');
        // Only the new mount: the source mount did not change.
        expect(rec.seen.filter((e) => e.mountPoint === base)).toEqual([]);

        run('umount', dst);
        const detach = await rec.waitFor((e) => e.kind === 'detach' && e.mountId === attach.mountId, 'detach of the bind');
        expect(detach.mountPoint).toBe(dst);
      } finally {
        await rec.close();
        unmountAll(dst, base);
        removeDirs(dst, base);
      }
    });

    // Before 6.15, the mountinfo file is open from watchMounts() on, and its
    // poll reports each change once: a change before the loop turns (when
    // libuv would register an fd with epoll, whose registration polls and
    // drops the answer) must still come, and so must the next one. Seen lost
    // on 6.1 and 6.12 under jest, where the loop turned late.
    test('mounts made before the event loop turns, and after, are all attaches and detaches', async () => {
      const a = tempDir('early');
      const b = tempDir('later');
      const rec = new Recorder(watchMounts());
      try {
        run('mount', '-t', 'tmpfs', 'fanotify-early', a);  // no turn of the event loop in between
        const first = await rec.waitFor((e) => e.kind === 'attach' && e.mountPoint === a, `attach at ${a}`);
        run('mount', '-t', 'tmpfs', 'fanotify-later', b);
        await rec.waitFor((e) => e.kind === 'attach' && e.mountPoint === b, `attach at ${b}`);
        run('umount', a);
        await rec.waitFor((e) => e.kind === 'detach' && e.mountId === first.mountId, `detach at ${a}`);
      } finally {
        await rec.close();
        unmountAll(a, b);
        removeDirs(a, b);
      }
    });

    test('a mount made with fsopen/fsconfig/fsmount/move_mount is an attach', async () => {
      const dir = tempDir('newapi');
      const rec = new Recorder(watchMounts());
      try {
        execFileSync('python3', ['-c', NEW_API_MOUNT, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
        expect(mountedAt(dir)).toBe(true);
        const attach = await rec.waitFor((e) => e.kind === 'attach' && e.mountPoint === dir, `attach at ${dir}`);
        expect(attach).toEqual({ kind: 'attach', mountId: expect.any(BigInt), mountPoint: dir, fsType: 'tmpfs', source: 'fanotify-newapi' });
        expect(mountIdAt(dir)).toBe(attach.mountId);
        // fsmount() made a detached mount first: it is attached once, by move_mount.
        await sleep(100);
        expect(rec.seen.filter((e) => e.mountId === attach.mountId).map((e) => e.kind)).toEqual(['attach']);
      } finally {
        await rec.close();
        unmountAll(dir);
        removeDirs(dir);
      }
    });

    test('the detach of a mount older than the watch is named from the listmount cache', async () => {
      const dir = tempDir('old');
      run('mount', '-t', 'tmpfs', 'fanotify-old', dir);
      let rec: Recorder | null = null;
      try {
        const id = mountIdAt(dir)!;
        expect(id).toBeDefined();
        rec = new Recorder(watchMounts());
        expect(rec.watcher.mounts.get(id)).toMatchObject({ mountPoint: dir, fsType: 'tmpfs', source: 'fanotify-old' });
        run('umount', dir);
        const detach = await rec.waitFor((e) => e.kind === 'detach' && e.mountId === id, 'the detach');
        // statmount() (or mountinfo) cannot name it any more: only the cache can.
        expect(mountIdAt(dir)).toBeUndefined();
        if (has('listmount')) expect(binding.statMount(id)).toBeNull();
        expect(detach).toEqual({ kind: 'detach', mountId: id, mountPoint: dir, fsType: 'tmpfs', source: 'fanotify-old' });
        expect(rec.watcher.mounts.has(id)).toBe(false);
      } finally {
        await rec?.close();
        unmountAll(dir);
        removeDirs(dir);
      }
    });

    test('mounts: the known map holds every mount at start, / included', async () => {
      const w = watchMounts();
      try {
        const points = [...w.mounts.values()].map((m) => m.mountPoint);
        expect(points).toContain('/');
        const root = [...w.mounts.entries()].find(([, m]) => m.mountPoint === '/')!;
        expect(readMounts().find((m) => m.mountId === root[0])).toMatchObject({ mountPoint: '/', fsType: root[1].fsType });
        for (const p of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[4]))
          if (!p.includes('\\')) expect(points).toContain(p);
        expect(w.mounts.size).toBeGreaterThanOrEqual(readMounts().length - 2);  // others may (un)mount meanwhile
      } finally {
        await w.close();
      }
    });

    test('bad inputs: a namespace that is no nsfs file (or, without mntns marks, no /proc/PID/ns/mnt), report.mount with fid', async () => {
      const before = openFdCount();
      if (has('mntnsMark')) {
        let err: (Error & { code?: string; syscall?: string }) | undefined;
        try {
          watchMounts({ namespace: '/tmp' });
        } catch (e) {
          err = e as typeof err;
        }
        expect(err).toBeDefined();
        expect(err!.code).toBe('EINVAL');
        expect(err!.syscall).toBe('fanotify_mark');
        expect(err!.message).toMatch(/mount namespace \(nsfs\)/);
        expect(err!.message).toMatch(/'\/tmp'/);
      } else {
        // Only /proc/PID/ns/mnt has a mountinfo to follow.
        expectUnsupported(() => watchMounts({ namespace: '/tmp' }), 'mntnsMark');
        expectUnsupported(() => watchMounts({ namespace: 3 }), 'mntnsMark');
        await using other = watchMounts({ namespace: `/proc/${process.pid}/ns/mnt` });
        expect(other.mounts.size).toBeGreaterThan(0);
      }
      expect(openFdCount()).toBe(before);  // the group made for it was closed

      expect(() => watchMounts({ namespace: '/proc/self/ns/mnt' }).close()).not.toThrow();
      expect(() => watchMounts(null as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));

      if (has('reportMount')) {
        let err: (Error & { code?: string; syscall?: string }) | undefined;
        try {
          new Fanotify({ report: { mount: true, fid: true } });
        } catch (e) {
          err = e as typeof err;
        }
        expect(err).toBeDefined();
        expect(err!.code).toBe('EINVAL');
        expect(err!.syscall).toBe('fanotify_init');
        expect(err!.message).toMatch(/report\.mount cannot combine with fid flags/);
      } else {
        expectUnsupported(() => new Fanotify({ report: { mount: true, fid: true } }), 'reportMount');
        expectUnsupported(() => new Fanotify({ report: { mount: true } }), 'reportMount');
      }
      await sleep(50);
      expect(openFdCount()).toBe(before);
    });

    // The kernel queues one overflow event when its queue is full: the
    // watcher says so, reads the table again and yields what changed. The
    // mountinfo fallback compares tables anyway and has no queue to overflow.
    test('a full queue: an overflow event, then the mounts made meanwhile; mounts is right again', async () => {
      const dirs = ['ovf1', 'ovf2', 'ovf3'].map((d) => tempDir(d));
      const w = withQueueLimit(1, () => watchMounts());
      const rec = new Recorder(w);
      try {
        for (const d of dirs) run('mount', '-t', 'tmpfs', 'fanotify-ovf', d);
        for (const d of dirs) await rec.waitFor((e) => e.kind === 'attach' && e.mountPoint === d, `attach at ${d}`);
        for (const d of dirs) expect([...w.mounts.values()].some((m) => m.mountPoint === d)).toBe(true);
        const overflow = rec.seen.findIndex((e) => e.kind === 'overflow');
        if (w.mechanism === 'fanotify') {
          expect(rec.seen[overflow]).toEqual({ kind: 'overflow', mountId: 0n });
          // The first fit in the queue; what was lost comes after the overflow, from the table.
          const last = rec.seen.findIndex((e) => e.kind === 'attach' && e.mountPoint === dirs[2]);
          expect(last).toBeGreaterThan(overflow);
        } else {
          expect(overflow).toBe(-1);
        }
      } finally {
        await rec.close();
        unmountAll(...dirs);
        removeDirs(...dirs);
      }
    });

    // Another namespace's mounts are named from its own table, never from ours.
    test('namespace /proc/PID/ns/mnt of another namespace: its mounts, named from its mountinfo; none of ours', async () => {
      const ns = new OtherNamespace();
      const ours = tempDir('ns-ours');
      const ours2 = tempDir('ns-ours2');
      const theirs = tempDir('ns-theirs');
      let rec: Recorder | null = null;
      try {
        await ns.ready();
        run('mount', '-t', 'tmpfs', 'fanotify-ns-ours', ours);  // in our namespace only (private propagation)
        rec = new Recorder(watchMounts({ namespace: ns.nsPath }));
        expect(rec.watcher.mechanism).toBe('mountinfo');
        expect(rec.watcher.mountIds).toBe('reusable');
        const table = ns.table();
        expect(new Map([...rec.watcher.mounts].map(([id, m]) => [id, m.mountPoint]))).toEqual(table);
        expect([...rec.watcher.mounts.values()].some((m) => m.mountPoint === ours)).toBe(false);

        run('mount', '-t', 'tmpfs', 'fanotify-ns-ours2', ours2);  // ours again: not theirs to report
        ns.run('mount', '-t', 'tmpfs', 'fanotify-ns-theirs', theirs);
        const attach = await rec.waitFor((e) => e.kind === 'attach' && e.mountPoint === theirs, 'the attach in the other namespace');
        expect(attach).toEqual({ kind: 'attach', mountId: expect.any(BigInt), mountPoint: theirs, fsType: 'tmpfs', source: 'fanotify-ns-theirs' });
        expect(ns.table().get(attach.mountId)).toBe(theirs);
        expect(rec.seen.filter((e) => e.mountPoint === ours2 || e.mountPoint === ours)).toEqual([]);
      } finally {
        await rec?.close();
        await ns.close();
        unmountAll(ours, ours2);
        removeDirs(ours, ours2, theirs);
      }
    });

    testFeature('mntnsMark', 'namespace as an fd of another namespace: its events with mount ids only, mounts empty', async () => {
      const ns = new OtherNamespace();
      const ours = tempDir('nsfd-ours');
      const there = tempDir('nsfd-there');
      let fd = -1;
      let rec: Recorder | null = null;
      try {
        await ns.ready();
        fd = fs.openSync(ns.nsPath, 'r');
        rec = new Recorder(watchMounts({ namespace: fd }));
        expect(rec.watcher.mechanism).toBe('fanotify');
        expect(rec.watcher.mounts.size).toBe(0);  // nothing of ours
        run('mount', '-t', 'tmpfs', 'fanotify-nsfd-ours', ours);
        ns.run('mount', '-t', 'tmpfs', 'fanotify-nsfd-there', there);
        const id = [...ns.table()].find(([, p]) => p === there)![0];
        expect(id).toBeDefined();
        const attach = await rec.waitFor((e) => e.kind === 'attach', 'the attach in the other namespace');
        expect(attach).toEqual({ kind: 'attach', mountId: expect.any(BigInt) });  // no names from our table
        await sleep(200);
        // Our mount is not theirs. (Other events of that namespace, such as a
        // copy of one of our mounts going away, may come: they are its own.)
        const oursId = mountIdAt(ours);
        expect(oursId).toBeDefined();
        expect(rec.seen.filter((e) => e.mountId === oursId)).toEqual([]);
        expect(rec.seen.filter((e) => e.kind === 'attach')).toHaveLength(1);
      } finally {
        await rec?.close();
        if (fd >= 0) fs.closeSync(fd);
        await ns.close();
        unmountAll(ours);
        removeDirs(ours, there);
      }
    });

    describe('ending the iterator', () => {
      test('return() ends a waiting next() and closes the group', async () => {
        const before = openFdCount();
        const w = watchMounts();
        expect(openFdCount()).toBeGreaterThan(before);
        const pending = untilEnd(w);
        await sleep(20);
        expect(await within(2000, w.return())).toEqual({ done: true, value: undefined });
        expect(await within(2000, pending)).toEqual({ done: true, value: undefined });
        expect(await w.next()).toEqual({ done: true, value: undefined });
        expect(openFdCount()).toBe(before);
      });

      test('close() ends it too, and breaking out of for await closes it', async () => {
        const before = openFdCount();
        const w = watchMounts();
        const pending = untilEnd(w);
        await w.close();
        expect(await within(2000, pending)).toEqual({ done: true, value: undefined });
        expect(openFdCount()).toBe(before);

        const dir = tempDir('brk');
        const w2 = watchMounts();
        try {
          const loop = (async () => {
            for await (const ev of w2) if (ev.mountPoint === dir) return ev;
            return null;
          })();
          run('mount', '-t', 'tmpfs', 'none', dir);
          expect(await within(5000, loop, 'the for await loop')).toMatchObject({ kind: 'attach', mountPoint: dir });
          expect(openFdCount()).toBe(before);  // break -> return() -> closed
          expect(await w2.next()).toEqual({ done: true, value: undefined });
        } finally {
          await w2.close();
          unmountAll(dir);
          removeDirs(dir);
        }
      });

      test('an AbortSignal rejects the waiting next() with an AbortError and ends the iterator', async () => {
        const ac = new AbortController();
        const w = watchMounts({ signal: ac.signal });
        try {
          const pending = untilEnd(w);
          pending.catch(() => undefined);
          await sleep(20);
          ac.abort();
          await expect(within(2000, pending)).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
          expect(await w.next()).toEqual({ done: true, value: undefined });
        } finally {
          await w.close();
        }
      });

      test('an abort alone (no close()) releases the fanotify fd', async () => {
        const before = openFdCount();
        const ac = new AbortController();
        const w = watchMounts({ signal: ac.signal });
        try {
          const pending = untilEnd(w);
          pending.catch(() => undefined);
          await sleep(20);
          ac.abort();
          await within(2000, pending).catch(() => undefined);
          await sleep(20);
          expect(openFdCount()).toBe(before);
        } finally {
          await w.close();
        }
      });

      test('an already aborted signal: next() rejects with AbortError', async () => {
        const before = openFdCount();
        const ac = new AbortController();
        ac.abort();
        const w = watchMounts({ signal: ac.signal });
        try {
          await expect(w.next()).rejects.toMatchObject({ name: 'AbortError' });
          expect(await w.next()).toEqual({ done: true, value: undefined });
          expect(openFdCount()).toBe(before);  // closed without close()
        } finally {
          await w.close();
        }
        expect(openFdCount()).toBe(before);
      });
    });
  });
}
