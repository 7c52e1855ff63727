#!/usr/bin/env node
// Benchmarks: the library against plain C doing the same work (see bench/README.md).
//   P1: consumer CPU per event (FID-mode create/delete feed on a loop-mounted ext4),
//       also for the "Node floor" (bench/js-floor.js: the addon with no event objects).
//   P2: latency added to each open() by an allow-all FAN_OPEN_PERM handler.
// Usage (as root): node scripts/bench.js [--events N] [--opens M] [--reps K]
//                  [--only p1|p2] [--backlog] [--pin none|same|split]
// Prints a table and, last, one JSON line. No dependencies.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const benchDir = path.join(root, 'bench');
const buildDir = path.join(benchDir, 'build'); // gitignored (bench/.gitignore)

// ---- options ----
const opt = { events: 80000, opens: 20000, reps: 5, only: null, backlog: false, pin: 'none' };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const val = () => {
    const v = process.argv[++i];
    if (v === undefined) usage(`${a} needs a value`);
    return v;
  };
  if (a === '--events') opt.events = posInt(val(), a);
  else if (a === '--opens') opt.opens = posInt(val(), a);
  else if (a === '--reps') opt.reps = posInt(val(), a);
  else if (a === '--only') opt.only = val();
  else if (a === '--backlog') opt.backlog = true;
  else if (a === '--pin') opt.pin = val();
  else usage(`unknown argument ${a}`);
}
if (opt.only && !['p1', 'p2'].includes(opt.only)) usage('--only takes p1 or p2');
if (!['none', 'same', 'split'].includes(opt.pin)) usage('--pin takes none, same or split');
// The generator makes events/2 creates + events/2 deletes.
opt.events = Math.max(2, opt.events - (opt.events % 2));

function posInt(v, name) {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) usage(`${name} must be a positive integer`);
  return n;
}
function usage(msg) {
  console.error(`${msg}\nusage: node scripts/bench.js [--events N] [--opens M] [--reps K] [--only p1|p2] [--backlog] [--pin none|same|split]`);
  process.exit(2);
}

// ---- cleanup: everything we create is registered here and undone in reverse ----
// Runs from `finally`, and from signal handlers (Ctrl-C), so it is synchronous
// and idempotent.
const undo = [];
const children = new Set();
function cleanup() {
  // Kill consumers first: a permission consumer that is gone is fine (the kernel
  // allows pending events when the group closes), a stopped one would hang umount's sync.
  for (const c of children) try { c.kill('SIGKILL'); } catch {}
  // SIGKILL is asynchronous; wait (up to 2 s) until each child has dropped its
  // files (zombie or gone), or umount would find the mount busy.
  const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  for (const c of children) {
    for (let i = 0; i < 200; i++) {
      let state;
      try { state = fs.readFileSync(`/proc/${c.pid}/stat`, 'utf8').split(') ')[1][0]; } catch { break; }
      if (state === 'Z' || state === 'X') break;
      sleep(10);
    }
  }
  children.clear();
  while (undo.length) {
    const [what, fn] = undo.pop();
    try { fn(); } catch (e) { console.error(`cleanup: ${what}: ${e.message}`); }
  }
}
process.on('exit', cleanup); // backstop for any path that skips `finally`
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { console.error(`\n${sig}: cleaning up`); cleanup(); process.exit(128 + os.constants.signals[sig]); });
}

const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

function compile() {
  fs.mkdirSync(buildDir, { recursive: true });
  for (const p of ['gen', 'c-consumer', 'c-perm', 'open-loop']) {
    sh('cc', ['-O2', '-Wall', '-o', path.join(buildDir, p), path.join(benchDir, `${p}.c`)]);
  }
}

// A fresh ext4 image on a loop device, so no other activity lands in the
// filesystem-wide mark and the results do not depend on the host's disk.
function makeImage() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-bench-'));
  undo.push(['rm ' + tmp, () => fs.rmSync(tmp, { recursive: true, force: true })]);
  const img = path.join(tmp, 'ext4.img');
  fs.closeSync(fs.openSync(img, 'w'));
  fs.truncateSync(img, 256 << 20); // sparse
  // lazy init off: no background ext4lazyinit thread writing while we measure.
  // -N: a backlog run holds events/2 files at once (the default gives 64k inodes).
  const inodes = Math.max(65536, opt.events);
  sh('mkfs.ext4', ['-q', '-F', '-N', String(inodes), '-E', 'lazy_itable_init=0,lazy_journal_init=0', img]);
  const dev = sh('losetup', ['--find', '--show', img]);
  undo.push(['losetup -d ' + dev, () => sh('losetup', ['-d', dev])]);
  const mnt = fs.mkdtempSync(path.join(tmp, 'mnt-'));
  sh('mount', [dev, mnt]);
  undo.push(['umount ' + mnt, () => {
    try { sh('umount', [mnt]); } catch { sh('umount', ['-l', mnt]); } // lazy: never leave it behind
  }]);
  return { dev, mnt };
}

