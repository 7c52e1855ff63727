#!/usr/bin/env node
// Benchmark P3: watching a big tree. This library's watch() against chokidar
// and @parcel/watcher: time until ready, RSS, and whether a scripted change
// set is delivered with the right paths (see bench/README.md, "P3"). A bare
// Node process (child "node", no watcher) runs before each watcher and after
// the last; the median of its RSS is subtracted to give "RSS above bare Node".
// Usage (as root): node scripts/bench-p3.js [--dirs D] [--files F]
//   [--watchers ours,chokidar,parcel] [--settle MS] [--max-wait S] [--scale K]
//   [--seed N] [--heap MIB]
// Prints tables and, last, one JSON line.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const tree = require(path.join(root, 'bench', 'p3-tree.js'));
const childScript = path.join(root, 'bench', 'p3-child.js');

// ---- options ----
const opt = { dirs: 100000, files: null, watchers: ['ours', 'chokidar', 'parcel'], settle: 3000, maxWait: 300, scale: 1, seed: 1, heap: 16384 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const val = () => {
    const v = process.argv[++i];
    if (v === undefined) usage(`${a} needs a value`);
    return v;
  };
  if (a === '--dirs') opt.dirs = posInt(val(), a);
  else if (a === '--files') opt.files = posInt(val(), a);
  else if (a === '--watchers') opt.watchers = val().split(',').filter(Boolean);
  else if (a === '--settle') opt.settle = posInt(val(), a);
  else if (a === '--max-wait') opt.maxWait = posInt(val(), a);
  else if (a === '--scale') opt.scale = posInt(val(), a);
  else if (a === '--seed') opt.seed = posInt(val(), a);
  else if (a === '--heap') opt.heap = posInt(val(), a);
  else usage(`unknown argument ${a}`);
}
if (opt.files === null) opt.files = opt.dirs * 10; // 100k dirs -> 1M files
for (const w of opt.watchers) if (!['ours', 'chokidar', 'parcel'].includes(w)) usage(`unknown watcher ${w}`);

function posInt(v, name) {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) usage(`${name} must be a positive integer`);
  return n;
}
function usage(msg) {
  console.error(`${msg}\nusage: node scripts/bench-p3.js [--dirs D] [--files F] [--watchers ours,chokidar,parcel] ` +
    '[--settle MS] [--max-wait S] [--scale K] [--seed N] [--heap MIB]');
  process.exit(2);
}

// ---- cleanup: children first, then the registered undo steps in reverse ----
const undo = [];
const children = new Set();
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
function killChildren() {
  for (const c of children) try { c.kill('SIGKILL'); } catch {}
  // Wait (up to 20 s: a million inotify watches take a while to drop) until
  // each child is gone, or umount would find the mount busy.
  for (const c of children) {
    for (let i = 0; i < 2000; i++) {
      let state;
      try { state = fs.readFileSync(`/proc/${c.pid}/stat`, 'utf8').split(') ')[1][0]; } catch { break; }
      if (state === 'Z' || state === 'X') break;
      sleepSync(10);
    }
  }
  children.clear();
}
function cleanupSync() {
  killChildren();
  while (undo.length) {
    const [what, fn] = undo.pop();
    try { fn(); } catch (e) { console.error(`cleanup: ${what}: ${e.message}`); }
  }
}
process.on('exit', cleanupSync); // LoopImage has its own exit hook (umount -l, losetup -d, rm)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { console.error(`\n${sig}: cleaning up`); cleanupSync(); process.exit(128 + os.constants.signals[sig]); });
}

const MiB = 1024 * 1024;
const fmt = (x, d = 2) => (x == null || Number.isNaN(x) ? '-' : x.toFixed(d));
const log = (s) => console.log(s);

