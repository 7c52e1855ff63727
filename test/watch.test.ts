// watch(root): one iterator over every filesystem under a path, with full
// paths, following filesystems mounted there later. Against real ext4 on
// loop devices (LoopImage); the root filesystem only in one short, bounded test.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import { watch, Watcher, WatchEvent } from '../lib';
import { binding } from '../lib/core/binding';
import { formatFsid } from '../lib/core/fileid';
import { LoopImage } from '../lib/testing';
import { describeRoot, openFdCount, sleep, testFeature, within } from './helpers';
import { until, WatchRecorder } from './watchers';

function run(cmd: string, ...args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

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

const fsidOf = (p: string): string => formatFsid(...binding.fsidOf(p));

describeRoot('watch()', () => {
  let img: LoopImage;
  beforeAll(async () => {
    img = await LoopImage.create({ sizeMiB: 64 });
  });
  afterAll(async () => {
    await img?.dispose();
  });

  test('create, mkdir, rename across directories and delete come with full paths', async () => {
    const work = fs.mkdtempSync(path.join(img.mountPoint, 'w1-'));
    const rec = new WatchRecorder(watch(img.mountPoint));
    try {
      expect(rec.watcher.root).toBe(img.mountPoint);
      expect(rec.watcher.filesystems).toEqual([
        { fsid: fsidOf(img.mountPoint), mountPoint: img.mountPoint, fsType: 'ext4', source: expect.stringMatching(/^\/dev\/loop\d+$/) },
      ]);
      const a = path.join(work, 'a');
      const b = path.join(work, 'b');
      fs.mkdirSync(a);
      const mk = await rec.waitFor((e) => e.path === a, 'mkdir a');
      expect(mk).toMatchObject({ path: a, isDir: true, pid: process.pid, filesystem: { mountPoint: img.mountPoint, fsType: 'ext4' } });
      expect(mk.events).toContain('create');
      fs.mkdirSync(b);

      const f = path.join(a, 'f');
      fs.writeFileSync(f, 'x');
      const cr = await rec.waitFor((e) => e.path === f && e.events.includes('create'), 'create a/f');
      expect(cr.isDir).toBe(false);
      expect(cr.from).toBeUndefined();
      expect(cr.to).toBeUndefined();

      const g = path.join(b, 'g');
      fs.renameSync(f, g);
      await rec.waitFor((e) => e.path === g && e.events.includes('movedTo'), 'movedTo b/g');
      expect([...rec.eventsAt(f)]).toEqual(expect.arrayContaining(['create', 'movedFrom']));
      expect([...rec.eventsAt(g)]).toContain('movedTo');
      expect(rec.eventsAt(path.join(a, 'g')).size).toBe(0);
      expect(rec.eventsAt(path.join(b, 'f')).size).toBe(0);

      fs.unlinkSync(g);
      const del = await rec.waitFor((e) => e.path === g && e.events.includes('delete'), 'delete b/g');
      expect(del.isDir).toBe(false);
      fs.rmdirSync(b);
      const rm = await rec.waitFor((e) => e.path === b && e.events.includes('delete'), 'rmdir b');
      expect(rm.isDir).toBe(true);
      // Every event of this test is under the watched root and on our filesystem.
      for (const ev of rec.seen) {
        expect(ev.path === null || ev.path.startsWith(`${img.mountPoint}/`)).toBe(true);
        expect(ev.filesystem.fsid).toBe(fsidOf(img.mountPoint));
      }
    } finally {
      await rec.close();
    }
  });

  test('events outside the root are not reported, even under a sibling sharing its prefix', async () => {
    const root = path.join(img.mountPoint, 'inside');
    const sibling = path.join(img.mountPoint, 'inside2');  // "inside" is a prefix of its path
    const elsewhere = path.join(img.mountPoint, 'elsewhere');
    for (const d of [root, sibling, elsewhere]) fs.mkdirSync(d, { recursive: true });
    const rec = new WatchRecorder(watch(root));
    try {
      fs.writeFileSync(path.join(elsewhere, 'out1'), 'x');
      fs.writeFileSync(path.join(sibling, 'out2'), 'x');
      fs.writeFileSync(path.join(img.mountPoint, 'out3'), 'x');
      fs.writeFileSync(path.join(root, 'in'), 'x');  // the sentinel, written last
      await rec.waitFor((e) => e.path === path.join(root, 'in'), 'the event inside');
      await sleep(300);
      const paths = rec.seen.map((e) => e.path);
      expect(paths.filter((p) => p === null || !(p === root || p.startsWith(`${root}/`)))).toEqual([]);
      expect(paths.some((p) => p?.includes('out'))).toBe(false);
    } finally {
      await rec.close();
    }
  });

  // When the root is a subdirectory of its filesystem, an event whose
  // directory is already gone cannot be placed: it must not be reported.
  test('a change in a directory outside the root that is gone before it is read is not reported', async () => {
    const root = path.join(img.mountPoint, 'inside-q');
    const elsewhere = path.join(img.mountPoint, 'elsewhere-q');
    fs.mkdirSync(root, { recursive: true });
    fs.mkdirSync(elsewhere, { recursive: true });
    const rec = new WatchRecorder(watch(root));
    try {
      // All in one synchronous run: the watcher names nothing before the directory is gone.
      const gone = path.join(elsewhere, 'short-lived');
      fs.mkdirSync(gone);
      fs.writeFileSync(path.join(gone, 'f'), 'x');
      fs.rmSync(gone, { recursive: true });
      fs.writeFileSync(path.join(root, 'in'), 'x');
      await rec.waitFor((e) => e.path === path.join(root, 'in'), 'the event inside');
      await sleep(300);
      expect(rec.seen.filter((e) => e.path === null || !e.path.startsWith(`${root}/`))).toEqual([]);
    } finally {
      await rec.close();
    }
  });

  describe('skipped', () => {
    test('a proc instance under the root refuses the mark and is listed with a code', async () => {
      const procAt = path.join(img.mountPoint, 'proc-here');
      const procLate = path.join(img.mountPoint, 'proc-late');
      fs.mkdirSync(procAt, { recursive: true });
      fs.mkdirSync(procLate, { recursive: true });
      let w: Watcher | null = null;
      try {
        run('mount', '-t', 'proc', 'proc', procAt);
        w = watch(img.mountPoint);
        expect(w.skipped).toEqual([
          { mountPoint: procAt, fsType: 'proc', code: expect.stringMatching(/^E[A-Z]+$/), reason: expect.stringContaining("fanotify_mark '") },
        ]);
        expect(w.filesystems.map((f) => f.mountPoint)).toEqual([img.mountPoint]);
        // One mounted after the start is skipped the same way.
        run('mount', '-t', 'proc', 'proc', procLate);
        await until(() => w!.skipped.some((s) => s.mountPoint === procLate), 'the late proc in skipped');
        expect(w.skipped.find((s) => s.mountPoint === procLate)).toMatchObject({ fsType: 'proc', code: w.skipped[0].code });
      } finally {
        await w?.close();
        unmountAll(procAt, procLate);
      }
    });

    // Mounts stacked on one mount point are all tried through the same path:
    // the refusal is listed once.
    test('two proc mounts stacked on one directory are listed once', async () => {
      const procAt = path.join(img.mountPoint, 'proc-stacked');
      fs.mkdirSync(procAt, { recursive: true });
      let w: Watcher | null = null;
      try {
        run('mount', '-t', 'proc', 'proc', procAt);
        run('mount', '-t', 'proc', 'proc', procAt);
        w = watch(img.mountPoint, { follow: false });
        expect(w.skipped.filter((s) => s.mountPoint === procAt)).toHaveLength(1);
      } finally {
        await w?.close();
        unmountAll(procAt);
      }
    });

    test("watch('/') lists /proc in skipped and reports a change under a temp dir (bounded, then closed)", async () => {
      const tmp = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'fanotify-watch-root-'));
      const before = openFdCount();
      const rec = new WatchRecorder(watch('/'));
      try {
        const w = rec.watcher;
        expect(w.root).toBe('/');
        expect(w.filesystems[0]).toMatchObject({ mountPoint: '/' });
        expect(w.skipped).toContainEqual(expect.objectContaining({ mountPoint: '/proc', fsType: 'proc', code: expect.stringMatching(/^E[A-Z]+$/) }));
        for (const s of w.skipped) expect(w.filesystems.map((f) => f.mountPoint)).not.toContain(s.mountPoint);
        const file = path.join(tmp, 'seen-from-root');
        fs.writeFileSync(file, 'x');
        const ev = await rec.waitFor((e) => e.path === file, 'the create under the temp dir', 5000);
        expect(ev.events).toContain('create');
        expect(ev.filesystem.mountPoint).toBe(w.filesystems.find((f) => f.fsid === fsidOf(tmp))!.mountPoint);
      } finally {
        await rec.close();
        fs.rmSync(tmp, { recursive: true, force: true });
      }
      await sleep(20);
      expect(openFdCount()).toBe(before);
    });
  });

  test('a directory renamed after its path was cached: later events are named under the new name', async () => {
    const work = fs.mkdtempSync(path.join(img.mountPoint, 'w5-'));
    const rec = new WatchRecorder(watch(img.mountPoint));
    try {
      const d = path.join(work, 'd');
      const e = path.join(work, 'e');
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'f1'), 'x');
      // Read (and so name) the first event before the rename: d's path is cached now.
      await rec.waitFor((ev) => ev.path === path.join(d, 'f1'), 'create d/f1');
      fs.renameSync(d, e);
      fs.writeFileSync(path.join(e, 'f2'), 'x');
      const ev = await rec.waitFor((x) => x.path !== null && x.path.endsWith('/f2'), 'create of f2');
      expect(ev.path).toBe(path.join(e, 'f2'));
      expect([...rec.eventsAt(d)]).toContain('movedFrom');
      expect([...rec.eventsAt(e)]).toContain('movedTo');
    } finally {
      await rec.close();
    }
  });

  // The directory path cache is cleared by directory rename/delete events,
  // which the watcher asks of the kernel even when the caller's `events` do
  // not include them.
  test("the same with events: ['create'] only (no rename events asked for)", async () => {
    const work = fs.mkdtempSync(path.join(img.mountPoint, 'w6-'));
    const rec = new WatchRecorder(watch(img.mountPoint, { events: ['create'] }));
    try {
      const d = path.join(work, 'd');
      const e = path.join(work, 'e');
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'f1'), 'x');
      await rec.waitFor((ev) => ev.path === path.join(d, 'f1'), 'create d/f1');
      fs.renameSync(d, e);
      fs.writeFileSync(path.join(e, 'f2'), 'x');
      const ev = await rec.waitFor((x) => x.path !== null && x.path.endsWith('/f2'), 'create of f2');
      expect(ev.path).toBe(path.join(e, 'f2'));
    } finally {
      await rec.close();
    }
  });

  test('a file URL root; await using closes it at the end of the block', async () => {
    const before = openFdCount();
    {
      await using w = watch(pathToFileURL(img.mountPoint), { events: ['create'] });
      expect(w.root).toBe(img.mountPoint);
      const f = path.join(img.mountPoint, `url-${process.pid}`);
      fs.writeFileSync(f, '');
      const { value } = await within(5000, w.next(), 'the create');
      expect(value).toMatchObject({ path: f, events: ['create'] });
    }
    expect(openFdCount()).toBe(before);
  });

  test('an AbortSignal ends the iterator and closes both groups', async () => {
    const before = openFdCount();
    const ac = new AbortController();
    const w = watch(img.mountPoint, { signal: ac.signal });
    try {
      const pending = w.next();
      pending.catch(() => undefined);
      await sleep(20);
      ac.abort();
      const r = await within(2000, pending.then((v) => ({ ok: v }), (err: Error) => ({ err })));
      // Either ending is acceptable; record which one it is.
      if ('err' in r) expect(r.err).toMatchObject({ name: 'AbortError' });
      else expect(r.ok.done).toBe(true);
      expect(await w.next()).toEqual({ done: true, value: undefined });
      await sleep(20);
      expect(openFdCount()).toBe(before);
    } finally {
      await w.close();
    }
  });

  test('an already aborted signal: next() rejects and nothing stays open', async () => {
    const before = openFdCount();
    const ac = new AbortController();
    ac.abort();
    const w = watch(img.mountPoint, { signal: ac.signal });
    try {
      await expect(w.next()).rejects.toMatchObject({ name: 'AbortError' });
      expect(await w.next()).toEqual({ done: true, value: undefined });
      await sleep(20);
      expect(openFdCount()).toBe(before);
    } finally {
      await w.close();
    }
  });
});

