// fanotify watch PATH: a change feed with full paths over every filesystem
// under PATH, including those mounted there later.
import {
  Command, commOf, CommandContext, describeMountMechanism, eventNamesHelp, JSON_OPTION, OVERFLOW_TEXT, parseEventList, privileged, toJson,
  UsageError, VERBOSE_OPTION,
} from './command';
import { watch, WatchEvent } from '../index';

const RESCAN_WHY: Record<string, string> = {
  overflow: 'events were lost',
  renamed: 'a directory was renamed before its events could be named',
};

export function formatWatchEvent(time: Date, e: WatchEvent, comm?: string): string {
  if (e.overflow) return `${time.toISOString()} ${OVERFLOW_TEXT}: read ${e.path ?? 'everything'} again`;
  if (e.events.includes('rescan')) return `${time.toISOString()} rescan           dir  ${e.path}: ${RESCAN_WHY[e.reason ?? ''] ?? e.reason}; read it again`;
  const unknown = `(unknown: ${e.reason ?? 'gone'})`;
  const what = e.from !== undefined || e.to !== undefined ? `${e.from ?? unknown} -> ${e.to ?? unknown}` : e.path ?? unknown;
  return `${time.toISOString()} ${e.events.join(',').padEnd(16)} ${e.isDir ? 'dir ' : 'file'} ${what} (pid ${e.pid}${comm ? ` ${comm}` : ''})`;
}

async function run({ args, signal, out, err }: CommandContext): Promise<number> {
  const root = args.positionals[0];
  if (root === undefined) throw new UsageError('a PATH is needed');
  const events = parseEventList(args.options.events);
  const watcher = privileged(() => watch(root, { signal, events }));
  // Filesystems come and go under PATH: each change is said once (by fsid).
  const shown = new Map<string, string>();
  const announce = (): void => {
    const now = new Map(watcher.filesystems.map((f) => [f.fsid, `${f.fsType} ${f.source} on ${f.mountPoint}`]));
    for (const [fsid, what] of shown) {
      if (now.get(fsid) === what) continue;
      shown.delete(fsid);
      if (!now.has(fsid)) err(`no longer under ${watcher.root}: ${what}`);
    }
    for (const [fsid, what] of now) {
      if (shown.has(fsid)) continue;
      shown.set(fsid, what);
      err(`watching ${what}`);
    }
  };
  announce();
  if (args.options.verbose && watcher.mountMechanism) err(describeMountMechanism(watcher.mountMechanism));
  if (args.options.verbose) for (const s of watcher.skipped) err(`skipping ${s.fsType} on ${s.mountPoint}: ${s.code}`);
  const timer = setInterval(announce, 250).unref();  // filesystems mounted later
  try {
    for await (const e of watcher) {
      const time = new Date();
      const comm = e.pid > 0 ? commOf(e.pid) : undefined;
      out(args.options.json ? toJson({ time: time.toISOString(), ...e, ...(comm ? { comm } : {}) }) : formatWatchEvent(time, e, comm));
    }
  } catch (e) {
    if (!signal.aborted) throw e;
  } finally {
    clearInterval(timer);
    await watcher.close();
  }
  return 0;
}

export const watchCommand: Command = {
  name: 'watch',
  usage: 'PATH [--events LIST] [--json] [--verbose]',
  summary: 'change feed with full paths: every filesystem under PATH, and those mounted there later',
  maxPositionals: 1,
  options: [
    JSON_OPTION,
    { name: 'events', value: 'LIST', help: 'comma-separated event names (default: create,delete,movedFrom,movedTo,modify,attrib,onDir)' },
    { ...VERBOSE_OPTION, help: 'also list the filesystems that refused the mark' },
  ],
  help: [
    'examples:',
    '  fanotify watch /srv                        creates, deletes, moves, changes under /srv',
    '  fanotify watch /srv --events create,delete,onDir --json',
    '',
    ...eventNamesHelp(),
  ],
  run,
};
