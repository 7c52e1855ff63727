// Notification events against the real kernel: FID records and names on a
// loop-mounted ext4 filesystem mark, renames, event fds and their lifetime,
// overflow, AbortSignal, close, ref/unref, resolve().
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Fanotify, FanotifyEvent, resolve } from '../lib';
import { binding } from '../lib/core/binding';
import { formatFsid } from '../lib/core/fileid';
import { LoopImage } from '../lib/testing';
import { describeRoot, openFdCount, sleep, within } from './helpers';

const fidReport = { fid: true, dirFid: true, name: true };

/** Collects events until `done` says so; never waits longer than ms. */
async function collect(fan: Fanotify, done: (seen: FanotifyEvent[]) => boolean, ms = 10000): Promise<FanotifyEvent[]> {
  const seen: FanotifyEvent[] = [];
  await within(ms, (async () => {
    for await (const ev of fan) {
      seen.push(ev);
      if (done(seen)) break;
    }
  })(), 'collecting events');
  return seen;
}

/** name -> every event name seen for it (the kernel may merge events of one name). */
function byName(events: FanotifyEvent[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const ev of events) {
    const name = ev.dir?.name ?? '';
    const set = out.get(name) ?? new Set<string>();
    for (const e of ev.events) set.add(e);
    if (ev.isDir) set.add('isDir');
    out.set(name, set);
  }
  return out;
}

describeRoot('events on a loop-mounted ext4 filesystem', () => {
  let img: LoopImage;
  beforeAll(async () => {
    img = await LoopImage.create({ sizeMiB: 64 });
  });
  afterAll(async () => {
    await img?.dispose();
  });

  test('create, delete, mkdir and rmdir come with the parent FID and the names', async () => {
    const work = fs.mkdtempSync(path.join(img.mountPoint, 'names-'));
    const fan = new Fanotify({ report: fidReport });
    try {
      fan.add(img.mountPoint, ['create', 'delete', 'onDir'], { scope: 'filesystem' });
      fs.writeFileSync(path.join(work, 'a'), 'x');
      fs.mkdirSync(path.join(work, 'd'));
      fs.unlinkSync(path.join(work, 'a'));
      fs.rmdirSync(path.join(work, 'd'));
      const events = await collect(fan, (seen) => {
        const names = byName(seen);
        return names.get('a')?.has('delete') === true && names.get('d')?.has('delete') === true;
      });
      const names = byName(events);
      expect([...names.get('a')!].sort()).toEqual(['create', 'delete']);
      expect([...names.get('d')!].sort()).toEqual(['create', 'delete', 'isDir']);

      const ev = events.find((e) => e.dir?.name === 'a')!;
      const [v0, v1] = binding.fsidOf(img.mountPoint);
      expect(ev.dir!.fsid).toBe(formatFsid(v0, v1));
      expect(ev.dir!.handleType).toBe(1);  // ext4: FILEID_INO32_GEN
      expect(ev.dir!.handle.length).toBe(8);
      expect(ev.dir!.ino).toBe(BigInt(fs.statSync(work).ino));
      expect(ev.fd).toBeNull();
      expect(ev.pid).toBe(process.pid);
      expect(ev.overflow).toBe(false);
      expect(ev.malformed).toBe(false);
      expect(await resolve(ev.dir!)).toBe(work);
      expect(await resolve(ev.dir!, { name: 'a' })).toBe(path.join(work, 'a'));
    } finally {
      await fan.close();
    }
  });

  test('rename reports the old and the new directory and name', async () => {
    const from = fs.mkdtempSync(path.join(img.mountPoint, 'from-'));
    const to = fs.mkdtempSync(path.join(img.mountPoint, 'to-'));
    fs.writeFileSync(path.join(from, 'old'), 'x');
    const fan = new Fanotify({ report: fidReport });
    try {
      fan.add(img.mountPoint, ['rename', 'movedFrom', 'movedTo'], { scope: 'filesystem' });
      fs.renameSync(path.join(from, 'old'), path.join(to, 'new'));
      const events = await collect(fan, (seen) => seen.some((e) => e.events.includes('rename')));
      const rename = events.find((e) => e.events.includes('rename'))!;
      expect(rename.from!.name).toBe('old');
      expect(rename.to!.name).toBe('new');
      expect(rename.from!.ino).toBe(BigInt(fs.statSync(from).ino));
      expect(rename.to!.ino).toBe(BigInt(fs.statSync(to).ino));
      expect(await resolve(rename.to!, { name: rename.to!.name })).toBe(path.join(to, 'new'));
    } finally {
      await fan.close();
    }
  });

  test('resolve() gives null for an object that is gone', async () => {
    const work = fs.mkdtempSync(path.join(img.mountPoint, 'gone-'));
    const fan = new Fanotify({ report: { fid: true } });
    try {
      fan.add(img.mountPoint, ['create'], { scope: 'filesystem' });
      fs.mkdirSync(path.join(work, 'sub'));
      fs.writeFileSync(path.join(work, 'sub', 'f'), 'x');
      const [ev] = await collect(fan, (seen) => seen.length > 0);
      // With FID only, a create names the parent directory.
      expect(await resolve(ev.file!)).toBe(path.join(work, 'sub'));
      fs.rmSync(path.join(work, 'sub'), { recursive: true });
      // Drop the cached inode so the kernel cannot find it by handle either.
      fs.writeFileSync('/proc/sys/vm/drop_caches', '2');
      expect(await resolve(ev.file!)).toBeNull();
    } finally {
      await fan.close();
    }
  });

  test('FID on a superblock-level id: FILEID_INVALID resolves to null', async () => {
    expect(await resolve({ fsid: '00000000:00000000', handleType: 255, handle: Buffer.alloc(0) })).toBeNull();
  });
});