// Spawns a program and collects its stdout lines; `ready` resolves on the
// "ready" line, `done` on exit with the last JSON line parsed.
// role 'load' (generators) or 'consumer': with --pin, taskset places them on
// one CPU ('same': every hand-off is a context switch) or on two ('split':
// every hand-off is a cross-CPU wake-up); unpinned, the scheduler decides,
// which on a small VM makes P2 swing between those two regimes.
function run(role, cmd, args, { timeoutMs = 300000 } = {}) {
  if (opt.pin !== 'none') {
    const cpu = opt.pin === 'split' && role === 'consumer' ? '1' : '0';
    [cmd, args] = ['taskset', ['-c', cpu, cmd, ...args]];
  }
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  const lines = [];
  let buf = '', onReady;
  const ready = new Promise((res, rej) => { onReady = res; child.once('error', rej); });
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      if (line === 'ready') onReady();
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise((res, rej) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const json = lines.filter((l) => l.startsWith('{')).pop();
      if (code !== 0 || !json) rej(new Error(`${path.basename(cmd)} ${args.join(' ')}: exit ${code ?? signal}, output: ${lines.join(' | ')}`));
      else res(JSON.parse(json));
    });
  });
  // A consumer that dies before "ready" must not leave us waiting forever.
  const readyOrDead = Promise.race([ready, done.then(() => { throw new Error(`${cmd} exited before ready`); })]);
  // Not every caller awaits both: an unhandled rejection would kill us before cleanup.
  done.catch(() => {});
  readyOrDead.catch(() => {});
  return { child, ready: readyOrDead, done };
}

const consumers = {
  p1: {
    C: (mnt, n, extra) => run('consumer', path.join(buildDir, 'c-consumer'), [mnt, String(n), ...extra]),
    JS: (mnt, n, extra) => run('consumer', process.execPath, [path.join(benchDir, 'js-consumer.js'), mnt, String(n), ...extra]),
    floor: (mnt, n, extra) => run('consumer', process.execPath, [path.join(benchDir, 'js-floor.js'), mnt, String(n), ...extra]),
  },
  p2: {
    C: (dir) => run('consumer', path.join(buildDir, 'c-perm'), [dir]),
    JS: (dir) => run('consumer', process.execPath, [path.join(benchDir, 'js-perm.js'), dir]),
    floor: (dir) => run('consumer', process.execPath, [path.join(benchDir, 'js-perm-floor.js'), dir]),
  },
};

// Alternate which consumer goes first, so slow drift (page cache, journal,
// CPU frequency) does not always favour the same one.
const haveJs = fs.existsSync(path.join(root, 'dist', 'index.js'));
const order = (rep, kinds) => {
  const k = haveJs ? kinds : kinds.filter((x) => x === 'C' || x === 'base');
  return rep % 2 ? [...k].reverse() : k;
};
const fmt = (x, digits) => (x == null || Number.isNaN(x) ? '-' : x.toFixed(digits));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function p1(mnt) {
  const per = { C: [], JS: [], floor: [] }, raw = [];
  for (let rep = 0; rep < opt.reps; rep++) {
    for (const kind of order(rep, ['C', 'floor', 'JS'])) {
      // A new directory per run: the same starting state for both consumers.
      const dir = path.join(mnt, `p1-${rep}-${kind}`);
      fs.mkdirSync(dir);
      const c = consumers.p1[kind](mnt, opt.events, opt.backlog ? ['--backlog'] : []);
      await c.ready; // the mark is in place: no event of the generator can be missed
      const gen = run('load', path.join(buildDir, 'gen'), [dir, String(opt.events / 2)]);
      const g = await gen.done;
      if (opt.backlog) c.child.stdin.write('go\n'); // the queue is full: start the clock
      const r = await c.done;
      fs.rmdirSync(dir);
      if (r.events !== opt.events) throw new Error(`${kind} consumer counted ${r.events} events, expected ${opt.events}`);
      per[kind].push(r.cpu_us / r.events);
      raw.push({ rep, kind, ...r, gen_wall_ms: g.wall_ms });
      console.log(`  P1 rep ${rep + 1} ${kind.padEnd(5)}  ${(r.cpu_us / r.events).toFixed(3)} us/event  ` +
        `(${r.records} records, ${r.cpu_us} us CPU, ${r.wall_ms} ms wall)`);
    }
  }
  const c = median(per.C), js = haveJs ? median(per.JS) : null, floor = haveJs ? median(per.floor) : null;
  return {
    c_us_per_event: +c.toFixed(3), js_us_per_event: js && +js.toFixed(3), ratio: js && +(js / c).toFixed(2),
    floor_us_per_event: floor && +floor.toFixed(3), floor_ratio: floor && +(floor / c).toFixed(2), runs: raw,
  };
}

