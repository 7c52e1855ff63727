// The command line (dist/cli.js), run as a child process against the real
// kernel. `npm test` builds dist/ first; by hand: `node scripts/build.js`.
//
// Every child is killed in `finally` if still running, every wait is bounded,
// and every LoopImage is disposed in `finally` (after its watcher is gone).
import { spawn, SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { LoopImage } from '../lib/testing';
import { CLI, Cli, run } from './cli-process';
import { bound, describeRoot, removePackageForNobody, sleep, within } from './helpers';

afterAll(removePackageForNobody);

jest.setTimeout(bound(30_000));

const ROOT = path.join(__dirname, '..');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const STACK_LINE = /^\s+at .+/m;  // "    at Foo (file.js:1:2)"

/** errno of a failing promise (node gives EUCLEAN no name: errno -117). */
async function errnoOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).errno;
  }
}

/** The marks of a process's fanotify groups, from /proc/PID/fdinfo: mount ids (mountinfo's) of its mount marks. */
function markedMounts(pid: number): number[] {
  const ids: number[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;  // closed meanwhile
    }
    if (target !== 'anon_inode:[fanotify]') continue;
    for (const m of fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').matchAll(/^fanotify mnt_id:([0-9a-f]+) /gm))
      ids.push(parseInt(m[1], 16));
  }
  return ids.sort((a, b) => a - b);
}

/** The mountinfo id of the (topmost) mount at p. */
function mountIdAt(p: string): number {
  const unescape = (x: string) => x.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => unescape(l.split(' ')[4] ?? '') === p).pop();
  if (!line) throw new Error(`nothing is mounted at ${p}`);
  return Number(line.split(' ')[0]);
}

/** The mount point of the mount holding p (findmnt, not the library). */
function mountPointOf(p: string): string {
  const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
  return execFileSync('findmnt', ['-n', '-o', 'TARGET', '-T', p], { encoding: 'utf8' }).trim().split('\n').pop()!;
}