describeRoot('watch(): the ignore option', () => {
  let img: LoopImage;
  beforeAll(async () => {
    img = await LoopImage.create({ sizeMiB: 64 });
  });
  afterAll(async () => {
    await img?.dispose();
  });

  test('globs, a RegExp and a predicate leave out what they match, and everything below a matching directory', async () => {
    const root = fs.mkdtempSync(path.join(img.mountPoint, 'ign-'));
    const at = (p: string) => path.join(root, p);
    fs.mkdirSync(at('node_modules/pkg'), { recursive: true });
    fs.mkdirSync(at('src'));
    const rec = new WatchRecorder(watch(root, {
      events: ['create', 'rename', 'onDir'],
      ignore: ['node_modules', '**/*.tmp', /^build(\/|$)/, (p, isDir) => !isDir && p.endsWith('.skip')],
    }));
    try {
      for (const f of ['node_modules/pkg/index.js', 'src/a.tmp', 'src/b.skip', 'c.tmp']) fs.writeFileSync(at(f), 'x');
      fs.mkdirSync(at('build/out'), { recursive: true });
      fs.writeFileSync(at('build/out/x.js'), 'x');
      fs.mkdirSync(at('src/d.skip'));  // a directory: the predicate says files only
      fs.renameSync(at('node_modules/pkg/index.js'), at('src/index.js'));  // out of an ignored directory: shown
      fs.writeFileSync(at('src/kept.js'), 'x');
      await rec.waitFor((e) => e.path === at('src/kept.js'), 'src/kept.js');
      const shown = rec.seen.map((e) => `${e.events.join(',')} ${e.from ? `${path.relative(root, e.from)} -> ` : ''}${path.relative(root, e.path!)}`);
      expect(shown).toEqual(['create src/d.skip', 'rename node_modules/pkg/index.js -> src/index.js', 'create src/kept.js']);
    } finally {
      await rec.close();
    }
  });

  test('a bad ignore option is a TypeError naming it', () => {
    expect(() => watch(img.mountPoint, { ignore: [''] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('options.ignore[0]') }));
    expect(() => watch(img.mountPoint, { ignore: 42 as never })).toThrow(expect.objectContaining({ message: expect.stringContaining('options.ignore') }));
  });

  // The first event in an ignored directory puts an ignore mark on it: the
  // churn that follows is not even read from the kernel.
  testFeature(['markIgnore', 'evictable'], 'churn in an ignored directory is left out in the kernel after its first event', async () => {
    const root = fs.mkdtempSync(path.join(img.mountPoint, 'churn-'));
    fs.mkdirSync(path.join(root, 'node_modules', 'pkg'), { recursive: true });
    const w = watch(root, { ignore: 'node_modules' });
    const rec = new WatchRecorder(w);
    try {
      fs.writeFileSync(path.join(root, 'node_modules', 'pkg', 'first'), 'x');
      fs.writeFileSync(path.join(root, 'mark-set'), 'x');
      await rec.waitFor((e) => e.path === path.join(root, 'mark-set'), 'mark-set');
      const before = w._eventsRead;
      for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(root, 'node_modules', 'pkg', `f${i}`), 'x');
      fs.writeFileSync(path.join(root, 'end'), 'x');
      await rec.waitFor((e) => e.path === path.join(root, 'end'), 'end');
      expect(w._eventsRead - before).toBeLessThan(10);  // 'end' (create, modify); not 200 creates and 200 writes
      expect(rec.seen.filter((e) => e.path?.includes('node_modules'))).toEqual([]);
    } finally {
      await rec.close();
    }
  });
});

