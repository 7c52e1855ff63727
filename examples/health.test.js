// health.test.js: a jest test of an error monitor, against an ext4 image with a corrupted directory (as root: npx jest).
const fs = require('node:fs');
const path = require('node:path');
const { watchErrors } = require('fanotify');
const { LoopImage } = require('fanotify/testing');

test('my monitor hears about a corrupted directory', async () => {
  const img = await LoopImage.create({ type: 'ext4', sizeMiB: 64, mountOptions: ['errors=continue'] });
  try {
    fs.mkdirSync(path.join(img.mountPoint, 'dir', 'bad'), { recursive: true });
    await img.corruptInode('dir/bad');             // unmount, debugfs "sif /dir/bad mode 0xff", remount

    const watcher = watchErrors({ paths: [img.mountPoint] });
    try {
      expect(() => fs.readdirSync(path.join(img.mountPoint, 'dir', 'bad'))).toThrow();
      const { value: e } = await watcher.next();
      expect(e).toMatchObject({ code: 'EFSCORRUPTED', errno: 117, filesystem: { source: img.device } });
    } finally {
      await watcher.close();
    }
  } finally {
    await img.dispose();                           // unmounted, detached and deleted, also when the test fails
  }
}, 30_000);                                        // mkfs, unmount, debugfs and mount take a few seconds
