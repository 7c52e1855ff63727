// The mount table of this process (/proc/self/mountinfo).
import * as fs from 'node:fs';

export interface MountEntry {
  mountId: number;
  parentId: number;
  /** major:minor of the filesystem's device. */
  dev: string;
  /** The path inside the filesystem that is mounted (a bind mount's source). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
}

// Mountinfo escapes space, tab, newline and backslash as \ooo.
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function readMountInfo(file = '/proc/self/mountinfo'): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    if (right === undefined) continue;
    const f = left.split(' ');
    const r = right.split(' ');
    out.push({
      mountId: Number(f[0]),
      parentId: Number(f[1]),
      dev: f[2],
      root: unescape(f[3]),
      mountPoint: unescape(f[4]),
      options: f[5],
      fsType: r[0],
      source: unescape(r[1] ?? ''),
    });
  }
  return out;
}
