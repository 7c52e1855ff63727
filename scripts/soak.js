#!/usr/bin/env node
// Soak test: many events through real fanotify groups, watching this process's
// open fds (/proc/self/fd) and RSS for growth.
//
//   node scripts/soak.js                      1,000,000 notification + 100,000 permission events
//   node scripts/soak.js --events=200000 --perm=20000     shorter
//   node scripts/soak.js --json               one JSON line at the end as well
//
// Phase 1, notification: a FID group (fid, dirFid, name, pidfd: every event
//   carries a pidfd the library must close) with create and delete marked on a
//   directory of a tmpfs mounted for the run; a child process creates and
//   unlinks files there, a new name each time, until the group has delivered
//   --events events (kernel queue overflows, if the child outruns us, count as
//   events and are reported).
// Phase 2, permission: a content group with openPerm on a directory; a child
//   process opens a file there in a loop, each open blocking until this
//   process answers 'allow'; --perm events are answered (each carries an event
//   fd and a pidfd).
// Every --every events (default: 1/100 of the phase) it samples the open fd
// count (pidfds apart), RSS, the V8 heap and external (Buffer) memory, after a
// full GC. Verdict per phase
// and per measure: the first 10% of the samples are warm-up and dropped; of
// the rest, the last quarter is compared with the first quarter (medians;
// pidfds by minimum, see verdict()). "growing" when fds grew at all (> 1), RSS
// by more than max(8 MiB, 10%), heap or external memory by more than max(8 MiB, 25%). Exit status
// 1 when anything is growing.
//
// Needs root (fanotify_init, mount) and a build (npm run build: dist/ and
// build/Release). Exits 2 when it cannot run.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

if (typeof global.gc !== 'function') {
  // --expose-gc: a full GC before each sample, so that RSS reflects what is
  // live, not garbage. The young generation at its full size from the start:
  // V8 grows it in steps under allocation pressure (1 -> 16 MiB per
  // semi-space), which shows as RSS rising by ~8 MiB at a time over the first
  // million events and then flat; that is V8 warming up, not a leak.
  const flags = ['--expose-gc', '--min-semi-space-size=16', '--max-semi-space-size=16'];
  const r = spawnSync(process.execPath, [...flags, __filename, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(a);
    if (!m) {
      console.error(`soak.js: unknown argument ${a}`);
      process.exit(2);
    }
    return [m[1], m[2] ?? 'true'];
  }),
);
const NOTIFY_EVENTS = Number(args.events ?? 1_000_000);
const PERM_EVENTS = Number(args.perm ?? 100_000);
const SAMPLES = Number(args.samples ?? 100);

let Fanotify;
try {
  ({ Fanotify } = require('../dist/index.js'));
} catch (err) {
  console.error(`soak.js: cannot load dist/ (run \`npm run build\` first): ${err.message}`);
  process.exit(2);
}
if (process.getuid() !== 0) {
  console.error('soak.js: needs root (fanotify_init with FAN_CLASS_CONTENT, mount)');
  process.exit(2);
}

const MiB = 1024 * 1024;
/** Open fds, split into pidfds and the rest. */
function fdCounts() {
  let total = 0, pidfds = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    total++;
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[pidfd]') pidfds++;
    } catch { /* the readdir's own fd, closed already */ }
  }
  return { fds: total - pidfds, pidfds };
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function sample(phase, events, t0) {
  global.gc();
  const mem = process.memoryUsage();
  return { phase, events, ...fdCounts(), rss: mem.rss, heap: mem.heapUsed, ext: mem.external, ms: Date.now() - t0 };
}

/**
 * Flat or growing, from the samples after warm-up (the first 10%): the last
 * quarter against the first quarter, by median. pidfds are compared by their
 * minimum instead: the kernel opens one for every event of a read() at once,
 * and the library closes each as its event is consumed, so a sample sees
 * anything from none to a whole batch's worth (a saw-tooth); its floor is
 * what would rise with a leak.
 */
