// Tests for fanotify/testing (LoopImage) against the real kernel: they make
// loop devices and mounts, so they need root. Without root they are skipped,
// unless CI=true, where they must run (and fail loudly if they cannot).

import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoopImage, LoopImageError, withLoopImage } from '../lib/testing';

import { bound, privileged as canRun, sleep, within } from './helpers';
if (!canRun) console.log('test/testing.test.ts: skipped, LoopImage needs root (set CI=true to force)');
const suite = canRun ? describe : describe.skip;

jest.setTimeout(bound(60_000));

// Corruption errors: ext4 returns EFSCORRUPTED, which is EUCLEAN (117) on
// Linux. libuv has no name for it, so Node reports errno -117 with code
// 'Unknown system error -117': compare numbers.
const EUCLEAN = 117;
const CORRUPTION_ERRNOS = [EUCLEAN, os.constants.errno.EIO];

function loopDevices(): string {
  return execFileSync('losetup', ['-a'], { encoding: 'utf8' });
}

function mountinfo(): string {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8');
}

/** Asserts that nothing of `img` is left: no mount, no loop device, no files. */
function expectGone(img: LoopImage): void {
  expect(mountinfo()).not.toContain(img.mountPoint);
  expect(loopDevices()).not.toContain(img.imagePath);
  expect(fs.existsSync(img.imagePath)).toBe(false);
  expect(fs.existsSync(path.dirname(img.imagePath))).toBe(false);
}

/** The positive errno `p` rejects with, or undefined if it resolves. */
async function errnoOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).errno;
    return errno === undefined ? -1 : Math.abs(errno);
  }
  return undefined;
}

interface Held { imagePath: string; mountPoint: string; device?: string }

/** test/fixtures/loop-holder.js: a process holding two images until it is killed. */
function startHolder(): { child: ChildProcess; images: Promise<Held[]>; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'loop-holder.js'), path.join(__dirname, '..', 'dist')],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })));
  const images = within(20_000, (async () => {
    while (!out.includes('\n')) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`loop-holder.js ended: ${err}`);
      await sleep(20);
    }
    return JSON.parse(out.split('\n')[0]) as Held[];
  })(), 'loop-holder.js making its images');
  return { child, images, exit };
}

/** No mount, loop device or file of these images is left (a busy loop device is let go a moment after its last user). */
async function expectLeftNothing(images: Held[]): Promise<void> {
  for (const deadline = Date.now() + bound(2000); images.some((img) => loopDevices().includes(img.imagePath)) && Date.now() < deadline;) await sleep(20);
  for (const img of images) {
    expect(mountinfo()).not.toContain(img.mountPoint);
    expect(loopDevices()).not.toContain(img.imagePath);
    expect(fs.existsSync(path.dirname(img.imagePath))).toBe(false);
  }
}

/** For finally: what the kit did not remove, removed by hand. */
function removeByHand(images: Held[]): void {
  for (const img of images) {
    if (mountinfo().includes(` ${img.mountPoint} `)) execFileSync('umount', ['-l', img.mountPoint]);
    for (const line of loopDevices().split('\n'))
      if (line.includes(img.imagePath)) spawnSync('losetup', ['-d', line.split(':')[0]]);
    fs.rmSync(path.dirname(img.imagePath), { recursive: true, force: true });
  }
}

