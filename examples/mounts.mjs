// mounts.mjs: mounts attached, detached and moved in this mount namespace.
import { watchMounts } from 'fanotify';

const mounts = watchMounts();
process.once('SIGINT', () => mounts.close());  // ends the loop (no AbortError)
for await (const m of mounts) {
  console.log(m);  // { kind: 'attach' | 'detach' | 'move', mountId: 2147483954n, mountPoint: '/mnt/usb', fsType: 'vfat', source: '/dev/sdb1' }
}
