// permission.self: the answer the native layer gives this process's own
// permission events at once (allowSelf), 'allow' unless told otherwise. A
// content server passes { deny: 'EIO' } so that its own reads of holes fail
// instead of passing for content (test/content.test.ts has that case).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Fanotify, FanotifyEvent } from '../lib';
import { killAll, start } from './children';
import { describeRoot, within } from './helpers';

describe('permission.self: options', () => {
  test('checked before the kernel is asked', () => {
    expect(() => new Fanotify({ class: 'content', permission: { allowSelf: false, self: 'deny' } }))
      .toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/needs allowSelf: true/) }));
    expect(() => new Fanotify({ class: 'content', permission: { self: 'maybe' as never } }))
      .toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/options\.permission\.self/) }));
    expect(() => new Fanotify({ class: 'content', permission: { self: { deny: 'EIO' } } }))
      .toThrow(expect.objectContaining({ message: expect.stringMatching(/needs class 'pre-content'/) }));
  });
});

describeRoot('permission.self', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-self-'));
    fs.writeFileSync(path.join(dir, 'f'), 'content\n');
  });
  afterEach(() => {
    killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("self: 'deny' fails this process's own opens at once; other processes are still asked", async () => {
    const file = path.join(dir, 'f');
    const fan = new Fanotify({ class: 'content', permission: { timeoutMs: 3000, default: 'allow', self: 'deny' } });
    try {
      fan.add(file, ['openPerm']);
      const seen: FanotifyEvent[] = [];
      const loop = (async () => {
        for await (const ev of fan) {
          seen.push(ev);
          ev.respond('allow');
        }
      })();
      const t = Date.now();
      // The JS thread is blocked in open(): only the native answer can come, at once (not the 3 s default).
      expect(() => fs.readFileSync(file)).toThrow(expect.objectContaining({ code: 'EPERM' }));
      await expect(within(2000, fs.promises.readFile(file), 'readFile')).rejects.toMatchObject({ code: 'EPERM' });
      expect(Date.now() - t).toBeLessThan(2000);
      const c = start('cat', [file]);
      const r = await within(8000, c.result, 'cat');
      expect(r).toMatchObject({ code: 0, stdout: 'content\n' });
      expect(seen.map((e) => e.pid)).toEqual([c.pid]);  // ours were never shown to JavaScript
      await fan.close();
      await within(2000, loop, 'the loop');
    } finally {
      await fan.close();
    }
  });
});