describeRoot('watch(): a burst larger than the kernel queue', () => {
  test('with unlimitedQueue: false it says events were lost: a rescan of the root, for the overflow', async () => {
    const max = Number(fs.readFileSync('/proc/sys/fs/fanotify/max_queued_events', 'utf8'));
    const img = await LoopImage.create({ sizeMiB: 256 })  // inodes for 16k files;
    const watcher = watch(img.mountPoint, { events: ['create'], unlimitedQueue: false });
    try {
      for (let i = 0; i < max + 100; i++) fs.closeSync(fs.openSync(path.join(img.mountPoint, `f${i}`), 'w'));
      let overflow: WatchEvent | undefined;
      await within(60_000, (async () => {
        for await (const e of watcher) {
          if (e.overflow) {
            overflow = e;
            break;
          }
        }
      })(), 'reading up to the overflow');
      expect(overflow).toMatchObject({ overflow: true, path: img.mountPoint, events: ['rescan'], reason: 'overflow' });
    } finally {
      await watcher.close();
      await img.dispose();
    }
  });

  test('by default (unlimited queue) nothing is lost', async () => {
    const max = Number(fs.readFileSync('/proc/sys/fs/fanotify/max_queued_events', 'utf8'));
    const img = await LoopImage.create({ sizeMiB: 256 })  // inodes for 16k files;
    const watcher = watch(img.mountPoint, { events: ['create'] });
    const total = max + 100;
    try {
      for (let i = 0; i < total; i++) fs.closeSync(fs.openSync(path.join(img.mountPoint, `f${i}`), 'w'));
      const names = new Set<string>();
      await within(60_000, (async () => {
        for await (const e of watcher) {
          expect(e.overflow).toBe(false);
          names.add(path.basename(e.path!));
          if (names.size === total) break;
        }
      })(), 'reading every create');
      expect(names.size).toBe(total);
    } finally {
      await watcher.close();
      await img.dispose();
    }
  });
});
