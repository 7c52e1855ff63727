// Mounting by hand in tests: run mount(8) and umount(8), check the table,
// clean up whatever is left (never throwing), in the process's namespace.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Runs a command (no shell); throws with its stderr on failure. */
export function run(cmd: string, ...args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Is something mounted exactly at p, per /proc/self/mountinfo? */
export function mountedAt(p: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .some((line) => line !== '' && unescape(line.split(' ')[4] ?? '') === p);
}

/** Unmounts everything stacked at each path (lazily as a last resort); never throws. */
export function unmountAll(...paths: string[]): void {
  for (const p of paths) {
    for (let i = 0; i < 8 && mountedAt(p); i++) {
      try {
        run('umount', p);
      } catch {
        try {
          run('umount', '-l', p);
        } catch {
          // nothing more to do
        }
      }
    }
  }
}

/** A fresh directory under os.tmpdir() (its real path, as the kernel names it). */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), `fanotify-${prefix}-`));
}

/** Removes directories that nothing is mounted on; never throws. */
export function removeDirs(...dirs: string[]): void {
  for (const d of dirs) {
    try {
      if (!mountedAt(d)) fs.rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}