describeRoot('event fds', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-fd-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an fd event has the path; its fd is closed when the step ends unless kept', async () => {
    const fan = new Fanotify();
    try {
      fan.add(dir, ['closeWrite', 'eventOnChild']);
      fs.writeFileSync(path.join(dir, 'one'), '1');
      fs.writeFileSync(path.join(dir, 'two'), '2');
      let kept = -1;
      let firstFd = -1;
      let n = 0;
      await within(5000, (async () => {
        for await (const ev of fan) {
          n++;
          expect(ev.events).toEqual(['closeWrite']);
          expect(typeof ev.fd).toBe('number');
          expect(ev.path).toBe(path.join(dir, n === 1 ? 'one' : 'two'));
          if (n === 1) {
            firstFd = ev.fd!;
            kept = ev.keepFd()!;
          } else {
            break;
          }
        }
      })());
      // The kept fd survives its step and reads the file.
      expect(kept).toBe(firstFd);
      expect(fs.readFileSync(`/proc/self/fd/${kept}`, 'utf8')).toBe('1');
      fs.closeSync(kept);
    } finally {
      await fan.close();
    }
  });

  test('the fd count stays flat over thousands of fd events', async () => {
    const before = openFdCount();
    const fan = new Fanotify();
    try {
      fan.add(dir, ['closeWrite', 'eventOnChild']);
      const total = 3000;
      // A child writes, so our own fds are not in play while counting. Each
      // file once: the kernel merges queued events on one file.
      const child = spawn('sh', ['-c', `cd '${dir}' && i=0; while [ $i -lt ${total} ]; do echo x > f$i; i=$((i+1)); done`]);
      let n = 0;
      let peak = 0;
      await within(60000, (async () => {
        for await (const ev of fan) {
          expect(ev.fd).not.toBeNull();
          n++;
          if (n % 500 === 0) peak = Math.max(peak, openFdCount());
          if (n >= total) break;
        }
      })(), 'reading 3000 events');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.on('exit', r)));
      expect(n).toBe(total);
      // Bounded by one read's worth of event fds (a 4 KiB read holds at most
      // 170 events of 24 bytes), plus the group's own fds and the child's pipes.
      expect(peak - before).toBeLessThan(4096 / 24 + 10);
    } finally {
      await fan.close();
    }
    expect(openFdCount()).toBe(before);
  });

  test('pidfds are reported and closed with the step', async () => {
    const before = openFdCount();
    const fan = new Fanotify({ report: { pidfd: true } });
    try {
      fan.add(dir, ['closeWrite', 'eventOnChild']);
      fs.writeFileSync(path.join(dir, 'q'), 'x');  // by us: a live process
      let pidfd: number | null | undefined;
      await within(5000, (async () => {
        for await (const ev of fan) {
          pidfd = ev.pidfd;
          // A pidfd of this very process.
          expect(fs.readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8')).toMatch(new RegExp(`^Pid:\\s+${process.pid}$`, 'm'));
          break;
        }
      })());
      expect(typeof pidfd).toBe('number');
      expect(() => fs.fstatSync(pidfd!)).toThrow();  // closed when the step ended
    } finally {
      await fan.close();
    }
    expect(openFdCount()).toBe(before);
  });

  test('overflow is reported when nobody consumes', async () => {
    const max = Number(fs.readFileSync('/proc/sys/fs/fanotify/max_queued_events', 'utf8'));
    const fan = new Fanotify({ report: { fid: true, dirFid: true, name: true } });
    try {
      fan.add(dir, ['create', 'eventOnChild']);
      for (let i = 0; i < max + 100; i++) fs.closeSync(fs.openSync(path.join(dir, `f${i}`), 'w'));
      let overflow: FanotifyEvent | undefined;
      let n = 0;
      await within(30000, (async () => {
        for await (const ev of fan) {
          n++;
          if (ev.overflow) {
            overflow = ev;
            break;
          }
        }
      })(), 'reading up to the overflow');
      expect(overflow).toBeDefined();
      expect(overflow!.events).toEqual(['overflow']);
      expect(overflow!.fd).toBeNull();
      expect(n).toBe(max + 1);  // everything queued, then the overflow event
    } finally {
      await fan.close();
    }
  });
});

