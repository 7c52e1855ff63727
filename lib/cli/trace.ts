// fanotify trace [PATH]: which process opens, reads, writes and executes what
// (as fatrace does): a mount mark on every mount under PATH, and the path of
// each event's fd.
import * as fs from 'node:fs';

import { Command, CommandContext, JSON_OPTION, privileged, toJson, UsageError } from './command';
import { Fanotify, FanotifyEvent, MarkEventName } from '../index';
import { readMountInfo } from '../kernel/mountinfo';

const DEFAULT_EVENTS: MarkEventName[] = ['open', 'access', 'modify', 'closeWrite', 'openExec'];

const under = (p: string, root: string): boolean => p === root || p.startsWith(root === '/' ? '/' : `${root}/`);

/** The command name of a process, or '?' once it is gone. */
function commOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

export function formatTraceEvent(time: Date, pid: number, comm: string, ev: FanotifyEvent): string {
  return `${time.toISOString()} ${String(pid).padStart(7)} ${comm.padEnd(15)} ${ev.events.join(',').padEnd(20)} ${ev.path ?? '?'}`;
}

async function run({ args, signal, out, err }: CommandContext): Promise<number> {
  const root = fs.realpathSync(args.positionals[0] ?? '/');
  const list = args.options.events;
  const events = typeof list === 'string' ? (list.split(',').filter(Boolean) as MarkEventName[]) : DEFAULT_EVENTS;
  if (events.length === 0) throw new UsageError('--events needs at least one event name');
  const fan = privileged(() => new Fanotify());
  try {
    // Every mount whose tree overlaps PATH: the one holding it and those below.
    let marked = 0;
    for (const m of readMountInfo()) {
      if (!under(m.mountPoint, root) && !under(root, m.mountPoint)) continue;
      try {
        privileged(() => fan.add(m.mountPoint, events, { scope: 'mount' }));
        marked++;
      } catch (e) {
        if ((e as Error).message.startsWith('needs CAP_SYS_ADMIN')) throw e;
        err(`skipping ${m.fsType} on ${m.mountPoint}: ${(e as { code?: string }).code ?? 'error'}`);
      }
    }
    if (marked === 0) throw new Error(`no mount under ${root} takes a mark`);
    for await (const ev of fan.events({ signal })) {
      if (ev.pid === process.pid) continue;  // our own reads of /proc and the like
      const p = ev.path;
      if (p === undefined || !under(p, root)) continue;
      const time = new Date();
      const comm = commOf(ev.pid);
      out(args.options.json
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
  run,
};
