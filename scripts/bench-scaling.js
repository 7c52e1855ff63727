#!/usr/bin/env node
// Scaling benchmarks (see bench/README.md, "Scaling"):
//   S1: P1's consumer CPU per event at 1k, 10k, 100k and 1M events, live and
//       backlog, this library (bench/js-consumer.js) against C (bench/c-consumer.c).
//   S2: P2's permission round trip with 1, 2 and 8 concurrent openers, each on
//       its own file in the watched directory: added latency per open, total
//       opens/s and consumer CPU per answered open, bench/js-perm.js against
//       bench/c-perm.c.
// Usage (as root): node scripts/bench-scaling.js [--quick] [--only s1|s2]
//   [--sizes 1000,10000,...] [--modes live,backlog] [--reps K]
//   [--concurrency 1,2,8] [--seconds S] [--pin none|same|split]
//   [--fs tmpfs|ext4] [--out FILE]
// Prints tables and, last, one JSON line (also written to --out FILE).
// No dependencies.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const benchDir = path.join(root, 'bench');
const buildDir = path.join(benchDir, 'build'); // gitignored (bench/.gitignore)

// ---- options ----
const opt = {
  quick: false, only: null, sizes: null, modes: ['live', 'backlog'], reps: null,
  concurrency: [1, 2, 8], seconds: null, pin: 'none', fs: 'tmpfs', out: null,
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const val = () => {
    const v = process.argv[++i];
    if (v === undefined) usage(`${a} needs a value`);
    return v;
  };
  if (a === '--quick') opt.quick = true;
  else if (a === '--only') opt.only = val();
  else if (a === '--sizes') opt.sizes = val().split(',').map((s) => posInt(s, a));
  else if (a === '--modes') opt.modes = val().split(',').filter(Boolean);
  else if (a === '--reps') opt.reps = posInt(val(), a);
  else if (a === '--concurrency') opt.concurrency = val().split(',').map((s) => posInt(s, a));
  else if (a === '--seconds') opt.seconds = Number(val());
  else if (a === '--pin') opt.pin = val();
  else if (a === '--fs') opt.fs = val();
  else if (a === '--out') opt.out = path.resolve(val());
  else usage(`unknown argument ${a}`);
}
if (opt.only && !['s1', 's2'].includes(opt.only)) usage('--only takes s1 or s2');
if (!['none', 'same', 'split'].includes(opt.pin)) usage('--pin takes none, same or split');
if (!['tmpfs', 'ext4'].includes(opt.fs)) usage('--fs takes tmpfs or ext4');
for (const m of opt.modes) if (!['live', 'backlog'].includes(m)) usage(`unknown mode ${m}`);
if (opt.seconds !== null && !(opt.seconds > 0)) usage('--seconds must be positive');
opt.sizes ??= opt.quick ? [1000, 10000, 100000] : [1000, 10000, 100000, 1000000];
opt.sizes = opt.sizes.map((n) => Math.max(2, n - (n % 2))); // N/2 creates + N/2 deletes
opt.seconds ??= opt.quick ? 1 : 2;
// Small runs are noisy (and short): more repetitions for them.
const repsFor = (n) => opt.reps ?? (opt.quick
  ? (n <= 10000 ? 3 : 1)
  : (n <= 1000 ? 7 : n <= 10000 ? 5 : n <= 100000 ? 3 : 2));
const s2Reps = opt.reps ?? (opt.quick ? 1 : 3);

function posInt(v, name) {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) usage(`${name} must be a list of positive integers`);
  return n;
}
function usage(msg) {
  console.error(`${msg}\nusage: node scripts/bench-scaling.js [--quick] [--only s1|s2] [--sizes N,...] ` +
    '[--modes live,backlog] [--reps K] [--concurrency N,...] [--seconds S] [--pin none|same|split] [--fs tmpfs|ext4] [--out FILE]');
  process.exit(2);
}