async function p2(mnt) {
  const dir = path.join(mnt, 'p2');
  fs.mkdirSync(dir);
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, 'x');
  const ns = { base: [], C: [], JS: [], floor: [] };
  const openLoop = () => run('load', path.join(buildDir, 'open-loop'), [file, String(opt.opens)]).done;
  for (let rep = 0; rep < opt.reps; rep++) {
    for (const kind of order(rep, ['base', 'C', 'floor', 'JS'])) {
      let r;
      if (kind === 'base') r = await openLoop();
      else {
        const c = consumers.p2[kind](dir);
        await c.ready;
        try { r = await openLoop(); } finally { c.child.kill('SIGTERM'); }
        const s = await c.done;
        if (s.answered < opt.opens) throw new Error(`${kind} consumer answered only ${s.answered} of ${opt.opens} opens`);
      }
      ns[kind].push(r.ns_per_open);
      console.log(`  P2 rep ${rep + 1} ${kind.padEnd(5)}  ${r.ns_per_open} ns/open`);
    }
  }
  const base = median(ns.base), c = median(ns.C), js = haveJs ? median(ns.JS) : null;
  const floor = haveJs ? median(ns.floor) : null;
  return {
    baseline_ns: base, c_ns: c, js_ns: js, c_added_ns: c - base, js_added_ns: js && js - base,
    ratio: js && +((js - base) / (c - base)).toFixed(2),
    floor_added_ns: floor && floor - base, floor_ratio: floor && +((floor - base) / (c - base)).toFixed(2), samples: ns,
  };
}

async function main() {
  if (process.getuid() !== 0) throw new Error('run as root: fanotify_init, losetup and mount need CAP_SYS_ADMIN');
  if (!haveJs) console.error('warning: dist/index.js is missing (run `npm run build`): measuring the C side only');
  compile();
  const { dev, mnt } = makeImage();
  console.log(`image ${dev} on ${mnt}; ${os.cpus().length} CPUs, Linux ${os.release()}, Node ${process.version}`);
  console.log(`events=${opt.events} opens=${opt.opens} reps=${opt.reps} pin=${opt.pin}${opt.backlog ? ' (P1 backlog mode)' : ''}`);
  const result = { options: opt };
  if (opt.only !== 'p2') result.p1 = await p1(mnt);
  if (opt.only !== 'p1') result.p2 = await p2(mnt);

  console.log('\n  benchmark                               C          JS     JS/C  target');
  if (result.p1) {
    const r = result.p1;
    console.log(`  P1 consumer CPU per event (us)   ${fmt(r.c_us_per_event, 3).padStart(9)} ${fmt(r.js_us_per_event, 3).padStart(11)} ${fmt(r.ratio, 2).padStart(8)}  <= 1.5`);
    console.log(`     (Node floor, bench/js-floor.js: ${fmt(r.floor_us_per_event, 3)} us, ${fmt(r.floor_ratio, 2)} x C)`);
  }
  if (result.p2) {
    const r = result.p2;
    console.log(`  P2 added latency per open (ns)   ${fmt(r.c_added_ns, 0).padStart(9)} ${fmt(r.js_added_ns, 0).padStart(11)} ${fmt(r.ratio, 2).padStart(8)}  <= 1.5`);
    console.log(`     (Node floor, bench/js-perm-floor.js: ${fmt(r.floor_added_ns, 0)} ns, ${fmt(r.floor_ratio, 2)} x C)`);
    console.log(`     (open() without a consumer: ${Math.round(r.baseline_ns)} ns)`);
  }
  console.log(JSON.stringify(result));
}

main()
  .catch((e) => { console.error(`bench: ${e.stack || e}`); process.exitCode = 1; })
  .finally(cleanup);
