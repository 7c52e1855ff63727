// fanotify errors [PATH...]: the filesystem health monitor (FAN_FS_ERROR).
import {
  Command, CommandContext, describeMountMechanism, isPermissionError, JSON_OPTION, NeedsPrivilege, oneLine, OVERFLOW_TEXT, VERBOSE_OPTION,
} from './command';
import { FS_ERROR_MESSAGE_ID, journalFields, journalMissing, JournalWriter, stdoutIsJournal } from './journal';
import { ErrorMetrics, SEEDED_CODES } from './metrics';
import { MetricsServer, parseListen, serveMetrics } from './metrics-server';
import { parseTextfile, Textfile, writeAtomically } from './textfile';
import { ErrorFilesystem, ErrorWatcher, FsErrorEvent, watchErrors } from '../index';
import { has, lacks } from '../kernel/capabilities';

function describeFs(f: ErrorFilesystem): string {
  if (!f.mountPoint) return `filesystem fsid ${f.fsid}`;
  return `${f.type || 'unknown'} ${f.source || 'none'} on ${f.mountPoint}`;
}

/** FsErrorEvent as plain JSON: time ISO, ino decimal string, handle hex. */
export function errorEventToJson(e: FsErrorEvent): Record<string, unknown> {
  if (e.overflow) return { time: e.time.toISOString(), overflow: true, errno: e.errno, code: e.code, count: e.count };
  const out: Record<string, unknown> = {
    time: e.time.toISOString(),
    errno: e.errno,
    code: e.code,
    count: e.count,
    filesystem: { fsid: e.filesystem.fsid, mountPoint: e.filesystem.mountPoint, source: e.filesystem.source, type: e.filesystem.type },
  };
  if (e.inode) {
    const inode: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e.inode)) {
      if (v === undefined) continue;
      inode[k] = Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'bigint' ? v.toString() : v;
    }
    out.inode = inode;
  }
  if (e.detail) out.detail = { ...e.detail };
  return out;
}

// ext4 still counts the lost errors: where to look.
const ERRORS_LOST = `${OVERFLOW_TEXT} (ext4 still counts lost errors in /sys/fs/ext4/*/errors_count)`;

/**
 * One readable line:
 * `2026-11-22T02:46:48.746Z EFSCORRUPTED (117) x1 ext4 /dev/loop0 on /mnt: inode 13 gen 2938 [/mnt/dir/bad] at ext4_lookup:1787`
 */
export function formatErrorEvent(e: FsErrorEvent): string {
  if (e.overflow) return `${e.time.toISOString()} ${ERRORS_LOST}`;
  let line = `${e.time.toISOString()} ${e.code} (${e.errno}) x${e.count} ${describeFs(e.filesystem)}: `;
  if (e.inode) {
    const i = e.inode;
    line += i.ino !== undefined
      ? `inode ${i.ino}${i.generation !== undefined ? ` gen ${i.generation}` : ''}`
      : `inode handle ${i.handleType}:${i.handle.toString('hex')}`;
    if (i.path) line += ` [${i.path}]`;
  } else {
    line += 'filesystem';
  }
  const d = e.detail;
  if (d) {
    if (d.function) line += ` at ${d.function}${d.line !== undefined ? `:${d.line}` : ''}`;
    const extra: string[] = [];
    if (d.inode !== undefined && (e.inode?.ino === undefined || BigInt(d.inode) !== e.inode.ino)) extra.push(`inode ${d.inode}`);
    if (d.block !== undefined) extra.push(`block ${d.block}`);
    if (d.errcode && d.errcode !== e.code) extra.push(`ext4 ${d.errcode}`);
    if (extra.length) line += ` (${extra.join(', ')})`;
  }
  return line;
}

/** The fleet outputs asked for: Prometheus (HTTP, textfile) and the journal. */
interface Outputs {
  metrics: ErrorMetrics | null;
  server: MetricsServer | null;
  textfile: Textfile | null;
  journal: JournalWriter | null;
  /** stdout is the journal: the structured entry replaces the line. */
  stdoutIsJournal: boolean;
}

