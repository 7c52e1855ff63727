// The system tools the test kit runs (losetup, mount, mkfs.*, debugfs), found
// also in sbin, and what it reads of the mount table.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

// mkfs.*, losetup and debugfs live in sbin, which a non-login or sudo'd PATH
// may lack: look there too rather than failing with a bare ENOENT.
const toolCache = new Map<string, string | undefined>();
export function findTool(name: string): string | undefined {
  if (toolCache.has(name)) return toolCache.get(name);
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  let found: string | undefined;
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      found = candidate;
      break;
    } catch {
      // not here
    }
  }
  toolCache.set(name, found);
  return found;
}

/** Runs a tool synchronously, ignoring failure: for cleanups that must not throw (at exit, on a signal). */
export function runSyncQuiet(tool: string, args: string[]): void {
  try {
    execFileSync(findTool(tool) ?? tool, args, { stdio: 'ignore' });
  } catch {
    // best effort
  }
}

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
const unescapeMountinfo = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/** The mount points of this mount namespace. */
export function mountPoints(): string[] {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
      .map((line) => unescapeMountinfo(line.split(' ')[4] ?? ''));
  } catch {
    return [];
  }
}

/** Is something mounted exactly at `mountPoint` (in this mount namespace)? */
export function isMounted(mountPoint: string): boolean {
  return mountPoints().includes(mountPoint);
}