// ---- cleanup (as in scripts/bench.js): children first, then undo steps in reverse ----
const undo = [];
const children = new Set();
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
function cleanup() {
  for (const c of children) try { c.kill('SIGKILL'); } catch {}
  for (const c of children) {
    for (let i = 0; i < 500; i++) {
      let state;
      try { state = fs.readFileSync(`/proc/${c.pid}/stat`, 'utf8').split(') ')[1][0]; } catch { break; }
      if (state === 'Z' || state === 'X') break;
      sleepSync(10);
    }
  }
  children.clear();
  while (undo.length) {
    const [what, fn] = undo.pop();
    try { fn(); } catch (e) { console.error(`cleanup: ${what}: ${e.message}`); }
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { console.error(`\n${sig}: cleaning up`); cleanup(); process.exit(128 + os.constants.signals[sig]); });
}

const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

// The P1/P2 programs, compiled exactly as scripts/bench.js does, plus this
// benchmark's opener.
function compile() {
  fs.mkdirSync(buildDir, { recursive: true });
  for (const p of ['gen', 'c-consumer', 'c-perm', 'scaling-open-loop']) {
    sh('cc', ['-O2', '-Wall', '-o', path.join(buildDir, p), path.join(benchDir, `${p}.c`)]);
  }
}

// The filesystem the marks go on, used by nothing else, with enough inodes for
// the biggest run (1M events are 500k files in one directory).
// tmpfs (default): the generator is cheap (on the 2-vCPU VM, 500k creates +
// 500k unlinks under the mark take about 20 s on tmpfs, over 50 s on ext4).
// ext4: a sparse image on a loop device, as scripts/bench.js (P1) uses.
function makeFs(files) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-scaling-'));
  undo.push(['rm ' + tmp, () => fs.rmSync(tmp, { recursive: true, force: true })]);
  const mnt = fs.mkdtempSync(path.join(tmp, 'mnt-'));
  const inodes = Math.max(65536, Math.ceil(files * 1.1) + 10000);
  const umount = () => { try { sh('umount', [mnt]); } catch { sh('umount', ['-l', mnt]); } }; // lazy: never leave it behind
  if (opt.fs === 'tmpfs') {
    sh('mount', ['-t', 'tmpfs', '-o', `size=1g,nr_inodes=${inodes}`, 'fanotify-scaling', mnt]);
    undo.push(['umount ' + mnt, umount]);
    return { mnt, desc: `tmpfs (${inodes} inodes)` };
  }
  const img = path.join(tmp, 'ext4.img');
  const sizeMiB = Math.max(256, Math.ceil((inodes * 256 * 2) / (1 << 20)) + 256); // inode tables + room for directories
  fs.closeSync(fs.openSync(img, 'w'));
  fs.truncateSync(img, sizeMiB * (1 << 20)); // sparse
  // lazy init off: no background ext4lazyinit thread writing while we measure.
  sh('mkfs.ext4', ['-q', '-F', '-N', String(inodes), '-E', 'lazy_itable_init=0,lazy_journal_init=0', img]);
  const dev = sh('losetup', ['--find', '--show', img]);
  undo.push(['losetup -d ' + dev, () => sh('losetup', ['-d', dev])]);
  sh('mount', [dev, mnt]);
  undo.push(['umount ' + mnt, umount]);
  return { mnt, desc: `${dev}: ${sizeMiB} MiB sparse ext4 image, ${inodes} inodes` };
}

// Spawns a program and collects its stdout lines; `ready` resolves on the
// "ready" line, `done` on exit with every JSON line it printed merged into one
// object. role 'load' or 'consumer' for --pin (see scripts/bench.js).
function run(role, cmd, args, { timeoutMs = 600000 } = {}) {
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
      const json = lines.filter((l) => l.startsWith('{'));
      if (code !== 0 || !json.length) rej(new Error(`${path.basename(cmd)} ${args.join(' ')}: exit ${code ?? signal}, output: ${lines.join(' | ')}`));
      else res(Object.assign({}, ...json.map((l) => JSON.parse(l))));
    });
  });
  const readyOrDead = Promise.race([ready, done.then(() => { throw new Error(`${cmd} exited before ready`); })]);
  done.catch(() => {});
  readyOrDead.catch(() => {});
  return { child, ready: readyOrDead, done };
}

