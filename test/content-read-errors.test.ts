// serveContent() when a read() of its group fails. With report.fdError (Linux
// 6.13+, so on every kernel with pre-content events) an fd the kernel cannot
// open comes as an event with the error; without it the read() itself fails.
// FANOTIFY_WITHOUT makes the library run as on a kernel without fdError, so
// that a read error happens here, on the real kernel: a stub read through a
// read-only bind mount (the kernel cannot open it read-write for the server).
//
// Needs root (loop devices, mount, CAP_SYS_ADMIN).
process.env.FANOTIFY_WITHOUT = 'reportFdError';

import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { populate, serveContent } from '../lib';
import { has } from '../lib/kernel/capabilities';
import { LoopImage } from '../lib/testing';
import { killAll, start } from './children';
import { bound, describeRoot, testFeature, within } from './helpers';

jest.setTimeout(bound(60_000));

const execFileAsync = promisify(execFile);
const MiB = 1 << 20;

/** What `cat file | sha256sum` prints, and how it ended. */
const catHash = (file: string) => start('bash', ['-c', 'set -o pipefail; cat "$1" | sha256sum', 'bash', file]).result;

const sha256 = (data: Uint8Array): string => crypto.createHash('sha256').update(data).digest('hex');

describeRoot('serveContent: a failed read() of the group', () => {
  afterEach(() => killAll());

  test('the library runs without report.fdError here', () => {
    expect(has('reportFdError')).toBe(false);
  });

  testFeature('preAccess', 'EROFS from read(): that reader fails (no zeros), the error is reported, serving goes on', async () => {
    const img = await within(30_000, LoopImage.create({ sizeMiB: 64 }), 'LoopImage.create');
    const ro = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-ro-'));
    let mounted = false;
    try {
      const src = path.join(img.mountPoint, 'src');
      const stub = path.join(img.mountPoint, 'stub');
      fs.mkdirSync(src);
      const data = crypto.randomBytes(MiB);
      fs.writeFileSync(path.join(src, 'a.bin'), data);
      await populate(src, stub);
      await execFileAsync('mount', ['--bind', stub, ro]);
      mounted = true;
      await execFileAsync('mount', ['-o', 'remount,ro,bind', ro]);

      const errors: NodeJS.ErrnoException[] = [];
      const server = await within(10_000, serveContent(stub, ({ offset, length }) => data.subarray(offset, offset + length), {
        onError: (err) => errors.push(err),
      }), 'serveContent');
      try {
        const denied = await within(20_000, start('cat', [path.join(ro, 'a.bin')]).result, 'cat through the read-only mount');
        expect(denied.code).not.toBe(0);
        expect(denied.stderr).toContain('Operation not permitted');  // the kernel denies what it could not hand over
        expect(denied.stdout.length).toBe(0);
        const served = await within(20_000, catHash(path.join(stub, 'a.bin')), 'cat');
        expect(served.code).toBe(0);
        expect(served.stdout.split(' ')[0]).toBe(sha256(data));
        expect(server.stats).toMatchObject({ readErrors: 1, filesCompleted: 1 });
      } finally {
        await within(10_000, server.close(), 'server.close');
      }
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: 'EROFS', errno: -30, syscall: 'read' });
      expect(errors[0].message).toMatch(/writable mount/);
    } finally {
      if (mounted) await execFileAsync('umount', [ro]);
      fs.rmdirSync(ro);
      await within(30_000, img[Symbol.asyncDispose](), 'LoopImage dispose');
    }
  });
});