suite('LoopImage', () => {
  test('create mounts a fresh filesystem and dispose leaves nothing behind', async () => {
    const img = await LoopImage.create({ files: { 'a/b/c.txt': 'hello', 'empty/': '' } });
    try {
      expect(img.device).toMatch(/^\/dev\/loop\d+$/);
      expect(img.devName).toBe(path.basename(img.device));
      expect(mountinfo()).toContain(` ${img.mountPoint} `);
      expect(loopDevices()).toContain(img.imagePath);
      expect(fs.readFileSync(path.join(img.mountPoint, 'a/b/c.txt'), 'utf8')).toBe('hello');
      expect(fs.statSync(path.join(img.mountPoint, 'empty')).isDirectory()).toBe(true);
      expect(fs.existsSync(`/sys/fs/ext4/${img.devName}`)).toBe(true);
      expect(img.lastError().errors_count).toBe(0);
    } finally {
      await img.dispose();
    }
    expect(img.disposed).toBe(true);
    expectGone(img);
  });

  test('a create whose mount fails undoes everything', async () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'loopimage-fail-'));
    try {
      const err = await LoopImage.create({ dir: parent, mountOptions: ['nonsense_option'] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LoopImageError);
      expect((err as LoopImageError).command[0]).toBe('mount');
      expect((err as LoopImageError).message).toContain('nonsense_option');
      expect(fs.readdirSync(parent)).toEqual([]);
      expect(loopDevices()).not.toContain(parent);
      expect(mountinfo()).not.toContain(parent);
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });

  test('corruptInode makes lookups of that inode fail with EUCLEAN', async () => {
    const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'dir/bad/f': 'x', 'dir/good': 'y' } });
    try {
      await img.corruptInode('dir/bad');
      expect(mountinfo()).toContain(` ${img.mountPoint} `);
      const bad = path.join(img.mountPoint, 'dir/bad');
      expect(CORRUPTION_ERRNOS).toContain(await errnoOf(fs.promises.stat(bad)));
      expect(CORRUPTION_ERRNOS).toContain(await errnoOf(fs.promises.readdir(bad)));
      // The rest of the filesystem still works; the entry itself is listed.
      expect(fs.readFileSync(path.join(img.mountPoint, 'dir/good'), 'utf8')).toBe('y');
      expect(fs.readdirSync(path.join(img.mountPoint, 'dir')).sort()).toEqual(['bad', 'good']);
      const info = await img.waitForErrorCount(1);
      expect(info.last_error_func).toBe('ext4_lookup');
      expect(info.last_error_errname).toBe('EFSCORRUPTED');
    } finally {
      await img.dispose();
    }
    expectGone(img);
  });

  test('corruptInode on a missing path rejects and leaves the image mounted', async () => {
    const img = await LoopImage.create();
    try {
      await expect(img.corruptInode('no/such/file')).rejects.toThrow(/File not found/);
      expect(mountinfo()).toContain(` ${img.mountPoint} `);
      fs.writeFileSync(path.join(img.mountPoint, 'still-works'), 'ok');
    } finally {
      await img.dispose();
    }
    expectGone(img);
  });

  test('linkToInode adds an entry pointing at a bad inode number', async () => {
    const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'dir/': '' } });
    try {
      await img.linkToInode('dir/bad_link', 1);
      expect(CORRUPTION_ERRNOS).toContain(await errnoOf(fs.promises.stat(path.join(img.mountPoint, 'dir/bad_link'))));
      const info = await img.waitForErrorCount(1);
      expect(info.last_error_func).toBe('ext4_lookup');
    } finally {
      await img.dispose();
    }
  });

  test('triggerError is recorded by ext4', async () => {
    const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
    try {
      await img.triggerError('from the test kit');
      const info = img.lastError();
      expect(info.errors_count).toBe(1);
      expect(info.last_error_func).toBe('trigger_test_error');
      expect(typeof info.last_error_time).toBe('number');
    } finally {
      await img.dispose();
    }
  });

  test('shutdown makes later writes fail; remount brings the filesystem back', async () => {
    const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
    try {
      fs.writeFileSync(path.join(img.mountPoint, 'before'), 'ok');
      await img.shutdown();
      // EROFS on recent kernels (emergency read-only); EIO/ESHUTDOWN on others.
      const { EROFS, EIO } = os.constants.errno;
      const ESHUTDOWN = 108; // not in os.constants.errno
      expect([EROFS, EIO, ESHUTDOWN]).toContain(
        await errnoOf(fs.promises.writeFile(path.join(img.mountPoint, 'after'), 'no')),
      );
      await img.remount();
      fs.writeFileSync(path.join(img.mountPoint, 'after'), 'ok');
    } finally {
      await img.dispose();
    }
    expectGone(img);
  });

  test('dispose is idempotent, also when called concurrently', async () => {
    const img = await LoopImage.create();
    try {
      await Promise.all([img.dispose(), img.dispose()]);
      await img.dispose();
      expectGone(img);
      await expect(img.corruptInode('x')).rejects.toThrow(/disposed/);
    } finally {
      await img.dispose();
    }
  });

  test('dispose copes with an open file in the filesystem', async () => {
    const img = await LoopImage.create();
    const fd = fs.openSync(path.join(img.mountPoint, 'held-open'), 'w');
    try {
      await img.dispose(); // falls back to a lazy unmount
      expect(mountinfo()).not.toContain(img.mountPoint);
    } finally {
      fs.closeSync(fd);
      await img.dispose();
    }
    // The loop device goes away once the lazily unmounted fs is released.
    for (let i = 0; i < 50 && loopDevices().includes(img.imagePath); i++) await new Promise((r) => setTimeout(r, 20));
    expect(loopDevices()).not.toContain(img.imagePath);
  });

  test('await using disposes at the end of the block', async () => {
    let seen: LoopImage | undefined;
    try {
      await using img = await LoopImage.create();
      seen = img;
      expect(mountinfo()).toContain(` ${img.mountPoint} `);
    } finally {
      await seen?.dispose();
    }
    expect(seen).toBeDefined();
    expectGone(seen!);
  });

  test('withLoopImage disposes even when fn throws', async () => {
    let seen: LoopImage | undefined;
    const boom = new Error('boom');
    try {
      await expect(
        withLoopImage({}, async (img) => {
          seen = img;
          fs.writeFileSync(path.join(img.mountPoint, 'f'), 'x');
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(seen).toBeDefined();
      expectGone(seen!);
    } finally {
      await seen?.dispose();
    }
    await expect(withLoopImage(undefined, (img) => img.devName)).resolves.toMatch(/^loop\d+$/);
  });

  test('a process that dies without disposing leaves nothing behind', async () => {
    // Run the kit (the built one: `npm test` builds first) in a child process
    // that creates an image and then crashes.
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'loopimage-crash-'));
    let paths: { imagePath: string; mountPoint: string } | undefined;
    try {
      const script =
        `const { LoopImage } = require(${JSON.stringify(path.join(__dirname, '../dist/testing.js'))});\n` +
        `LoopImage.create({ files: { f: 'x' } }).then((img) => {\n` +
        `  console.log(JSON.stringify({ imagePath: img.imagePath, mountPoint: img.mountPoint }));\n` +
        `  throw new Error('crash');\n` +
        `});\n`;
      const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      expect(child.status).toBe(1);
      expect(child.stderr).toContain('crash');
      paths = JSON.parse(child.stdout.trim()) as { imagePath: string; mountPoint: string };
      expect(mountinfo()).not.toContain(paths.mountPoint);
      expect(loopDevices()).not.toContain(paths.imagePath);
      expect(fs.existsSync(path.dirname(paths.imagePath))).toBe(false);
    } finally {
      // Clean up by hand if the exit handler did not.
      if (paths && mountinfo().includes(paths.mountPoint)) execFileSync('umount', ['-l', paths.mountPoint]);
      if (paths) {
        for (const line of loopDevices().split('\n')) {
          if (line.includes(paths.imagePath)) execFileSync('losetup', ['-d', line.split(':')[0]]);
        }
        fs.rmSync(path.dirname(paths.imagePath), { recursive: true, force: true });
      }
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  // Signals: the kit cleans up, then dies of the signal as it would have.
  test.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('a process holding images (one busy, a watcher open) killed with %s leaves nothing behind', async (sig) => {
    const holder = startHolder();
    let images: Held[] = [];
    try {
      images = await holder.images;
      for (const i of images) expect(mountinfo()).toContain(` ${i.mountPoint} `);
      holder.child.kill(sig);
      expect(await holder.exit).toEqual({ code: null, signal: sig });
      await expectLeftNothing(images);
    } finally {
      holder.child.kill('SIGKILL');
      removeByHand(images);
    }
  });

  // A CI timeout stops jest with SIGTERM; a test that timed out with a
  // watcher open keeps jest from exiting by itself until then.
  test('a jest run stopped with SIGTERM after a test timed out with a watcher open leaves nothing behind', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'loopimage-jest-'));
    const report = path.join(work, 'image.json');
    let images: Held[] = [];
    const jest = spawn(process.execPath, [require.resolve('jest/bin/jest'), '--config', path.join(__dirname, 'fixtures', 'loop-jest', 'jest.config.js'), '--ci'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FANOTIFY_DIST: path.join(__dirname, '..', 'dist'), FANOTIFY_REPORT: report },
    });
    let stderr = '';
    jest.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    jest.stdout!.resume();
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      jest.on('close', (code, signal) => resolve({ code, signal })));
    try {
      await within(30_000, (async () => {
        while (!/Tests:/.test(stderr)) await sleep(50);
      })(), 'the jest run to finish its tests');
      images = [JSON.parse(fs.readFileSync(report, 'utf8')) as Held];
      expect(stderr).toMatch(/Exceeded timeout/);
      if (jest.exitCode === null) jest.kill('SIGTERM');  // it cannot exit by itself: the watcher is open
      const r = await within(10_000, exit, 'jest ending after SIGTERM');
      expect(r.signal ?? r.code).toBeTruthy();
      await expectLeftNothing(images);
    } finally {
      jest.kill('SIGKILL');
      removeByHand(images);
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  // SIGKILL leaves no chance to clean up: the kit's directories carry the
  // owner's pid and start time, and the next run removes what a dead owner left.
  test('after a SIGKILL, LoopImage.sweep() and the next create() remove what the dead process left, and only that', async () => {
    const dead = startHolder();
    const live = startHolder();
    let deadImages: Held[] = [];
    let liveImages: Held[] = [];
    const dead2 = startHolder();
    let dead2Images: Held[] = [];
    try {
      [deadImages, liveImages, dead2Images] = await Promise.all([dead.images, live.images, dead2.images]);
      dead.child.kill('SIGKILL');
      dead2.child.kill('SIGKILL');
      await dead.exit;
      await dead2.exit;
      for (const i of [...deadImages, ...dead2Images]) {
        expect(mountinfo()).toContain(` ${i.mountPoint} `);  // left behind
        expect(loopDevices()).toContain(i.imagePath);
      }
      const removed = LoopImage.sweep();
      for (const i of [...deadImages, ...dead2Images]) expect(removed).toContain(path.dirname(i.imagePath));
      await expectLeftNothing([...deadImages, ...dead2Images]);
      for (const i of liveImages) {
        expect(removed).not.toContain(path.dirname(i.imagePath));
        expect(mountinfo()).toContain(` ${i.mountPoint} `);  // a live owner's images are its own
        expect(loopDevices()).toContain(i.imagePath);
      }
      expect(LoopImage.sweep()).toEqual([]);

      // A process's first create() sweeps too.
      live.child.kill('SIGKILL');
      await live.exit;
      const next = spawnSync(process.execPath, ['-e', `
        const { LoopImage } = require(${JSON.stringify(path.join(__dirname, '../dist/testing.js'))});
        LoopImage.create().then((img) => img.dispose());`], { encoding: 'utf8', timeout: bound(20_000) });
      expect(next.stderr).toBe('');
      await expectLeftNothing(liveImages);
    } finally {
      for (const h of [dead, live, dead2]) h.child.kill('SIGKILL');
      removeByHand([...deadImages, ...liveImages, ...dead2Images]);
    }
  });

  test('unsupported types and missing mkfs give a clear error', async () => {
    await expect(LoopImage.create({ type: 'btrfs' as never })).rejects.toThrow(/unsupported filesystem type/);
    const hasMkfsXfs = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'].some((d) => fs.existsSync(path.join(d, 'mkfs.xfs')));
    if (!hasMkfsXfs) await expect(LoopImage.create({ type: 'xfs' })).rejects.toThrow(/mkfs\.xfs not found/);
  });
});