describe('fanotify (usage)', () => {
  test('--help and help: usage listing the commands and examples on stdout (for a pager), exit 0', async () => {
    for (const args of [['--help'], ['help'], ['-h']]) {
      const r = await run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^usage: fanotify <command>/);
      expect(r.stdout).toMatch(/^ {2}errors /m);
      expect(r.stdout).toMatch(/^ {2}probe /m);
      expect(r.stdout).toMatch(/^examples:$/m);
      expect(r.stderr).toBe('');
    }
  });

  test('help for one command: its usage and options on stdout; watch and trace list the event names', async () => {
    for (const args of [['help', 'errors'], ['errors', '--help']]) {
      const r = await run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('usage: fanotify errors [PATH...]');
      expect(r.stdout).toContain('--json');
      expect(r.stdout).toContain('--resolve-paths');
    }
    for (const command of ['watch', 'trace']) {
      const r = await run([command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('event names for --events:');
      for (const name of ['create', 'closeWrite', 'openExec', 'onDir']) expect(r.stdout).toMatch(new RegExp(` ${name}( |$)`, 'm'));
    }
  });

  test.each([['watch', '/tmp'], ['trace', '/tmp']])('%s --events with a typo: exit 2, the name, a suggestion and the names', async (command, where) => {
    const r = await run([command, where, '--events', 'creat,open']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(new RegExp(`^fanotify ${command}: unknown event name 'creat' in --events \\(did you mean 'create'\\?\\); the names: access `));
    expect(r.stderr).not.toMatch(STACK_LINE);
    const empty = await run([command, where, '--events', ',']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('--events needs at least one event name');
  });

  test('unknown command, no command: usage, exit 2', async () => {
    const r = await run(['bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("fanotify: unknown command 'bogus'");
    expect(r.stderr).toContain('usage: fanotify');
    expect((await run([])).code).toBe(2);
  });

  test('bad option: named, exit 2', async () => {
    const r = await run(['errors', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("fanotify errors: unknown option '--bogus'");
    const v = await run(['probe', '--json=yes']);
    expect(v.code).toBe(2);
    expect(v.stderr).toContain("'--json' takes no value");
    const extra = await run(['probe', '/', 'extra']);  // probe takes one PATH
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain('extra');
  });

  test('--version: the package version', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${VERSION}\n`);
  });

  test('dist/cli.js is executable, with a shebang', () => {
    expect(fs.readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(fs.statSync(CLI).mode & 0o111).toBe(0o111);
  });
});

// The kernel says it lost events with one overflow event; trace's is tested
// against the kernel below, watch()'s and watchErrors()' in their own tests:
// here, how the commands print them.
describe('overflow lines', () => {
  const time = new Date('2026-11-22T02:49:16.858Z');

  test('errors: one line saying errors were lost, and where ext4 still counts them', () => {
    const { errorEventToJson, formatErrorEvent } = require('../lib/cli/errors') as typeof import('../lib/cli/errors');
    const e = { time, overflow: true, errno: 0, code: 'OVERFLOW', count: 0, filesystem: { fsid: '', mountPoint: '', source: '', type: '' } };
    expect(formatErrorEvent(e)).toBe(`${time.toISOString()} OVERFLOW the kernel's event queue overflowed: events were lost` +
      ' (ext4 still counts lost errors in /sys/fs/ext4/*/errors_count)');
    expect(errorEventToJson(e)).toEqual({ time: time.toISOString(), overflow: true, errno: 0, code: 'OVERFLOW', count: 0 });
  });

  test('watch: one line saying events were lost and what to read again; a rescan; a path not known, with why', () => {
    const { formatWatchEvent } = require('../lib/cli/watch') as typeof import('../lib/cli/watch');
    const filesystem = { fsid: '00000000:00000001', mountPoint: '/srv', fsType: 'ext4', source: '/dev/vda' };
    const e = { events: ['rescan' as const], mask: 0, isDir: true, pid: 0, path: '/srv', reason: 'overflow' as const, overflow: true, filesystem };
    expect(formatWatchEvent(time, e)).toBe(`${time.toISOString()} OVERFLOW the kernel's event queue overflowed: events were lost: read /srv again`);
    expect(formatWatchEvent(time, { ...e, overflow: false, reason: 'renamed' })).toBe(
      `${time.toISOString()} rescan           dir  /srv: a directory was renamed before its events could be named; read it again`);
    const gone = { events: ['delete' as const], mask: 0x200, isDir: false, pid: 42, path: null, reason: 'gone' as const, overflow: false, filesystem };
    expect(formatWatchEvent(time, gone, 'rm')).toBe(`${time.toISOString()} delete           file (unknown: gone) (pid 42 rm)`);
  });

  test('mounts: one line saying mount events were lost and the table was read again', () => {
    const { formatMountEvent } = require('../lib/cli/mounts') as typeof import('../lib/cli/mounts');
    expect(formatMountEvent(time, { kind: 'overflow', mountId: 0n })).toBe(`${time.toISOString()} OVERFLOW the kernel's event queue ` +
      'overflowed: events were lost (the table was read again: what changed meanwhile follows)');
  });
});

describe('fanotify errors without privilege', () => {
  // As root: run as nobody. Otherwise (CI=true as a user) we are unprivileged already.
  const asNobody: SpawnOptions = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

  test.each([
    ['with a PATH', ['errors', '/']],
    ['every filesystem', ['errors']],
  ])('%s: one line naming CAP_SYS_ADMIN, exit 1, no stack trace', async (_, args) => {
    const r = await run(args, asNobody);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fanotify errors: needs CAP_SYS_ADMIN \(run as root\): EPERM/);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(STACK_LINE);
    expect(r.stdout).toBe('');
  });
});

describeRoot('fanotify probe', () => {
  test('--json: the probe() report', async () => {
    const r = await run(['probe', '--json']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const features = JSON.parse(lines[0]);
    expect(features.available).toBe(true);
    expect(features.events.fsError).toBe(true);
    expect(typeof features.kernel).toBe('string');
  });

  test('human: a table by section', async () => {
    const r = await run(['probe']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^kernel .+: fanotify available$/m);
    for (const section of ['classes', 'report', 'scopes', 'markFlags', 'events', 'records'])
      expect(r.stdout).toMatch(new RegExp(`^${section} +\\S+ (yes|no)`, 'm'));
    expect(r.stdout).toMatch(/\bfsError yes\b/);
    expect(r.stderr).toBe('');
  });
});

describeRoot('fanotify errors', () => {
  test('--json PATH: a corrupt inode, a superblock error, then Ctrl-C exits 0', async () => {
    const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'dir/bad/f': 'x' } });
    let cli: Cli | undefined;
    try {
      const bad = path.join(img.mountPoint, 'dir/bad');
      const ino = fs.statSync(bad).ino;
      // Before watching: corruptInode remounts, and marks go with the old superblock.
      await img.corruptInode('dir/bad');
      cli = new Cli(['errors', '--json', img.mountPoint]);
      const c = cli;
      await c.watching(img.mountPoint);
      expect(c.stderr).toMatch(new RegExp(`^watching ext4 ${img.device} on ${img.mountPoint} \\(fsid [0-9a-f]{8}:[0-9a-f]{8}\\)$`, 'm'));

      expect(await errnoOf(fs.promises.readdir(bad))).toBe(-117);
      const first = JSON.parse(await c.waitFor(() => c.lines[0], 5000, 'the corrupt inode event'));
      expect(first).toMatchObject({
        errno: 117,
        code: 'EFSCORRUPTED',
        filesystem: { mountPoint: img.mountPoint, type: 'ext4', source: img.device },
        inode: { ino: String(ino) },
      });
      expect(first.count).toBeGreaterThanOrEqual(1);
      expect(new Date(first.time).toISOString()).toBe(first.time);
      expect(first.filesystem.fsid).toMatch(/^[0-9a-f]{8}:[0-9a-f]{8}$/);
      expect(first.inode.fsid).toBe(first.filesystem.fsid);
      expect(first.inode.handle).toMatch(/^([0-9a-f]{2})+$/);
      expect(typeof first.inode.generation).toBe('number');
      expect(first.inode.path).toBeUndefined();  // no --resolve-paths
      expect(first.detail).toMatchObject({ function: 'ext4_lookup', inode: ino });

      const before = c.lines.length;
      await img.triggerError('cli test');
      const second = JSON.parse(await c.waitFor(() => c.lines[before], 5000, 'the triggered error event'));
      expect(second).toMatchObject({ errno: 117, code: 'EFSCORRUPTED', filesystem: { mountPoint: img.mountPoint } });
      expect(second.detail.function).toBe('trigger_test_error');
      expect('inode' in second).toBe(false);  // a superblock-level error

      c.child.kill('SIGINT');
      expect(await c.exit(5000)).toEqual({ code: 0, signal: null });
      expect(c.stderr).not.toMatch(STACK_LINE);
      for (const line of c.lines) JSON.parse(line);  // nothing but JSON lines on stdout
    } finally {
      await cli?.kill();
      await img.dispose();
    }
  });

  // npx: the terminal sends Ctrl-C to the whole process group, and npm
  // passes the one it got on to us: two SIGINTs at once are one Ctrl-C.
  // (Sent to a child, two signals often merge into one, so the handler is
  // tested as a function, with its clock.)
  test('Ctrl-C under npx (a second SIGINT within a second) stops cleanly; one later exits at once', () => {
    const { stopSignalHandler } = require('../lib/cli/command') as typeof import('../lib/cli/command');
    let t = 1000;
    const stops: number[] = [];
    const exits: number[] = [];
    const onSignal = stopSignalHandler(() => stops.push(t), (code) => exits.push(code), () => t);
    onSignal('SIGINT');
    t += 50;
    onSignal('SIGINT');  // npm passing the same Ctrl-C on
    expect(stops).toEqual([1000]);
    expect(exits).toEqual([]);
    t += 1000;
    onSignal('SIGINT');  // a second Ctrl-C
    expect(exits).toEqual([130]);
    const term = stopSignalHandler(() => undefined, (code) => exits.push(code), () => t);
    term('SIGTERM');
    t += 2000;
    term('SIGTERM');
    expect(exits).toEqual([130, 143]);
  });

  test('Ctrl-C under npx, for real: two SIGINTs at once exit 0', async () => {
    const cli = new Cli(['mounts']);
    try {
      await cli.waitFor(() => (/watching the mount namespace/.test(cli.stderr) ? true : undefined), 10000, 'the banner');
      cli.child.kill('SIGINT');
      cli.child.kill('SIGINT');
      expect(await cli.exit(5000)).toEqual({ code: 0, signal: null });
    } finally {
      await cli.kill();
    }
  });

  test('human format, SIGTERM exits 0', async () => {
    const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'bad/f': 'x' } });
    let cli: Cli | undefined;
    try {
      const bad = path.join(img.mountPoint, 'bad');
      const ino = fs.statSync(bad).ino;
      await img.corruptInode('bad');
      cli = new Cli(['errors', img.mountPoint]);
      const c = cli;
      await c.watching(img.mountPoint);
      expect(await errnoOf(fs.promises.readdir(bad))).toBe(-117);
      const line = await c.waitFor(() => c.lines[0], 5000, 'the error line');
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z EFSCORRUPTED \(117\) x\d+ /);
      expect(line).toContain(`ext4 ${img.device} on ${img.mountPoint}: inode ${ino} gen `);
      expect(line).toContain(' at ext4_lookup:');

      const before = c.lines.length;
      await img.triggerError('cli test');
      const sb = await c.waitFor(() => c.lines[before], 5000, 'the superblock error line');
      expect(sb).toContain(`on ${img.mountPoint}: filesystem at trigger_test_error:`);

      c.child.kill('SIGTERM');
      expect(await c.exit(5000)).toEqual({ code: 0, signal: null });
      expect(c.stderr).not.toMatch(STACK_LINE);
    } finally {
      await cli?.kill();
      await img.dispose();
    }
  });

  test('no PATH: watches filesystems mounted later, says so on stderr', async () => {
    let img: LoopImage | undefined;
    const cli = new Cli(['errors', '--json']);
    try {
      // A machine may have no filesystem that can report errors yet (the kernel matrix guests: tmpfs, overlays, 9p).
      await cli.waitFor(() => (/watching |no mounted filesystem can report errors/.test(cli.stderr) ? true : undefined), 5000, 'ready');
      img = await LoopImage.create({ mountOptions: ['errors=continue'] });
      const mnt = img.mountPoint;
      await cli.watching(mnt);
      await img.triggerError('cli test');
      // Other filesystems of the host may report too: look for ours.
      const ours = await cli.waitFor(
        () => cli.lines.map((l) => JSON.parse(l)).find((e) => e.filesystem.mountPoint === mnt), 5000, 'the error event');
      expect(ours.detail.function).toBe('trigger_test_error');
      cli.child.kill('SIGINT');
      expect(await cli.exit(5000)).toEqual({ code: 0, signal: null });
    } finally {
      await cli.kill();
      await img?.dispose();
    }
  });

  // The filesystem mark dies with the superblock: unmounted and mounted
  // again, the filesystem must be marked again (or the command goes deaf).
  test.each([
    ['as this kernel follows mounts', {}],
    ['through /proc/self/mountinfo', { FANOTIFY_WITHOUT: 'mountEvents,mntnsMark,reportMount,listmount' }],
  ])('PATH unmounted and mounted again: says so, and reports its errors again (%s)', async (_, env) => {
    const img = await LoopImage.create({ mountOptions: ['errors=continue'] });
    let cli: Cli | undefined;
    const { execFileSync } = await import('node:child_process');
    try {
      cli = new Cli(['errors', '--json', img.mountPoint], { env: { ...process.env, ...env } });
      const c = cli;
      await c.watching(img.mountPoint);
      execFileSync('umount', [img.mountPoint]);
      await c.waitFor(() => (c.stderr.includes(`no longer mounted: ext4 ${img.device} on ${img.mountPoint}`) ? true : undefined), 5000, 'gone');
      execFileSync('mount', ['-o', 'errors=continue', img.device, img.mountPoint]);
      await c.waitFor(() => (c.stderr.split(`watching ext4 ${img.device} on ${img.mountPoint} `).length === 3 ? true : undefined), 5000, 'watching again');
      await img.triggerError('after umount and mount');
      const first = JSON.parse(await c.waitFor(() => c.lines[0], 5000, 'the error after it came back'));
      expect(first).toMatchObject({ filesystem: { mountPoint: img.mountPoint }, detail: { function: 'trigger_test_error' } });

      // LoopImage.remount: unmounted and mounted at once, maybe between two looks of ours.
      await img.remount();
      const deadline = Date.now() + bound(5000);
      while (c.lines.length < 2 && Date.now() < deadline) {
        await img.triggerError('after remount');  // until the mark is back
        await sleep(200);
      }
      expect(JSON.parse(c.lines[1] ?? 'null')).toMatchObject({ filesystem: { mountPoint: img.mountPoint }, detail: { function: 'trigger_test_error' } });
      c.child.kill('SIGINT');
      expect(await c.exit(5000)).toEqual({ code: 0, signal: null });
    } finally {
      await cli?.kill();
      await img.dispose();
    }
  });

  test('a PATH that does not exist: one line with ENOENT and the path, exit 1', async () => {
    const missing = '/nonexistent/fanotify-cli-test';
    const r = await run(['errors', missing]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^fanotify errors: ENOENT/);
    expect(lines[0]).toContain(missing);
    expect(r.stdout).toBe('');
  });
});

