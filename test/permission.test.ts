// Permission events against the real kernel (section 3 of the API): answers,
// the native timeout (also while the JS thread is blocked), allowSelf, and the
// default answer on break / throw / close / abort / worker termination /
// process exit. Every wait has a hard bound: other processes are spawned with
// a kill timer, awaits go through within(), and every group is closed in
// finally (which itself answers whatever is pending).
//
// Needs root (CAP_SYS_ADMIN for a content group); tmpfs is fine for openPerm.

import { ChildProcess, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

import { Fanotify, FanotifyEvent, PermissionOptions } from '../lib';
import { ChildResult, killAll, start } from './children';
import { has } from '../lib/kernel/capabilities';
import { bound, describeRoot, expectUnsupported, openFdCount, sleep, within } from './helpers';

jest.setTimeout(bound(30_000));

const FIXTURES = path.join(__dirname, 'fixtures');
const CONTENT = 'hello from the watched dir\n';
const EPERM_TEXT = 'Operation not permitted';

const cat = (file: string, killAfterMs?: number) => start('cat', [file], killAfterMs);

/** The next event, or a rejection after ms. */
async function nextEvent(it: AsyncIterator<FanotifyEvent>, ms = 5000): Promise<FanotifyEvent> {
  const r = await within(ms, it.next(), 'next event');
  if (r.done) throw new Error('iteration ended before an event came');
  return r.value;
}

/** A fresh content group with an openPerm mark on dir. */
function contentGroup(dir: string, permission: PermissionOptions): Fanotify {
  const fan = new Fanotify({ class: 'content', permission });
  try {
    fan.add(dir, ['openPerm', 'eventOnChild']);
  } catch (err) {
    void fan.close();
    throw err;
  }
  return fan;
}

function expectDenied(r: ChildResult): void {
  expect(r.timedOut).toBe(false);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(EPERM_TEXT);
}

function expectAllowed(r: ChildResult): void {
  expect(r.timedOut).toBe(false);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(CONTENT);
}

/** Lines of a child's stdout as they come. */
function lines(child: ChildProcess): { wait(pred: (all: string[]) => boolean, ms: number, what: string): Promise<string[]> } {
  const all: string[] = [];
  let partial = '';
  let wake: (() => void) | null = null;
  child.stdout!.on('data', (d: string | Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    all.push(...parts);
    wake?.();
  });
  child.on('close', () => wake?.());
  return {
    async wait(pred, ms, what) {
      const end = Date.now() + bound(ms);
      while (!pred(all)) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what}: the process ended; output ${JSON.stringify(all)}`);
        const left = end - Date.now();
        if (left <= 0) throw new Error(`${what}: not within ${ms} ms; output ${JSON.stringify(all)}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = null;
      }
      return all;
    },
  };
}

