// Fleet monitoring, the parts that need nothing but the kernel (and so run on
// every kernel of the matrix): the exposition format, the metrics, the
// journal's datagram, the atomic textfile, the command line's checks of
// --listen and --textfile, and `fanotify errors --listen --textfile` following
// filesystems mounted later, also from a sandboxed mount namespace like the
// example unit's. The real services are in monitoring-services.test.ts.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { UsageError } from '../lib/cli/command';
import { escapeHelp, escapeLabelValue, EXPOSITION_CONTENT_TYPE, formatExposition, formatValue } from '../lib/cli/exposition';
import { encodeEntry, FS_ERROR_MESSAGE_ID, journalFields, JournalWriter, OVERFLOW_MESSAGE_ID, stdoutIsJournal } from '../lib/cli/journal';
import { ErrorMetrics, SEEDED_CODES } from '../lib/cli/metrics';
import { parseListen } from '../lib/cli/metrics-server';
import { parseTextfile, Textfile, writeAtomically } from '../lib/cli/textfile';
import type { FsErrorEvent } from '../lib';
import { LoopImage } from '../lib/testing';
import { killAll, start, Started } from './children';
import { Cli, run } from './cli-process';
import { bound, describeRoot } from './helpers';
import { fetchText, parseSamples, samplesOf, waitUntil } from './monitoring-helpers';

jest.setTimeout(bound(30_000));

const FS = { fsid: '0a0b0c0d:01020304', mountPoint: '/data', source: '/dev/sda1', type: 'ext4' };
const event = (over: Partial<FsErrorEvent> = {}): FsErrorEvent => ({
  time: new Date('2026-11-22T02:49:16.858Z'), errno: 117, code: 'EFSCORRUPTED', count: 1, filesystem: FS, overflow: false,
  inode: { fsid: FS.fsid, handleType: 1, handle: Buffer.from('0d000000', 'hex'), ino: 13n, generation: 7 },
  detail: { function: 'ext4_lookup', line: 1787, inode: 13, errcode: 'EFSCORRUPTED' },
  ...over,
});

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `fanotify-${prefix}-`));
}

describe('the exposition format', () => {
  test('label values escape backslash, double quote and newline; HELP escapes backslash and newline', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeHelp('a\\b"c\nd')).toBe('a\\\\b"c\\nd');
  });

  test('values as Go reads them', () => {
    expect([NaN, Infinity, -Infinity, 0, 1.5, 1e21, 1796156456.111].map(formatValue)).toEqual(['NaN', '+Inf', '-Inf', '0', '1.5', '1e+21', '1796156456.111']);
  });

  test('HELP and TYPE before the samples, families without samples left out, a newline at the end', () => {
    const text = formatExposition([
      { name: 'a_total', help: 'A.', type: 'counter', samples: [{ labels: { x: '1', y: 'q"' }, value: 2 }, { value: 3 }] },
      { name: 'b', help: 'B.', type: 'gauge', samples: [] },
    ]);
    expect(text).toBe('# HELP a_total A.\n# TYPE a_total counter\na_total{x="1",y="q\\""} 2\na_total 3\n');
  });

  test('invalid names are refused, not written', () => {
    expect(() => formatExposition([{ name: 'a-b', help: '', type: 'gauge', samples: [{ value: 1 }] }])).toThrow(/metric name/);
    expect(() => formatExposition([{ name: 'a', help: '', type: 'gauge', samples: [{ labels: { '1x': 'v' }, value: 1 }] }])).toThrow(/label name/);
  });
});