// CPU time (ns) of every thread of a process, from the scheduler's per-thread
// run time: nanosecond resolution, unlike the tick-based /proc/PID/stat.
function cpuNs(pid) {
  let total = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try { total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch {}
  }
  return total;
}

const haveJs = fs.existsSync(path.join(root, 'dist', 'index.js'));
const order = (rep, kinds) => {
  const k = haveJs ? kinds : kinds.filter((x) => x !== 'JS');
  return rep % 2 ? [...k].reverse() : k;
};
const median = (xs) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, d) => (x == null || Number.isNaN(x) ? '-' : x.toFixed(d));
const r3 = (x) => (x == null ? null : +x.toFixed(3));
const sizeName = (n) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));

// ---- S1: consumer CPU per event against the number of events ----
async function s1(mnt) {
  const consumer = {
    C: (n, extra) => run('consumer', path.join(buildDir, 'c-consumer'), [mnt, String(n), ...extra]),
    JS: (n, extra) => run('consumer', process.execPath,
      ['-r', path.join(benchDir, 'scaling-hwm.js'), path.join(benchDir, 'js-consumer.js'), mnt, String(n), ...extra]),
  };
  const rows = [];
  let seq = 0;
  for (const mode of opt.modes) {
    for (const n of opt.sizes) {
      const reps = repsFor(n);
      const per = { C: [], JS: [] }, runs = [];
      for (let rep = 0; rep < reps; rep++) {
        for (const kind of order(rep, ['C', 'JS'])) {
          const dir = path.join(mnt, `s1-${seq++}`);
          fs.mkdirSync(dir);
          const extra = mode === 'backlog' ? ['--backlog'] : [];
          const c = consumer[kind](n, extra);
          await c.ready;
          const g = await run('load', path.join(buildDir, 'gen'), [dir, String(n / 2)]).done;
          if (mode === 'backlog') c.child.stdin.write('go\n');
          const r = await c.done;
          fs.rmdirSync(dir);
          if (r.events !== n) throw new Error(`${kind} consumer counted ${r.events} events, expected ${n}`);
          const us = r.cpu_us / r.events;
          per[kind].push(us);
          runs.push({ rep, kind, us_per_event: r3(us), events: r.events, records: r.records, cpu_us: r.cpu_us,
            wall_ms: r.wall_ms, gen_wall_ms: g.wall_ms, hwm_kb: r.hwm_kb ?? null });
          console.log(`  S1 ${mode.padEnd(7)} ${sizeName(n).padStart(4)} rep ${rep + 1}/${reps} ${kind.padEnd(2)} ` +
            `${us.toFixed(3)} us/event (${r.records} records, ${(r.cpu_us / 1000).toFixed(1)} ms CPU, ${r.wall_ms} ms wall` +
            `${r.hwm_kb ? `, peak RSS ${(r.hwm_kb / 1024).toFixed(0)} MiB` : ''}; gen ${g.wall_ms} ms)`);
        }
      }
      const c = median(per.C), js = median(per.JS);
      const jsHwm = runs.filter((x) => x.kind === 'JS' && x.hwm_kb).map((x) => x.hwm_kb);
      rows.push({
        mode, events: n, reps, c_us_per_event: r3(c), js_us_per_event: r3(js), ratio: js == null ? null : +(js / c).toFixed(2),
        // what the JS consumer costs above C per event, in us: the library's own share
        js_minus_c_us: js == null ? null : r3(js - c),
        c_records_per_event: r3(median(runs.filter((x) => x.kind === 'C').map((x) => x.records / x.events))),
        js_peak_rss_mib: jsHwm.length ? +(Math.max(...jsHwm) / 1024).toFixed(1) : null,
        runs,
      });
    }
  }
  console.log(`\n  S1: consumer CPU per event (us, medians), FID create/delete, filesystem mark on ${opt.fs}, unlimited queue`);
  console.log('  mode      events  reps        C        JS   JS/C   JS-C  JS peak RSS');
  for (const r of rows) {
    console.log(`  ${r.mode.padEnd(8)} ${sizeName(r.events).padStart(7)} ${String(r.reps).padStart(5)} ${fmt(r.c_us_per_event, 3).padStart(8)} ` +
      `${fmt(r.js_us_per_event, 3).padStart(9)} ${fmt(r.ratio, 2).padStart(6)} ${fmt(r.js_minus_c_us, 2).padStart(6)} ` +
      `${r.js_peak_rss_mib == null ? '-' : r.js_peak_rss_mib + ' MiB'}`);
  }
  return rows;
}