// The textfile is rewritten at least this often, even when nothing changed:
// its mtime (node_textfile_mtime_seconds) tells that the monitor is alive.
const TEXTFILE_HEARTBEAT_MS = 30_000;

async function run(ctx: CommandContext): Promise<number> {
  const { args, signal, out, err } = ctx;
  const json = args.options.json === true;
  const verbose = args.options.verbose === true;
  const paths = args.positionals.length ? args.positionals : undefined;
  // The command line first (exit 2), then what can fail here (exit 1), before any mark.
  const listen = parseListen(args.options.listen);
  const textfilePath = parseTextfile(args.options.textfile);
  const toJournal = stdoutIsJournal();
  const o: Outputs = { metrics: null, server: null, textfile: null, journal: null, stdoutIsJournal: toJournal };
  if (args.options.journal === true || toJournal) {
    const missing = journalMissing();
    if (missing) throw new Error(`--journal: ${missing}`);
    o.journal = new JournalWriter(err);
  }
  if (listen || textfilePath) o.metrics = new ErrorMetrics();
  let watcher: ErrorWatcher | undefined;
  let poll: NodeJS.Timeout | undefined;
  let textfileWritten = 0;
  let lastText = '';
  const writeTextfile = async (force: boolean): Promise<void> => {
    if (!o.textfile || !o.metrics) return;
    const text = o.metrics.render();
    if (!force && text === lastText && Date.now() - textfileWritten < TEXTFILE_HEARTBEAT_MS) return;
    lastText = text;
    textfileWritten = Date.now();
    await o.textfile.write(text);
  };
  try {
    if (listen) {
      o.server = await serveMetrics(listen, () => o.metrics!.render());
      err(`serving metrics on ${o.server.url}`);
    }
    try {
      watcher = watchErrors({ paths, signal, resolvePaths: args.options['resolve-paths'] === true });
    } catch (e) {
      if (isPermissionError(e)) throw new NeedsPrivilege(e);
      throw e;
    }
    const w = watcher;
    // What stderr has said is watched (by fsid) and skipped: filesystems come
    // and go (unmounted, mounted again), and each change is said once.
    const shown = new Map<string, ErrorFilesystem>();
    const shownSkipped = new Set<object>();
    const announce = (): void => {
      const now = new Map(w.filesystems.map((f) => [f.fsid, f]));
      for (const [fsid, f] of shown) {
        if (now.has(fsid)) continue;
        shown.delete(fsid);
        err(`no longer mounted: ${describeFs(f)} (fsid ${fsid}); watched again when it is mounted again`);
      }
      for (const [fsid, f] of now) {
        if (shown.has(fsid)) continue;
        shown.set(fsid, { ...f });
        err(`watching ${describeFs(f)} (fsid ${fsid})`);
      }
      for (const s of w.skipped) {
        if (shownSkipped.has(s)) continue;
        shownSkipped.add(s);
        if (verbose) err(`skipping ${s.type} ${s.source} on ${s.mountPoint}: ${s.code}: ${s.reason}`);
      }
      o.metrics?.update(w.filesystems, w.skipped);
      void writeTextfile(false);
    };
    // Mounts come and go; the watcher follows them.
    poll = setInterval(announce, 250);
    poll.unref();
    announce();
    if (textfilePath) {
      // The first write says whether the file can be written at all (exit 1 if not).
      lastText = o.metrics!.render();
      try {
        await writeAtomically(textfilePath, lastText);
      } catch (e) {
        throw new Error(`--textfile ${textfilePath}: ${oneLine(e)}`);
      }
      textfileWritten = Date.now();
      o.textfile = new Textfile(textfilePath, (e) => err(`--textfile ${textfilePath}: ${oneLine(e)} (tried again at the next change)`));
    }
    if (w.mountMechanism && verbose) err(describeMountMechanism(w.mountMechanism));
    if (w.filesystems.length === 0) {
      const denied = w.skipped.find((s) => s.code === 'EPERM');
      if (denied) throw new NeedsPrivilege(new Error(`${denied.code}: ${denied.reason}`));
      // Nothing tried a mark yet (no filesystem with a device): whether one
      // could be placed later. Unknown means no privilege to ask.
      if (!has('filesystemMark') && !lacks('filesystemMark'))
        throw new NeedsPrivilege(new Error('EPERM: filesystem marks need CAP_SYS_ADMIN'));
      err('no mounted filesystem can report errors (yet); waiting for new mounts');
    }
    for await (const e of w) {
      const line = formatErrorEvent(e);
      if (!o.stdoutIsJournal) out(json ? JSON.stringify(errorEventToJson(e)) : line);
      o.journal?.send(journalFields(e, line));
      o.metrics?.record(e);
      void writeTextfile(false);
    }
  } catch (e) {
    if (!signal.aborted) throw e;
  } finally {
    if (poll) clearInterval(poll);
    await watcher?.close();
    await o.server?.close();
    o.journal?.close();
    if (o.textfile && o.metrics) {
      // Left for node_exporter: the last counts, and that nobody watches any more.
      o.metrics.stopped();
      await writeTextfile(true);
    }
  }
  return 0;
}