describe('ErrorMetrics', () => {
  const fsLabels = { device: '/dev/sda1', mountpoint: '/data', fstype: 'ext4', fsid: FS.fsid };

  test('a watched filesystem starts at 0 for each seeded code; events add their counts; the last error as time and info', () => {
    const m = new ErrorMetrics();
    m.update([FS], []);
    let s = parseSamples(m.render());
    expect(samplesOf(s, 'fanotify_fs_errors_total', fsLabels).map((x) => [x.labels.code, x.value])).toEqual(SEEDED_CODES.map((c) => [c, 0]));
    expect(samplesOf(s, 'fanotify_fs_last_error_info')).toEqual([]);
    expect(samplesOf(s, 'fanotify_filesystems_watched')[0].value).toBe(1);
    expect(samplesOf(s, 'fanotify_up')[0].value).toBe(1);

    m.record(event({ count: 2 }));
    m.record(event({ code: 'ENOMEM', errno: 12, inode: undefined, detail: { function: 'ext4_fill_super', line: 5 } }));
    s = parseSamples(m.render());
    expect(samplesOf(s, 'fanotify_fs_errors_total', { ...fsLabels, code: 'EFSCORRUPTED' })[0].value).toBe(2);
    expect(samplesOf(s, 'fanotify_fs_errors_total', { ...fsLabels, code: 'ENOMEM' })[0].value).toBe(1);  // another code: from its first error
    expect(samplesOf(s, 'fanotify_fs_last_error_timestamp_seconds', fsLabels)[0].value).toBe(Date.parse('2026-11-22T02:49:16.858Z') / 1000);
    expect(samplesOf(s, 'fanotify_fs_last_error_info')).toEqual([{
      name: 'fanotify_fs_last_error_info', value: 1,
      labels: { ...fsLabels, code: 'ENOMEM', inode: '', function: 'ext4_fill_super', line: '5' },
    }]);
    m.record(event());
    expect(samplesOf(parseSamples(m.render()), 'fanotify_fs_last_error_info')[0].labels).toMatchObject({ inode: '13', function: 'ext4_lookup', line: '1787' });
  });

  test('unmounted: series go with the filesystem, unless it had errors; overflows and skipped mounts are counted', () => {
    const m = new ErrorMetrics();
    const other = { fsid: '11111111:22222222', mountPoint: '/mnt/usb', source: '/dev/sdb1', type: 'vfat' };
    m.update([FS, other], []);
    m.record(event());
    m.update([], [
      { mountPoint: '/proc', type: 'proc', source: 'proc', code: 'ENOTSUP', reason: 'no device' },
      { mountPoint: '/dev/pts', type: 'devpts', source: 'devpts', code: 'ENOTSUP', reason: 'no device' },
      { mountPoint: '/dev/pts', type: 'devpts', source: 'devpts', code: 'ENOTSUP', reason: 'no device' },
    ]);
    m.record(event({ overflow: true, code: 'OVERFLOW', errno: 0, count: 0 }));
    const s = parseSamples(m.render());
    expect(samplesOf(s, 'fanotify_fs_errors_total', { mountpoint: '/mnt/usb' })).toEqual([]);
    expect(samplesOf(s, 'fanotify_fs_errors_total', { mountpoint: '/data', code: 'EFSCORRUPTED' })[0].value).toBe(1);
    expect(samplesOf(s, 'fanotify_filesystems_watched')[0].value).toBe(0);
    expect(samplesOf(s, 'fanotify_queue_overflows_total')[0].value).toBe(1);
    // Stacked mounts that look the same are one series (a duplicate would fail the scrape).
    expect(samplesOf(s, 'fanotify_filesystems_skipped').map((x) => [x.labels.mountpoint, x.labels.reason, x.value]))
      .toEqual([['/proc', 'ENOTSUP', 1], ['/dev/pts', 'ENOTSUP', 2]]);
  });

  test('label values come back as they were (a mount point with a quote, a backslash and a newline)', () => {
    const m = new ErrorMetrics();
    const odd = { ...FS, mountPoint: '/mnt/a "b"\\c\nd' };
    m.update([odd], []);
    expect(samplesOf(parseSamples(m.render()), 'fanotify_fs_errors_total')[0].labels.mountpoint).toBe(odd.mountPoint);
  });

  test('stopped(): up 0 and nothing watched; the counts that were stay', () => {
    const m = new ErrorMetrics();
    m.update([FS], []);
    m.record(event());
    m.stopped();
    const s = parseSamples(m.render());
    expect(samplesOf(s, 'fanotify_up')[0].value).toBe(0);
    expect(samplesOf(s, 'fanotify_filesystems_watched')[0].value).toBe(0);
    expect(samplesOf(s, 'fanotify_fs_errors_total', { code: 'EFSCORRUPTED' })[0].value).toBe(1);
  });
});