const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));  // a zombie is gone, not yet reaped
  } catch {
    return false;
  }
};

// `npx fanotify ...` runs the command as a child of npm (and sh): if that
// parent dies, the command must not go on watching, orphaned, for ever.
describeRoot('fanotify commands whose parent dies', () => {
  test.each([
    ['errors', [], /watching |no mounted filesystem can report errors/],
    ['mounts', [], /watching the mount namespace/],
    ['watch', ['/tmp'], /watching /],
    ['trace', ['/tmp'], /tracing /],
  ])('%s: ends when its parent is killed', async (command, rest, ready) => {
    // A parent that starts the command and prints its pid, as npx would run it.
    const parentScript = `
      const c = require('node:child_process').spawn(process.execPath, ${JSON.stringify([CLI, command, ...rest])}, { stdio: ['ignore', 'inherit', 'inherit'] });
      process.stdout.write(c.pid + '\\n');
      setInterval(() => {}, 1000);`;
    const p = spawn(process.execPath, ['-e', parentScript], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    p.stderr!.setEncoding('utf8').on('data', (d: string) => { errText += d; });
    let pid = 0;
    try {
      await within(5000, (async () => {
        while (!/^\d+\n/.test(out)) await sleep(20);
      })(), 'the command\'s pid');
      pid = Number(out.split('\n')[0]);
      await within(5000, (async () => {
        while (!ready.test(errText)) await sleep(20);
      })(), `${ready} on stderr`);
      p.kill('SIGKILL');
      await within(5000, (async () => {
        while (alive(pid)) await sleep(50);
      })(), `the orphaned ${command} ending`);
    } finally {
      p.kill('SIGKILL');
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});

describeRoot('fanotify mounts, watch and trace', () => {
  test('mounts --json: a tmpfs mounted, moved and unmounted', async () => {
    const a = fs.mkdtempSync('/tmp/fanotify-cli-a-');
    const b = fs.mkdtempSync('/tmp/fanotify-cli-b-');
    const cli = new Cli(['mounts', '--json']);
    const { execFileSync } = await import('node:child_process');
    try {
      await cli.waitFor(() => (cli.stderr.includes('watching the mount namespace') ? true : undefined), 10_000, 'ready');
      // One step at a time: the kernel's events carry a mount id alone, and a
      // mount gone before its attach event is read can no longer be named.
      const mine = (kind: string) => () =>
        cli.lines.map((l) => JSON.parse(l) as Record<string, string>)
          .find((e) => e.kind === kind && (e.mountPoint === a || e.mountPoint === b));
      execFileSync('mount', ['-t', 'tmpfs', 'none', a]);
      const attach = await cli.waitFor(mine('attach'), 5000, 'attach');
      execFileSync('mount', ['--move', a, b]);
      const move = await cli.waitFor(mine('move'), 5000, 'move');
      execFileSync('umount', [b]);
      const detach = await cli.waitFor(mine('detach'), 5000, 'detach');
      expect(attach).toMatchObject({ mountPoint: a, fsType: 'tmpfs', source: 'none' });
      expect(move).toMatchObject({ mountPoint: b, mountId: attach.mountId });
      expect(detach).toMatchObject({ mountPoint: b, mountId: attach.mountId });
      expect(attach.mountId).toMatch(/^\d+$/);
      cli.child.kill('SIGINT');
      expect(await cli.exit()).toEqual({ code: 0, signal: null });
    } finally {
      await cli.kill();
      for (const d of [a, b]) {
        try { execFileSync('umount', ['-l', d], { stdio: 'ignore' }); } catch { /* not mounted */ }
        fs.rmSync(d, { recursive: true, force: true });
      }
    }
  });

  test('watch --json PATH: full paths of changes', async () => {
    const img = await LoopImage.create({ sizeMiB: 32 });
    const cli = new Cli(['watch', '--json', img.mountPoint]);
    try {
      await cli.waitFor(() => (cli.stderr.includes(`on ${img.mountPoint}`) ? true : undefined), 5000, 'watching');
      fs.mkdirSync(path.join(img.mountPoint, 'd'));
      fs.writeFileSync(path.join(img.mountPoint, 'd', 'f.txt'), 'x');
      const created = await cli.waitFor(() => cli.lines.map((l) => JSON.parse(l) as { events: string[]; path: string })
        .find((e) => e.path === path.join(img.mountPoint, 'd', 'f.txt') && e.events.includes('create')), 5000, 'create of d/f.txt');
      expect(created).toMatchObject({ isDir: false, pid: process.pid, comm: fs.readFileSync('/proc/self/comm', 'utf8').trim(), filesystem: { mountPoint: img.mountPoint, fsType: 'ext4' } });
      cli.child.kill('SIGTERM');
      expect(await cli.exit()).toEqual({ code: 0, signal: null });
    } finally {
      await cli.kill();
      await img.dispose();
    }
  });

  test('watch PATH: says which filesystems it watches as they come and go under PATH', async () => {
    const img = await LoopImage.create({ sizeMiB: 32 });
    const a = path.join(img.mountPoint, 'a');
    const b = path.join(img.mountPoint, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    const { execFileSync } = await import('node:child_process');
    const cli = new Cli(['watch', img.mountPoint]);
    try {
      await cli.waitFor(() => (cli.stderr.includes(`on ${img.mountPoint}`) ? true : undefined), 5000, 'watching');
      execFileSync('mount', ['-t', 'tmpfs', 'fanotify-cli-a', a]);
      await cli.waitFor(() => (cli.stderr.includes(`watching tmpfs fanotify-cli-a on ${a}`) ? true : undefined), 5000, 'watching a');
      execFileSync('umount', [a]);
      await cli.waitFor(() => (cli.stderr.includes(`no longer under ${img.mountPoint}: tmpfs fanotify-cli-a on ${a}`) ? true : undefined), 5000, 'a gone');
      execFileSync('mount', ['-t', 'tmpfs', 'fanotify-cli-b', b]);
      await cli.waitFor(() => (cli.stderr.includes(`watching tmpfs fanotify-cli-b on ${b}`) ? true : undefined), 5000, 'watching b');
      cli.child.kill('SIGTERM');
      expect(await cli.exit()).toEqual({ code: 0, signal: null });
    } finally {
      await cli.kill();
      for (const d of [a, b]) {
        try { execFileSync('umount', [d], { stdio: 'ignore' }); } catch { /* not mounted */ }
      }
      await img.dispose();
    }
  });

  test('trace --json PATH: the process, its command and the file', async () => {
    const dir = fs.mkdtempSync('/tmp/fanotify-cli-trace-');
    fs.writeFileSync(path.join(dir, 'read-me'), 'x');
    const cli = new Cli(['trace', '--json', dir]);
    const { spawnSync } = await import('node:child_process');
    try {
      await sleep(500);
      const deadline = Date.now() + bound(5000);
      let seen: Record<string, unknown> | undefined;
      while (!seen && Date.now() < deadline) {
        spawnSync('cat', [path.join(dir, 'read-me')]);
        await sleep(100);
        seen = cli.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.comm === 'cat');
      }
      expect(seen).toMatchObject({ path: path.join(dir, 'read-me'), comm: 'cat' });
      expect(seen!.events).toEqual(expect.arrayContaining(['open']));
      cli.child.kill('SIGINT');
      expect(await cli.exit()).toEqual({ code: 0, signal: null });
    } finally {
      await cli.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // Mount marks see every access on the mount: only the mount PATH lives
  // on and those below it are marked, never the ones above.
  test('trace PATH marks the mount holding PATH and the mounts below it, none above', async () => {
    const img = await LoopImage.create({ sizeMiB: 32 });
    const below = path.join(img.mountPoint, 'below');
    const { execFileSync } = await import('node:child_process');
    fs.mkdirSync(below);
    execFileSync('mount', ['-t', 'tmpfs', 'fanotify-trace-below', below]);
    const inside = fs.mkdtempSync('/tmp/fanotify-cli-trace-in-');  // a directory on the mount of /tmp
    let cli: Cli | undefined;
    let cli2: Cli | undefined;
    try {
      cli = new Cli(['trace', img.mountPoint]);
      const c = cli;
      await c.waitFor(() => (markedMounts(c.child.pid!).includes(mountIdAt(below)) ? true : undefined), 5000, 'the marks');
      await sleep(200);  // every mark is placed before the first read
      expect(markedMounts(c.child.pid!)).toEqual([mountIdAt(img.mountPoint), mountIdAt(below)].sort((a, b) => a - b));
      expect(c.stderr).toMatch(new RegExp(`^tracing ext4 ${img.device} on ${img.mountPoint}$`, 'm'));
      expect(c.stderr).toMatch(new RegExp(`^tracing tmpfs fanotify-trace-below on ${below}$`, 'm'));

      // PATH inside a mount: that mount has to be marked (and nothing above it).
      cli2 = new Cli(['trace', inside]);
      const c2 = cli2;
      const holder = mountPointOf(inside);
      await c2.waitFor(() => (markedMounts(c2.child.pid!).includes(mountIdAt(holder)) ? true : undefined), 5000, 'the mark');
      await sleep(200);
      expect(markedMounts(c2.child.pid!)).toEqual([mountIdAt(holder)]);
    } finally {
      await cli?.kill();
      await cli2?.kill();
      try { execFileSync('umount', [below]); } catch { execFileSync('umount', ['-l', below]); }
      await img.dispose();
      fs.rmSync(inside, { recursive: true, force: true });
    }
  });

  // A tracer that falls behind loses events: the kernel queues one overflow
  // event (it has no fd, so no path) and trace must show it.
  test('trace --json: an overflow of the kernel queue is a line of its own', async () => {
    const dir = fs.mkdtempSync('/tmp/fanotify-cli-trace-ovf-');
    const { execFileSync } = await import('node:child_process');
    execFileSync('mount', ['-t', 'tmpfs', 'fanotify-trace-ovf', dir]);
    const max = Number(fs.readFileSync('/proc/sys/fs/fanotify/max_queued_events', 'utf8'));
    let cli: Cli | undefined;
    try {
      // One file per event: opens of one file by one process would merge.
      for (let i = 0; i < max + 200; i++) fs.writeFileSync(path.join(dir, `f${i}`), '');
      cli = new Cli(['trace', '--json', '--events', 'open', dir]);
      const c = cli;
      await c.waitFor(() => (markedMounts(c.child.pid!).includes(mountIdAt(dir)) ? true : undefined), 5000, 'the mark');
      await sleep(200);
      c.child.kill('SIGSTOP');  // falls behind
      for (let i = 0; i < max + 200; i++) fs.closeSync(fs.openSync(path.join(dir, `f${i}`), 'r'));
      c.child.kill('SIGCONT');
      const lost = await c.waitFor(() => c.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.overflow), 20_000, 'the overflow line');
      expect(lost).toEqual({ time: expect.any(String), overflow: true });
      expect(c.lines.length).toBeGreaterThanOrEqual(max);  // what was queued before it is shown too
      c.child.kill('SIGINT');
      expect(await c.exit()).toEqual({ code: 0, signal: null });
    } finally {
      if (cli) cli.child.kill('SIGCONT');
      await cli?.kill();
      try { execFileSync('umount', [dir]); } catch { execFileSync('umount', ['-l', dir]); }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, bound(60_000));

  test('watch without PATH is a usage error', async () => {
    const cli = new Cli(['watch']);
    try {
      expect((await cli.exit()).code).toBe(2);
      expect(cli.stderr).toMatch(/PATH/);
    } finally {
      await cli.kill();
    }
  });
});