// Counts occurrences of `needle` in a (possibly huge) /proc file, streaming.
function countInFile(file, needle) {
  let fd;
  try { fd = fs.openSync(file, 'r'); } catch { return 0; }
  const buf = Buffer.alloc(1 << 20);
  let n = 0, tail = '';
  try {
    for (;;) {
      const r = fs.readSync(fd, buf, 0, buf.length, null);
      if (r <= 0) break;
      const s = tail + buf.toString('latin1', 0, r);
      for (let i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + 1)) n++;
      tail = s.slice(-(needle.length - 1));
    }
  } catch { /* fd closed under us */ } finally { fs.closeSync(fd); }
  return n;
}
// inotify watches and fanotify marks held by a process, from /proc/PID/fdinfo.
function kernelWatches(pid) {
  let inotify = 0, fanotify = 0;
  let fds = [];
  try { fds = fs.readdirSync(`/proc/${pid}/fdinfo`); } catch { return { inotify, fanotify }; }
  for (const fd of fds) {
    const f = `/proc/${pid}/fdinfo/${fd}`;
    inotify += countInFile(f, 'inotify wd:');
    fanotify += countInFile(f, '\nfanotify ');
  }
  return { inotify, fanotify };
}

// One watcher in a fresh Node process: ready, change set, settle, stop.
async function runWatcher(kind, L, ops) {
  const t0 = performance.now();
  const child = spawn(process.execPath, [`--max-old-space-size=${opt.heap}`, childScript, kind, L.root],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  const received = [];
  let readyInfo = null, doneInfo = null, lastEvent = 0, buf = '';
  let onReady, onDone;
  const ready = new Promise((res) => { onReady = res; });
  const done = new Promise((res) => { onDone = res; });
  const exited = new Promise((res) => child.once('close', (code, signal) => { children.delete(child); res({ code, signal }); }));
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('E\t')) {
        const [, k, , p] = line.split('\t');
        received.push([k, p]);
        lastEvent = performance.now();
      } else if (line.startsWith('{')) {
        const j = JSON.parse(line);
        if (j.ready) { readyInfo = j; onReady(); }
        if (j.done) { doneInfo = j; onDone(); }
      }
    }
  });
  const dead = exited.then(({ code, signal }) => { throw new Error(`${kind} exited early (${code ?? signal})`); });
  dead.catch(() => {});
  const timeout = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error(`${kind}: ${what} timed out`)), ms).unref());
  await Promise.race([ready, dead, timeout(opt.maxWait * 1000 * 10, 'ready')]);
  const readyWall = performance.now() - t0;
  const watches = kernelWatches(child.pid);
  const mem = {
    rss_ready_mib: readyInfo.rss / MiB,
    // external includes arrayBuffers (Node docs), so it is not added again.
    heap_ready_mib: (readyInfo.heap_used + readyInfo.external) / MiB,
    heap_used_mib: readyInfo.heap_used / MiB, external_mib: readyInfo.external / MiB, array_buffers_mib: readyInfo.array_buffers / MiB,
  };
  log(`  ${kind}: ready in ${fmt(readyInfo.ready_ms / 1000, 3)} s (process start to ready ${fmt(readyWall / 1000, 2)} s), ` +
    `RSS ${fmt(mem.rss_ready_mib, 1)} MiB, JS heap+external ${fmt(mem.heap_ready_mib, 1)} MiB, ` +
    `inotify watches ${watches.inotify}, fanotify marks ${watches.fanotify}`);
  if (kind === 'node') {
    // The baseline: no change set, just its peak RSS and exit.
    child.stdin.end('stop\n');
    await Promise.race([done, dead, timeout(60000, 'stop')]).catch((e) => log(`  ${e.message}`));
    killChildren();
    await exited;
    return {
      watcher: kind, ready_s: readyInfo.ready_ms / 1000, process_ready_s: readyWall / 1000, load_ms: readyInfo.load_ms,
      ...mem, rss_peak_mib: doneInfo ? doneInfo.hwm / MiB : null, inotify_watches: watches.inotify, fanotify_marks: watches.fanotify,
    };
  }

  const changeMs = tree.apply(ops);
  const tChanged = performance.now();
  // Settle: until nothing arrived for --settle ms (and at least --settle ms
  // after the last change), at most --max-wait s.
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const now = performance.now();
    if (now - Math.max(tChanged, lastEvent) >= opt.settle) break;
    if (now - tChanged >= opt.maxWait * 1000) { log(`  ${kind}: still receiving after ${opt.maxWait} s, stopping`); break; }
    if (child.exitCode !== null) break;
  }
  const lastEventAfterMs = lastEvent ? lastEvent - tChanged : null;
  child.stdin.end('stop\n');
  await Promise.race([done, dead, timeout(60000, 'stop')]).catch((e) => log(`  ${e.message}`));
  killChildren(); // the child exits by itself; this waits until it is gone (or kills it)
  await exited;
  tree.undo(ops);
  const s = tree.score(kind, ops, received);
  log(`  ${kind}: change set ${fmt(changeMs, 0)} ms, last event ${lastEventAfterMs === null ? '-' : fmt(lastEventAfterMs, 0) + ' ms'} after it; ` +
    `${s.delivered}/${s.expected} delivered, ${s.missed} missed, ${s.spurious} spurious, ${s.raw_events} events (${s.duplicate_events} duplicates): ` +
    Object.entries(s.raw_kinds).map(([k, n]) => `${k} ${n}`).join(', '));
  return {
    watcher: kind, ready_s: readyInfo.ready_ms / 1000, process_ready_s: readyWall / 1000, load_ms: readyInfo.load_ms,
    rss_ready_mib: mem.rss_ready_mib, rss_peak_mib: doneInfo ? doneInfo.hwm / MiB : null,
    heap_ready_mib: mem.heap_ready_mib, heap_used_mib: mem.heap_used_mib, external_mib: mem.external_mib, array_buffers_mib: mem.array_buffers_mib,
    inotify_watches: watches.inotify, fanotify_marks: watches.fanotify,
    change_ms: changeMs, last_event_after_ms: lastEventAfterMs, ...s,
  };
}