describe('journal entries', () => {
  test('KEY=VALUE lines; a value with a newline in the binary-safe form (name, 64-bit little-endian length, value)', () => {
    const bytes = encodeEntry([['MESSAGE', 'one line'], ['FANOTIFY_MOUNT_POINT', 'a\nb']]);
    expect(bytes).toEqual(Buffer.concat([
      Buffer.from('MESSAGE=one line\nFANOTIFY_MOUNT_POINT\n'), Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('a\nb\n'),
    ]));
    expect(() => encodeEntry([['message', 'x']])).toThrow(/field name/);
    expect(() => encodeEntry([['_PID', '1']])).toThrow(/field name/);  // trusted fields are journald's to set
  });

  test('an error: MESSAGE_ID, PRIORITY=3, ERRNO and the FANOTIFY_ fields; empty ones left out', () => {
    expect(Object.fromEntries(journalFields(event(), 'the line'))).toEqual({
      MESSAGE_ID: FS_ERROR_MESSAGE_ID, MESSAGE: 'the line', PRIORITY: '3', SYSLOG_IDENTIFIER: 'fanotify', ERRNO: '117',
      FANOTIFY_CODE: 'EFSCORRUPTED', FANOTIFY_COUNT: '1', FANOTIFY_FSID: FS.fsid, FANOTIFY_DEVICE: '/dev/sda1',
      FANOTIFY_MOUNT_POINT: '/data', FANOTIFY_FSTYPE: 'ext4', FANOTIFY_INODE: '13', FANOTIFY_INODE_GENERATION: '7',
      FANOTIFY_FUNCTION: 'ext4_lookup', FANOTIFY_LINE: '1787',
    });
    const whole = Object.fromEntries(journalFields(event({ inode: undefined, detail: undefined, filesystem: { ...FS, source: '' } }), 'x'));
    expect(whole).not.toHaveProperty('FANOTIFY_INODE');
    expect(whole).not.toHaveProperty('FANOTIFY_FUNCTION');
    expect(whole).not.toHaveProperty('FANOTIFY_DEVICE');
    const lost = Object.fromEntries(journalFields(event({ overflow: true, code: 'OVERFLOW', errno: 0, count: 0 }), 'lost'));
    expect(lost).toEqual({ MESSAGE_ID: OVERFLOW_MESSAGE_ID, MESSAGE: 'lost', PRIORITY: '4', SYSLOG_IDENTIFIER: 'fanotify' });
  });

  test('the writer: what journald cannot take now waits and is tried again, up to 1000 (the oldest dropped); what it never can is dropped, and said', () => {
    const said: string[] = [];
    const away = new JournalWriter((m) => said.push(m), '/nonexistent/fanotify-test/socket');  // ENOENT: journald restarting
    for (let i = 0; i < 1002; i++) away.send([['MESSAGE', `entry ${i}`]]);
    expect(away.pending).toBe(1000);
    away.close();
    expect(said).toEqual([
      'journal: more than 1000 entries waiting for journald: dropping the oldest',
      'journal: 1000 entries not written (journald did not take them)',
    ]);
    said.length = 0;
    const never = new JournalWriter((m) => said.push(m), `/tmp/${'x'.repeat(200)}`);  // longer than a socket address can be
    never.send([['MESSAGE', 'x']]);
    expect(never.pending).toBe(0);
    expect(said).toEqual(['journal: an entry could not be sent (ENAMETOOLONG): dropped']);
    never.close();
  });

  test('the writer tries again: an entry sent before anything listens arrives, byte for byte, once something does', async () => {
    const dir = tempDir('dgram');
    const socket = path.join(dir, 'socket');
    const said: string[] = [];
    const w = new JournalWriter((m) => said.push(m), socket);
    const fields: [string, string][] = [['MESSAGE', 'two\nlines'], ['FANOTIFY_CODE', 'EFSCORRUPTED']];
    // A unix datagram receiver (Node has none): prints what it gets as hex.
    const receiver = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(s.recv(65536).hex(), flush=True)`;
    let py: Started | undefined;
    try {
      w.send(fields);
      expect(w.pending).toBe(1);  // ENOENT: nothing there yet
      py = start('python3', ['-c', receiver, socket], bound(10_000));
      const hex = await waitUntil(() => /^([0-9a-f]+)\n/.exec(py!.out())?.[1], 5000, 'the datagram');
      expect(Buffer.from(hex, 'hex')).toEqual(encodeEntry(fields));
      expect(w.pending).toBe(0);
      expect(said).toEqual([]);
    } finally {
      w.close();
      await killAll();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('stdout is the journal when JOURNAL_STREAM names its device and inode', () => {
    const dir = tempDir('stream');
    const fd = fs.openSync(path.join(dir, 'f'), 'w');
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      expect(stdoutIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, fd)).toBe(true);
      expect(stdoutIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }, fd)).toBe(false);
      expect(stdoutIsJournal({}, fd)).toBe(false);
      expect(stdoutIsJournal({ JOURNAL_STREAM: 'junk' }, fd)).toBe(false);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the textfile', () => {
  test('replaced at once: a reader of the old file keeps reading it whole; mode 0644; no temporary file left', async () => {
    const dir = tempDir('textfile');
    const file = path.join(dir, 'm.prom');
    try {
      await writeAtomically(file, 'old 1\n');
      const reader = fs.openSync(file, 'r');
      await writeAtomically(file, 'new 2\n');
      expect(fs.readFileSync(reader, 'utf8')).toBe('old 1\n');
      fs.closeSync(reader);
      expect(fs.readFileSync(file, 'utf8')).toBe('new 2\n');
      expect(fs.statSync(file).mode & 0o777).toBe(0o644 & ~process.umask());
      expect(fs.readdirSync(dir)).toEqual(['m.prom']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('writes that come while one is under way: the file ends with the last; a failed write is reported, and leaves no temporary file', async () => {
    const dir = tempDir('textfile');
    const file = path.join(dir, 'm.prom');
    const errors: Error[] = [];
    try {
      const t = new Textfile(file, (e) => errors.push(e));
      await Promise.all(Array.from({ length: 20 }, (_, i) => t.write(`n ${i}\n`)));
      expect(fs.readFileSync(file, 'utf8')).toBe('n 19\n');
      fs.mkdirSync(path.join(dir, 'sub.prom'));
      const bad = new Textfile(path.join(dir, 'sub.prom'), (e) => errors.push(e));
      await bad.write('x 1\n');  // rename(2) onto a directory: EISDIR
      expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['EISDIR']);
      expect(fs.readdirSync(dir).sort()).toEqual(['m.prom', 'sub.prom']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('--listen and --textfile values', () => {
  test('HOST:PORT, [IPv6]:PORT and :PORT', () => {
    expect(parseListen('127.0.0.1:9942')).toEqual({ host: '127.0.0.1', port: 9942 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen(':9942')).toEqual({ host: '', port: 9942 });
    expect(parseListen('monitor.example:80')).toEqual({ host: 'monitor.example', port: 80 });
    expect(parseListen(undefined)).toBeUndefined();
  });

  test.each([
    ['9942', /no port/], ['::1:9942', /IPv6 address goes in brackets/], ['host:', /port must be a number/],
    ['host:65536', /port must be a number/], ['host:http', /port must be a number/], ['', /needs an address/],
  ])('--listen %j: a usage error naming it', (value, why) => {
    expect(() => parseListen(value)).toThrow(UsageError);
    expect(() => parseListen(value)).toThrow(why);
    expect(() => parseListen(value)).toThrow(`--listen '${value}'`);
  });

  test('--textfile: a .prom file in a directory that exists', () => {
    const dir = tempDir('textfile-arg');
    try {
      expect(parseTextfile(path.join(dir, 'a.prom'))).toBe(path.join(dir, 'a.prom'));
      expect(() => parseTextfile(path.join(dir, 'a.txt'))).toThrow(/must end in \.prom/);
      expect(() => parseTextfile(path.join(dir, 'no', 'a.prom'))).toThrow(/does not exist/);
      fs.writeFileSync(path.join(dir, 'file'), '');
      expect(() => parseTextfile(path.join(dir, 'file', 'a.prom'))).toThrow(/is not a directory/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fanotify errors --listen/--textfile on the command line', () => {
  test.each([
    [['--listen', 'nowhere'], /^fanotify errors: --listen 'nowhere': no port/],
    [['--listen'], /^fanotify errors: option '--listen' needs a value \(HOST:PORT\)/],
    [['--textfile', '/tmp/x.txt'], /^fanotify errors: --textfile '\/tmp\/x.txt': the name must end in \.prom/],
    [['--textfile', '/nonexistent/fanotify/x.prom'], /^fanotify errors: --textfile '\/nonexistent\/fanotify\/x.prom': the directory \/nonexistent\/fanotify does not exist/],
  ])('%j: exit 2, naming the option', async (args, message) => {
    const r = await run(['errors', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  test('a port in use: exit 1, EADDRINUSE and what to do, before anything is watched', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const { port } = busy.address() as net.AddressInfo;
    try {
      const r = await run(['errors', '--listen', `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`fanotify errors: --listen 127.0.0.1:${port}: EADDRINUSE: another process listens there (ss -ltnp shows which): stop it or choose another port\n`);
    } finally {
      busy.close();
    }
  });
});

