// watchErrors() against the real kernel, as an administrator sees it (after
// LTP's fanotify22): corrupted inodes, bad directory entries, merged errors,
// shut down filesystems, ext4's test trigger, several filesystems at once,
// filesystems mounted later, path lookup, AbortSignal, bad inputs, missing
// privilege, and the test kit's cleanup. Everything here needs root; with
// CI=true it runs (and fails) rather than skips.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ErrorWatcher, FsErrorEvent, watchErrors } from '../lib';
import { LoopImage } from '../lib/testing';
import { bound, describeRoot, openFdCount, packageForNobody, removePackageForNobody, sleep, within } from './helpers';
import { withQueueLimit } from './queue-limit';
import { ErrorReader } from './watchers';

afterAll(removePackageForNobody);

jest.setTimeout(bound(60_000));

const EFSCORRUPTED = 117; // EUCLEAN
const ESHUTDOWN = 108;
const FILEID_INO32_GEN = 1;

/** The fsid of the filesystem at `p` as statfs(2) reports it, via coreutils (not the library). */
function fsidOf(p: string): string {
  // stat prints f_fsid as val[0] << 32 | val[1] in unpadded hex.
  const hex = execFileSync('stat', ['-f', '-c', '%i', p], { encoding: 'utf8' }).trim().padStart(16, '0');
  return `${hex.slice(0, 8)}:${hex.slice(8)}`;
}

function mountinfo(): string {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8');
}

function loopDevices(): string {
  return execFileSync('losetup', ['-a'], { encoding: 'utf8' });
}

/** The positive errno a synchronous fs call fails with (undefined if it succeeds). */
function errnoOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    return Math.abs((e as NodeJS.ErrnoException).errno ?? 0);
  }
  return undefined;
}

/** What a synchronous call throws (fails the test if it does not throw). */
function thrown(fn: () => unknown): Error & { code?: string; errno?: number; syscall?: string; path?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but the call returned');
}