async function main() {
  if (process.getuid() !== 0) throw new Error('P3 needs root (fanotify filesystem marks, losetup, mount)');
  const { LoopImage } = require(path.join(root, 'dist', 'testing'));
  if (opt.watchers.includes('ours')) require(path.join(root, 'dist'));
  log(`P3: ${opt.dirs} directories, ${opt.files} files; watchers ${opt.watchers.join(', ')}; Node ${process.version}, ` +
    `${os.cpus().length} CPUs, kernel ${os.release()}; children run with --max-old-space-size=${opt.heap}`);

  // The image: sparse, sized so mkfs.ext4's default inode ratio (one inode
  // per 16 KiB) gives enough inodes for the tree plus the change set.
  const inodesNeeded = opt.dirs + opt.files + 10000 * opt.scale + 1000;
  const sizeMiB = Math.max(1024, Math.ceil((inodesNeeded * 16384 * 1.15) / MiB));
  let t = performance.now();
  const img = await LoopImage.create({ sizeMiB });
  const results = [];
  let origWatches = null;
  const watchesFile = '/proc/sys/fs/inotify/max_user_watches';
  try {
    const inodes = fs.statfsSync(img.mountPoint).files;
    log(`image: ${sizeMiB} MiB sparse ext4 on ${img.device}, ${inodes} inodes, mkfs+mount ${fmt((performance.now() - t) / 1000, 1)} s`);
    if (inodes < inodesNeeded) throw new Error(`image has ${inodes} inodes, need ${inodesNeeded}`);

    const L = tree.layout(path.join(img.mountPoint, 'tree'), opt.dirs, opt.files);
    t = performance.now();
    tree.build(L, (n) => process.stdout.write(`\r  building: ${n} files`));
    const buildS = (performance.now() - t) / 1000;
    t = performance.now();
    execFileSync('sync');
    log(`\rtree: ${L.D} dirs (${L.T} top-level), ${L.F} files, built in ${fmt(buildS, 1)} s, sync ${fmt((performance.now() - t) / 1000, 1)} s`);

    // chokidar and parcel need an inotify watch per directory (chokidar also
    // one per file). Raise the per-user limit for the run; restored below.
    origWatches = Number(fs.readFileSync(watchesFile, 'utf8'));
    const want = Math.ceil((opt.dirs + opt.files) * 1.2) + 100000;
    if (origWatches < want) {
      fs.writeFileSync(watchesFile, String(want));
      undo.push(['restore max_user_watches', () => fs.writeFileSync(watchesFile, String(origWatches))]);
      log(`fs.inotify.max_user_watches: ${origWatches} -> ${want} for the run`);
    } else log(`fs.inotify.max_user_watches: ${origWatches} (enough)`);

    const ops = tree.changeSet(L, {
      creates: 1000 * opt.scale, modifies: 1000 * opt.scale, renames: 500 * opt.scale,
      deletes: 1000 * opt.scale, newDirs: 100 * opt.scale, seed: opt.seed,
    });
    const baselineSamples = [];
    const runBaseline = async () => {
      try { baselineSamples.push(await runWatcher('node', L, ops)); } catch (e) { log(`  node (baseline): FAILED: ${e.message}`); killChildren(); }
    };
    for (const w of opt.watchers) {
      await runBaseline();
      try {
        results.push(await runWatcher(w, L, ops));
      } catch (e) {
        log(`  ${w}: FAILED: ${e.message}`);
        killChildren();
        tree.undo(ops);
        results.push({ watcher: w, error: e.message });
      }
    }
    await runBaseline();
    report(results, { origWatches, buildS, sizeMiB, inodes, baselineSamples });
  } finally {
    cleanupSync(); // children, then max_user_watches
    t = performance.now();
    await img.dispose(); // (if we die before this, LoopImage's exit hook does umount -l, losetup -d, rm)
    log(`cleanup: unmounted, detached and removed the image in ${fmt((performance.now() - t) / 1000, 1)} s`);
  }
}

