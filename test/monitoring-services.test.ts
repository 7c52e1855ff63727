// `fanotify errors` with the services a fleet runs, each a real one started
// here: Debian's Prometheus scraping --listen (and firing the example alert
// on a corrupted image), node_exporter serving --textfile, a systemd-journald
// of its own receiving --journal, promtool checking the metrics and the alert
// rules, and systemd-analyze the example unit. .ci/run installs them.
//
// Every server is killed in `finally` (children.ts also kills what is left
// after each test), every LoopImage disposed after the monitor is gone, every
// temporary directory removed. The journald runs in a mount and PID
// namespace of its own: its sockets, its journal and its configuration live
// on a tmpfs there, so nothing of this machine's /run or /var/log is touched,
// and everything in it dies with the namespace.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { parseArgs } from '../lib/cli/command';
import { errorsCommand } from '../lib/cli/errors';
import { FS_ERROR_MESSAGE_ID } from '../lib/cli/journal';
import { LoopImage } from '../lib/testing';
import { killAll, start, Started } from './children';
import { Cli } from './cli-process';
import { bound, within } from './helpers';
import { describeServices, fetchText, findProgram, freePort, parseSamples, samplesOf, waitUntil } from './monitoring-helpers';

jest.setTimeout(bound(60_000));
afterEach(killAll);

const ROOT = path.join(__dirname, '..');
const ALERTS = path.join(ROOT, 'examples', 'fanotify-alerts.yml');
const UNIT = path.join(ROOT, 'examples', 'fanotify-errors.service');
const FSID = /^[0-9a-f]{8}:[0-9a-f]{8}$/;

/** With FANOTIFY_TRANSCRIPTS=DIR, what the services said is kept there (for a release note). */
function transcript(name: string, text: string): void {
  const dir = process.env.FANOTIFY_TRANSCRIPTS;
  if (dir) fs.writeFileSync(path.join(dir, name), text);
}

/** A mounted ext4 image with a directory whose inode is corrupt: reading it makes ext4 report EFSCORRUPTED. */
async function corruptedImage(): Promise<{ img: LoopImage; bad: string; ino: number }> {
  const img = await LoopImage.create({ mountOptions: ['errors=continue'], files: { 'dir/bad/f': 'x' } });
  const bad = path.join(img.mountPoint, 'dir', 'bad');
  const ino = fs.statSync(bad).ino;
  await img.corruptInode('dir/bad');  // unmounts and mounts again: before any monitor starts
  return { img, bad, ino };
}

/** Reads the corrupt directory: ext4 reports an error. */
function readCorrupt(bad: string): void {
  expect(() => fs.readdirSync(bad)).toThrow(/-117|EUCLEAN|EFSCORRUPTED/);
}

/** The URL the monitor says it serves its metrics on. */
const metricsUrl = (cli: Cli): Promise<string> =>
  cli.waitFor(() => /^serving metrics on (\S+)$/m.exec(cli.stderr)?.[1], 5000, 'the metrics URL');

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `fanotify-${prefix}-`));
}