// ---- S2: permission round trips with concurrent openers ----
async function s2(mnt) {
  const dir = path.join(mnt, 's2');
  fs.mkdirSync(dir);
  const maxN = Math.max(...opt.concurrency);
  const files = [];
  for (let i = 0; i < maxN; i++) {
    const f = path.join(dir, `file${i}`);
    fs.writeFileSync(f, 'x');
    files.push(f);
  }
  const consumer = {
    C: () => run('consumer', path.join(buildDir, 'c-perm'), [dir]),
    JS: () => run('consumer', process.execPath, [path.join(benchDir, 'js-perm.js'), dir]),
  };
  const rows = [];
  for (const n of opt.concurrency) {
    const samples = { base: [], C: [], JS: [] };
    for (let rep = 0; rep < s2Reps; rep++) {
      for (const kind of order(rep, ['base', 'C', 'JS'])) {
        let c = null;
        if (kind !== 'base') { c = consumer[kind](); await c.ready; }
        // Every opener warms up (untimed), then all start on one "go".
        const openers = files.slice(0, n).map((f) => run('load', path.join(buildDir, 'scaling-open-loop'), [f, String(opt.seconds), '1000']));
        await Promise.all(openers.map((o) => o.ready));
        const cpu0 = c ? cpuNs(c.child.pid) : 0;
        for (const o of openers) o.child.stdin.write('go\n');
        const res = await Promise.all(openers.map((o) => o.done));
        const cpu1 = c ? cpuNs(c.child.pid) : 0;
        let answered = null;
        if (c) {
          c.child.kill('SIGTERM');
          answered = (await c.done).answered;
        }
        const opens = res.reduce((s, r) => s + r.opens, 0);
        if (c && answered < opens) throw new Error(`${kind} consumer answered ${answered} opens, the openers made ${opens}`);
        const span = Math.max(...res.map((r) => r.end_ns)) - Math.min(...res.map((r) => r.start_ns));
        const sample = {
          rep, opens,
          // time per open as each opener sees it (its own wall time / its opens), averaged over openers
          ns_per_open: res.reduce((s, r) => s + r.ns_mean * r.opens, 0) / opens,
          ns_p50: median(res.map((r) => r.ns_p50)), ns_p99: Math.max(...res.map((r) => r.ns_p99)),
          opens_per_s: opens / (span / 1e9),
          consumer_cpu_ns_per_open: c ? (cpu1 - cpu0) / opens : null,
        };
        samples[kind].push(sample);
        console.log(`  S2 ${n} opener${n > 1 ? 's' : ' '} rep ${rep + 1}/${s2Reps} ${kind.padEnd(4)} ` +
          `${(sample.ns_per_open / 1000).toFixed(2)} us/open (p50 ${(sample.ns_p50 / 1000).toFixed(2)}, p99 ${(sample.ns_p99 / 1000).toFixed(1)}), ` +
          `${Math.round(sample.opens_per_s)} opens/s` +
          (c ? `, consumer CPU ${(sample.consumer_cpu_ns_per_open / 1000).toFixed(2)} us/open` : ''));
      }
    }
    const med = (kind, key) => median(samples[kind].map((s) => s[key]).filter((x) => x != null));
    const base = med('base', 'ns_per_open');
    const row = { openers: n, reps: s2Reps, baseline_ns: Math.round(base), baseline_opens_per_s: Math.round(med('base', 'opens_per_s')) };
    for (const kind of ['C', 'JS']) {
      if (!samples[kind].length) continue;
      const k = kind.toLowerCase();
      row[`${k}_ns`] = Math.round(med(kind, 'ns_per_open'));
      row[`${k}_added_ns`] = Math.round(med(kind, 'ns_per_open') - base);
      row[`${k}_p50_ns`] = Math.round(med(kind, 'ns_p50'));
      row[`${k}_p99_ns`] = Math.round(med(kind, 'ns_p99'));
      row[`${k}_opens_per_s`] = Math.round(med(kind, 'opens_per_s'));
      row[`${k}_cpu_ns_per_open`] = Math.round(med(kind, 'consumer_cpu_ns_per_open'));
    }
    if (row.js_added_ns != null) {
      row.ratio_added = +(row.js_added_ns / row.c_added_ns).toFixed(2);
      row.ratio_opens_per_s = +(row.c_opens_per_s / row.js_opens_per_s).toFixed(2);
      row.ratio_cpu = +(row.js_cpu_ns_per_open / row.c_cpu_ns_per_open).toFixed(2);
    }
    row.samples = samples;
    rows.push(row);
  }
  console.log(`\n  S2: permission round trips, N concurrent openers (own file each, same watched dir), ${opt.seconds} s per run, medians`);
  console.log('  openers  base us/open  C added us  JS added us  JS/C | opens/s: base        C       JS  C/JS | consumer CPU us/open: C    JS  JS/C');
  for (const r of rows) {
    const us = (x) => fmt(x == null ? null : x / 1000, 2);
    console.log(`  ${String(r.openers).padStart(7)} ${us(r.baseline_ns).padStart(13)} ${us(r.c_added_ns).padStart(11)} ${us(r.js_added_ns).padStart(12)} ` +
      `${fmt(r.ratio_added, 2).padStart(5)} | ${String(r.baseline_opens_per_s).padStart(14)} ${String(r.c_opens_per_s ?? '-').padStart(8)} ` +
      `${String(r.js_opens_per_s ?? '-').padStart(8)} ${fmt(r.ratio_opens_per_s, 2).padStart(5)} | ` +
      `${us(r.c_cpu_ns_per_open).padStart(22)} ${us(r.js_cpu_ns_per_open).padStart(5)} ${fmt(r.ratio_cpu, 2).padStart(5)}`);
  }
  return rows;
}