describeRoot('watchErrors', () => {
  describe('errors of one ext4 filesystem', () => {
    test('a corrupted directory inode: one EFSCORRUPTED event naming the inode and the filesystem', async () => {
      const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'dir/bad/f': 'x' } });
      let watcher: ErrorWatcher | undefined;
      try {
        const bad = path.join(img.mountPoint, 'dir/bad');
        const ino = fs.statSync(bad).ino;
        await img.corruptInode('dir/bad');
        watcher = watchErrors({ paths: [img.mountPoint] });
        const fsid = fsidOf(img.mountPoint);
        expect(watcher.filesystems).toEqual([{ fsid, mountPoint: img.mountPoint, source: img.device, type: 'ext4' }]);

        expect(errnoOf(() => fs.readdirSync(bad))).toBe(EFSCORRUPTED);
        const reader = new ErrorReader(watcher);
        const e = await reader.first('the corruption error');
        const more = await reader.drain(300);

        expect(more).toEqual([]);
        expect(e.time).toBeInstanceOf(Date);
        expect(e).toMatchObject({ errno: 117, code: 'EFSCORRUPTED', count: 1 });
        expect(e.filesystem).toEqual({ fsid, mountPoint: img.mountPoint, source: img.device, type: 'ext4' });
        expect(e.inode).toBeDefined();
        expect(e.inode!.ino).toBe(BigInt(ino));
        expect(e.inode!.handleType).toBe(FILEID_INO32_GEN);
        expect(e.inode!.fsid).toBe(fsid);
        expect(e.inode).not.toHaveProperty('path'); // resolvePaths is off by default
        expect(typeof e.detail?.function).toBe('string');
        expect(e.detail!.function).toBe('ext4_lookup');
        expect(e.detail!.inode).toBe(ino);
      } finally {
        await watcher?.close();
        await img.dispose();
      }
    });

    test('an entry pointing at inode 1: the error names the parent directory', async () => {
      const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'dir/': '' } });
      let watcher: ErrorWatcher | undefined;
      try {
        const dirIno = fs.statSync(path.join(img.mountPoint, 'dir')).ino;
        await img.linkToInode('dir/bad_link', 1);
        watcher = watchErrors({ paths: [img.mountPoint] });
        expect(errnoOf(() => fs.statSync(path.join(img.mountPoint, 'dir/bad_link')))).toBe(EFSCORRUPTED);
        const e = await new ErrorReader(watcher).first('the bad-inode-number error');
        expect(e).toMatchObject({ errno: 117, code: 'EFSCORRUPTED', count: 1 });
        expect(e.inode?.ino).toBe(BigInt(dirIno));
        expect(e.inode?.handleType).toBe(FILEID_INO32_GEN);
        expect(e.filesystem.mountPoint).toBe(img.mountPoint);
        expect(e.detail?.function).toBe('ext4_lookup');
        expect(e.detail?.inode).toBe(dirIno);
      } finally {
        await watcher?.close();
        await img.dispose();
      }
    });

    test('two errors before a read: the counts add up to 2', async () => {
      const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'dir/bad/f': 'x' } });
      let watcher: ErrorWatcher | undefined;
      try {
        const bad = path.join(img.mountPoint, 'dir/bad');
        await img.corruptInode('dir/bad');
        watcher = watchErrors({ paths: [img.mountPoint] });
        expect(errnoOf(() => fs.readdirSync(bad))).toBe(EFSCORRUPTED);
        expect(errnoOf(() => fs.readdirSync(bad))).toBe(EFSCORRUPTED);
        await img.waitForErrorCount(2); // both have happened before next() is called
        const reader = new ErrorReader(watcher);
        const first = await reader.first('the merged errors');
        const events = [first, ...(await reader.drain(500))];
        // This kernel may merge them into one event (count 2) or deliver two.
        expect(events.length).toBeGreaterThanOrEqual(1);
        expect(events.length).toBeLessThanOrEqual(2);
        expect(events.reduce((n, e) => n + e.count, 0)).toBe(2);
        for (const e of events) expect(e).toMatchObject({ errno: 117, code: 'EFSCORRUPTED' });
      } finally {
        await watcher?.close();
        await img.dispose();
      }
    });

    // ext4 keeps the location of its last error only (sysfs last_error_*),
    // and publishes it after the event is queued. Two errors from two
    // processes are two events (the kernel merges only errors of one
    // process): when both are queued before the read, the record is the
    // second's, so the first event must not get it; the second must.
    test('two errors of two processes queued before a read: each detail is its own error or absent', async () => {
      const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'a/bad/f': 'x', 'b/': '' } });
      let watcher: ErrorWatcher | undefined;
      try {
        const badIno = fs.statSync(path.join(img.mountPoint, 'a/bad')).ino;
        const bIno = fs.statSync(path.join(img.mountPoint, 'b')).ino;
        await img.corruptInode('a/bad');
        await img.linkToInode('b/link', 1);
        watcher = watchErrors({ paths: [img.mountPoint] });
        expect(errnoOf(() => fs.readdirSync(path.join(img.mountPoint, 'a/bad')))).toBe(EFSCORRUPTED);
        expect(spawnSync('stat', [path.join(img.mountPoint, 'b/link')]).status).not.toBe(0);  // another pid
        await img.waitForErrorCount(2);
        const reader = new ErrorReader(watcher);
        const first = await reader.first('the first error');
        const second = await reader.first('the second error', () => true, 1000);
        expect(first).toMatchObject({ count: 1, inode: { ino: BigInt(badIno) } });
        expect(second).toMatchObject({ count: 1, inode: { ino: BigInt(bIno) } });
        // ext4's record names the second error's inode: it is the second's.
        expect(first.detail).toBeUndefined();
        expect(second.detail).toMatchObject({ function: 'ext4_lookup', inode: bIno });
      } finally {
        await watcher?.close();
        await img.dispose();
      }
    });

    // Errors of one process merge into one event that names the first
    // error's inode; ext4's record is the last error's. They disagree here
    // (two inodes): no detail rather than another error's.
    test('two errors on two inodes merged into one event (count 2): no detail of the other inode', async () => {
      const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'a/bad/f': 'x', 'b/': '' } });
      let watcher: ErrorWatcher | undefined;
      try {
        const badIno = fs.statSync(path.join(img.mountPoint, 'a/bad')).ino;
        await img.corruptInode('a/bad');
        await img.linkToInode('b/link', 1);
        watcher = watchErrors({ paths: [img.mountPoint] });
        expect(errnoOf(() => fs.readdirSync(path.join(img.mountPoint, 'a/bad')))).toBe(EFSCORRUPTED);
        expect(errnoOf(() => fs.statSync(path.join(img.mountPoint, 'b/link')))).toBe(EFSCORRUPTED);
        await img.waitForErrorCount(2);
        const reader = new ErrorReader(watcher);
        const e = await reader.first('the merged errors');
        expect(await reader.drain(300)).toEqual([]);
        expect(e).toMatchObject({ count: 2, inode: { ino: BigInt(badIno) } });
        expect(e.detail).toBeUndefined();
        // The next error is matched again: ext4's count is in step.
        await img.triggerError('after the merged ones');
        const next = await reader.first('the triggered error');
        expect(next).toMatchObject({ count: 1, detail: { function: 'trigger_test_error' } });
      } finally {
        await watcher?.close();
        await img.dispose();
      }
    });

    // Errors of different processes do not merge, so a full queue can lose
    // some: the watcher says so, and counts ext4's errors from there.
    test('a queue overflow is an event with overflow: true; the next error has its own detail', async () => {
      const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'a/bad/f': 'x', 'b/': '' } });
      let watcher: ErrorWatcher | undefined;
      try {
        const badIno = fs.statSync(path.join(img.mountPoint, 'a/bad')).ino;
        await img.corruptInode('a/bad');
        await img.linkToInode('b/link', 1);
        watcher = withQueueLimit(1, () => watchErrors({ paths: [img.mountPoint] }));
        expect(errnoOf(() => fs.readdirSync(path.join(img.mountPoint, 'a/bad')))).toBe(EFSCORRUPTED);
        for (let i = 0; i < 2; i++) expect(spawnSync('stat', [path.join(img.mountPoint, 'b/link')]).status).not.toBe(0);
        await img.waitForErrorCount(3);
        const reader = new ErrorReader(watcher);
        const first = await reader.first('the first error');
        expect(first).toMatchObject({ count: 1, inode: { ino: BigInt(badIno) }, overflow: false });
        expect(first.detail).toBeUndefined();  // ext4's record is of a lost error
        const lost = await reader.first('the overflow', () => true, 1000);
        expect(lost).toEqual({
          time: expect.any(Date), overflow: true, errno: 0, code: 'OVERFLOW', count: 0,
          filesystem: { fsid: '', mountPoint: '', source: '', type: '' },
        });
        await img.triggerError('after the overflow');
        const next = await reader.first('the triggered error');
        expect(next).toMatchObject({ overflow: false, count: 1, detail: { function: 'trigger_test_error' } });
      } finally {
        await watcher?.close();
        await img.dispose();
      }
    });

    test('remount with abort: ESHUTDOWN for the whole filesystem, no inode', async () => {
      const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
      let watcher: ErrorWatcher | undefined;
      try {
        watcher = watchErrors({ paths: [img.mountPoint] });
        await img.shutdown();
        const e = await new ErrorReader(watcher).first('the shutdown error', (ev) => ev.code === 'ESHUTDOWN');
        expect(e.errno).toBe(ESHUTDOWN);
        expect(e.count).toBeGreaterThanOrEqual(1);
        expect(e.inode).toBeUndefined();
        expect(e.filesystem).toMatchObject({ mountPoint: img.mountPoint, source: img.device, type: 'ext4' });
      } finally {
        await watcher?.close();
        await img.dispose();
      }
    });

    test("ext4's trigger_fs_error: detail names trigger_test_error, no inode", async () => {
      const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
      let watcher: ErrorWatcher | undefined;
      try {
        watcher = watchErrors({ paths: [img.mountPoint] });
        await img.triggerError('from watch-errors.test');
        const e = await new ErrorReader(watcher).first('the triggered error');
        expect(e).toMatchObject({ errno: 117, code: 'EFSCORRUPTED', count: 1 });
        expect(e.inode).toBeUndefined();
        expect(e.detail?.function).toBe('trigger_test_error');
        expect(e.filesystem.mountPoint).toBe(img.mountPoint);
      } finally {
        await watcher?.close();
        await img.dispose();
      }
    });

    test('resolvePaths: a healthy parent directory gets its path, a corrupt inode none (and no throw)', async () => {
      const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'dir/': '', 'other/bad/f': 'x' } });
      let watcher: ErrorWatcher | undefined;
      try {
        const dir = path.join(img.mountPoint, 'dir');
        const bad = path.join(img.mountPoint, 'other/bad');
        const badIno = fs.statSync(bad).ino;
        await img.linkToInode('dir/bad_link', 1);
        await img.corruptInode('other/bad');
        watcher = watchErrors({ paths: [img.mountPoint], resolvePaths: true });
        const reader = new ErrorReader(watcher);

        expect(errnoOf(() => fs.statSync(path.join(dir, 'bad_link')))).toBe(EFSCORRUPTED);
        const parent = await reader.first('the bad-link error');
        expect(parent.inode?.ino).toBe(BigInt(fs.statSync(dir).ino));
        expect(parent.inode?.path).toBe(dir);
        // Let anything else settle before the next error.
        await reader.drain(200);

        expect(errnoOf(() => fs.readdirSync(bad))).toBe(EFSCORRUPTED);
        const corrupt = await reader.first('the corrupt-inode error', (e) => e.inode?.ino === BigInt(badIno));
        expect(corrupt).toMatchObject({ errno: 117, code: 'EFSCORRUPTED' });
        expect(corrupt.inode?.path).toBeUndefined();
      } finally {
        await watcher?.close();
        await img.dispose();
      }
    });
  });

  describe('several filesystems', () => {
    test('two filesystems watched at once: each error is attributed to its own', async () => {
      const img1 = await LoopImage.create({ mountOptions: ['errors=continue'] });
      let img2: LoopImage | undefined;
      let watcher: ErrorWatcher | undefined;
      try {
        img2 = await LoopImage.create({ mountOptions: ['errors=continue'] });
        watcher = watchErrors({ paths: [img1.mountPoint, img2.mountPoint] });
        const fsid1 = fsidOf(img1.mountPoint);
        const fsid2 = fsidOf(img2.mountPoint);
        expect(fsid1).not.toBe(fsid2);
        expect(watcher.filesystems).toEqual([
          { fsid: fsid1, mountPoint: img1.mountPoint, source: img1.device, type: 'ext4' },
          { fsid: fsid2, mountPoint: img2.mountPoint, source: img2.device, type: 'ext4' },
        ]);
        const reader = new ErrorReader(watcher);

        await img2.triggerError('second');
        const e2 = await reader.first('the error on the second filesystem');
        expect(e2.filesystem).toEqual({ fsid: fsid2, mountPoint: img2.mountPoint, source: img2.device, type: 'ext4' });
        expect(e2.detail?.function).toBe('trigger_test_error');

        await img1.triggerError('first');
        const e1 = await reader.first('the error on the first filesystem');
        expect(e1.filesystem).toEqual({ fsid: fsid1, mountPoint: img1.mountPoint, source: img1.device, type: 'ext4' });
        expect(e1.detail?.function).toBe('trigger_test_error');
      } finally {
        await watcher?.close();
        await img2?.dispose();
        await img1.dispose();
      }
    });

  });

  test('await using closes the watcher and its groups at the end of the block', async () => {
    const before = openFdCount();
    {
      await using watcher = watchErrors();
      expect(openFdCount()).toBeGreaterThan(before);
      expect(watcher.filesystems.length + watcher.skipped.length).toBeGreaterThan(0);
    }
    expect(openFdCount()).toBe(before);
  });

  describe('AbortSignal', () => {
    test('aborting a waiting iteration rejects it with AbortError, ends it, and closes the groups', async () => {
      const before = openFdCount();
      const ac = new AbortController();
      const watcher = watchErrors({ signal: ac.signal }); // no paths: the error group and the mount group
      try {
        expect(openFdCount()).toBeGreaterThan(before);
        const seen: FsErrorEvent[] = [];
        const loop = (async () => {
          for await (const e of watcher) seen.push(e);
        })();
        await sleep(50); // the loop is now waiting in next()
        ac.abort();
        const err = await within(2000, loop.then(() => undefined, (e: unknown) => e), 'the loop to end after abort');
        expect(err).toBeInstanceOf(Error);
        expect((err as Error).name).toBe('AbortError');
        expect((err as { code?: string }).code).toBe('ABORT_ERR');
        expect(await within(1000, watcher.next(), 'next() after abort')).toEqual({ done: true, value: undefined });
        await within(2000, (async () => {
          while (openFdCount() !== before) await sleep(10);
        })(), `the fd count to return to ${before} (now ${openFdCount()})`);
      } finally {
        await watcher.close();
      }
      expect(openFdCount()).toBe(before);
    });

    // With a signal that is already aborted the 'abort' event never fires,
    // and `for await` calls no return() after a rejected next(): the watcher
    // itself must close its groups.
    test('an already aborted signal: next() rejects with AbortError and the groups are closed', async () => {
      const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
      const before = openFdCount();
      let watcher: ErrorWatcher | undefined;
      try {
        watcher = watchErrors({ paths: [img.mountPoint], signal: AbortSignal.abort() });
        const loop = (async () => {
          for await (const e of watcher!) void e;
        })();
        const err = await within(2000, loop.then(() => undefined, (e: unknown) => e), 'the loop to end');
        expect((err as Error).name).toBe('AbortError');
        await sleep(50);
        expect(openFdCount()).toBe(before);
      } finally {
        await watcher?.close();
        await img.dispose();
      }
    });
  });

  describe('bad inputs and missing privilege', () => {
    test('a nonexistent path throws ENOENT synchronously, with the path, and leaks nothing', () => {
      const before = openFdCount();
      const missing = '/nonexistent/fanotify-watch-errors-test';
      const err = thrown(() => watchErrors({ paths: [missing] }));
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe('ENOENT');
      expect(err.path).toBe(missing);
      expect(err.syscall).toBe('fanotify_mark');
      expect(err.message).toContain(missing);
      expect(err.message).toMatch(/does not exist/);
      expect(openFdCount()).toBe(before);
    });

    // The kernel refuses a filesystem mark with FAN_REPORT_FID on procfs:
    // it cannot decode file handles (no export operations), EOPNOTSUPP; 6.1
    // checks the fsid first, which procfs has none of: ENODEV.
    test('/proc refuses the filesystem mark: EOPNOTSUPP (ENODEV on older kernels) with advice', () => {
      const before = openFdCount();
      const err = thrown(() => watchErrors({ paths: ['/proc'] }));
      expect(['EOPNOTSUPP', 'ENODEV']).toContain(err.code);
      expect(err.errno).toBe(err.code === 'ENODEV' ? -19 : -95);
      expect(err.syscall).toBe('fanotify_mark');
      expect(err.path).toBe('/proc');
      expect(err.message).toMatch(/refuses this mark/);
      expect(err.message).toMatch(err.code === 'ENODEV' ? /no fsid/ : /file ids/);
      expect(openFdCount()).toBe(before);
    });

    // The EOPNOTSUPP advice depends on what was marked: file handles here,
    // not pre-content events.
    test('the /proc advice is about file handles, not pre-content events', () => {
      const err = thrown(() => watchErrors({ paths: ['/proc'] }));
      expect(err.message).not.toMatch(/pre-content|preAccess/);
    });

    test.each([
      ['paths: []', { paths: [] }],
      ["paths: 'x'", { paths: 'x' }],
      ["resolvePaths: 'yes'", { resolvePaths: 'yes' }],
      ['paths: [42]', { paths: [42] }],
    ])('%s: TypeError ERR_INVALID_ARG_VALUE', (_name, options) => {
      const before = openFdCount();
      const err = thrown(() => watchErrors(options as never));
      expect(err).toBeInstanceOf(TypeError);
      expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(openFdCount()).toBe(before);
    });

    test('without privilege (uid 65534): EPERM naming CAP_SYS_ADMIN', () => {
      if (!fs.existsSync(path.resolve(__dirname, '../dist/index.js'))) throw new Error('dist/ is not built: run node scripts/build.js');
      const dist = path.join(packageForNobody(), 'dist');  // the clone may be under a 0700 directory
      const script = `
        try {
          require(${JSON.stringify(dist)}).watchErrors({ paths: ['/tmp'] });
          console.log(JSON.stringify({ threw: false }));
        } catch (e) {
          console.log(JSON.stringify({ threw: true, code: e.code, syscall: e.syscall, message: e.message }));
        }`;
      const r = spawnSync(process.execPath, ['-e', script], {
        uid: 65534, gid: 65534, cwd: '/', encoding: 'utf8', timeout: 15000,
      });
      expect(r.error).toBeUndefined();
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout) as { threw: boolean; code?: string; syscall?: string; message?: string };
      expect(out).toMatchObject({ threw: true, code: 'EPERM', syscall: 'fanotify_mark' });
      expect(out.message).toMatch(/CAP_SYS_ADMIN/);
    });
  });

  describe('the test kit', () => {
    test('a failing test body still leaves no mount and no loop device', async () => {
      let seen: { device: string; imagePath: string; mountPoint: string } | undefined;
      const failure = await (async () => {
        const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
        try {
          seen = { device: img.device, imagePath: img.imagePath, mountPoint: img.mountPoint };
          expect(loopDevices()).toContain(img.imagePath);
          expect(mountinfo()).toContain(` ${img.mountPoint} `);
          throw new Error('the test failed here');
        } finally {
          await img.dispose();
        }
      })().then(() => undefined, (e: unknown) => e);
      expect((failure as Error).message).toBe('the test failed here');
      expect(seen).toBeDefined();
      expect(loopDevices()).not.toContain(seen!.imagePath);
      expect(mountinfo()).not.toContain(seen!.mountPoint);
      expect(fs.existsSync(seen!.imagePath)).toBe(false);
    });
  });
});
