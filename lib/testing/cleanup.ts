// Loop images that a test run must not leave behind, however it ends:
// - at exit, and on SIGINT, SIGTERM and SIGHUP (a Ctrl-C, a CI timeout, a
//   jest worker stopped), the images not disposed are removed synchronously;
//   after a signal the process then dies of it, as it would have;
// - SIGKILL leaves no chance: every image directory is named after its
//   owner (fanotify-loop-<pid>-<start time>-...), and sweep() removes what
//   an owner that is gone left (the first create() of each process does).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';

import { isMounted, mountPoints, runSyncQuiet } from './tools';

/** What the cleanup needs of a live image. */
export interface Removable {
  /** Unmounts (lazily), detaches and deletes, synchronously, never throwing. */
  removeNow(): void;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

// Under jest, `process` is a per-test-file copy whose 'exit' event never
// fires; the real process object is the one of the main context.
function realProcess(): NodeJS.Process {
  try {
    const p = vm.runInThisContext('process') as NodeJS.Process | undefined;
    if (p && typeof p.on === 'function') return p;
  } catch {
    // fall through
  }
  return process;
}
const target = realProcess();

interface Registry {
  live: Set<Removable>;
  onExit: () => void;
  onSignal: (sig: NodeJS.Signals) => void;
  swept: boolean;
}

// One registry per process, on the real process object: under jest every
// test file loads its own copy of this module, and the listeners must be one
// set (a listener per copy would each think another one handles the signal).
const KEY = Symbol.for('fanotify.testing.cleanup');

function registry(): Registry {
  const holder = target as unknown as Record<symbol, Registry | undefined>;
  let r = holder[KEY];
  if (!r) {
    const removeAll = (): void => {
      for (const img of r!.live) img.removeNow();
      r!.live.clear();
    };
    r = {
      live: new Set(),
      swept: false,
      onExit: removeAll,
      onSignal: (sig) => {
        // Someone else handles the signal: the process may go on, and its
        // images with it (if it exits, 'exit' removes them).
        if (target.listenerCount(sig) > 1) return;
        removeAll();
        stopListening(r!);
        target.kill(target.pid, sig);  // no listener now: the default action, as without us
      },
    };
    holder[KEY] = r;
  }
  return r;
}

function stopListening(r: Registry): void {
  target.off('exit', r.onExit);
  for (const sig of SIGNALS) target.off(sig, r.onSignal);
}

/** Removes `img` at exit or on a fatal signal, until untrack(). */
export function track(img: Removable): void {
  const r = registry();
  if (r.live.size === 0) {
    target.on('exit', r.onExit);
    for (const sig of SIGNALS) target.on(sig, r.onSignal);
  }
  r.live.add(img);
}

export function untrack(img: Removable): void {
  const r = registry();
  if (!r.live.delete(img)) return;
  if (r.live.size === 0) stopListening(r);
}

/** When this process started, in clock ticks after boot (field 22 of /proc/PID/stat): with the pid, it names one process. */
function startTime(pid: number | 'self'): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** The prefix of this process's image directories. */
export function ownPrefix(): string {
  return `fanotify-loop-${process.pid}-${startTime('self')}-`;
}

const OWNED = /^fanotify-loop-(\d+)-(\d+)-[^/]+$/;

/** Whether an image directory's owner is gone (a directory without the mark is nobody's to remove). */
function ownerGone(dir: string): boolean {
  const m = OWNED.exec(path.basename(dir));
  if (!m) return false;
  try {
    return startTime(Number(m[1])) !== m[2];  // the pid now names another process
  } catch {
    return true;  // no such process
  }
}

/** The loop devices attached now, with their backing files. */
function loopDevices(): { device: string; backing: string }[] {
  const out: { device: string; backing: string }[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync('/sys/block').filter((n) => n.startsWith('loop'));
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      const backing = fs.readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim().replace(/ \(deleted\)$/, '');
      out.push({ device: `/dev/${name}`, backing });
    } catch {
      // not attached
    }
  }
  return out;
}

/**
 * Removes what image owners that are gone left behind (after a SIGKILL, say):
 * their mounts, loop devices and directories, found by the owner's name in
 * the path, wherever the images were made. Images of live processes are
 * left alone. Returns the image directories removed.
 */
export function sweep(): string[] {
  const dirs = new Set<string>();
  for (const p of mountPoints()) if (path.basename(p) === 'mnt' && ownerGone(path.dirname(p))) dirs.add(path.dirname(p));
  // Loop devices are the whole system's: only those whose image is here, in this namespace.
  const loops = loopDevices().filter((l) => path.basename(l.backing) === 'image' && fs.existsSync(l.backing) && ownerGone(path.dirname(l.backing)));
  for (const l of loops) dirs.add(path.dirname(l.backing));
  try {
    const tmp = fs.realpathSync(os.tmpdir());
    for (const name of fs.readdirSync(tmp)) if (ownerGone(path.join(tmp, name))) dirs.add(path.join(tmp, name));
  } catch {
    // no temporary directory to look in
  }
  for (const dir of dirs) {
    const mnt = path.join(dir, 'mnt');
    for (let i = 0; i < 8 && isMounted(mnt); i++) runSyncQuiet('umount', ['-l', mnt]);
    for (const l of loops) if (path.dirname(l.backing) === dir) runSyncQuiet('losetup', ['-d', l.device]);
    if (!isMounted(mnt)) fs.rmSync(dir, { recursive: true, force: true });
  }
  return [...dirs].filter((d) => !fs.existsSync(d));
}

/** sweep(), once per process: at its first image. */
export function sweepOnce(): void {
  const r = registry();
  if (r.swept) return;
  r.swept = true;
  sweep();
}
