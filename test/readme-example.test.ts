// The test kit example of the README, as written there (imports aside): the
// documentation a user copies must work.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { watchErrors } from '../lib';
import { LoopImage } from '../lib/testing';
import { describeRoot } from './helpers';

describeRoot('README example', () => {
  test('my monitor hears about a corrupted directory', async () => {
    await using img = await LoopImage.create({ type: 'ext4', sizeMiB: 64, mountOptions: ['errors=continue'] });
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
  });
});