function verdict(samples) {
  const rest = samples.slice(Math.ceil(samples.length * 0.1));
  const q = Math.max(1, Math.floor(rest.length / 4));
  const first = rest.slice(0, q), last = rest.slice(-q);
  const out = {};
  const measures = [
    ['fds', median, () => 1],
    ['pidfds', (xs) => Math.min(...xs), () => 1],
    ['rss', median, (base) => Math.max(8 * MiB, base * 0.1)],
    ['heap', median, (base) => Math.max(8 * MiB, base * 0.25)],
    ['ext', median, (base) => Math.max(8 * MiB, base * 0.25)],
  ];
  for (const [key, stat, tolerance] of measures) {
    const a = stat(first.map((s) => s[key])), b = stat(last.map((s) => s[key]));
    out[key] = { stat: stat === median ? 'median' : 'minimum', first: a, last: b, growth: b - a, flat: b - a <= tolerance(a) };
  }
  return out;
}

// A child node process running `body` with argv[1] = arg; it exits when we go
// (ppid check) so that nothing is left running if this process dies.
function child(body, arg) {
  const script = `
    const fs = require('fs');
    const arg = process.argv[1];
    const parent = process.ppid;
    ${body}
  `;
  return spawn(process.execPath, ['-e', script, arg], { stdio: ['ignore', 'ignore', 'inherit'] });
}

function stopChild(c) {
  return new Promise((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });
}

async function notificationPhase(dir) {
  const every = Math.max(1, Math.floor(NOTIFY_EVENTS / SAMPLES));
  const fan = new Fanotify({ report: { fid: true, dirFid: true, name: true, pidfd: true } });
  fan.add(dir, ['create', 'delete']);
  const gen = child(`
    for (let i = 0; ; i++) {
      const p = arg + '/f' + i;
      fs.closeSync(fs.openSync(p, 'w'));
      fs.unlinkSync(p);
      if ((i & 1023) === 0 && process.ppid !== parent) process.exit(0);
    }`, dir);
  const t0 = Date.now();
  const samples = [sample('notify', 0, t0)];
  let n = 0, overflows = 0, pidfds = 0, creates = 0, deletes = 0;
  try {
    for await (const ev of fan) {
      n++;
      if (ev.overflow) overflows++;
      else {
        if (ev.pidfd !== undefined && ev.pidfd !== null && ev.pidfd >= 0) pidfds++;
        if (ev.events.includes('create')) creates++;
        if (ev.events.includes('delete')) deletes++;
        if (ev.dir?.name === undefined) throw new Error(`event ${n} has no name: ${ev.events}`);
      }
      if (n % every === 0) samples.push(sample('notify', n, t0));
      if (n >= NOTIFY_EVENTS) break;
    }
  } finally {
    await stopChild(gen);
    await fan.close();
  }
  const ms = Date.now() - t0;
  return { name: 'notification', events: n, ms, samples, detail: `${overflows} overflow, ${creates} create, ${deletes} delete, ${pidfds} with a pidfd` };
}

async function permissionPhase(dir) {
  const every = Math.max(1, Math.floor(PERM_EVENTS / SAMPLES));
  const file = path.join(dir, 'opened');
  fs.writeFileSync(file, 'x');
  const fan = new Fanotify({ class: 'content', report: { pidfd: true }, permission: { timeoutMs: 10_000, default: 'allow' } });
  fan.add(dir, ['openPerm', 'eventOnChild']);
  const gen = child(`
    for (let i = 0; ; i++) {
      fs.closeSync(fs.openSync(arg, 'r'));
      if ((i & 255) === 0 && process.ppid !== parent) process.exit(0);
    }`, file);
  const t0 = Date.now();
  const samples = [sample('perm', 0, t0)];
  let n = 0, withFd = 0;
  try {
    for await (const ev of fan) {
      if (ev.overflow) throw new Error('permission queue overflow');
      if (ev.fd !== null) withFd++;
      ev.respond('allow');
      n++;
      if (n % every === 0) samples.push(sample('perm', n, t0));
      if (n >= PERM_EVENTS) break;
    }
  } finally {
    await fan.close();  // answers anything pending: the child is never left blocked
    await stopChild(gen);
  }
  const ms = Date.now() - t0;
  return { name: 'permission', events: n, ms, samples, detail: `${withFd} with an event fd, all answered 'allow'` };
}