describeRoot('permission-class queue bound', () => {
  test('a content group nobody consumes keeps at most 1024 fd events, then one overflow event', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-cap-'));
    const before = openFdCount();
    // A content group is read all the time (to answer permission events), so
    // its notification events queue in memory, each holding an event fd.
    const fan = new Fanotify({ class: 'content' });
    try {
      fan.add(dir, ['closeWrite', 'eventOnChild']);
      spawnSync('sh', ['-c', `cd '${dir}' && i=0; while [ $i -lt 1500 ]; do : > f$i; i=$((i+1)); done`]);
      await sleep(500);  // let the reader hand everything over
      expect(openFdCount() - before).toBeLessThan(1024 + 20);
      let n = 0;
      let overflowAt = -1;
      await within(10000, (async () => {
        for await (const ev of fan) {
          if (ev.overflow) {
            overflowAt = n;
            break;
          }
          n++;
        }
      })());
      expect(overflowAt).toBe(1024);
    } finally {
      await fan.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(openFdCount()).toBe(before);
  });
});

describeRoot('iteration', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-iter-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an AbortSignal ends a waiting iteration with AbortError; the group stays usable', async () => {
    const fan = new Fanotify({ report: fidReport });
    try {
      fan.add(dir, ['create', 'eventOnChild']);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      const loop = (async () => {
        for await (const ev of fan.events({ signal: ac.signal })) void ev;
      })();
      await expect(within(5000, loop)).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
      fs.writeFileSync(path.join(dir, 'after'), 'x');
      const [ev] = await collect(fan, (seen) => seen.length > 0);
      expect(ev.dir!.name).toBe('after');
    } finally {
      await fan.close();
    }
  });

  test('close() ends a waiting iteration; closed groups refuse marks', async () => {
    const fan = new Fanotify();
    fan.add(dir, ['closeWrite', 'eventOnChild']);
    const loop = (async () => {
      let n = 0;
      for await (const ev of fan) n += ev ? 1 : 0;
      return n;
    })();
    await sleep(20);
    await fan.close();
    expect(await within(5000, loop)).toBe(0);
    expect(fan.closed).toBe(true);
    expect(fan.fd).toBe(-1);
    expect(() => fan.add(dir, ['closeWrite'])).toThrow(expect.objectContaining({ code: 'ERR_FANOTIFY_CLOSED' }));
    await fan.close();  // twice is fine
  });

  test('await using closes the group', async () => {
    let fd = -1;
    {
      await using fan = new Fanotify();
      fd = fan.fd;
      expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe('anon_inode:[fanotify]');
    }
    expect(() => fs.readlinkSync(`/proc/self/fd/${fd}`)).toThrow();
  });

  test('events read together are yielded one by one, in order', async () => {
    const fan = new Fanotify({ report: fidReport });
    try {
      fan.add(dir, ['create', 'eventOnChild']);
      for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(dir, `n${i}`), '');
      const events = await collect(fan, (seen) => seen.length === 200);
      expect(events.map((e) => e.dir!.name)).toEqual(Array.from({ length: 200 }, (_, i) => `n${i}`));
    } finally {
      await fan.close();
    }
  });

  test('unref() lets the process exit while an iteration waits; ref() (default) keeps it alive', () => {
    const dist = path.join(__dirname, '..', 'dist');
    const script = (unref: boolean) => `
      const { Fanotify } = require(${JSON.stringify(dist)});
      const fan = new Fanotify();
      fan.add(${JSON.stringify(dir)}, ['closeWrite', 'eventOnChild']);
      ${unref ? 'fan.unref();' : ''}
      (async () => { for await (const ev of fan) {} })();`;
    const unrefd = spawnSync(process.execPath, ['-e', script(true)], { timeout: 5000 });
    expect(unrefd.status).toBe(0);
    const refd = spawnSync(process.execPath, ['-e', script(false)], { timeout: 1500 });
    expect(refd.signal).toBe('SIGTERM');  // still waiting when the timeout killed it
  });

  test('the ESM entry point exports the same API', () => {
    const out = spawnSync(process.execPath, ['--input-type=module', '-e',
      `import { Fanotify, constants, resolve, probe } from ${JSON.stringify(path.join(__dirname, '..', 'dist', 'index.mjs'))};
       console.log(typeof Fanotify, constants.FAN_FS_ERROR, typeof resolve, typeof probe);`], { encoding: 'utf8' });
    expect(out.stderr).toBe('');
    expect(out.stdout.trim()).toBe('function 32768 function function');
  });
});