const FOLLOW_WITH_MOUNTINFO = { FANOTIFY_WITHOUT: 'mountEvents,mntnsMark,reportMount,listmount' };

/** Waits for the monitor to have looked at the mount table once (on a machine with nothing to watch, it says so). */
const ready = (cli: Cli): Promise<true> =>
  cli.waitFor(() => (/watching |no mounted filesystem can report errors/.test(cli.stderr) ? true : undefined), 10_000, 'ready');

const metricsUrl = (cli: Cli): Promise<string> =>
  cli.waitFor(() => /^serving metrics on (\S+)$/m.exec(cli.stderr)?.[1], 5000, 'the metrics URL');

describeRoot('fanotify errors --listen --textfile: filesystems mounted later', () => {
  test.each([
    ['as this kernel follows mounts', {}],
    ['through /proc/self/mountinfo', FOLLOW_WITH_MOUNTINFO],
  ])('appear in /metrics and the textfile at 0, then with their errors; unmounted, they are no longer watched (%s)', async (_, env) => {
    const dir = tempDir('later');
    const file = path.join(dir, 'fanotify.prom');
    const cli = new Cli(['errors', '--listen', '127.0.0.1:0', '--textfile', file], { env: { ...process.env, ...env } });
    let img: LoopImage | undefined;
    try {
      const url = await metricsUrl(cli);
      await ready(cli);
      const res = await fetch(url, { signal: AbortSignal.timeout(bound(5000)) });
      expect(res.headers.get('content-type')).toBe(EXPOSITION_CONTENT_TYPE);
      expect(samplesOf(parseSamples(await res.text()), 'fanotify_up')[0].value).toBe(1);

      img = await LoopImage.create({ mountOptions: ['errors=continue'] });
      const mine = { mountpoint: img.mountPoint, device: img.device, fstype: 'ext4' };
      const scrape = async () => parseSamples(await fetchText(url));
      const seeded = await waitUntil(async () => {
        const s = samplesOf(await scrape(), 'fanotify_fs_errors_total', mine);
        return s.length === SEEDED_CODES.length ? s : undefined;
      }, 10_000, 'the new filesystem in /metrics');
      expect(seeded.every((s) => s.value === 0)).toBe(true);

      await img.triggerError('monitoring test');
      const samples = await waitUntil(async () => {
        const s = await scrape();
        return samplesOf(s, 'fanotify_fs_errors_total', { ...mine, code: 'EFSCORRUPTED' })[0]?.value === 1 ? s : undefined;
      }, 10_000, 'its error in /metrics');
      expect(samplesOf(samples, 'fanotify_fs_last_error_info', mine)[0].labels).toMatchObject({ inode: '', function: 'trigger_test_error' });
      expect(samplesOf(samples, 'fanotify_filesystems_watched')[0].value).toBeGreaterThanOrEqual(1);
      // The textfile says the same (what node_exporter would serve).
      await waitUntil(() => {
        const t = parseSamples(fs.readFileSync(file, 'utf8'));
        return samplesOf(t, 'fanotify_fs_errors_total', { ...mine, code: 'EFSCORRUPTED' })[0]?.value === 1 ? true : undefined;
      }, 5000, 'its error in the textfile');

      const { mountPoint, device } = img;
      await img.dispose();
      img = undefined;
      await cli.waitFor(() => (cli.stderr.includes(`no longer mounted: ext4 ${device} on ${mountPoint} `) ? true : undefined), 10_000, 'unmounted');
      // Its errors stay, for the alert and for whoever looks.
      expect(samplesOf(await scrape(), 'fanotify_fs_errors_total', { mountpoint: mountPoint, code: 'EFSCORRUPTED' })[0].value).toBe(1);

      cli.child.kill('SIGINT');
      expect(await cli.exit()).toEqual({ code: 0, signal: null });
      expect(samplesOf(parseSamples(fs.readFileSync(file, 'utf8')), 'fanotify_up')[0].value).toBe(0);
      expect(fs.readdirSync(dir)).toEqual(['fanotify.prom']);
    } finally {
      await cli.kill();
      await img?.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // systemd's ProtectSystem= runs a service in a mount namespace of its own,
  // a slave of the host's (shared, under systemd) tree, with the mounts made
  // read-only: mounts made on the host later must still reach the monitor.
  test.each([
    ['as this kernel follows mounts', {}],
    ['through /proc/self/mountinfo', FOLLOW_WITH_MOUNTINFO],
  ])('sandboxed like the example unit (a slave mount namespace, / read-only): a filesystem mounted later on the host is watched (%s)', async (_, env) => {
    // A shared mount stands for the host's shared tree (this machine's / may be private).
    const shared = tempDir('shared');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'fanotify-test-shared', shared]);
    execFileSync('mount', ['--make-shared', shared]);
    const sandbox = ['unshare', '--mount', '--propagation', 'slave', 'sh', '-c', 'mount -o remount,bind,ro / && exec "$@"', 'sh'];
    const cli = new Cli(['errors', '--listen', '127.0.0.1:0'], { env: { ...process.env, ...env } }, sandbox);
    let img: LoopImage | undefined;
    try {
      const url = await metricsUrl(cli);
      await ready(cli);
      img = await LoopImage.create({ mountOptions: ['errors=continue'], dir: shared });
      await cli.watching(img.mountPoint, 10_000);
      await img.triggerError('sandboxed');
      const mine = { mountpoint: img.mountPoint, device: img.device, code: 'EFSCORRUPTED' };
      await waitUntil(async () => (samplesOf(parseSamples(await fetchText(url)), 'fanotify_fs_errors_total', mine)[0]?.value === 1 ? true : undefined),
        10_000, 'its error in /metrics');
      cli.child.kill('SIGTERM');
      expect(await cli.exit()).toEqual({ code: 0, signal: null });
    } finally {
      await cli.kill();  // the namespace goes with it, and its copies of the mounts
      await img?.dispose();
      try { execFileSync('umount', [shared]); } catch { execFileSync('umount', ['-l', shared]); }
      fs.rmSync(shared, { recursive: true, force: true });
    }
  });

  test('/metrics only: other paths 404, HEAD has no body', async () => {
    const cli = new Cli(['errors', '--listen', '127.0.0.1:0']);
    try {
      const url = await metricsUrl(cli);
      expect((await fetch(new URL('/other', url), { signal: AbortSignal.timeout(bound(5000)) })).status).toBe(404);
      const head = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(bound(5000)) });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
      expect((await fetch(url, { method: 'POST', signal: AbortSignal.timeout(bound(5000)) })).status).toBe(405);
    } finally {
      await cli.kill();
    }
  });
});