function printPhase(p) {
  const rows = p.samples;
  const show = rows.filter((_, i) => i % Math.max(1, Math.round(rows.length / 20)) === 0 || i === rows.length - 1);
  console.log(`\n${p.name}: ${p.events.toLocaleString('en-US')} events in ${(p.ms / 1000).toFixed(1)} s ` +
    `(${Math.round(p.events / (p.ms / 1000)).toLocaleString('en-US')}/s); ${p.detail}`);
  console.log('     events  seconds   fds  pidfds   rss MiB  heap MiB   ext MiB');
  for (const s of show)
    console.log(`  ${String(s.events).padStart(9)}  ${(s.ms / 1000).toFixed(1).padStart(7)}  ${String(s.fds).padStart(4)}  ` +
      `${String(s.pidfds).padStart(6)}  ${(s.rss / MiB).toFixed(1).padStart(8)}  ${(s.heap / MiB).toFixed(1).padStart(8)}  ` +
      `${(s.ext / MiB).toFixed(1).padStart(8)}`);
  const v = verdict(rows);
  const fmt = (k, x) => (k === 'fds' || k === 'pidfds' ? String(x) : `${(x / MiB).toFixed(1)} MiB`);
  console.log(`  (${rows.length} samples; max pidfds open at a sample: ${Math.max(...rows.map((s) => s.pidfds))})`);
  for (const [k, r] of Object.entries(v))
    console.log(`  ${k.padEnd(6)}: first quarter ${fmt(k, r.first)}, last quarter ${fmt(k, r.last)} (${r.stat}; ` +
      `${r.growth >= 0 ? '+' : ''}${fmt(k, r.growth)}): ${r.flat ? 'flat' : 'GROWING'}`);
  return v;
}

async function main() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-soak-'));
  let mounted = false;
  const cleanup = () => {
    if (mounted) spawnSync('umount', ['-l', root]);
    mounted = false;
    fs.rmSync(root, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });
  const t0 = Date.now();
  const results = [];
  try {
    // A tmpfs of our own: fast, and no disk writes for a million files.
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'soak', root]).status === 0;
    console.log(`soak: ${NOTIFY_EVENTS.toLocaleString('en-US')} notification events, ${PERM_EVENTS.toLocaleString('en-US')} permission events; ` +
      `directory ${root} (${mounted ? 'tmpfs' : 'not a tmpfs: mount failed'}); node ${process.version}, ${os.release()}`);
    for (const [phase, run] of [['notify', notificationPhase], ['perm', permissionPhase]]) {
      const dir = path.join(root, phase);
      fs.mkdirSync(dir);
      const events = phase === 'notify' ? NOTIFY_EVENTS : PERM_EVENTS;
      if (events > 0) results.push(await run(dir));
    }
  } finally {
    cleanup();
  }
  let growing = false;
  const summary = { wallMs: Date.now() - t0, phases: [] };
  for (const p of results) {
    const v = printPhase(p);
    if (!Object.values(v).every((r) => r.flat)) growing = true;
    summary.phases.push({ name: p.name, events: p.events, ms: p.ms, verdict: v });
  }
  console.log(`\nsoak: ${growing ? 'GROWING' : 'flat'} (wall time ${(summary.wallMs / 1000).toFixed(1)} s)`);
  if (args.json) console.log(JSON.stringify(summary));
  process.exit(growing ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