describeRoot('permission events', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-perm-')));
    file = path.join(dir, 'f');
    fs.writeFileSync(file, CONTENT);
  });

  afterEach(async () => {
    await killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // 1 ----------------------------------------------------------------------
  describe('answers from JavaScript', () => {
    test.each([
      ['deny', expectDenied],
      ['allow', expectAllowed],
    ] as const)("respond('%s') reaches the other process", async (decision, check) => {
      const fan = contentGroup(dir, { timeoutMs: 10_000, default: decision === 'deny' ? 'allow' : 'deny' });
      try {
        const it = fan[Symbol.asyncIterator]();
        const c = cat(file);
        const ev = await nextEvent(it);
        expect(ev.pid).toBe(c.pid);
        expect(ev.path).toBe(file);
        expect(ev.events).toContain('openPerm');
        expect(typeof ev.fd).toBe('number');
        ev.respond(decision);
        expect(ev.fd).toBeNull();
        const r = await c.result;
        check(r);
        expect(r.ms).toBeLessThan(5000);  // the answer, not the 10 s default
        expect(() => ev.respond('allow')).toThrow(expect.objectContaining({ code: 'ERR_ALREADY_RESPONDED' }));
      } finally {
        await fan.close();
      }
    });
  });

  describe('audit replies', () => {
    // The kernel checks the rule record's header (type, pad, len) and size and
    // refuses the whole answer with EINVAL otherwise: an accepted answer that
    // reaches the other process shows the record is well formed. (The audit
    // log itself is written only with audit rules loaded; not touched here.)
    test.each([
      ['deny', { rule: 7, subjectTrust: true, objectTrust: false }, expectDenied],
      ['allow', { rule: 0xffffffff }, expectAllowed],
      ['allow', true, expectAllowed],
    ] as const)("respond('%s', { audit: %j }) with audit: true is accepted", async (decision, audit, check) => {
      const fan = new Fanotify({ class: 'content', audit: true, permission: { timeoutMs: 10_000, default: decision === 'deny' ? 'allow' : 'deny' } });
      try {
        fan.add(dir, ['openPerm', 'eventOnChild']);
        const it = fan[Symbol.asyncIterator]();
        const c = cat(file);
        const ev = await nextEvent(it);
        if (typeof audit === 'object' && !has('auditRule')) {
          // Before Linux 6.3: the typed error, nothing written, the event still ours.
          expectUnsupported(() => ev.respond(decision, { audit }), 'auditRule');
          expect(ev.fd).not.toBeNull();
          ev.respond(decision, { audit: true });
        } else {
          ev.respond(decision, { audit });
        }
        const r = await c.result;
        check(r);
        expect(r.ms).toBeLessThan(5000);
      } finally {
        await fan.close();
      }
    });

    test('a bad rule is a TypeError before the kernel, and the event is still ours to answer', async () => {
      const fan = new Fanotify({ class: 'content', audit: true, permission: { timeoutMs: 10_000, default: 'allow' } });
      try {
        fan.add(dir, ['openPerm', 'eventOnChild']);
        const it = fan[Symbol.asyncIterator]();
        const c = cat(file);
        const ev = await nextEvent(it);
        const bad = [{ rule: -1 }, { rule: 1.5 }, { rule: 2 ** 32 }, {}, { rule: 1, subjectTrust: 'yes' }, { rule: 1, other: 1 }, 1, 'x'];
        for (const audit of bad)
          expect(() => ev.respond('deny', { audit } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
        expect(ev.fd).not.toBeNull();
        ev.respond('deny', { audit: has('auditRule') ? { rule: 3 } : true });
        expectDenied(await c.result);
      } finally {
        await fan.close();
      }
    });

    test('an audit reply without the group option audit: true is a TypeError naming the option', async () => {
      const fan = contentGroup(dir, { timeoutMs: 10_000, default: 'deny' });
      try {
        const it = fan[Symbol.asyncIterator]();
        const c = cat(file);
        const ev = await nextEvent(it);
        expect(() => ev.respond('allow', { audit: { rule: 1 } })).toThrow(/needs the group option audit: true/);
        ev.respond('allow');
        expectAllowed(await c.result);
      } finally {
        await fan.close();
      }
    });
  });

  // 2 ----------------------------------------------------------------------
  describe('the native timeout', () => {
    test.each([
      ['deny', expectDenied],
      ['allow', expectAllowed],
    ] as const)("an unanswered event gets default '%s' after timeoutMs", async (dflt, check) => {
      const fan = contentGroup(dir, { timeoutMs: 300, default: dflt });
      try {
        const it = fan[Symbol.asyncIterator]();
        const c = cat(file);
        const ev = await nextEvent(it);  // handed over, never answered
        expect(ev.pid).toBe(c.pid);
        const r = await within(8000, c.result, 'cat');
        check(r);
        expect(r.ms).toBeGreaterThanOrEqual(250);
        expect(r.ms).toBeLessThan(5000);
      } finally {
        await fan.close();
      }
    });

    // Many rounds, since a lost timeout shows only now and then: the event
    // must be answered by the deadline whichever thread read it.
    test('every unanswered event gets its timeout answer (25 in a row)', async () => {
      const fan = contentGroup(dir, { timeoutMs: 100, default: 'deny' });
      const times: number[] = [];
      try {
        const it = fan[Symbol.asyncIterator]();
        for (let round = 0; round < 25; round++) {
          const c = cat(file, 5000);
          const ev = await nextEvent(it);
          expect(ev.pid).toBe(c.pid);
          const r = await within(8000, c.result, 'cat');
          times.push(r.ms);
          expect({ round, timedOut: r.timedOut, late: r.ms >= 2000 }).toEqual({ round, timedOut: false, late: false });
          expectDenied(r);
        }
      } finally {
        console.log(`timeout 100 ms, 25 rounds: ${times.join(' ')} ms`);
        await fan.close();
      }
    });

    test('answers while the JS thread is blocked', async () => {
      const fan = contentGroup(dir, { timeoutMs: 300, default: 'deny' });
      try {
        const it = fan[Symbol.asyncIterator]();
        const pending = it.next();  // a consumer is waiting, as in a real program
        // The child reports, by its own clock, when its cat finished.
        const c = start('sh', ['-c', 'cat "$1"; echo "status $?"; date +%s%N', 'sh', file]);
        // Block the JS thread well past timeoutMs: no JS can answer anything.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
        const blockEnded = Date.now();
        const r = await within(8000, c.result, 'sh');
        expect(r.timedOut).toBe(false);
        expect(r.stderr).toContain(EPERM_TEXT);
        const [status, ns] = r.stdout.trim().split('\n');
        expect(status).toMatch(/^status [1-9]/);
        const childEnded = Number(BigInt(ns) / 1_000_000n);
        // The child was answered (after the timeout) while we were still blocked.
        expect(childEnded).toBeLessThan(blockEnded);
        expect(childEnded - c.startedAt).toBeGreaterThanOrEqual(250);
        // The event reaches JS afterwards, already answered.
        const first = await within(5000, pending, 'next event');
        expect(first.done).toBe(false);
        const ev = first.value as FanotifyEvent;
        expect(ev.events).toContain('openPerm');
        expect(() => ev.respond('allow')).toThrow(expect.objectContaining({ code: 'ERR_ALREADY_RESPONDED' }));
        console.log(`blocked-thread timeout: child finished ${blockEnded - childEnded} ms before the JS thread woke, ` +
          `${childEnded - c.startedAt} ms after spawn`);
      } finally {
        await fan.close();
      }
    });
  });

  // 3 ----------------------------------------------------------------------
  describe('allowSelf', () => {
    // The native timeout (3 s, default deny) is the hard bound here: if
    // allowSelf failed, the reads would fail after 3 s instead of hanging.
    const permission: PermissionOptions = { timeoutMs: 3000, default: 'deny' };

    test('this process reads files under its own permission mark (default allowSelf)', async () => {
      fs.writeFileSync(path.join(dir, 'mod-jest.js'), 'module.exports = { answer: 42 };\n');
      fs.writeFileSync(path.join(dir, 'mod-node.js'), 'module.exports = { answer: 43 };\n');
      const fan = contentGroup(dir, permission);
      try {
        const it = fan[Symbol.asyncIterator]();
        const seen: FanotifyEvent[] = [];
        void (async () => {
          for (;;) {
            const r = await it.next();
            if (r.done) return;
            seen.push(r.value);
            r.value.respond('deny');
          }
        })();
        const timings: string[] = [];
        const timed = async <T>(what: string, fn: () => T | Promise<T>): Promise<T> => {
          const t = Date.now();
          const v = await within(5000, Promise.resolve().then(fn), what);
          const ms = Date.now() - t;
          timings.push(`${what} ${ms} ms`);
          // well before the 3 s timeout answer (which would mean allowSelf did not act)
          expect(`${what}: ${ms < 2000 ? 'fast' : `${ms} ms`}`).toBe(`${what}: fast`);
          return v;
        };
        expect(await timed('readFileSync', () => fs.readFileSync(file, 'utf8'))).toBe(CONTENT);
        expect(await timed('promises.readFile', () => fs.promises.readFile(file, 'utf8'))).toBe(CONTENT);
        expect(await timed('createReadStream', () => new Promise<string>((resolve, reject) => {
          let s = '';
          fs.createReadStream(file, 'utf8').on('data', (d) => (s += d)).on('end', () => resolve(s)).on('error', reject);
        }))).toBe(CONTENT);
        // jest's module loader and Node's own CommonJS loader
        expect(await timed('require (jest)', () => require(path.join(dir, 'mod-jest.js')))).toEqual({ answer: 42 });
        const nodeRequire = createRequire(path.join(dir, 'x.js'));
        expect(await timed('require (node)', () => nodeRequire('./mod-node.js'))).toEqual({ answer: 43 });
        // Meanwhile another process is still asked about, and answered from JS.
        const c = cat(file);
        const r = await within(8000, c.result, 'cat');
        expectDenied(r);
        expect(r.ms).toBeLessThan(2000);  // the consumer's answer, not the 3 s default
        await sleep(50);
        expect(seen.map((e) => e.pid)).toContain(c.pid);
        console.log(`allowSelf: ${timings.join(', ')}`);
      } finally {
        await fan.close();
      }
    });

    test.each([
      ['allow', true],
      ['deny', false],
    ] as const)("allowSelf: false, a sync read is released by the timeout (default '%s'), no deadlock", async (dflt, ok) => {
      // The reading process is blocked in open() on its own JS thread, so this
      // runs in a child process: a deadlock there is a kill, not a hung suite.
      const c = start(process.execPath, [path.join(FIXTURES, 'self-read.js'), file, dflt, '300'], 10_000);
      const r = await within(15_000, c.result, 'self-read.js');
      expect(r.timedOut).toBe(false);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      if (ok) expect(out).toMatchObject({ ok: true, content: CONTENT });
      else expect(out).toMatchObject({ ok: false, code: 'EPERM' });
      expect(out.elapsed).toBeGreaterThanOrEqual(250);
      expect(out.elapsed).toBeLessThan(5000);
      console.log(`allowSelf false, default ${dflt}: sync read released after ${out.elapsed} ms`);
    });
  });

  // 4 ----------------------------------------------------------------------
  describe('respond after the timeout', () => {
    test('throws ERR_ALREADY_RESPONDED', async () => {
      const fan = contentGroup(dir, { timeoutMs: 300, default: 'deny' });
      try {
        const it = fan[Symbol.asyncIterator]();
        const c = cat(file);
        const ev = await nextEvent(it);
        expectDenied(await within(8000, c.result, 'cat'));
        let thrown: unknown;
        try {
          ev.respond('allow');
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBeInstanceOf(Error);
        expect(thrown).toMatchObject({ code: 'ERR_ALREADY_RESPONDED' });
      } finally {
        await fan.close();
      }
    });

    // A native answer (timeout) must not close an fd JavaScript still holds:
    // the next open() in this process would reuse the number, and ev.fd,
    // ev.path and ev.keepFd() would then name an unrelated file.
    test('after the timeout answered, ev.fd never names a recycled, unrelated fd', async () => {
      const other = path.join(dir, 'unrelated');
      fs.writeFileSync(other, 'x');
      const fan = contentGroup(dir, { timeoutMs: 300, default: 'deny' });
      const opened: number[] = [];
      try {
        const it = fan[Symbol.asyncIterator]();
        const c = cat(file);
        const ev = await nextEvent(it);
        const fd = ev.fd;
        expect(typeof fd).toBe('number');
        expectDenied(await within(8000, c.result, 'cat'));
        // Open files until the event's fd number comes back (or clearly won't).
        for (let i = 0; i < 64 && !opened.includes(fd!); i++) opened.push(fs.openSync(other, 'r'));
        if (ev.fd !== null) expect(fs.readlinkSync(`/proc/self/fd/${ev.fd}`)).toBe(file);
        const kept = ev.keepFd();
        if (kept !== null) {
          opened.push(kept);
          expect(fs.readlinkSync(`/proc/self/fd/${kept}`)).toBe(file);
        }
      } finally {
        for (const fd of opened) fs.closeSync(fd);
        await fan.close();
      }
    });
  });

  // 5 ----------------------------------------------------------------------
  // A second next() while one waits is a mistake of the caller: it is
  // refused, and the loop that waits goes on. Were that loop taken as ended,
  // the events it waits for would get the default (allow) unseen.
  describe('a second next() while one waits', () => {
    for (const same of [true, false]) test(`${same ? 'on the same iterator' : 'on another iterator'}: refused, and the waiting loop still gets the event`, async () => {
      const fan = contentGroup(dir, { timeoutMs: 20_000, default: 'allow' });
      try {
        const it = fan.events();
        const waiting = it.next();
        const other = same ? it : fan.events();
        await expect(other.next()).rejects.toMatchObject({ code: 'ERR_FANOTIFY_CONCURRENT_NEXT' });
        const c = cat(file, 15_000);
        const { value: ev } = await within(5000, waiting, 'the event');
        expect(ev.pid).toBe(c.pid);
        ev.respond('deny');
        expectDenied(await within(5000, c.result, 'cat'));
      } finally {
        await fan.close();
      }
    });
  });

  describe('the default answer when the consumer stops (timeoutMs 20 s)', () => {
    const permission: PermissionOptions = { timeoutMs: 20_000, default: 'deny' };

    test('break with two events handed over and unanswered', async () => {
      const fan = contentGroup(dir, permission);
      try {
        const c1 = cat(file, 15_000);
        const c2 = cat(file, 15_000);
        const pids: number[] = [];
        let broke = 0;
        await within(5000, (async () => {
          for await (const ev of fan) {
            pids.push(ev.pid);
            if (pids.length === 2) {
              broke = Date.now();
              break;
            }
          }
        })(), 'two events');
        expect(pids.sort()).toEqual([c1.pid, c2.pid].sort());
        const [r1, r2] = await within(5000, Promise.all([c1.result, c2.result]), 'cats after break');
        expectDenied(r1);
        expectDenied(r2);
        console.log(`break: answered ${Date.now() - broke} ms after the break`);
      } finally {
        await fan.close();
      }
    });

    test('an exception in the loop body', async () => {
      const fan = contentGroup(dir, permission);
      try {
        const c = cat(file, 15_000);
        const boom = new Error('boom');
        await expect(within(5000, (async () => {
          for await (const ev of fan) {
            expect(ev.pid).toBe(c.pid);
            throw boom;
          }
        })(), 'loop')).rejects.toBe(boom);
        const r = await within(5000, c.result, 'cat after throw');
        expectDenied(r);
        expect(r.ms).toBeLessThan(5000);
      } finally {
        await fan.close();
      }
    });

    test('a new loop after a break: the old events got the default, any it still yields say so, new ones are its own', async () => {
      const fan = contentGroup(dir, permission);
      try {
        const cats = [cat(file, 15_000), cat(file, 15_000), cat(file, 15_000)];
        // All three wait in the kernel for an answer before the loop starts.
        const waiting = (pid: number): boolean => {
          try {
            return fs.readFileSync(`/proc/${pid}/wchan`, 'utf8').startsWith('fanotify');
          } catch {
            return false;
          }
        };
        for (let i = 0; i < 500 && !cats.every((c) => waiting(c.pid)); i++) await sleep(10);
        expect(cats.every((c) => waiting(c.pid))).toBe(true);
        for await (const ev of fan) {
          void ev;
          break;
        }
        for (const r of await within(5000, Promise.all(cats.map((c) => c.result)), 'cats after break')) expectDenied(r);
        // Events read before the break come first (whether any were depends on
        // timing), answered already; then the new loop's own.
        const it = fan.events();
        const next = cat(file, 15_000);
        for (;;) {
          const ev = await nextEvent(it);
          if (ev.pid === next.pid) {
            ev.respond('allow');
            break;
          }
          expect(cats.map((c) => c.pid)).toContain(ev.pid);
          expect(() => ev.respond('allow')).toThrow(expect.objectContaining({ code: 'ERR_ALREADY_RESPONDED' }));
        }
        expectAllowed(await within(5000, next.result, 'cat in the new loop'));
        await it.return!();
      } finally {
        await fan.close();
      }
    });

    test('fan.close() while an event is pending', async () => {
      const fan = contentGroup(dir, permission);
      try {
        const c = cat(file, 15_000);
        const it = fan[Symbol.asyncIterator]();
        const ev = await nextEvent(it);
        expect(ev.pid).toBe(c.pid);
        const waiting = it.next();  // the loop waits for more
        await fan.close();
        const r = await within(5000, c.result, 'cat after close');
        expectDenied(r);
        expect(r.ms).toBeLessThan(5000);
        expect(await within(1000, waiting, 'iterator end')).toEqual({ done: true, value: undefined });
        expect(() => ev.respond('allow')).toThrow(expect.objectContaining({ code: 'ERR_ALREADY_RESPONDED' }));
      } finally {
        await fan.close();
      }
    });

    test('an AbortSignal abort while the loop waits, with an event handed over unanswered', async () => {
      const fan = contentGroup(dir, permission);
      const ac = new AbortController();
      try {
        const c = cat(file, 15_000);
        let got = 0;
        const loop = (async () => {
          for await (const ev of fan.events({ signal: ac.signal })) {
            expect(ev.pid).toBe(c.pid);
            got++;
            setTimeout(() => ac.abort(), 100);  // abort while next() waits
          }
        })();
        await expect(within(5000, loop, 'loop')).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
        expect(got).toBe(1);
        const r = await within(5000, c.result, 'cat after abort');
        expectDenied(r);
        expect(r.ms).toBeLessThan(5000);
      } finally {
        await fan.close();
      }
    });
  });

  // 6 ----------------------------------------------------------------------
  // Each scenario runs in a child process (fixtures/worker-harness.js): if
  // terminating a Worker crashes the process, that is a failed test here and
  // not the end of the jest run. "The main process does not crash" is the
  // harness exiting 0 after all rounds.
  describe('worker_threads', () => {
    type Line = Record<string, unknown>;
    async function harness(args: string[], killAfterMs: number): Promise<{ r: ChildResult; lines: Line[] }> {
      const c = start(process.execPath, [path.join(FIXTURES, 'worker-harness.js'), ...args], bound(killAfterMs));
      const r = await within(killAfterMs + 5000, c.result, `worker-harness.js ${args[0]}`);
      const parsed = r.stdout.trim().split('\n').filter(Boolean).map((l): Line => {
        try {
          return JSON.parse(l) as Line;
        } catch {
          return { line: l };
        }
      });
      console.log(`worker-harness ${args[0]}: ${JSON.stringify(parsed)} code=${r.code} signal=${r.signal} ${r.stderr.trim()}`);
      return { r, lines: parsed };
    }
    function expectClean(r: ChildResult): void {
      expect(r.timedOut).toBe(false);
      expect(r.signal).toBeNull();  // SIGABRT / SIGSEGV: the process crashed
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }

    test('terminating a Worker with a pending permission event answers it; a second Worker can do it again', async () => {
      const { r, lines: out } = await harness(['perm', dir, '2'], 30_000);
      expectClean(r);
      const rounds = out.filter((o) => typeof o.round === 'number');
      expect(rounds).toHaveLength(2);
      for (const o of rounds) {
        expect(o.eventPid).toBe(o.catPid);
        expect(o.eventPath).toBe(file);
        // The group's default (deny), not the kernel's answer on release (allow).
        expect(o.catCode).not.toBe(0);
        expect(o.catStderr).toContain(EPERM_TEXT);
        expect(o.catMsAfterTerminate).toBeLessThan(3000);  // timeoutMs is 20 s
      }
      expect(out[out.length - 1]).toEqual({ done: true, ownGroup: { code: 0, stdout: CONTENT } });
    });

    test.each(['fid', 'open'])('a Worker consuming a stream of %s notification events, terminated mid-stream 5 times, does not crash the process', async (kind) => {
      const streamDir = path.join(dir, 'stream');
      fs.mkdirSync(streamDir);
      fs.writeFileSync(path.join(streamDir, 'f'), CONTENT);
      const { r, lines: out } = await harness([`stream-${kind}`, streamDir, '5'], 50_000);
      expectClean(r);
      const rounds = out.filter((o) => typeof o.round === 'number');
      expect(rounds).toHaveLength(5);
      for (const o of rounds) expect(o.events).toBeGreaterThanOrEqual(100);
      expect(out[out.length - 1]).toEqual({ done: true });
    }, bound(60_000));

    test('a Worker answering a stream of permission events, terminated mid-stream 5 times, does not crash the process', async () => {
      const { r, lines: out } = await harness(['stream-perm', dir, '5'], 50_000);
      expectClean(r);
      const rounds = out.filter((o) => typeof o.round === 'number');
      expect(rounds).toHaveLength(5);
      for (const o of rounds) {
        expect(o.events).toBeGreaterThanOrEqual(100);
        expect(o.loopStuck).toBe(false);  // no cat left waiting on a lost event
        expect(o.loopErr).toBe('');       // default 'allow': no cat was refused
      }
      expect(out[out.length - 1]).toEqual({ done: true });
    }, bound(60_000));

    // Notification event fds are process-wide; the events a terminated Worker
    // had read (in its loop body, or queued in its JavaScript) must not leave
    // their fds open in the process.
    // The group owns every fd it hands over until released, and env cleanup
    // closes them with it (no JavaScript runs then to release them).
    test('terminating a Worker with notification events queued in JavaScript leaks no event fds', async () => {
      const { r, lines: out } = await harness(['stall', dir], 20_000);
      expectClean(r);
      const last = out[out.length - 1];
      expect(last).toMatchObject({ done: true });
      expect(last.during).toBeGreaterThan((last.before as string[]).length);  // the events did hold fds
      expect(last.after).toEqual(last.before);
    });
  });

  // 7 ----------------------------------------------------------------------
  describe('a process holding a content group goes away', () => {
    test.each([
      // process.exit() runs atexit: the group's own default (deny) answers.
      ['exit', 'process.exit(0) in the loop', expectDenied],
      // An exception escaping the loop: the iterator's return() answers (deny).
      ['throw', 'an uncaught exception in the loop', expectDenied],
      // SIGKILL: nothing of ours runs; the kernel answers allow when the group fd goes.
      ['wait', 'SIGKILL', expectAllowed],
    ] as const)('%s (%s): the waiting processes complete', async (mode, _what, check) => {
      const holder = start(process.execPath, [path.join(FIXTURES, 'perm-holder.js'), dir, mode, '2'], 20_000);
      const out = lines(holder.child);
      await out.wait((l) => l.includes('ready'), 10_000, 'holder ready');
      const c1 = cat(file, 15_000);
      const c2 = cat(file, 15_000);
      if (mode === 'wait') {
        await out.wait((l) => l.filter((x) => x.startsWith('event ')).length === 2, 5000, 'two events');
        holder.child.kill('SIGKILL');
      }
      const t = Date.now();
      const h = await within(15_000, holder.result, 'holder');
      const [r1, r2] = await within(5000, Promise.all([c1.result, c2.result]), 'cats');
      expect(h.timedOut).toBe(false);
      const events = h.stdout.split('\n').filter((x) => x.startsWith('event ')).map((x) => Number(x.slice(6)));
      expect(events.sort()).toEqual([c1.pid, c2.pid].sort());
      if (mode === 'exit') expect(h.code).toBe(0);
      if (mode === 'throw') {
        expect(h.code).toBe(1);
        expect(h.stderr).toContain('consumer failed');
      }
      if (mode === 'wait') expect(h.signal).toBe('SIGKILL');
      check(r1);
      check(r2);
      expect(Math.max(r1.ms, r2.ms)).toBeLessThan(5000);
      console.log(`holder ${mode}: cats done ${Date.now() - t} ms after the holder ended (cat ${r1.ms}/${r2.ms} ms)`);
    });
  });

  // 8 ----------------------------------------------------------------------
  describe('fd hygiene', () => {
    test('200 permission events answered allow leave no fd behind', async () => {
      spawnSync('true');  // libuv's one-time child-process setup happens before counting
      const before = openFdCount();
      const fan = contentGroup(dir, { timeoutMs: 10_000, default: 'deny' });
      let answered = 0;
      try {
        const c = start('sh', ['-c', 'for i in $(seq 200); do cat "$1" >/dev/null || exit 1; done', 'sh', file], 25_000);
        const loop = (async () => {
          for await (const ev of fan) {
            expect(ev.pid).not.toBe(process.pid);
            expect(typeof ev.fd).toBe('number');
            ev.respond('allow');
            expect(ev.fd).toBeNull();
            if (++answered === 200) break;
          }
        })();
        await within(25_000, loop, '200 events');
        const r = await within(5000, c.result, 'sh');
        expect(r.timedOut).toBe(false);
        expect(r.code).toBe(0);
        expect(answered).toBe(200);
      } finally {
        await fan.close();
      }
      expect(openFdCount()).toBe(before);
    });
  });
});
