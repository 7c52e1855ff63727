// Which filesystems a group has a filesystem mark on, as the kernel lists
// them in /proc/self/fdinfo/<fd> ("fanotify sdev:<dev> ..." lines). A mark
// dies with its superblock, and mountinfo cannot always tell that a
// filesystem was unmounted and mounted again (its ids are reused at once):
// this can. Reading it asks no filesystem anything.
import * as fs from 'node:fs';

/** The devices ("major:minor") of the group's filesystem marks. */
export function markedDevices(fd: number): Set<string> {
  const out = new Set<string>();
  let text = '';
  try {
    text = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch {
    return out;  // closed
  }
  for (const m of text.matchAll(/^fanotify sdev:([0-9a-f]+) /gm)) {
    const dev = parseInt(m[1], 16);  // the kernel's dev_t: major << 20 | minor
    out.add(`${Math.floor(dev / 0x100000)}:${dev % 0x100000}`);
  }
  return out;
}