const median = (xs) => {
  const v = xs.filter((x) => x != null).sort((a, b) => a - b);
  return v.length ? (v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : null;
};

function report(results, meta) {
  // Baseline: median over the bare-Node runs of this invocation.
  const bs = meta.baselineSamples;
  const fields = ['ready_s', 'process_ready_s', 'rss_ready_mib', 'rss_peak_mib', 'heap_ready_mib', 'heap_used_mib',
    'external_mib', 'array_buffers_mib'];
  const baseline = bs.length ? {
    watcher: 'node', runs: bs.length,
    ...Object.fromEntries(fields.map((f) => [f, median(bs.map((b) => b[f]))])),
    samples: bs,
  } : null;
  const ok = results.filter((r) => !r.error);
  for (const r of ok) r.rss_above_node_mib = baseline ? r.rss_ready_mib - baseline.rss_ready_mib : null;
  const rows = [['watcher', 'ready (s)', 'RSS at ready (MiB)', 'RSS above bare Node (MiB)', 'JS heap+external (MiB)', 'RSS peak (MiB)',
    'inotify watches', 'events expected', 'delivered', 'missed', 'spurious', 'spurious events']];
  if (baseline) rows.push([`node (bare, median of ${baseline.runs})`, fmt(baseline.ready_s, 3), fmt(baseline.rss_ready_mib, 1), '-',
    fmt(baseline.heap_ready_mib, 1), fmt(baseline.rss_peak_mib, 1), '0', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a']);
  for (const r of results) {
    if (r.error) rows.push([r.watcher, 'failed: ' + r.error.slice(0, 60), '', '', '', '', '', '', '', '', '', '']);
    else rows.push([r.watcher, fmt(r.ready_s, 3), fmt(r.rss_ready_mib, 1), fmt(r.rss_above_node_mib, 1), fmt(r.heap_ready_mib, 1),
      fmt(r.rss_peak_mib, 1), String(r.inotify_watches),
      String(r.expected), String(r.delivered), String(r.missed), String(r.spurious), String(r.spurious_events)]);
  }
  log('');
  table(rows);
  if (baseline) log(`bare Node RSS at ready, each run: ${bs.map((b) => fmt(b.rss_ready_mib, 1)).join(', ')} MiB`);

  const cats = [...new Set(ok.flatMap((r) => Object.keys(r.per_category)))];
  if (cats.length) {
    log('');
    const crow = [['category', 'expected', ...ok.map((r) => `${r.watcher} delivered`)]];
    for (const c of cats) crow.push([c, String(ok[0].per_category[c]?.expected ?? '-'), ...ok.map((r) => String(r.per_category[c]?.delivered ?? '-'))]);
    table(crow);
  }

  const ours = ok.find((r) => r.watcher === 'ours');
  const ratios = {};
  if (ours) {
    log('');
    for (const r of ok.filter((x) => x.watcher !== 'ours')) {
      // Above-baseline ratio only when ours is measurably above bare Node.
      const above = ours.rss_above_node_mib > 0 && r.rss_above_node_mib != null ? r.rss_above_node_mib / ours.rss_above_node_mib : null;
      ratios[`${r.watcher}/ours`] = { ready: r.ready_s / ours.ready_s, rss_ready: r.rss_ready_mib / ours.rss_ready_mib, rss_peak: r.rss_peak_mib / ours.rss_peak_mib,
        rss_above_node: above, heap_ready: r.heap_ready_mib / ours.heap_ready_mib };
      log(`${r.watcher}/ours: ready time x${fmt(r.ready_s / ours.ready_s, 1)}, RSS at ready x${fmt(r.rss_ready_mib / ours.rss_ready_mib, 1)} ` +
        `(above bare Node x${fmt(above, 1)}), JS heap+external x${fmt(r.heap_ready_mib / ours.heap_ready_mib, 1)}, ` +
        `peak RSS x${fmt(r.rss_peak_mib / ours.rss_peak_mib, 1)}`);
    }
  }
  log('');
  for (const r of ok) {
    const wouldHit = r.inotify_watches > meta.origWatches;
    if (r.watcher !== 'ours') log(`${r.watcher}: ${r.inotify_watches} inotify watches; the machine's limit of ${meta.origWatches} ` +
      `${wouldHit ? 'WOULD have been hit' : 'would not have been hit'}`);
    if (r.missed) log(`${r.watcher} missed, e.g.: ${r.missed_samples.map((m) => `${m.cat}: ${m.missing.join(', ')}`).slice(0, 4).join(' | ')}`);
    if (r.spurious) log(`${r.watcher} spurious (${r.spurious} distinct (kind, path), ${r.spurious_events} events, ` +
      `${r.null_path_events} with path null), e.g.: ${r.spurious_samples.slice(0, 4).join(' | ')}`);
  }
  const round = (o) => JSON.parse(JSON.stringify(o, (k, v) => (typeof v === 'number' && !Number.isInteger(v) ? +v.toFixed(4) : v)));
  console.log(JSON.stringify(round({
    bench: 'p3', options: opt, node: process.version, kernel: os.release(), cpus: os.cpus().length,
    image_mib: meta.sizeMiB, image_inodes: meta.inodes, build_s: meta.buildS, max_user_watches_orig: meta.origWatches,
    results, ratios, baseline,
  })));
}

function table(rows) {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) => '| ' + r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join(' | ') + ' |';
  log(line(rows[0]));
  log('|' + w.map((n, i) => (i === 0 ? '-'.repeat(n + 2) : '-'.repeat(n + 1) + ':')).join('|') + '|');
  for (const r of rows.slice(1)) log(line(r));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exitCode = 1;
});
