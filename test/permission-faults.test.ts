// Permission events in the states where an answer used to go wrong: a late or
// refused respond(), a default the kernel refuses, events still in the kernel
// queue when the group closes (close(), process exit, Worker teardown), the
// order of events read by two threads, read errors that persist, and an
// AbortSignal that fires while no next() waits.
//
// Some cases drive the native group directly (RawGroup): the library checks
// every answer before the kernel sees it, so a write the kernel refuses can
// only be made below it. Every wait has a bound (within(), until(), kill
// timers on children), and every group is closed and child killed in finally
// or afterEach.
//
// Needs root (CAP_SYS_ADMIN for a content group), prlimit (util-linux).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { Fanotify, FanotifyEvent, PermissionOptions } from '../lib';
import { binding, NativeGroup, RawBatch } from '../lib/core/binding';
import { constants as C, FAN_DENY_ERRNO } from '../lib/core/constants';
import { batchViews, EVENT_STRIDE, rowToken } from '../lib/core/event';
import { groupConfig } from '../lib/core/options';
import { ChildResult, killAll, start, Started } from './children';
import { bound, describeRoot, sleep, within } from './helpers';

jest.setTimeout(bound(60_000));

const DIST = path.join(__dirname, '..', 'dist');
const CONTENT = 'hello from the watched dir\n';
const EPERM_TEXT = 'Operation not permitted';
const EIO = 5, EINVAL = 22;

const cat = (file: string, killAfterMs = 20_000): Started => start('cat', [file], bound(killAfterMs));

function expectDenied(r: ChildResult): void {
  expect({ timedOut: r.timedOut, denied: r.code !== 0 && r.stderr.includes(EPERM_TEXT) }).toEqual({ timedOut: false, denied: true });
}

