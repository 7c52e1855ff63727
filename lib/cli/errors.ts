// fanotify errors [PATH...]: the filesystem health monitor (FAN_FS_ERROR).
import {
  Command, CommandContext, describeMountMechanism, isPermissionError, JSON_OPTION, NeedsPrivilege, OVERFLOW_TEXT, VERBOSE_OPTION,
} from './command';
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

async function run(ctx: CommandContext): Promise<number> {
  const { args, signal, out, err } = ctx;
  const json = args.options.json === true;
  const verbose = args.options.verbose === true;
  const paths = args.positionals.length ? args.positionals : undefined;
  let watcher: ErrorWatcher;
  try {
    watcher = watchErrors({ paths, signal, resolvePaths: args.options['resolve-paths'] === true });
  } catch (e) {
    if (isPermissionError(e)) throw new NeedsPrivilege(e);
    throw e;
  }
  // What stderr has said is watched (by fsid) and skipped: filesystems come
  // and go (unmounted, mounted again), and each change is said once.
  const shown = new Map<string, ErrorFilesystem>();
  const shownSkipped = new Set<object>();
  const announce = (): void => {
    const now = new Map(watcher.filesystems.map((f) => [f.fsid, f]));
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
    for (const s of watcher.skipped) {
      if (shownSkipped.has(s)) continue;
      shownSkipped.add(s);
      if (verbose) err(`skipping ${s.type} ${s.source} on ${s.mountPoint}: ${s.code}: ${s.reason}`);
    }
  };
  // Mounts come and go; the watcher follows them.
  const poll = setInterval(announce, 250);
  poll.unref();
  try {
    announce();
    if (watcher.mountMechanism && verbose) err(describeMountMechanism(watcher.mountMechanism));
    if (watcher.filesystems.length === 0) {
      const denied = watcher.skipped.find((s) => s.code === 'EPERM');
      if (denied) throw new NeedsPrivilege(new Error(`${denied.code}: ${denied.reason}`));
      // Nothing tried a mark yet (no filesystem with a device): whether one
      // could be placed later. Unknown means no privilege to ask.
      if (!has('filesystemMark') && !lacks('filesystemMark'))
        throw new NeedsPrivilege(new Error('EPERM: filesystem marks need CAP_SYS_ADMIN'));
      err('no mounted filesystem can report errors (yet); waiting for new mounts');
    }
    for await (const e of watcher) {
      out(json ? JSON.stringify(errorEventToJson(e)) : formatErrorEvent(e));
    }
  } catch (e) {
    if (signal.aborted) return 0;
    throw e;
  } finally {
    clearInterval(poll);
    await watcher.close();
  }
  return 0;
}



export const errorsCommand: Command = {
    name: 'errors',
    usage: '[PATH...] [--json] [--resolve-paths] [--verbose]',
    summary: 'filesystem health monitor (FAN_FS_ERROR): one line per error; no PATH: every filesystem, and later mounts',
    maxPositionals: Infinity,
    options: [
      JSON_OPTION,
      { name: 'resolve-paths', help: 'look up the path of the inode (open_by_handle_at; may add one error of its own on ext4)' },
      { ...VERBOSE_OPTION, help: 'also list the filesystems not watched, with the reason' },
    ],
    run,
  };
