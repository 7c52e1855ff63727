// resolve(): the path of a file id, through open_by_handle_at on a mount of
// its filesystem, against real ext4 (LoopImage). An object that is gone is
// null, also one still open somewhere, which the kernel names "... (deleted)".
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Fanotify, FileId, resolve } from '../lib';
import { LoopImage } from '../lib/testing';
import { describeRoot, within } from './helpers';

/** The file id of path p, from the kernel: an attrib event of an inode mark on it. */
async function fileIdOf(p: string): Promise<FileId> {
  await using fan = new Fanotify({ report: { fid: true } });
  fan.add(p, ['attrib', 'onDir']);
  fs.chmodSync(p, fs.statSync(p).mode & 0o7777);
  const r = await within(5000, fan.events().next(), 'the attrib event');
  if (r.done || !r.value.file) throw new Error('no file id in the event');
  return r.value.file;
}

describeRoot('resolve()', () => {
  let img: LoopImage;
  beforeAll(async () => {
    img = await LoopImage.create({ sizeMiB: 32 });
  });
  afterAll(async () => {
    await img?.dispose();
  });

  test('a file: its path; with a name: the path of the name in it', async () => {
    const dir = path.join(img.mountPoint, 'd');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    expect(await resolve(await fileIdOf(path.join(dir, 'f')))).toBe(path.join(dir, 'f'));
    expect(await resolve(await fileIdOf(dir), { name: 'f' })).toBe(path.join(dir, 'f'));
  });

  // The kernel still opens an unlinked inode that someone holds open, and
  // names it "/path (deleted)": that is no path of it.
  test('a file unlinked while still open elsewhere: null, not "... (deleted)"', async () => {
    const f = path.join(img.mountPoint, 'unlinked');
    fs.writeFileSync(f, 'x');
    const id = await fileIdOf(f);
    const fd = fs.openSync(f, 'r');
    try {
      fs.unlinkSync(f);
      expect(await resolve(id)).toBeNull();
    } finally {
      fs.closeSync(fd);
    }
    expect(await resolve(id)).toBeNull();  // and once closed (ESTALE)
  });

  test('a directory removed while still open elsewhere: null', async () => {
    const d = path.join(img.mountPoint, 'removed');
    fs.mkdirSync(d);
    const id = await fileIdOf(d);
    const fd = fs.openSync(d, 'r');
    try {
      fs.rmdirSync(d);
      expect(await resolve(id)).toBeNull();
      expect(await resolve(id, { name: 'x' })).toBeNull();
    } finally {
      fs.closeSync(fd);
    }
  });

  test('a file really named "... (deleted)" keeps its name', async () => {
    const f = path.join(img.mountPoint, 'real (deleted)');
    fs.writeFileSync(f, 'x');
    expect(await resolve(await fileIdOf(f))).toBe(f);
    // And one unlinked while another file now has the name it would get.
    const g = path.join(img.mountPoint, 'g');
    fs.writeFileSync(g, 'x');
    const id = await fileIdOf(g);
    const fd = fs.openSync(g, 'r');
    try {
      fs.unlinkSync(g);
      fs.writeFileSync(`${g} (deleted)`, 'another file');
      expect(await resolve(id)).toBeNull();
    } finally {
      fs.closeSync(fd);
    }
  });
});
