// watch() and watchErrors() following mounts, on both mechanisms: the
// kernel's mount events (follow.test.ts, Linux 6.15+) and changes of
// /proc/self/mountinfo (follow-mountinfo.test.ts, as on older kernels).
// Against real ext4 on loop devices (LoopImage) and tmpfs.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { ErrorWatcher, watch, watchErrors } from '../lib';
import { binding } from '../lib/core/binding';
import { formatFsid } from '../lib/core/fileid';
import { has } from '../lib/kernel/capabilities';
import { LoopImage } from '../lib/testing';
import { killAll, start } from './children';
import { bound, describeRoot, sleep, within } from './helpers';
import { mountedAt, removeDirs, run, tempDir, unmountAll } from './mount-helpers';
import { ErrorReader, until, WatchRecorder } from './watchers';

jest.setTimeout(bound(60_000));
afterEach(killAll);

const fsidOf = (p: string): string => formatFsid(...binding.fsidOf(p));
const on = (img: LoopImage) => (e: { filesystem: { mountPoint: string } }): boolean => e.filesystem.mountPoint === img.mountPoint;

/**
 * Runs test/fixtures/hung-mount.js in a mount namespace of its own: the
 * longest the JS thread was blocked while the watcher handled an unmount,
 * with a FUSE mount next to it that answers nothing.
 */