export const errorsCommand: Command = {
  name: 'errors',
  usage: '[PATH...] [--json] [--resolve-paths] [--listen HOST:PORT] [--textfile PATH] [--journal] [--verbose]',
  summary: 'filesystem health monitor (FAN_FS_ERROR): one line per error; no PATH: every filesystem, and later mounts',
  maxPositionals: Infinity,
  options: [
    JSON_OPTION,
    { name: 'resolve-paths', help: 'look up the path of the inode (open_by_handle_at; may add one error of its own on ext4)' },
    { name: 'listen', value: 'HOST:PORT', help: 'serve Prometheus metrics at http://HOST:PORT/metrics (:PORT every interface, port 0 any)' },
    { name: 'textfile', value: 'PATH', help: "keep PATH (*.prom) for node_exporter's textfile collector (written atomically)" },
    { name: 'journal', help: 'a structured journal entry per error (automatic when stdout is the journal)' },
    { ...VERBOSE_OPTION, help: 'also list the filesystems not watched, with the reason' },
  ],
  help: [
    'examples:',
    '  fanotify errors                      every filesystem, and those mounted later',
    '  fanotify errors --json /data /srv    two filesystems, as JSON lines',
    '  fanotify errors --listen :9942       Prometheus scrapes http://HOST:9942/metrics',
    '  fanotify errors --textfile /var/lib/prometheus/node-exporter/fanotify.prom',
    '                                       node_exporter serves the same series',
    '  fanotify errors --journal            then: journalctl MESSAGE_ID=' + FS_ERROR_MESSAGE_ID,
    '',
    'metrics (--listen, --textfile):',
    '  fanotify_fs_errors_total{device,mountpoint,fstype,fsid,code}  (from 0 for ' + SEEDED_CODES.join(' ') + ')',
    '  fanotify_fs_last_error_timestamp_seconds{device,mountpoint,fstype,fsid}',
    '  fanotify_fs_last_error_info{device,mountpoint,fstype,fsid,code,inode,function,line} 1',
    '  fanotify_filesystems_watched, fanotify_filesystems_skipped{mountpoint,fstype,reason},',
    '  fanotify_queue_overflows_total, fanotify_up',
    'journal entries (--journal): MESSAGE_ID=' + FS_ERROR_MESSAGE_ID + ', PRIORITY=3, ERRNO,',
    '  FANOTIFY_CODE, _COUNT, _FSID, _DEVICE, _MOUNT_POINT, _FSTYPE, _INODE, _FUNCTION, _LINE.',
    '  Under systemd (stdout is the journal: JOURNAL_STREAM) each error is such an entry, not a line.',
    'A systemd unit and Prometheus alert rules: examples/ in the package.',
  ],
  run,
};
