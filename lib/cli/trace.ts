// fanotify trace [PATH]: which process opens, reads, writes and executes what
// (as fatrace does): a mount mark on the mount PATH lives on and on every
// mount below it, and the path of each event's fd.
import * as fs from 'node:fs';

import { Command, commOf, CommandContext, eventNamesHelp, JSON_OPTION, OVERFLOW_TEXT, parseEventList, privileged, toJson } from './command';
import { Fanotify, FanotifyEvent, MarkEventName } from '../index';
import { Mount, mountOf, readMounts } from '../kernel/mount-table';

const DEFAULT_EVENTS: MarkEventName[] = ['open', 'access', 'modify', 'closeWrite', 'openExec'];

const under = (p: string, root: string): boolean => p === root || p.startsWith(root === '/' ? '/' : `${root}/`);

/**
 * The mounts an access under root can be on: the one root lives on (the
 * topmost at its mount point) and every mount below root. A mount mark sees
 * every access on its mount, so none above is marked: their events could
 * only be thrown away. One per mount point: a path reaches the topmost only.
 */
export function mountsUnder(root: string, table: Mount[] = readMounts()): Mount[] {
  const byPoint = new Map<string, Mount>();
  const own = mountOf(root, table);
  if (own) byPoint.set(own.mountPoint, own);
  for (const m of table) if (m.mountPoint !== root && under(m.mountPoint, root)) byPoint.set(m.mountPoint, m);  // later ones are on top
  return [...byPoint.values()];
}

export function formatTraceEvent(time: Date, pid: number, comm: string, ev: FanotifyEvent): string {
  return `${time.toISOString()} ${String(pid).padStart(7)} ${comm.padEnd(15)} ${ev.events.join(',').padEnd(20)} ${ev.path ?? '?'}`;
}

async function run({ args, signal, out, err }: CommandContext): Promise<number> {
  const root = fs.realpathSync(args.positionals[0] ?? '/');
  const events = parseEventList(args.options.events, DEFAULT_EVENTS);
  const json = args.options.json === true;
  const fan = privileged(() => new Fanotify());
  try {
    let marked = 0;
    for (const m of mountsUnder(root)) {
      try {
        privileged(() => fan.add(m.mountPoint, events, { scope: 'mount' }));
        marked++;
        err(`tracing ${m.fsType} ${m.source} on ${m.mountPoint}`);
      } catch (e) {
        if ((e as Error).message.startsWith('needs CAP_SYS_ADMIN')) throw e;
        err(`skipping ${m.fsType} on ${m.mountPoint}: ${(e as { code?: string }).code ?? 'error'}`);
      }
    }
    if (marked === 0) throw new Error(`no mount under ${root} takes a mark`);
    for await (const ev of fan.events({ signal })) {
      const time = new Date();
      // No fd, so no path: shown whatever PATH is, or a tracer that falls behind would not know.
      if (ev.overflow) {
        out(json ? toJson({ time: time.toISOString(), overflow: true }) : `${time.toISOString()} ${OVERFLOW_TEXT}`);
        continue;
      }
      if (ev.pid === process.pid) continue;  // our own reads of /proc and the like
      const p = ev.path;
      if (p === undefined || !under(p, root)) continue;
      const comm = commOf(ev.pid);
      out(json
        ? toJson({ time: time.toISOString(), pid: ev.pid, comm, events: ev.events, path: p })
        : formatTraceEvent(time, ev.pid, comm, ev));
    }
  } catch (e) {
    if (!signal.aborted) throw e;
  } finally {
    await fan.close();
  }
  return 0;
}

export const traceCommand: Command = {
  name: 'trace',
  usage: '[PATH] [--events LIST] [--json]',
  summary: 'which process (pid, command) opens, reads, writes, executes what under PATH (default /)',
  maxPositionals: 1,
  options: [
    JSON_OPTION,
    { name: 'events', value: 'LIST', help: 'comma-separated event names (default: open,access,modify,closeWrite,openExec)' },
  ],
  help: [
    'examples:',
    '  fanotify trace /srv                        who opens, reads, writes, executes what under /srv',
    '  fanotify trace /usr/bin --events openExec --json',
    '',
    ...eventNamesHelp(),
  ],
  run,
};