async function main() {
  if (process.getuid() !== 0) throw new Error('run as root: fanotify_init, losetup and mount need CAP_SYS_ADMIN');
  if (!haveJs) console.error('warning: dist/index.js is missing (run `npm run build`): measuring the C side only');
  const t0 = performance.now();
  compile();
  const maxFiles = opt.only === 's2' ? 0 : Math.max(...opt.sizes) / 2;
  const img = makeFs(maxFiles);
  console.log(`filesystem on ${img.mnt}: ${img.desc}; ` +
    `${os.cpus().length} CPUs, Linux ${os.release()}, Node ${process.version}, pin=${opt.pin}`);
  // Other load on a 2-CPU machine inflates everything: say so in the output.
  const load0 = os.loadavg();
  if (load0[0] > 0.5) console.log(`warning: load average ${load0.map((x) => x.toFixed(2)).join(' ')} before the start: other processes are running`);
  const result = { bench: 'scaling', options: opt, fs: img.desc, node: process.version, kernel: os.release(), cpus: os.cpus().length, loadavg_start: load0.map((x) => +x.toFixed(2)) };
  if (opt.only !== 's2') result.s1 = await s1(img.mnt);
  if (opt.only !== 's1') result.s2 = await s2(img.mnt);
  result.total_s = +((performance.now() - t0) / 1000).toFixed(1);
  result.loadavg_end = os.loadavg().map((x) => +x.toFixed(2));
  console.log(`\n  total ${result.total_s} s; load average at the end ${result.loadavg_end.join(' ')}`);
  const line = JSON.stringify(result);
  if (opt.out) {
    fs.mkdirSync(path.dirname(opt.out), { recursive: true });
    fs.writeFileSync(opt.out, line + '\n');
    console.log(`  written to ${path.relative(process.cwd(), opt.out)}`);
  }
  console.log(line);
}

main()
  .catch((e) => { console.error(`bench-scaling: ${e.stack || e}`); process.exitCode = 1; })
  .finally(cleanup);