describeServices([{ name: 'promtool', pkg: 'prometheus' }], 'promtool', () => {
  test('check rules: the example alert rules are valid', () => {
    const r = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toContain('SUCCESS: 5 rules found');
    expect(r.status).toBe(0);
  });

  test('test rules: each alert fires when it should, with its labels and text (test/fixtures/fanotify-alerts.test.yml)', () => {
    const r = spawnSync('promtool', ['test', 'rules', 'fanotify-alerts.test.yml'], { cwd: path.join(__dirname, 'fixtures'), encoding: 'utf8' });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  test("check metrics: the monitor's /metrics, with an error in it, passes Prometheus's linter", async () => {
    const { img, bad } = await corruptedImage();
    const cli = new Cli(['errors', '--listen', '127.0.0.1:0', img.mountPoint]);
    try {
      const url = await metricsUrl(cli);
      await cli.watching(img.mountPoint);
      readCorrupt(bad);
      const text = await waitUntil(async () => {
        const t = await fetchText(url);
        return t.includes('fanotify_fs_last_error_info{') ? t : undefined;
      }, 5000, 'the error in /metrics');
      const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      await cli.kill();
      await img.dispose();
    }
  });
});

describeServices([{ name: 'prometheus', pkg: 'prometheus' }], 'Prometheus scrapes fanotify errors --listen', () => {
  test('the error series of a corrupted image, with its labels and count, and the FilesystemError alert firing', async () => {
    const { img, bad, ino } = await corruptedImage();
    const dir = tempDir('prometheus');
    const cli = new Cli(['errors', '--listen', '127.0.0.1:0', img.mountPoint]);
    let prometheus: Started | undefined;
    try {
      const target = new URL(await metricsUrl(cli)).host;
      await cli.watching(img.mountPoint);
      const port = await freePort();
      fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: [${JSON.stringify(ALERTS)}]`,
        'scrape_configs:',
        `  - { job_name: fanotify, static_configs: [ { targets: [${JSON.stringify(target)}] } ] }`,
        '',
      ].join('\n'));
      prometheus = start('prometheus', [
        `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
      ], bound(120_000));
      const api = `http://127.0.0.1:${port}`;
      const query = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> =>
        JSON.parse(await fetchText(`${api}/api/v1/query?query=${encodeURIComponent(q)}`)).data.result;
      const selector = `mountpoint=${JSON.stringify(img.mountPoint)}`;

      // Scraped at 0 first: the alert sees the error as an increase.
      const seeded = await waitUntil(async () => {
        const r = await query(`fanotify_fs_errors_total{${selector}}`);
        return r.length > 0 ? r : undefined;
      }, 30_000, 'the seeded series in Prometheus');
      expect(seeded.map((s) => s.metric.code).sort()).toEqual(['EFSBADCRC', 'EFSCORRUPTED', 'EIO', 'ESHUTDOWN']);
      expect(seeded.every((s) => s.value[1] === '0')).toBe(true);

      readCorrupt(bad);
      const [errors] = await waitUntil(async () => {
        const r = await query(`fanotify_fs_errors_total{${selector},code="EFSCORRUPTED"} > 0`);
        return r.length > 0 ? r : undefined;
      }, 10_000, 'the error in Prometheus');
      expect(errors.metric).toEqual({
        __name__: 'fanotify_fs_errors_total', job: 'fanotify', instance: target,
        device: img.device, mountpoint: img.mountPoint, fstype: 'ext4', fsid: expect.stringMatching(FSID), code: 'EFSCORRUPTED',
      });
      expect(Number(errors.value[1])).toBeGreaterThanOrEqual(1);
      const [info] = await query(`fanotify_fs_last_error_info{${selector}}`);
      expect(info.metric).toMatchObject({ code: 'EFSCORRUPTED', inode: String(ino), function: 'ext4_lookup', line: expect.stringMatching(/^\d+$/) });
      const [time] = await query(`fanotify_fs_last_error_timestamp_seconds{${selector}}`);
      expect(Math.abs(Number(time.value[1]) - Date.now() / 1000)).toBeLessThan(bound(60));
      expect((await query('fanotify_up'))[0].value[1]).toBe('1');
      expect((await query('fanotify_filesystems_watched'))[0].value[1]).toBe('1');

      const firing = await waitUntil(async () => {
        const alerts = JSON.parse(await fetchText(`${api}/api/v1/alerts`)).data.alerts as
          { labels: Record<string, string>; annotations: Record<string, string>; state: string }[];
        return alerts.find((a) => a.labels.alertname === 'FilesystemError' && a.state === 'firing') ? alerts : undefined;
      }, 20_000, 'FilesystemError firing');
      const alert = firing.find((a) => a.labels.alertname === 'FilesystemError')!;
      expect(alert.labels).toMatchObject({ severity: 'critical', code: 'EFSCORRUPTED', device: img.device, mountpoint: img.mountPoint, fstype: 'ext4', job: 'fanotify' });
      expect(alert.annotations.summary).toBe(`EFSCORRUPTED on ${img.mountPoint} (ext4 ${img.device}) of ${target}`);
      expect(firing.filter((a) => a.state === 'firing').map((a) => a.labels.alertname)).toEqual(['FilesystemError']);

      transcript('prometheus-query.json', JSON.stringify({ errors, info, time }, null, 2));
      transcript('prometheus-alerts.json', JSON.stringify(firing, null, 2));
      transcript('metrics.txt', await fetchText(`http://${target}/metrics`));
    } finally {
      prometheus?.child.kill('SIGKILL');
      await prometheus?.result;
      await cli.kill();
      await img.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, bound(90_000));
});

describeServices([{ name: 'prometheus-node-exporter', pkg: 'prometheus-node-exporter' }], "node_exporter's textfile collector serves --textfile", () => {
  test('the same series, the file written atomically, and up 0 left behind when the monitor stops', async () => {
    const { img, bad, ino } = await corruptedImage();
    const dir = tempDir('textfile');
    const file = path.join(dir, 'fanotify.prom');
    const cli = new Cli(['errors', '--textfile', file, img.mountPoint]);
    let exporter: Started | undefined;
    try {
      await cli.watching(img.mountPoint);
      const port = await freePort();
      exporter = start('prometheus-node-exporter', [
        `--web.listen-address=127.0.0.1:${port}`, '--collector.disable-defaults', '--collector.textfile',
        `--collector.textfile.directory=${dir}`,
      ], bound(60_000));
      const scrape = async () => parseSamples(await fetchText(`http://127.0.0.1:${port}/metrics`));
      const mine = { mountpoint: img.mountPoint, device: img.device, fstype: 'ext4' };

      readCorrupt(bad);
      const samples = await waitUntil(async () => {
        const s = await scrape();
        return samplesOf(s, 'fanotify_fs_errors_total', { ...mine, code: 'EFSCORRUPTED' })[0]?.value >= 1 ? s : undefined;
      }, 10_000, 'the error in node_exporter');
      expect(samplesOf(samples, 'node_textfile_scrape_error')[0].value).toBe(0);  // the file parsed
      expect(samplesOf(samples, 'fanotify_fs_errors_total', mine).map((s) => s.labels.code).sort())
        .toEqual(['EFSBADCRC', 'EFSCORRUPTED', 'EIO', 'ESHUTDOWN']);
      expect(samplesOf(samples, 'fanotify_fs_errors_total', mine)[0].labels.fsid).toMatch(FSID);
      expect(samplesOf(samples, 'fanotify_fs_last_error_info', mine)[0].labels).toMatchObject({ inode: String(ino), function: 'ext4_lookup' });
      expect(samplesOf(samples, 'fanotify_up')[0].value).toBe(1);
      expect(samplesOf(samples, 'fanotify_filesystems_watched')[0].value).toBe(1);
      transcript('node-exporter.txt', (await fetchText(`http://127.0.0.1:${port}/metrics`)).split('\n')
        .filter((l) => /fanotify|node_textfile/.test(l)).join('\n'));

      cli.child.kill('SIGTERM');
      expect(await cli.exit()).toEqual({ code: 0, signal: null });
      const left = parseSamples(fs.readFileSync(file, 'utf8'));
      expect(samplesOf(left, 'fanotify_up')[0].value).toBe(0);
      expect(samplesOf(left, 'fanotify_filesystems_watched')[0].value).toBe(0);
      expect(samplesOf(left, 'fanotify_fs_errors_total', { ...mine, code: 'EFSCORRUPTED' })[0].value).toBeGreaterThanOrEqual(1);
      expect(fs.readdirSync(dir)).toEqual(['fanotify.prom']);  // no temporary file left
      expect(samplesOf(await scrape(), 'fanotify_up')[0].value).toBe(0);
    } finally {
      exporter?.child.kill('SIGKILL');
      await exporter?.result;
      await cli.kill();
      await img.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A systemd-journald of its own, in a mount namespace: a tmpfs on /run (its
 * sockets, a volatile journal, a configuration that reads no kernel log and
 * forwards nothing), and on /var/log/journal. Without the audit
 * capabilities, so that it cannot switch the kernel's auditing on. It dies
 * with the namespace's shell (PR_SET_PDEATHSIG), which dies with unshare
 * (--kill-child): killing unshare ends it all.
 */
class PrivateJournal {
  readonly ns: Started;
  /** The namespace's shell: `nsenter -t` it to be in the namespace. */
  shellPid = 0;
  journaldPid = 0;

  constructor() {
    const script = `
      set -e
      mount -t tmpfs -o mode=0755 fanotify-test-run /run
      if [ -d /var/log/journal ]; then mount -t tmpfs -o mode=0755 fanotify-test-journal /var/log/journal; fi
      mkdir -p /run/systemd/journal /run/systemd/journald.conf.d /run/log/journal
      printf '[Journal]\\nStorage=volatile\\nReadKMsg=no\\nForwardToSyslog=no\\nForwardToKMsg=no\\nForwardToConsole=no\\nForwardToWall=no\\n' \\
        >/run/systemd/journald.conf.d/fanotify-test.conf
      setpriv --pdeathsig KILL --bounding-set=-audit_control,-audit_read,-audit_write /lib/systemd/systemd-journald &
      while [ ! -S /run/systemd/journal/socket ] || [ ! -S /run/systemd/journal/stdout ]; do sleep 0.05; done
      echo "ready $$ $!"
      wait`;
    this.ns = start('unshare', ['--mount', '--propagation', 'private', '--fork', '--kill-child', 'sh', '-c', script], bound(120_000));
  }

  async ready(): Promise<void> {
    await within(10_000, (async () => {
      while (!/^ready \d+ \d+$/m.test(this.ns.out())) {
        if (!this.ns.running()) throw new Error(`the journal's namespace ended: ${(await this.ns.result).stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    })(), 'systemd-journald');
    const [, shell, journald] = /^ready (\d+) (\d+)$/m.exec(this.ns.out())!;
    this.shellPid = Number(shell);
    this.journaldPid = Number(journald);
  }

  /** A command line that runs the rest in the namespace (nsenter execs it: same process). */
  get enter(): string[] {
    return ['nsenter', '-t', String(this.shellPid), '-m'];
  }

  /** journalctl -o json of the private journal, one object per entry. */
  entries(...matches: string[]): Record<string, string>[] {
    const out = execFileSync('nsenter', [...this.enter.slice(1), 'journalctl', '-D', '/run/log/journal', '-o', 'json', '--no-pager', ...matches],
      { encoding: 'utf8', timeout: bound(10_000) });
    return out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
  }

  async close(): Promise<void> {
    this.ns.child.kill('SIGKILL');
    await within(5000, this.ns.result, 'the journal namespace ending').catch(() => undefined);
    if (this.journaldPid === 0) return;
    await within(5000, (async () => {
      while (fs.existsSync(`/proc/${this.journaldPid}`) && !/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${this.journaldPid}/stat`, 'utf8'))) {
        await new Promise((r) => setTimeout(r, 50));
      }
    })(), 'systemd-journald ending').catch(() => process.kill(this.journaldPid, 'SIGKILL'));
  }
}

describeServices([
  { name: '/lib/systemd/systemd-journald', pkg: 'systemd' }, { name: 'journalctl', pkg: 'systemd' }, { name: 'systemd-cat', pkg: 'systemd' },
], 'systemd-journald receives fanotify errors --journal', () => {
  test('one structured entry per error (MESSAGE_ID, PRIORITY=err, the fields), explicitly and when stdout is the journal', async () => {
    const { img, bad, ino } = await corruptedImage();
    const journal = new PrivateJournal();
    let cli: Cli | undefined;
    try {
      await journal.ready();
      // --journal, stdout elsewhere: the entry, and the line on stdout too.
      cli = new Cli(['errors', '--journal', img.mountPoint], {}, journal.enter);
      const c = cli;
      await c.watching(img.mountPoint);
      readCorrupt(bad);
      await c.waitFor(() => c.lines[0], 5000, 'the line on stdout');
      const [entry] = await waitUntil(() => {
        const e = journal.entries(`MESSAGE_ID=${FS_ERROR_MESSAGE_ID}`);
        return e.length > 0 ? e : undefined;
      }, 5000, 'the entry in the journal');
      expect(entry).toMatchObject({
        MESSAGE_ID: FS_ERROR_MESSAGE_ID, PRIORITY: '3', SYSLOG_IDENTIFIER: 'fanotify', MESSAGE: c.lines[0],
        ERRNO: '117', FANOTIFY_CODE: 'EFSCORRUPTED', FANOTIFY_COUNT: expect.stringMatching(/^[1-9]\d*$/),
        FANOTIFY_FSID: expect.stringMatching(FSID), FANOTIFY_DEVICE: img.device, FANOTIFY_MOUNT_POINT: img.mountPoint,
        FANOTIFY_FSTYPE: 'ext4', FANOTIFY_INODE: String(ino), FANOTIFY_INODE_GENERATION: expect.stringMatching(/^\d+$/),
        FANOTIFY_FUNCTION: 'ext4_lookup', FANOTIFY_LINE: expect.stringMatching(/^\d+$/),
        _TRANSPORT: 'journal', _COMM: 'node',  // sent by the monitor itself: journald knows who sent it
      });
      transcript('journal-entry.json', JSON.stringify(entry, null, 2));
      c.child.kill('SIGINT');
      expect(await c.exit()).toEqual({ code: 0, signal: null });
      const before = journal.entries(`MESSAGE_ID=${FS_ERROR_MESSAGE_ID}`).length;

      // As systemd runs a service: stdout and stderr are a journal stream, and JOURNAL_STREAM says which.
      const stream = ['systemd-cat', '-t', 'fanotify-test', 'sh', '-c', 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/$$/fd/1) exec "$@"', 'sh'];
      cli = new Cli(['errors', img.mountPoint], {}, [...journal.enter, ...stream]);
      const c2 = cli;
      await waitUntil(() => (journal.entries('SYSLOG_IDENTIFIER=fanotify-test')
        .some((e) => e.MESSAGE.startsWith(`watching ext4 ${img.device} on ${img.mountPoint} `)) ? true : undefined), 10_000, 'stderr in the journal');
      readCorrupt(bad);
      const entries = await waitUntil(() => {
        const e = journal.entries(`MESSAGE_ID=${FS_ERROR_MESSAGE_ID}`);
        return e.length > before ? e : undefined;
      }, 5000, 'the entry of the monitor whose stdout is the journal');
      expect(entries[before]).toMatchObject({ FANOTIFY_CODE: 'EFSCORRUPTED', FANOTIFY_MOUNT_POINT: img.mountPoint, _TRANSPORT: 'journal' });
      // The entry instead of the line: nothing about the error came through the stream.
      expect(journal.entries('SYSLOG_IDENTIFIER=fanotify-test').filter((e) => e.MESSAGE.includes('EFSCORRUPTED'))).toEqual([]);
      expect(c2.stdout).toBe('');
      c2.child.kill('SIGTERM');
      expect(await c2.exit()).toEqual({ code: 0, signal: null });
    } finally {
      await cli?.kill();
      await journal.close();
      await img.dispose();
    }
  });

  test('values with a newline go in the binary-safe form; --journal without a journald: exit 1, saying so', async () => {
    const journal = new PrivateJournal();
    try {
      await journal.ready();
      const send = `
        const { JournalWriter } = require(${JSON.stringify(path.join(ROOT, 'dist', 'cli', 'journal.js'))});
        const w = new JournalWriter((m) => { console.error(m); process.exitCode = 1; });
        w.send([['MESSAGE_ID', '0f0e0d0c0b0a09080706050403020100'], ['MESSAGE', 'two\\nlines'], ['FANOTIFY_MOUNT_POINT', '/mnt/a=b\\nc']]);
        w.close();`;
      execFileSync(journal.enter[0], [...journal.enter.slice(1), process.execPath, '-e', send], { stdio: ['ignore', 'inherit', 'inherit'], timeout: bound(10_000) });
      const [entry] = await waitUntil(() => {
        const e = journal.entries('MESSAGE_ID=0f0e0d0c0b0a09080706050403020100');
        return e.length > 0 ? e : undefined;
      }, 5000, 'the entry');
      expect(entry).toMatchObject({ MESSAGE: 'two\nlines', FANOTIFY_MOUNT_POINT: '/mnt/a=b\nc' });
    } finally {
      await journal.close();
    }
    // A namespace where nothing listens at /run/systemd/journal/socket.
    const cli = new Cli(['errors', '--journal', '/'], {}, ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs fanotify-test-run /run && exec "$@"', 'sh']);
    try {
      expect((await cli.exit()).code).toBe(1);
      expect(cli.stderr).toMatch(/^fanotify errors: --journal: ENOENT: no systemd-journald listens at \/run\/systemd\/journal\/socket\n$/);
    } finally {
      await cli.kill();
    }
  });
});

describeServices([{ name: 'systemd-analyze', pkg: 'systemd' }], 'the example unit file', () => {
  test('systemd-analyze verify accepts it, without a warning', () => {
    // An alternative root holding the system's units, the unit and a stand-in
    // for the installed command (verify checks that ExecStart= exists).
    const root = tempDir('unit');
    try {
      fs.cpSync('/lib/systemd/system', path.join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
      fs.mkdirSync(path.join(root, 'etc/systemd/system'), { recursive: true });
      fs.copyFileSync(UNIT, path.join(root, 'etc/systemd/system/fanotify-errors.service'));
      const exec = /^ExecStart=(\S+)/m.exec(fs.readFileSync(UNIT, 'utf8'))![1];
      fs.mkdirSync(path.join(root, path.dirname(exec)), { recursive: true });
      fs.writeFileSync(path.join(root, exec), '#!/bin/sh\n', { mode: 0o755 });
      const r = spawnSync(findProgram('systemd-analyze')!, ['verify', `--root=${root}`, 'fanotify-errors.service'], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test('its ExecStart= lines (the one in force and the one in the comment) are command lines fanotify errors takes', () => {
    const lines = [...fs.readFileSync(UNIT, 'utf8').matchAll(/^#?ExecStart=\S+ errors (.*)$/gm)].map((m) => m[1]);
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(() => parseArgs(l.split(' '), errorsCommand)).not.toThrow();
  });
});