async function lagWithHungMount(mode: 'watch' | 'errors'): Promise<{ maxLagMs: number; handled: boolean }> {
  const dist = path.join(__dirname, '..', 'dist');
  if (!fs.existsSync(path.join(dist, 'index.js'))) throw new Error('dist/ is not built: run node scripts/build.js');
  const child = start('unshare', ['-m', '--propagation', 'private', process.execPath,
    path.join(__dirname, 'fixtures', 'hung-mount.js'), dist, mode], bound(30_000));
  const r = await child.result;
  if (r.code !== 0) throw new Error(`hung-mount.js ${mode} failed (${r.code ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { maxLagMs: number; handled: boolean };
}

/** The paths the library asked statfs about (binding.fsidOf) from `act` until `done()`. */
async function statfsWhile(act: () => void, done: () => boolean, state = (): string => ''): Promise<string[]> {
  const asked: string[] = [];
  const fsidOfNative = binding.fsidOf;
  const spy = jest.spyOn(binding, 'fsidOf').mockImplementation((p: string) => {
    asked.push(p);
    return fsidOfNative(p);
  });
  try {
    act();
    await until(done, 'the watcher handling the unmount').catch((e: Error) => {
      throw new Error(`${e.message}: ${state()}; statfs asked of ${JSON.stringify(asked)}`);
    });
    await sleep(100);  // anything it does after that
    return asked;
  } finally {
    spy.mockRestore();
  }
}

/**
 * Where there is FUSE (/dev/fuse): an unmount next to a FUSE mount that
 * answers nothing (test/fixtures/hung-mount.js, in a mount namespace of its
 * own) must not block the JS thread. Without it: the library must not ask
 * statfs of any mount while it handles an unmount (`countStatfs` runs that).
 */
function testHungMount(mode: 'watch' | 'errors', countStatfs: () => Promise<string[]>): void {
  const what = 'an unmount asks no other mount anything';
  if (fs.existsSync('/dev/fuse')) {
    test(`${what}: a FUSE mount that answers nothing does not block the JS thread`, async () => {
      const r = await lagWithHungMount(mode);
      expect(r.handled).toBe(true);
      expect(r.maxLagMs).toBeLessThan(bound(1000));  // the hung mount would block it for 3 s (scaled)
    });
  } else {
    test(`${what} [no /dev/fuse here: no statfs of any mount while it is handled, instead of a FUSE mount that hangs]`, async () => {
      expect(await countStatfs()).toEqual([]);
    });
  }
}

export function followSuite(name: string): void {
  describeRoot(name, () => {
    test('the watchers say how they follow mounts', async () => {
      const w = watch(os.tmpdir());
      const e = watchErrors();
      try {
        expect(w.mountMechanism).toBe(has('mountEvents') ? 'fanotify' : 'mountinfo');
        expect(e.mountMechanism).toBe(w.mountMechanism);
      } finally {
        await w.close();
        await e.close();
      }
    });

    describe('watch()', () => {
        let img: LoopImage;
        beforeAll(async () => {
          img = await LoopImage.create({ sizeMiB: 64 });
        });
        afterAll(async () => {
          await img?.dispose();
        });

      test('a filesystem mounted under the root after the start is followed', async () => {
        const other = await LoopImage.create({ sizeMiB: 32 });
        const at = path.join(img.mountPoint, `late-${process.pid}`);
        fs.mkdirSync(at);
        const rec = new WatchRecorder(watch(img.mountPoint));
        try {
          const otherFsid = fsidOf(other.mountPoint);
          expect(rec.watcher.filesystems.map((f) => f.fsid)).not.toContain(otherFsid);
          run('mount', '--bind', other.mountPoint, at);
          await until(() => rec.watcher.filesystems.some((f) => f.fsid === otherFsid), 'the watcher taking the new filesystem');
          expect(rec.watcher.filesystems.find((f) => f.fsid === otherFsid)).toEqual({
            fsid: otherFsid, mountPoint: at, fsType: 'ext4', source: expect.stringMatching(/^\/dev\/loop\d+$/),
          });

          const file = path.join(at, 'new-file');
          fs.writeFileSync(file, 'x');
          const ev = await rec.waitFor((e) => e.path === file, 'create on the followed filesystem');
          expect(ev.events).toContain('create');
          expect(ev.filesystem).toMatchObject({ fsid: otherFsid, mountPoint: at });

          // The mark is on the filesystem: a change made through its other mount
          // point is named through the mount under the root.
          fs.writeFileSync(path.join(other.mountPoint, 'via-elsewhere'), 'y');
          const ev2 = await rec.waitFor((e) => e.path !== null && e.path.endsWith('/via-elsewhere'), 'create via the other mount');
          expect(ev2.path).toBe(path.join(at, 'via-elsewhere'));
        } finally {
          await rec.close();
          unmountAll(at);
          await other.dispose();
          fs.rmSync(at, { recursive: true, force: true });
        }
      });

      test('a mount moved into the root from outside is followed', async () => {
        const outside = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'fanotify-watch-move-'));
        const inside = path.join(img.mountPoint, `moved-in-${process.pid}`);
        fs.mkdirSync(inside);
        run('mount', '-t', 'tmpfs', 'fanotify-movein', outside);
        const rec = new WatchRecorder(watch(img.mountPoint));
        try {
          const tmpfsFsid = fsidOf(outside);
          run('mount', '--move', outside, inside);
          await until(() => rec.watcher.filesystems.some((f) => f.fsid === tmpfsFsid), 'the watcher taking the moved-in tmpfs');
          expect(rec.watcher.filesystems.find((f) => f.fsid === tmpfsFsid)).toEqual({
            fsid: tmpfsFsid, mountPoint: inside, fsType: 'tmpfs', source: 'fanotify-movein',
          });
          const file = path.join(inside, 'x');
          fs.writeFileSync(file, 'x');
          const ev = await rec.waitFor((e) => e.path === file, 'create on the moved-in tmpfs');
          expect(ev.filesystem).toMatchObject({ fsType: 'tmpfs', mountPoint: inside });
        } finally {
          await rec.close();
          unmountAll(outside, inside);
          fs.rmSync(outside, { recursive: true, force: true });
          fs.rmSync(inside, { recursive: true, force: true });
        }
      });

      // A followed filesystem that leaves the root (umount, move out) keeps its
      // kernel mark until close, but its changes made through its other mount
      // points must not be reported under the old, vanished mount point.
      test('once a followed filesystem is unmounted from under the root, its changes elsewhere are not reported', async () => {
        const other = await LoopImage.create({ sizeMiB: 32 });
        const at = path.join(img.mountPoint, `gone-${process.pid}`);
        fs.mkdirSync(at);
        const rec = new WatchRecorder(watch(img.mountPoint));
        try {
          const otherFsid = fsidOf(other.mountPoint);
          run('mount', '--bind', other.mountPoint, at);
          await until(() => rec.watcher.filesystems.some((f) => f.fsid === otherFsid), 'the watcher taking the new filesystem');
          fs.writeFileSync(path.join(at, 'while-mounted'), 'x');
          await rec.waitFor((e) => e.path === path.join(at, 'while-mounted'), 'create while mounted under the root');
          run('umount', at);
          // Still mounted at other.mountPoint, outside the root.
          fs.writeFileSync(path.join(other.mountPoint, 'after-umount'), 'x');
          fs.writeFileSync(path.join(img.mountPoint, `sentinel-${process.pid}`), 'x');
          await rec.waitFor((e) => e.path === path.join(img.mountPoint, `sentinel-${process.pid}`), 'the sentinel');
          await sleep(300);
          const leaked = rec.seen.filter((e) => e.filesystem.fsid === otherFsid && e.path !== path.join(at, 'while-mounted'));
          expect(leaked).toEqual([]);
        } finally {
          await rec.close();
          unmountAll(at);
          await other.dispose();
          fs.rmSync(at, { recursive: true, force: true });
          fs.rmSync(path.join(img.mountPoint, `sentinel-${process.pid}`), { force: true });
        }
      });

      // The monitor starts before the table is read: a mount made at any time
      // after that, even before the constructor returns, is among its changes.
      test('a mount made right after watch() returns, synchronously, is followed', async () => {
        const other = await LoopImage.create({ sizeMiB: 32 });
        const at = path.join(img.mountPoint, `sync-${process.pid}`);
        fs.mkdirSync(at);
        let rec: WatchRecorder | null = null;
        try {
          const w = watch(img.mountPoint);
          run('mount', '--bind', other.mountPoint, at);  // no turn of the event loop in between
          rec = new WatchRecorder(w);
          const otherFsid = fsidOf(other.mountPoint);
          await until(() => w.filesystems.some((f) => f.fsid === otherFsid), 'the watcher taking the new filesystem');
          const file = path.join(at, 'x');
          fs.writeFileSync(file, 'x');
          const ev = await rec.waitFor((e) => e.path === file, 'the create on it');
          expect(ev.filesystem).toMatchObject({ fsid: otherFsid, mountPoint: at });
        } finally {
          await rec?.close();
          unmountAll(at);
          await other.dispose();
          fs.rmSync(at, { recursive: true, force: true });
        }
      });

      // The window the monitor closes: the table is read, then each filesystem
      // is marked. A mount made in between (here: at the first statfs of a
      // mount already there) must be among the monitor's changes.
      test('a mount made while watch() marks the filesystems already there is followed', async () => {
        const other = await LoopImage.create({ sizeMiB: 32 });
        const existing = path.join(img.mountPoint, `existing-${process.pid}`);
        const at = path.join(img.mountPoint, `between-${process.pid}`);
        fs.mkdirSync(existing);
        fs.mkdirSync(at);
        run('mount', '-t', 'tmpfs', 'fanotify-existing', existing);
        const fsidOfNative = binding.fsidOf;
        const spy = jest.spyOn(binding, 'fsidOf').mockImplementation((p: string) => {
          if (p === existing && !mountedAt(at)) run('mount', '--bind', other.mountPoint, at);
          return fsidOfNative(p);
        });
        let rec: WatchRecorder | null = null;
        try {
          rec = new WatchRecorder(watch(img.mountPoint));
          spy.mockRestore();
          expect(mountedAt(at)).toBe(true);
          const w = rec.watcher;
          const otherFsid = fsidOf(other.mountPoint);
          await until(() => w.filesystems.some((f) => f.fsid === otherFsid), 'the watcher taking the filesystem mounted meanwhile');
          const file = path.join(at, 'x');
          fs.writeFileSync(file, 'x');
          expect((await rec.waitFor((e) => e.path === file, 'the create on it')).filesystem.mountPoint).toBe(at);
        } finally {
          spy.mockRestore();
          await rec?.close();
          unmountAll(at, existing);
          await other.dispose();
          fs.rmSync(at, { recursive: true, force: true });
          fs.rmSync(existing, { recursive: true, force: true });
        }
      });

      test('a followed filesystem moved within the root: its changes are named at the new place', async () => {
        const from = path.join(img.mountPoint, `move-from-${process.pid}`);
        const to = path.join(img.mountPoint, `move-to-${process.pid}`);
        fs.mkdirSync(from);
        fs.mkdirSync(to);
        run('mount', '-t', 'tmpfs', 'fanotify-moved', from);
        const rec = new WatchRecorder(watch(img.mountPoint));
        try {
          const tmpfsFsid = fsidOf(from);
          expect(rec.watcher.filesystems.find((f) => f.fsid === tmpfsFsid)?.mountPoint).toBe(from);
          run('mount', '--move', from, to);
          await until(() => rec.watcher.filesystems.find((f) => f.fsid === tmpfsFsid)?.mountPoint === to, 'the new mount point');
          const file = path.join(to, 'after-move');
          fs.writeFileSync(file, 'x');
          const ev = await rec.waitFor((e) => e.path === file, 'the create at the new place');
          expect(ev.filesystem).toEqual({ fsid: tmpfsFsid, mountPoint: to, fsType: 'tmpfs', source: 'fanotify-moved' });
        } finally {
          await rec.close();
          unmountAll(from, to);
          fs.rmSync(from, { recursive: true, force: true });
          fs.rmSync(to, { recursive: true, force: true });
        }
      });

      test('two mounts of one filesystem under the root, the first unmounted: its changes are named through the second', async () => {
        const other = await LoopImage.create({ sizeMiB: 32 });
        const first = path.join(img.mountPoint, `first-${process.pid}`);
        const second = path.join(img.mountPoint, `second-${process.pid}`);
        fs.mkdirSync(first);
        fs.mkdirSync(second);
        run('mount', '--bind', other.mountPoint, first);
        run('mount', '--bind', other.mountPoint, second);
        const rec = new WatchRecorder(watch(img.mountPoint));
        try {
          const otherFsid = fsidOf(other.mountPoint);
          expect(rec.watcher.filesystems.filter((f) => f.fsid === otherFsid)).toHaveLength(1);
          run('umount', first);
          await until(() => rec.watcher.filesystems.find((f) => f.fsid === otherFsid)?.mountPoint === second, 'the second mount point');
          const file = path.join(second, 'after-umount');
          fs.writeFileSync(file, 'x');
          const ev = await rec.waitFor((e) => e.path === file, 'the create through the second mount');
          expect(ev.filesystem).toMatchObject({ fsid: otherFsid, mountPoint: second });
        } finally {
          await rec.close();
          unmountAll(first, second);
          await other.dispose();
          fs.rmSync(first, { recursive: true, force: true });
          fs.rmSync(second, { recursive: true, force: true });
        }
      });

      // mountinfo's ids are reused at once: unmounted and mounted again
      // between two reads of the table, a mount looks unchanged, but its
      // filesystem is a new superblock, without our mark.
      test('a filesystem under the root unmounted and mounted again at once (no turn of the event loop between) is still followed', async () => {
        const at = path.join(img.mountPoint, `again-${process.pid}`);
        fs.mkdirSync(at);
        run('mount', '-t', 'tmpfs', 'fanotify-again', at);
        const rec = new WatchRecorder(watch(img.mountPoint));
        try {
          run('umount', at);
          run('mount', '-t', 'tmpfs', 'fanotify-again', at);
          const deadline = Date.now() + bound(5000);
          for (let i = 0; !rec.seen.some((e) => e.path?.startsWith(`${at}/`)) && Date.now() < deadline; i++) {
            fs.writeFileSync(path.join(at, `f${i}`), 'x');  // until the mark is back
            await sleep(100);
          }
          expect(rec.seen.find((e) => e.path?.startsWith(`${at}/`))).toMatchObject({ filesystem: { fsType: 'tmpfs', mountPoint: at } });
        } finally {
          await rec.close();
          unmountAll(at);
          fs.rmSync(at, { recursive: true, force: true });
        }
      });

      // A hung NFS or FUSE mount blocks whoever asks it anything (statfs):
      // handling an unmount must ask no mount, so the JS thread never waits.
      testHungMount('watch', async () => {
        const a = path.join(img.mountPoint, `statfs-a-${process.pid}`);
        const b = path.join(img.mountPoint, `statfs-b-${process.pid}`);
        fs.mkdirSync(a);
        fs.mkdirSync(b);
        run('mount', '-t', 'tmpfs', 'fanotify-statfs-a', a);
        const w = watch(img.mountPoint);
        try {
          run('mount', '-t', 'tmpfs', 'fanotify-statfs-b', b);
          await until(() => w.filesystems.some((f) => f.mountPoint === b), 'the watcher taking b');
          return await statfsWhile(() => run('umount', b), () => !w.filesystems.some((f) => f.mountPoint === b));
        } finally {
          await w.close();
          unmountAll(a, b);
          fs.rmSync(a, { recursive: true, force: true });
          fs.rmSync(b, { recursive: true, force: true });
        }
      });
    });

    describe('watchErrors()', () => {
      test('no paths: a filesystem mounted after the start is watched; pseudo filesystems are skipped with a reason', async () => {
        let img: LoopImage | undefined;
        const watcher = watchErrors();
        try {
          const proc = watcher.skipped.find((s) => s.mountPoint === '/proc');
          expect(proc).toMatchObject({ type: 'proc', source: 'proc' });
          expect(proc!.code).toMatch(/^E[A-Z]+$/);
          expect(typeof proc!.reason).toBe('string');
          expect(proc!.reason.length).toBeGreaterThan(0);
          for (const s of watcher.skipped) {
            expect(typeof s.reason).toBe('string');
            expect(s.code).toMatch(/^E[A-Z]+$/);
          }

          img = await LoopImage.create({ mountOptions: ['errors=continue'] });
          const mnt = img.mountPoint;
          await within(3000, (async () => {
            while (!watcher.filesystems.some((f) => f.mountPoint === mnt)) await sleep(10);
          })(), 'the new mount to show in watcher.filesystems');
          expect(watcher.filesystems.find((f) => f.mountPoint === mnt))
            .toEqual({ fsid: fsidOf(mnt), mountPoint: mnt, source: img.device, type: 'ext4' });

          await img.triggerError('mounted later');
          const e = await new ErrorReader(watcher).first('the error on the new mount', on(img));
          expect(e.filesystem).toEqual({ fsid: fsidOf(mnt), mountPoint: mnt, source: img.device, type: 'ext4' });
          expect(e.detail?.function).toBe('trigger_test_error');
        } finally {
          await watcher.close();
          await img?.dispose();
        }
      });

      // The filesystem mark dies with the old superblock at unmount: a watcher
      // must mark the filesystem again when it comes back (unmount, fsck, mount
      // again is the usual reaction to an error), though its fsid is known.
      test('no paths: a filesystem unmounted and mounted again after the start is still watched', async () => {
        const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
        let watcher: ErrorWatcher | undefined;
        try {
          watcher = watchErrors();
          expect(watcher.filesystems.some((f) => f.mountPoint === img.mountPoint)).toBe(true);
          await img.remount(); // a new superblock, same fsid
          await sleep(300); // the mount event
          await img.triggerError('after remount');
          const e = await new ErrorReader(watcher).first('the error after the remount', on(img), 2000);
          expect(e.filesystem.source).toBe(img.device);
        } finally {
          await watcher?.close();
          await img.dispose();
        }
      });

      test('no paths: a filesystem mounted right after watchErrors() returns, synchronously, is watched', async () => {
        const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
        let watcher: ErrorWatcher | undefined;
        try {
          run('umount', img.mountPoint);
          watcher = watchErrors();
          run('mount', '-o', 'errors=continue', img.device, img.mountPoint);  // no turn of the event loop in between
          const w = watcher;
          await until(() => w.filesystems.some((f) => f.mountPoint === img.mountPoint), 'the watcher taking it');
          await img.triggerError('mounted at once');
          const e = await new ErrorReader(w).first('the error on it', on(img));
          expect(e).toMatchObject({ filesystem: { source: img.device, type: 'ext4' }, detail: { function: 'trigger_test_error' } });
        } finally {
          await watcher?.close();
          await img.dispose();
        }
      });

      test('no paths: a filesystem mounted while watchErrors() marks the others is watched', async () => {
        // One it marks (a machine may have none with a device: the kernel matrix guests), and one mounted meanwhile.
        const there = await LoopImage.create();
        const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
        let watcher: ErrorWatcher | undefined;
        const fsidOfNative = binding.fsidOf;
        let injected = false;
        run('umount', img.mountPoint);
        const spy = jest.spyOn(binding, 'fsidOf').mockImplementation((p: string) => {
          if (!injected) {
            injected = true;  // at the first filesystem it marks
            run('mount', '-o', 'errors=continue', img.device, img.mountPoint);
          }
          return fsidOfNative(p);
        });
        try {
          watcher = watchErrors();
          spy.mockRestore();
          expect(injected).toBe(true);
          const w = watcher;
          await until(() => w.filesystems.some((f) => f.mountPoint === img.mountPoint), 'the watcher taking it');
          await img.triggerError('mounted meanwhile');
          const e = await new ErrorReader(w).first('the error on it', on(img));
          expect(e).toMatchObject({ filesystem: { source: img.device }, detail: { function: 'trigger_test_error' } });
        } finally {
          spy.mockRestore();
          await watcher?.close();
          if (!mountedAt(img.mountPoint)) run('mount', img.device, img.mountPoint);
          await img.dispose();
          await there.dispose();
        }
      });

      // The filesystem mark dies with the superblock: a filesystem asked for
      // by path is marked again when it is mounted again, as fsck-and-remount
      // (or LoopImage.remount, corruptInode) does.
      test('paths: a filesystem unmounted and mounted again is marked again, and listed while mounted', async () => {
        const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'dir/bad/f': 'x' } });
        let watcher: ErrorWatcher | undefined;
        try {
          watcher = watchErrors({ paths: [img.mountPoint] });
          const w = watcher;
          const fsid = fsidOf(img.mountPoint);
          const reader = new ErrorReader(w);
          run('umount', img.mountPoint);
          await until(() => w.filesystems.length === 0, 'the unmounted filesystem leaving filesystems');
          run('mount', '-o', 'errors=continue', img.device, img.mountPoint);
          await until(() => w.filesystems.some((f) => f.fsid === fsid), 'the filesystem listed again');
          expect(w.filesystems).toEqual([{ fsid, mountPoint: img.mountPoint, source: img.device, type: 'ext4' }]);
          await img.triggerError('after umount and mount');
          expect(await reader.first('the error after the remount')).toMatchObject({
            filesystem: { fsid, mountPoint: img.mountPoint }, detail: { function: 'trigger_test_error' },
          });

          const ino = fs.statSync(path.join(img.mountPoint, 'dir/bad')).ino;
          await img.corruptInode('dir/bad');  // unmount, debugfs, mount
          // Each lookup of the corrupt inode is an error: look until one is reported (the mark follows the mount).
          const e = await within(5000, (async () => {
            for (;;) {
              expect(() => fs.readdirSync(path.join(img.mountPoint, 'dir/bad'))).toThrow();
              const x = await reader.next(200);
              if (x?.inode?.ino === BigInt(ino)) return x;
            }
          })(), 'the corruption after corruptInode');
          expect(e).toMatchObject({ code: 'EFSCORRUPTED', filesystem: { fsid } });
        } finally {
          await watcher?.close();
          await img.dispose();
        }
      });

      test.each([['no paths', false], ['paths', true]])('%s: a filesystem unmounted and mounted again at once (no turn of the event loop between) is still watched', async (_, byPath) => {
        const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
        let watcher: ErrorWatcher | undefined;
        try {
          watcher = byPath ? watchErrors({ paths: [img.mountPoint] }) : watchErrors();
          const w = watcher;
          await until(() => w.filesystems.some((f) => f.mountPoint === img.mountPoint), 'the watcher taking it');
          run('umount', img.mountPoint);
          run('mount', '-o', 'errors=continue', img.device, img.mountPoint);
          const reader = new ErrorReader(w);
          const e = await within(5000, (async () => {
            for (;;) {
              await img.triggerError('after umount and mount');  // until the mark is back
              const x = await reader.next(200);
              if (x && on(img)(x)) return x;
            }
          })(), 'an error after it came back');
          expect(e.filesystem).toMatchObject({ source: img.device, type: 'ext4' });
          // Errors made before the mark was back are counted by ext4 too: the detail, if any, is this one's.
          if (e.detail) expect(e.detail.function).toBe('trigger_test_error');
        } finally {
          await watcher?.close();
          await img.dispose();
        }
      });

      test('paths: a filesystem mounted elsewhere than asked is not watched; its own mounts elsewhere keep it', async () => {
        const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
        const other = await LoopImage.create({ mountOptions: ['errors=continue'] });
        const second = tempDir('errors-second');
        let watcher: ErrorWatcher | undefined;
        try {
          run('mount', '--bind', img.mountPoint, second);
          watcher = watchErrors({ paths: [img.mountPoint] });
          const w = watcher;
          const fsid = fsidOf(img.mountPoint);
          run('umount', img.mountPoint);  // still mounted at `second`
          await until(() => w.filesystems[0]?.mountPoint === second, 'the other mount point');
          expect(w.filesystems).toEqual([{ fsid, mountPoint: second, source: img.device, type: 'ext4' }]);
          const reader = new ErrorReader(w);
          await other.triggerError('not asked for');
          await img.triggerError('still watched');
          const e = await reader.first('the error of the asked-for filesystem');
          expect(e.filesystem).toEqual({ fsid, mountPoint: second, source: img.device, type: 'ext4' });
          expect(await reader.drain(300)).toEqual([]);
        } finally {
          await watcher?.close();
          unmountAll(second);
          removeDirs(second);
          if (!mountedAt(img.mountPoint)) run('mount', '-o', 'errors=continue', img.device, img.mountPoint);
          await other.dispose();
          await img.dispose();
        }
      });

      test('no paths: a watched filesystem moved: its mount point follows it', async () => {
        const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
        const to = tempDir('errors-moved');
        let watcher: ErrorWatcher | undefined;
        try {
          watcher = watchErrors();
          const w = watcher;
          const fsid = fsidOf(img.mountPoint);
          run('mount', '--move', img.mountPoint, to);
          await until(() => w.filesystems.find((f) => f.fsid === fsid)?.mountPoint === to, 'the new mount point');
          await img.triggerError('after the move');
          const e = await new ErrorReader(w).first('the error after the move', (x) => x.filesystem.fsid === fsid);
          expect(e.filesystem.mountPoint).toBe(to);
        } finally {
          await watcher?.close();
          if (mountedAt(to)) run('mount', '--move', to, img.mountPoint);
          removeDirs(to);
          await img.dispose();
        }
      });

      testHungMount('errors', async () => {
        const dir = tempDir('statfs');
        const w = watchErrors();
        try {
          run('mount', '-t', 'tmpfs', 'fanotify-statfs', dir);
          await until(() => w.skipped.some((x) => x.mountPoint === dir), 'the watcher listing it as skipped');
          return await statfsWhile(() => run('umount', dir), () => !w.skipped.some((x) => x.mountPoint === dir),
            () => JSON.stringify(w.skipped.filter((x) => x.mountPoint === dir)));
        } finally {
          await w.close();
          unmountAll(dir);
          removeDirs(dir);
        }
      });
    });
  });
}