function expectAllowed(r: ChildResult): void {
  expect({ timedOut: r.timedOut, code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({ timedOut: false, code: 0, stderr: '', stdout: CONTENT });
}

/** Polls pred every 5 ms; rejects after ms. */
async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + bound(ms);
  while (!pred()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

/** Whether process pid waits in the kernel for a fanotify answer (queued or read). */
function waitsForAnswer(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/wchan`, 'utf8').startsWith('fanotify');
  } catch {
    return false;
  }
}

/** Spins (the JS thread busy, no loop turn) until every pid waits for an answer. */
function spinUntilWaiting(pids: number[], ms: number): void {
  const end = Date.now() + bound(ms);
  while (!pids.every(waitsForAnswer)) if (Date.now() > end) throw new Error(`openers not waiting within ${ms} ms`);
}

/** Blocks the JS thread for ms: no JavaScript runs, no loop turn. */
const block = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

async function nextEvent(it: AsyncIterator<FanotifyEvent>, ms = 5000): Promise<FanotifyEvent> {
  const r = await within(ms, it.next(), 'next event');
  if (r.done) throw new Error('iteration ended before an event came');
  return r.value;
}

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

// --- the native group, driven directly ---------------------------------------

interface RawEvent {
  pid: number;
  fd: number;
  token: number;
}

/** A content group without the library's checks: answers go to the kernel as given. */
class RawGroup {
  readonly native: NativeGroup;
  readonly events: RawEvent[] = [];
  readonly errors: number[] = [];
  #wake: (() => void) | null = null;

  constructor(dir: string, options: { timeoutMs: number; defaultResponse: number }, eventFileFlags: 'r' | 'rw' = 'r') {
    const cfg = groupConfig({ class: 'content', eventFileFlags });
    this.native = new binding.Group(cfg.initFlags, cfg.eventFileFlags,
      { permissionClass: true, allowSelf: true, bufferSize: 4096, ...options }, (raw) => this.#take(raw));
    binding.mark(this.native.fd, C.FAN_MARK_ADD, C.FAN_OPEN_PERM | C.FAN_EVENT_ON_CHILD, -100, dir);
  }

  #take(raw: RawBatch): void {
    if (typeof raw === 'number') {
      this.errors.push(raw);
    } else {
      const batch = batchViews(raw);
      for (let row = 0; row < batch.events.length / EVENT_STRIDE; row++) {
        const at = row * EVENT_STRIDE;
        this.events.push({ fd: batch.events[at + 4], pid: batch.events[at + 5], token: rowToken(batch, row) });
      }
    }
    this.#wake?.();
  }

  /** The next event read (by either thread), within ms. */
  async next(ms = 5000): Promise<RawEvent> {
    const end = Date.now() + bound(ms);
    for (;;) {
      const ev = this.events.shift();
      if (ev) return ev;
      const now = this.native.read();
      if (now !== undefined) {
        this.#take(now);
        continue;
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no event within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  close(): void {
    this.native.close();
  }
}

// A content group with a 300 ms timeout whose loop takes one event and never
// answers it; prints each process warning as JSON; SIGUSR2 closes the group
// and lets the process end.
const TIMEOUT_CHILD = `
const { Fanotify } = require(process.argv[1]);
const fan = new Fanotify({ class: 'content', permission: { timeoutMs: 300 } });
fan.add(process.argv[2], ['openPerm', 'eventOnChild']);
process.on('warning', (w) => console.log(JSON.stringify({ name: w.name, code: w.code, message: w.message })));
const keep = setInterval(() => {}, 1000);
process.on('SIGUSR2', () => {
  void fan.close();
  clearInterval(keep);
});
const it = fan.events();
it.next().then(() => console.log('took one, answering none'));
console.log('ready');
`;

describeRoot('permission faults', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-permf-')));
    file = path.join(dir, 'f');
    fs.writeFileSync(file, CONTENT);
  });

  afterEach(async () => {
    await killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // 1 ------------------------------------------------------------------------
  describe('a respond() that comes too late or is refused', () => {
    // A process waited the whole timeout for an event nobody answered: the
    // program must hear of it (one warning line), but not once per event.
    test('events answered by their timeout: one FanotifyWarning at once, later ones counted and told at close()', async () => {
      const child = start(process.execPath, ['-e', TIMEOUT_CHILD, DIST, dir], bound(20_000));
      await until(() => child.out().includes('ready'), 5000, 'the child ready');
      // First: held by the loop, never answered. Second: never read at all.
      expectAllowed(await within(8000, cat(file).result, 'first cat'));
      await until(() => child.out().includes('FANOTIFY_PERMISSION_TIMEOUT'), 5000, 'the first warning');
      expectAllowed(await within(8000, cat(file).result, 'second cat'));
      process.kill(child.pid, 'SIGUSR2');  // close the group
      const r = await within(8000, child.result, 'the child');
      const warnings = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      expect(warnings).toEqual([
        { name: 'FanotifyWarning', code: 'FANOTIFY_PERMISSION_TIMEOUT', message: expect.stringContaining('1 permission event was answered by the timeout (permission.timeoutMs: 300 ms) with the default "allow"') },
        { name: 'FanotifyWarning', code: 'FANOTIFY_PERMISSION_TIMEOUT', message: expect.stringContaining('1 permission event was') },
      ]);
      expect(warnings[0].message).toContain('ev.respond()');
      expect(r.code).toBe(0);
    });

    // The timeout answered; respond() finds the token gone and closes the fd.
    // ev.fd must not keep naming that number: the next open in this process
    // takes it, and path, keepFd() and the step's release would act on it
    // (an AV scanner would scan the wrong file).
    test('after the timeout answered, respond() throws and ev.fd is null: path, keepFd() and the step end leave a reused number alone', async () => {
      const other = path.join(dir, 'unrelated');
      fs.writeFileSync(other, 'x');
      const fan = contentGroup(dir, { timeoutMs: 300, default: 'deny' });
      let reused = -1;
      try {
        const it = fan.events();
        const c = cat(file);
        const ev = await nextEvent(it);
        expectDenied(await within(8000, c.result, 'cat'));
        expect(() => ev.respond('allow')).toThrow(expect.objectContaining({ code: 'ERR_ALREADY_RESPONDED' }));
        reused = fs.openSync(other, 'r');  // may take the number respond() closed
        expect(ev.fd).toBeNull();
        expect(ev.path).toBeUndefined();
        expect(ev.keepFd()).toBeNull();
        // The next step releases the old event: the unrelated file stays open.
        const c2 = cat(file);
        const ev2 = await nextEvent(it);
        ev2.respond('allow');
        expectAllowed(await within(8000, c2.result, 'second cat'));
        expect(fs.readlinkSync(`/proc/self/fd/${reused}`)).toBe(other);
      } finally {
        if (reused >= 0) fs.closeSync(reused);
        await fan.close();
      }
    });

    // The kernel matches an answer to an event by fd number, oldest first: if
    // a refused answer freed the number of an event still pending, a newer
    // event given that number would have its answer go to the old one. A
    // writable event fd ('rw') loses its file before the write (ETXTBSY), a
    // read-only one keeps it until the answer is taken.
    test.each(['r', 'rw'] as const)("eventFileFlags '%s': a write the kernel refuses keeps the event pending under its own fd number: the next event gets another number, each answer reaches its own opener", async (flags) => {
      const raw = new RawGroup(dir, { timeoutMs: 20_000, defaultResponse: C.FAN_DENY }, flags);
      const fillers: number[] = [];
      try {
        // B opens on SIGUSR1: started now, so that no fd of ours is made for it later.
        const b = start(process.execPath, ['-e', `
          const fs = require('fs');
          process.on('SIGUSR1', () => {
            let r = 'ok';
            try { fs.readFileSync(process.argv[1]); } catch (e) { r = e.code; }
            process.stdout.write(r + '\\n');
            process.exit(0);
          });
          setInterval(() => {}, 1000);
          process.stdout.write('ready\\n');
        `, file]);
        await until(() => b.out().includes('ready') || !b.running(), 10_000, 'opener B ready');
        const a = cat(file);
        const evA = await raw.next();
        expect(evA.pid).toBe(a.pid);
        // FAN_AUDIT without FAN_ENABLE_AUDIT: the kernel refuses the answer.
        expect(raw.native.respond(evA.token, C.FAN_ALLOW | C.FAN_AUDIT, evA.fd)).toBe(EINVAL);
        // Take every free number below evA.fd: the kernel gives the next
        // event fd evA.fd if that number is free.
        for (;;) {
          const fd = fs.openSync('/dev/null', 'r');
          if (fd >= evA.fd) {
            fs.closeSync(fd);
            break;
          }
          fillers.push(fd);
        }
        b.child.kill('SIGUSR1');
        const evB = await raw.next();
        expect(evB.pid).toBe(b.pid);
        expect(evB.fd).not.toBe(evA.fd);
        expect(raw.native.respond(evB.token, C.FAN_DENY, evB.fd)).toBe(0);
        const rb = await within(5000, b.result, 'opener B');
        expect(rb.stdout).toBe('ready\nEPERM\n');
        await sleep(100);
        expect(a.running()).toBe(true);  // A's answer is still to come
        expect(raw.native.respond(evA.token, C.FAN_ALLOW, -1)).toBe(0);
        expectAllowed(await within(5000, a.result, 'cat A'));
      } finally {
        for (const fd of fillers) fs.closeSync(fd);
        raw.close();
      }
    });
  });

  // 2 ------------------------------------------------------------------------
  // A default the kernel refuses (here an errno in a content group, as a deny
  // errno before Linux 6.14) is plain FAN_DENY instead: never allow, and never
  // an opener left waiting until the group closes.
  describe('a default answer the kernel refuses', () => {
    test('at the timeout: the opener is denied at once (FAN_DENY), not left waiting', async () => {
      const raw = new RawGroup(dir, { timeoutMs: 300, defaultResponse: FAN_DENY_ERRNO(EIO) });
      try {
        const c = cat(file);
        expect((await raw.next()).pid).toBe(c.pid);
        const r = await within(3000, c.result, 'cat after the timeout').catch((err) => {
          throw new Error(`${err.message}: the refused default left the opener waiting`);
        });
        expectDenied(r);
      } finally {
        raw.close();
      }
    });

    test('on close(): the opener is denied (FAN_DENY), not allowed by the kernel', async () => {
      const raw = new RawGroup(dir, { timeoutMs: 20_000, defaultResponse: FAN_DENY_ERRNO(EIO) });
      try {
        const c = cat(file);
        expect((await raw.next()).pid).toBe(c.pid);
        raw.close();
        expectDenied(await within(3000, c.result, 'cat after close'));
      } finally {
        raw.close();
      }
    });
  });

  // 3 ------------------------------------------------------------------------
  // Closing the group fd makes the kernel allow every permission event still
  // in its queue: the library reads and answers them first. A burst of 300
  // openers at once (more than one 4 KiB read holds, about 170 events) is
  // caught in the kernel queue by closing as soon as all of them wait; the
  // reader thread, quiet before, checks the fd every 64 ms.
  describe("events still in the kernel queue get the default: 'deny' does not fail open", () => {
    const BURST_C = `
      // THREADS threads wait at a barrier, then each opens FILE once.
      // Prints one JSON line: {"ok":N,"eperm":N,"other":N}.
      #include <errno.h>
      #include <fcntl.h>
      #include <pthread.h>
      #include <stdio.h>
      #include <stdlib.h>
      #include <unistd.h>
      static const char* file;
      static pthread_barrier_t barrier;
      static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
      static long ok, eperm, other;
      static void* run(void* arg) {
        (void)arg;
        pthread_barrier_wait(&barrier);
        int fd = open(file, O_RDONLY);
        int err = errno;
        pthread_mutex_lock(&mu);
        if (fd >= 0) { ok++; close(fd); } else if (err == EPERM) eperm++; else other++;
        pthread_mutex_unlock(&mu);
        return NULL;
      }
      int main(int argc, char** argv) {
        if (argc != 3) return 2;
        file = argv[1];
        long n = atol(argv[2]);
        pthread_t* th = calloc(n, sizeof *th);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        pthread_barrier_init(&barrier, NULL, n);
        for (long i = 0; i < n; i++) if (pthread_create(&th[i], &attr, run, NULL)) return 3;
        for (long i = 0; i < n; i++) pthread_join(th[i], NULL);
        printf("{\\"ok\\":%ld,\\"eperm\\":%ld,\\"other\\":%ld}\\n", ok, eperm, other);
        return 0;
      }
    `;
    const THREADS = 300;
    const ROUNDS = 4;
    let binDir: string;
    let burstBin: string;

    beforeAll(() => {
      binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-permf-bin-'));
      burstBin = path.join(binDir, 'burst');
      fs.writeFileSync(path.join(binDir, 'burst.c'), BURST_C);
      const cc = spawnSync('gcc', ['-O1', '-Wall', '-Werror', '-pthread', '-o', burstBin, path.join(binDir, 'burst.c')], { encoding: 'utf8', timeout: 30_000 });
      if (cc.status !== 0) throw new Error(`gcc failed (${cc.status ?? cc.error?.message}): ${cc.stderr}`);
    });

    afterAll(() => {
      if (binDir) fs.rmSync(binDir, { recursive: true, force: true });
    });

    /** Threads of process pid (its main thread aside) waiting for a fanotify answer. */
    function threadsWaiting(pid: number): number {
      let n = 0;
      try {
        for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
          try {
            if (Number(tid) !== pid && fs.readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8').startsWith('fanotify')) n++;
          } catch {
            // gone meanwhile
          }
        }
      } catch {
        // the process is gone
      }
      return n;
    }

    /** Starts the burst, runs `release` as soon as every opener waits; the burst's tally. */
    async function burst(release: () => void): Promise<{ ok: number; eperm: number; other: number }> {
      const b = start(burstBin, [file, String(THREADS)], bound(20_000));
      const end = Date.now() + bound(5000);
      // Spins, so that no loop turn comes between the last opener blocking and release().
      while (threadsWaiting(b.pid) < THREADS) if (Date.now() > end || !b.running()) throw new Error(`burst: ${threadsWaiting(b.pid)} of ${THREADS} openers waiting`);
      release();
      const r = await within(10_000, b.result, 'burst');
      expect({ code: r.code, timedOut: r.timedOut, stderr: r.stderr }).toEqual({ code: 0, timedOut: false, stderr: '' });
      return JSON.parse(r.stdout) as { ok: number; eperm: number; other: number };
    }

    test(`close() with ${THREADS} openers waiting, most of them unread (${ROUNDS} rounds): all denied`, async () => {
      const tallies: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const fan = contentGroup(dir, { timeoutMs: 20_000, default: 'deny' });
        try {
          await sleep(200);  // quiet: the reader thread checks every 64 ms
          const t = await burst(() => void fan.close());
          tallies.push(JSON.stringify(t));
        } finally {
          await fan.close();
        }
      }
      console.log(`close with ${THREADS} openers waiting: ${tallies.join(' ')}`);
      expect(tallies).toEqual(Array(ROUNDS).fill(JSON.stringify({ ok: 0, eperm: THREADS, other: 0 })));
    });

    // A child holds the group; on SIGUSR1 it exits, or has the Worker that
    // holds the group exit. Neither ever reads (no iteration runs).
    const HOLDER = `
      const { Fanotify } = require(process.argv[1]);
      const [dir, how] = process.argv.slice(2);
      const group = \`
        const fan = new (require(\${JSON.stringify(process.argv[1])}).Fanotify)({ class: 'content', permission: { timeoutMs: 60000, default: 'deny' } });
        fan.add(\${JSON.stringify(dir)}, ['openPerm', 'eventOnChild']);
      \`;
      setInterval(() => {}, 1000);
      if (how === 'worker') {
        const { Worker } = require('worker_threads');
        // process.exit() in a Worker ends the Worker only (its env is torn down).
        const w = new Worker(group + "const { parentPort } = require('worker_threads'); parentPort.on('message', () => process.exit(0)); parentPort.postMessage('ready');", { eval: true });
        w.once('message', () => process.stdout.write('ready\\n'));
        process.on('SIGUSR1', () => w.postMessage('exit'));
      } else {
        eval(group);
        process.on('SIGUSR1', () => process.exit(0));
        process.stdout.write('ready\\n');
      }
    `;

    test.each([
      ['exit', 'process.exit()'],
      ['worker', 'the Worker holding the group exits'],
    ] as const)(`%s (%s) with ${THREADS} openers waiting (${ROUNDS} rounds): all denied`, async (how, _what) => {
      const tallies: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const holder = start(process.execPath, ['-e', HOLDER, DIST, dir, how], bound(20_000));
        try {
          await until(() => holder.out().includes('ready\n') || !holder.running(), 10_000, 'holder ready');
          expect(holder.out()).toContain('ready\n');
          await sleep(200);
          tallies.push(JSON.stringify(await burst(() => holder.child.kill('SIGUSR1'))));
        } finally {
          holder.child.kill('SIGKILL');
          await within(5000, holder.result, 'holder');
        }
      }
      console.log(`${how} with ${THREADS} openers waiting: ${tallies.join(' ')}`);
      expect(tallies).toEqual(Array(ROUNDS).fill(JSON.stringify({ ok: 0, eperm: THREADS, other: 0 })));
    });
  });

  // 4 ------------------------------------------------------------------------
  describe('kernel order', () => {
    // The reader thread reads A while the JS thread is blocked and hands it
    // over; then B comes, and next() finds it in the kernel queue before the
    // hand-off of A has reached JavaScript.
    test('an event the reader thread read while the JS thread was blocked comes before a later one the JS thread reads itself (10 rounds)', async () => {
      const fileB = path.join(dir, 'g');
      fs.writeFileSync(fileB, CONTENT);
      const orders: string[] = [];
      for (let round = 0; round < 10; round++) {
        const fan = contentGroup(dir, { timeoutMs: 10_000, default: 'allow' });
        try {
          const it = fan.events();
          const a = cat(file);
          spinUntilWaiting([a.pid], 3000);  // A's event is queued before B's
          block(bound(200));  // the reader thread reads A and hands it over
          const b = cat(fileB);
          spinUntilWaiting([b.pid], 3000);
          const first = await nextEvent(it);
          first.respond('allow');
          const second = await nextEvent(it);
          second.respond('allow');
          orders.push([first, second].map((e) => (e.pid === a.pid ? 'A' : e.pid === b.pid ? 'B' : '?')).join(''));
          await within(5000, Promise.all([a.result, b.result]), 'cats');
        } finally {
          await fan.close();
        }
      }
      console.log(`order per round: ${orders.join(' ')}`);
      expect(orders).toEqual(Array(10).fill('AB'));
    });
  });

  // 5 ------------------------------------------------------------------------
  // EMFILE: every read fails while the process has no free fd (the kernel
  // denies the event it could not open an fd for). Run in a child whose fd
  // table is filled, with openers started before.
  describe('a read error that persists', () => {
    const EMFILE_CHILD = `
      const { spawn } = require('child_process');
      const fs = require('fs');
      const [dist, dir, mode] = process.argv.slice(1);
      const { Fanotify } = require(dist);
      const { binding } = require(dist + '/core/binding');
      const { groupConfig } = require(dist + '/core/options');
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const file = dir + '/f';
      (async () => {
        // Prints 'ready'; from SIGUSR1 on (sent once our fd table is full),
        // opens the file every 2 ms until killed, one line per result.
        const opener = spawn(process.execPath, ['-e', \`
          const fs = require('fs');
          process.on('SIGUSR1', () => setInterval(() => { let r = 'ok'; try { fs.closeSync(fs.openSync(process.argv[1], 'r')); } catch (e) { r = e.code; } process.stdout.write(r + '\\\\n'); }, 2));
          setInterval(() => {}, 1000);
          process.stdout.write('ready\\\\n');
        \`, file], { stdio: ['ignore', 'pipe', 'inherit'] });
        let results = '';
        opener.stdout.on('data', (d) => (results += d));
        const lines = () => results.split('\\n');
        const waitFor = async (pred) => { while (!pred()) await sleep(5); };  // bounded by the test's kill timer
        const fill = () => { const fds = []; for (;;) { try { fds.push(fs.openSync('/dev/null', 'r')); } catch { return fds; } } };
        await waitFor(() => lines().includes('ready'));
        // Fills the fd table, then starts the opener and waits for its first result.
        const fillAndOpen = async () => {
          const fds = fill();
          opener.kill('SIGUSR1');
          await waitFor(() => lines().length > 2);
          return fds;
        };
        const out = {};
        if (mode === 'flood') {
          // The native group alone: every batch the reader thread hands over is counted.
          const cfg = groupConfig({ class: 'content' });
          let errors = 0, batches = 0;
          const g = new binding.Group(cfg.initFlags, cfg.eventFileFlags,
            { permissionClass: true, allowSelf: true, bufferSize: 4096, timeoutMs: 5, defaultResponse: 1 },
            (b) => { if (typeof b === 'number') errors++; else batches++; });
          binding.mark(g.fd, 1, 0x10000 | 0x08000000, -100, dir);
          await sleep(300);
          const ioFd = fs.openSync('/proc/self/io', 'r');
          const io = () => { const b = Buffer.alloc(4096); return Number(/syscr: (\\d+)/.exec(b.toString('utf8', 0, fs.readSync(ioFd, b, 0, 4096, 0)))[1]); };
          const fillers = await fillAndOpen();
          const io0 = io();
          const errors0 = errors;
          const before = lines().filter((l) => l === 'EPERM').length;
          await sleep(1000);
          out.errors = errors;
          out.errorsInTheSecond = errors - errors0;
          out.denied = lines().filter((l) => l === 'EPERM').length - before;
          for (const fd of fillers) fs.closeSync(fd);
          out.readsPerSecond = io() - io0;
          g.close();
        } else {
          const fan = new Fanotify({ class: 'content', permission: { timeoutMs: 5000, default: 'allow' } });
          fan.add(dir, ['openPerm', 'eventOnChild']);
          await sleep(300);
          const fillers = await fillAndOpen();
          const it1 = fan.events();
          try { await it1.next(); out.first = 'event'; } catch (e) { out.first = e.code; }
          await it1.return();
          await sleep(500);  // the error goes on meanwhile
          for (const fd of fillers) fs.closeSync(fd);
          await sleep(100);
          const it2 = fan.events();
          try { const r = await it2.next(); out.second = r.done ? 'done' : 'event'; if (!r.done) r.value.respond('allow'); } catch (e) { out.second = e.code; }
          await it2.return();
          await fan.close();
        }
        opener.kill('SIGKILL');
        process.stdout.write(JSON.stringify(out) + '\\n');
        process.exit(0);
      })();
    `;

    async function emfileChild(mode: 'flood' | 'stale'): Promise<Record<string, unknown>> {
      // 256 fds: enough for node and the opener's pipes, soon filled.
      const child = start('prlimit', ['--nofile=256:256', process.execPath, '-e', EMFILE_CHILD, DIST, dir, mode], bound(20_000));
      const r = await within(25_000, child.result, 'EMFILE child');
      expect({ code: r.code, timedOut: r.timedOut, stderr: r.stderr }).toEqual({ code: 0, timedOut: false, stderr: '' });
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      console.log(`EMFILE (${mode}): ${JSON.stringify(out)}`);
      return out;
    }

    test('the reader thread backs off and hands JavaScript one error, not one per millisecond', async () => {
      const out = await emfileChild('flood');
      expect(out.errors).toBe(1);
      // One event denied per failed read: a read every 64 ms at most. (At
      // least one: the opener did open meanwhile, its events were there.)
      expect(out.denied as number).toBeGreaterThanOrEqual(1);
      expect(out.denied as number).toBeLessThanOrEqual(40);
    });

    test("an error of an ended loop does not fail the next loop's first next()", async () => {
      const out = await emfileChild('stale');
      expect(out).toEqual({ first: 'EMFILE', second: 'event' });
    });
  });

  // 6 ------------------------------------------------------------------------
  describe('an AbortSignal', () => {
    test('aborted while the loop body runs (no next() waiting): the event handed over gets the default at once; next() then rejects, then is done', async () => {
      const fan = contentGroup(dir, { timeoutMs: 20_000, default: 'deny' });
      const ac = new AbortController();
      try {
        const it = fan.events({ signal: ac.signal });
        const c = cat(file);
        const ev = await nextEvent(it);
        expect(ev.pid).toBe(c.pid);
        ac.abort();
        expectDenied(await within(2000, c.result, 'cat after the abort (timeoutMs is 20 s)'));
        expect(() => ev.respond('allow')).toThrow(expect.objectContaining({ code: 'ERR_ALREADY_RESPONDED' }));
        await expect(within(1000, it.next(), 'next after abort')).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
        expect(await within(1000, it.next(), 'next again')).toEqual({ done: true, value: undefined });
        expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      } finally {
        await fan.close();
      }
    });

    test('an iterator dropped without finishing leaves no listener on the signal', async () => {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const fan = contentGroup(dir, { timeoutMs: 20_000, default: 'deny' });
      const ac = new AbortController();
      try {
        await (async () => {
          const it = fan.events({ signal: ac.signal });
          const c = cat(file);
          const ev = await nextEvent(it);
          ev.respond('allow');
          expectAllowed(await within(5000, c.result, 'cat'));
        })();  // the iterator is unreachable from here on
        expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
        for (let i = 0; i < 100 && getEventListeners(ac.signal, 'abort').length > 0; i++) {
          gc();
          await sleep(10);
        }
        expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      } finally {
        await fan.close();
      }
    });
  });
});
