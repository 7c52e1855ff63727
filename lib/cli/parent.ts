// The command's parent process: `npx fanotify ...` runs us as a child of npm
// (and of a shell); when that parent dies, a watcher must not go on for ever,
// orphaned. Linux gives an orphan a new parent (init or a subreaper), so a
// changed parent pid is the sign. process.ppid is fixed at start: the live
// one is in /proc/self/stat.
import * as fs from 'node:fs';

const CHECK_MS = 500;

/** The parent pid now (field 4 of /proc/self/stat, after the command name in parentheses). */
function parentPid(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Calls `gone` once when the parent process has died; returns a function that stops watching. */
export function whenParentDies(gone: () => void): () => void {
  const parent = parentPid();
  const timer = setInterval(() => {
    if (parentPid() === parent) return;
    clearInterval(timer);
    gone();
  }, CHECK_MS);
  timer.unref();  // never what keeps the command alive
  return () => clearInterval(timer);
}
