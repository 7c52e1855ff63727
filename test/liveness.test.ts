// Whether an open group keeps the process alive: exactly while an iteration
// waits in next() (and ref() is in force, the default), whatever happened
// before. Each case is a child process that holds a group and never closes
// it; it either exits on its own or is killed after a bound.
//
// Needs root for the content group (notification groups with fd events too).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { killAll, start, Started } from './children';
import { bound, describeRoot, sleep, within } from './helpers';

const DIST = path.join(__dirname, '..', 'dist');

// mode: 'one-event' takes one event and stops asking; 'waiting' keeps a next()
// waiting; 'unref' the same after fan.unref(). Prints 'waiting' once a next()
// waits, 'event' when one came.
const HOLDER = `
  const { Fanotify } = require(process.argv[1]);
  const [dir, cls, mode] = process.argv.slice(2);
  const fan = new Fanotify(cls === 'content' ? { class: 'content', permission: { timeoutMs: 5000, default: 'allow' } } : {});
  fan.add(dir, [cls === 'content' ? 'openPerm' : 'open', 'eventOnChild']);
  if (mode === 'unref') fan.unref();
  const it = fan.events();
  const p = it.next();
  process.stdout.write('waiting\\n');
  p.then((r) => {
    if (r.value.isPermission) r.value.respond('allow');
    process.stdout.write('event\\n');
    if (mode === 'waiting') it.next();  // waits again: keeps the process alive
  });
`;

describeRoot('liveness of an open group', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-live-')));
    fs.writeFileSync(path.join(dir, 'f'), 'x');
  });

  afterEach(async () => {
    await killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function holder(cls: string, mode: string): Started {
    return start(process.execPath, ['-e', HOLDER, DIST, dir, cls, mode], bound(5000));
  }

  async function waiting(h: Started): Promise<void> {
    for (const end = Date.now() + bound(5000); Date.now() < end && !h.out().includes('waiting\n') && h.running();) await sleep(10);
    expect(h.out()).toContain('waiting\n');
  }

  // An open by another process (a content group makes it wait for the answer).
  const touch = (): void => void start('cat', [path.join(dir, 'f')], bound(10_000));

  test.each(['notification', 'content'])('%s: after one event, with no next() waiting, the process exits on its own', async (cls) => {
    const h = holder(cls, 'one-event');
    await waiting(h);
    await sleep(200);
    expect(h.running()).toBe(true);  // a next() waits: alive
    touch();
    const r = await within(8000, h.result, 'holder');
    expect({ timedOut: r.timedOut, code: r.code, stderr: r.stderr, out: r.stdout }).toEqual({ timedOut: false, code: 0, stderr: '', out: 'waiting\nevent\n' });
    expect(r.ms).toBeLessThan(bound(4000));
  });

  test.each(['notification', 'content'])('%s: a next() waiting again keeps it alive', async (cls) => {
    const h = holder(cls, 'waiting');
    await waiting(h);
    touch();
    for (const end = Date.now() + bound(2000); Date.now() < end && !h.out().includes('event\n');) await sleep(10);
    expect(h.out()).toContain('event\n');
    await sleep(1000);
    expect(h.running()).toBe(true);
  });

  test.each(['notification', 'content'])('%s: after unref(), a waiting next() does not keep it alive', async (cls) => {
    const h = holder(cls, 'unref');
    const r = await within(8000, h.result, 'holder');
    expect({ timedOut: r.timedOut, code: r.code, stderr: r.stderr, out: r.stdout }).toEqual({ timedOut: false, code: 0, stderr: '', out: 'waiting\n' });
  });
});
