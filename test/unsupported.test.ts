// What cannot be emulated fails with one typed error, at the call that asks
// for it (the constructor, add(), respond()), never later: pre-content and
// { deny: errno } before Linux 6.14, report.fdError before 6.13, audit rule
// replies before 6.3, mount namespace marks before 6.15. On the kernels of
// the matrix that lack them this is what the kernel does; on a newer one,
// FANOTIFY_WITHOUT makes the capability layer answer as the older kernel
// would, so these paths are tested everywhere. Set before the library loads
// (jest gives each test file its own modules).
process.env.FANOTIFY_WITHOUT = 'preAccess,denyErrno,reportFdError,auditRule,mntnsMark,reportMount,mountEvents';

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type * as Lib from '../lib';
import { LoopImage } from '../lib/testing';
import { ChildResult, killAll, start } from './children';
import { bound, describeRoot, expectUnsupported, openFdCount, within } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { Fanotify, populate, serveContent, watchMounts } = require('../lib') as typeof Lib;

jest.setTimeout(bound(30_000));

const cat = (file: string) => start('cat', [file]);
const denied = (r: ChildResult) => expect(r.stderr).toMatch(/Operation not permitted/);

describeRoot('features this kernel lacks: ERR_FANOTIFY_UNSUPPORTED at the call', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-unsupported-'));
    file = path.join(dir, 'f');
    fs.writeFileSync(file, 'hello');
  });

  afterEach(async () => {
    await killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the constructor: report.fdError, report.mount, a { deny: errno } default', () => {
    const before = openFdCount();
    expectUnsupported(() => new Fanotify({ report: { fdError: true } }), 'reportFdError');
    expectUnsupported(() => new Fanotify({ report: { mount: true } }), 'reportMount');
    expectUnsupported(() => new Fanotify({ class: 'pre-content', permission: { default: { deny: 'EIO' } } }), 'denyErrno');
    expect(openFdCount()).toBe(before);
  });

  test("add(): preAccess and scope 'mntns', with the path; the group stays usable", async () => {
    await using fan = new Fanotify({ class: 'pre-content' });
    let err: Error & { path?: string; syscall?: string } = new Error('not thrown');
    try {
      fan.add(file, ['preAccess']);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err).toMatchObject({ code: 'ERR_FANOTIFY_UNSUPPORTED', feature: 'preAccess', syscall: 'fanotify_mark', path: file });
    expectUnsupported(() => fan.add(file, ['preAccess']), 'preAccess');
    expect(() => fan.add(file, ['openPerm'])).not.toThrow();
    await using notif = new Fanotify();
    expectUnsupported(() => notif.add(undefined, ['open'], { scope: 'mntns' }), 'mntnsMark');
  });

  test('populate() refuses before making anything; serveContent() rejects at once, and removes what it made', async () => {
    // On ext4: populate() keeps the fill state in a user xattr, which tmpfs has only since 6.6.
    await using img = await LoopImage.create({ sizeMiB: 32 });
    const src = path.join(img.mountPoint, 'src');
    const stubs = path.join(img.mountPoint, 'stubs');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a'), 'content');
    const refused = await populate(src, stubs).then(() => new Error('populate() made stubs nothing can serve'), (e: Error) => e);
    expect(refused).toMatchObject({ code: 'ERR_FANOTIFY_UNSUPPORTED', feature: 'preAccess', path: stubs });
    expect(refused.message).toContain('checkServable: false');
    expect(fs.existsSync(stubs)).toBe(false);
    await populate(src, stubs, { checkServable: false });
    const before = openFdCount();
    await expect(serveContent(stubs, () => Buffer.alloc(0))).rejects.toMatchObject({ code: 'ERR_FANOTIFY_UNSUPPORTED', feature: 'preAccess' });
    expect(openFdCount()).toBe(before);
  });

  test('watchMounts({ namespace }) by fd needs mntns marks; /proc/PID/ns/mnt follows mountinfo', async () => {
    expectUnsupported(() => watchMounts({ namespace: 0 }), 'mntnsMark');
    await using w = watchMounts({ namespace: `/proc/${process.pid}/ns/mnt` });
    expect(w.mechanism).toBe('mountinfo');
  });

  test('respond() with an audit rule: the typed error, nothing written, the event still ours to answer', async () => {
    await using fan = new Fanotify({ class: 'content', audit: true, permission: { timeoutMs: 10_000, default: 'allow' } });
    fan.add(dir, ['openPerm', 'eventOnChild']);
    const it = fan[Symbol.asyncIterator]();
    const c = cat(file);
    const { value: ev } = await within(5000, it.next(), 'the permission event');
    expectUnsupported(() => ev.respond('deny', { audit: { rule: 1 } }), 'auditRule');
    expect(ev.fd).not.toBeNull();
    ev.respond('deny', { audit: true });
    denied(await within(5000, c.result, 'cat'));
    expect(() => ev.respond('deny')).toThrow(expect.objectContaining({ code: 'ERR_ALREADY_RESPONDED' }));
  });

  test('respond({ deny: errno }) in a pre-content group: the typed error, then a plain deny answers it', async () => {
    await using fan = new Fanotify({ class: 'pre-content', permission: { timeoutMs: 10_000, default: 'allow' } });
    fan.add(dir, ['openPerm', 'eventOnChild']);
    const it = fan[Symbol.asyncIterator]();
    const c = cat(file);
    const { value: ev } = await within(5000, it.next(), 'the permission event');
    expectUnsupported(() => ev.respond({ deny: 'EIO' }), 'denyErrno');
    expect(ev.fd).not.toBeNull();
    ev.respond('deny');
    denied(await within(5000, c.result, 'cat'));
  });
});
