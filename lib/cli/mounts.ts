// fanotify mounts: mount attach/detach/move events of this mount namespace.
import { Command, CommandContext, describeMountMechanism, JSON_OPTION, OVERFLOW_TEXT, privileged, toJson } from './command';
import { MountEvent, watchMounts } from '../index';

export function formatMountEvent(time: Date, m: MountEvent): string {
  if (m.kind === 'overflow') return `${time.toISOString()} ${OVERFLOW_TEXT} (the table was read again: what changed meanwhile follows)`;
  const what = m.mountPoint === undefined ? '(unknown mount)' : `${m.fsType} ${m.source} on ${m.mountPoint}`;
  return `${time.toISOString()} ${m.kind.padEnd(6)} ${what} (mount id ${m.mountId})`;
}

async function run({ args, signal, out, err }: CommandContext): Promise<number> {
  const watcher = privileged(() => watchMounts({ signal }));
  err(`watching the mount namespace (${watcher.mounts.size} mounts now; ${describeMountMechanism(watcher.mechanism)})`);  // the mark is in place
  try {
    for await (const m of watcher) {
      const time = new Date();
      out(args.options.json ? toJson({ time: time.toISOString(), ...m }) : formatMountEvent(time, m));
    }
  } catch (e) {
    if (!signal.aborted) throw e;
  } finally {
    await watcher.close();
  }
  return 0;
}

export const mountsCommand: Command = {
  name: 'mounts',
  usage: '[--json]',
  summary: 'mount attach, detach and move events (FAN_MNT_ATTACH/DETACH, or /proc/self/mountinfo on kernels before 6.15)',
  options: [JSON_OPTION],
  run,
};
