#!/usr/bin/env node
// Benchmark HSM: what reading a tree served by serveContent() costs (see
// bench/README.md, "HSM: reading a served tree").
//
//   1. Fill throughput: the first full read of a stub tree made by populate()
//      (cold caches, every 1 MiB chunk fetched from the source tree by this
//      process), against `cp -a` of the same source (cold caches), in MB/s.
//   2. The served tree after the fill against a plain copy: reading the whole
//      tree cold (after drop_caches) and warm, plain and stub alternating,
//      with the server still running (no marks left, the group alive) and
//      again after server.close(). Target: stub at most 5% slower.
//
// Usage (as root): node scripts/bench-hsm.js [--big-files N] [--big-mib M]
//   [--small-files N] [--small-kib K] [--per-dir N] [--reps K] [--fill-reps K]
//   [--warm-reads K] [--chunk-kib K] [--buf-kib K] [--out FILE]
// Prints a table and, last, one JSON line. No dependencies beyond cc, mkfs.ext4,
// losetup, mount, cp, diff and filefrag.
//
// Readers are always other processes, started with the asynchronous spawn():
// the server's own reads are not served, and a synchronous child_process call
// would block the JS thread that has to answer the reader (deadlock). So
// nothing below uses execFileSync once a server is running.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const benchDir = path.join(root, 'bench');
const buildDir = path.join(benchDir, 'build'); // gitignored

// ---- options ----
const opt = {
  bigFiles: 64, bigMib: 4, smallFiles: 2000, smallKib: 4, perDir: 50,
  reps: 5, fillReps: 3, warmReads: 3, chunkKib: 1024, bufKib: 1024, out: null,
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const val = () => {
    const v = process.argv[++i];
    if (v === undefined) usage(`${a} needs a value`);
    return v;
  };
  if (a === '--big-files') opt.bigFiles = count(val(), a);
  else if (a === '--big-mib') opt.bigMib = posInt(val(), a);
  else if (a === '--small-files') opt.smallFiles = count(val(), a);
  else if (a === '--small-kib') opt.smallKib = posInt(val(), a);
  else if (a === '--per-dir') opt.perDir = posInt(val(), a);
  else if (a === '--reps') opt.reps = posInt(val(), a);
  else if (a === '--fill-reps') opt.fillReps = posInt(val(), a);
  else if (a === '--warm-reads') opt.warmReads = posInt(val(), a);
  else if (a === '--chunk-kib') opt.chunkKib = posInt(val(), a);
  else if (a === '--buf-kib') opt.bufKib = posInt(val(), a);
  else if (a === '--out') opt.out = val();
  else usage(`unknown argument ${a}`);
}
if (opt.bigFiles + opt.smallFiles === 0) usage('no files: give --big-files or --small-files');
if (opt.chunkKib % 4 !== 0) usage('--chunk-kib must be a multiple of 4');

function posInt(v, name) {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) usage(`${name} must be a positive integer`);
  return n;
}
function count(v, name) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) usage(`${name} must be a non-negative integer`);
  return n;
}
function usage(msg) {
  console.error(`${msg}\nusage: node scripts/bench-hsm.js [--big-files N] [--big-mib M] [--small-files N] [--small-kib K] ` +
    '[--per-dir N] [--reps K] [--fill-reps K] [--warm-reads K] [--chunk-kib K] [--buf-kib K] [--out FILE]');
  process.exit(2);
}

const KiB = 1024, MiB = 1024 * 1024;
const bigSize = opt.bigMib * MiB, smallSize = opt.smallKib * KiB, chunk = opt.chunkKib * KiB;
const nFiles = opt.bigFiles + opt.smallFiles;
const treeBytes = opt.bigFiles * bigSize + opt.smallFiles * smallSize;
// What a full fill must fetch: every file in chunk-aligned pieces.
const expectedChunks = opt.bigFiles * Math.ceil(bigSize / chunk) + opt.smallFiles * Math.ceil(smallSize / chunk);

// ---- cleanup: servers first, then children, then the undo steps in reverse ----
// The synchronous part runs from the 'exit' handler too (backstop); the async
// part (server.close()) from main's `finally` and from the signal handlers.
const undo = [];
const children = new Set();
const servers = new Set();
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function killChildren() {
  for (const c of children) try { c.kill('SIGKILL'); } catch {}
  // SIGKILL is asynchronous: wait (up to 2 s) until each child is gone, or
  // umount would find the mount busy.
  for (const c of children) {
    for (let i = 0; i < 200; i++) {
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
async function shutdown() {
  // close() answers any reader still waiting (EIO) and drops the marks; a
  // server that does not close in 10 s is left to the process exit.
  for (const s of servers) await Promise.race([s.close().catch((e) => console.error(`cleanup: close: ${e.message}`)), sleep(10000)]);
  servers.clear();
  cleanupSync();
}
process.on('exit', cleanupSync);
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${sig}: cleaning up`);
    shutdown().finally(() => process.exit(128 + os.constants.signals[sig]));
  });
}

// Synchronous commands: only before the first server starts and in cleanup.
const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

// Asynchronous commands: a child process, its stdout, and the wall time from
// spawn to exit. Rejects on a non-zero exit (with its stderr) and after
// timeoutMs (a reader that never comes back would be a hang in the server).
function run(cmd, args, { timeoutMs = 600000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '', err = '', timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); children.delete(child); reject(e); });
    child.once('close', (code, signal) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolve({ out, ms });
      else reject(new Error(`${cmd} ${args.join(' ')}: ${timedOut ? `no exit after ${timeoutMs} ms (hang?)` : `exit ${code ?? signal}`}; ${err.trim()}`));
    });
  });
}

// Cold caches: write back dirty pages, then drop the page cache, dentries and
// inodes (of the loop-mounted filesystem and of the image file behind it).
const dropCaches = () => run('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);

// Reads every file of a tree in a child (bench/read-tree.c) and checks it saw
// the whole tree. ms: the walk as timed inside the reader.
async function readTree(dir) {
  const { out } = await run(path.join(buildDir, 'read-tree'), [dir, String(opt.bufKib)]);
  const r = JSON.parse(out.trim().split('\n').pop());
  if (r.files !== nFiles || r.bytes !== treeBytes)
    throw new Error(`read-tree ${dir}: ${r.files} files, ${r.bytes} bytes; expected ${nFiles}, ${treeBytes}`);
  return r.ns / 1e6;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (x, d = 2) => (x == null || Number.isNaN(x) ? '-' : x.toFixed(d));
const mbps = (ms) => treeBytes / 1e6 / (ms / 1000);  // MB/s, MB = 10^6 bytes
// Alternate which side goes first, so slow drift does not favour one side.
const order = (rep, kinds) => (rep % 2 ? [...kinds].reverse() : kinds);
const round = (x, d = 3) => +x.toFixed(d);

// ---- setup (no server yet: synchronous calls are fine here) ----

// A fresh ext4 image on a loop device (as scripts/bench.js): the results do
// not depend on the host's filesystem, and everything goes away at the end.
function makeImage() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-bench-hsm-'));
  undo.push(['rm ' + tmp, () => fs.rmSync(tmp, { recursive: true, force: true })]);
  const img = path.join(tmp, 'ext4.img');
  // Room for five trees at once (src, plain, stub, and during the fill
  // repetitions another stub tree and plain2), plus metadata.
  const sizeMiB = Math.ceil((5 * (treeBytes + nFiles * 4096) * 1.1) / MiB) + 512;
  fs.closeSync(fs.openSync(img, 'w'));
  fs.truncateSync(img, sizeMiB * MiB); // sparse
  // lazy init off: no background ext4lazyinit thread writing while we measure.
  sh('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', img]);
  const dev = sh('losetup', ['--find', '--show', img]);
  undo.push(['losetup -d ' + dev, () => sh('losetup', ['-d', dev])]);
  const mnt = fs.mkdtempSync(path.join(tmp, 'mnt-'));
  sh('mount', [dev, mnt]);
  undo.push(['umount ' + mnt, () => {
    try { sh('umount', [mnt]); } catch { sh('umount', ['-l', mnt]); } // lazy: never leave it behind
  }]);
  return { dev, mnt, sizeMiB };
}

// The source tree: big/f<i> (bigMib MiB each) and small/d<a>/s<b>/f<k>
// (smallKib KiB each, perDir files per leaf directory, 8 leaves per d<a>).
// Random bytes, and every 4 KiB block starts with its file number and block
// number, so a chunk written to the wrong place would not compare equal.
function makeSource(src) {
  const base = crypto.randomBytes(Math.max(bigSize, smallSize));
  const write = (file, size, id) => {
    const buf = Buffer.from(base.subarray(0, size));
    for (let off = 0; off < size; off += 4096) {
      buf.writeUInt32LE(id, off);
      buf.writeUInt32LE(off / 4096, off + 4);
    }
    fs.writeFileSync(file, buf);
  };
  fs.mkdirSync(path.join(src, 'big'), { recursive: true });
  for (let i = 0; i < opt.bigFiles; i++) write(path.join(src, 'big', `f${i}`), bigSize, i);
  for (let k = 0; k < opt.smallFiles; k++) {
    const leaf = Math.floor(k / opt.perDir);
    const dir = path.join(src, 'small', `d${Math.floor(leaf / 8)}`, `s${leaf % 8}`);
    if (k % opt.perDir === 0) fs.mkdirSync(dir, { recursive: true });
    write(path.join(dir, `f${k}`), smallSize, opt.bigFiles + k);
  }
}

// fetch() for serveContent: the range, read from the source tree with
// fs.promises (it runs on the JS thread that also answers the readers, so it
// must not block). fetchMs sums the time spent inside fetch.
function makeFetch(src, acc) {
  return async ({ path: rel, offset, length }) => {
    const t0 = performance.now();
    const fh = await fs.promises.open(path.join(src, rel), 'r');
    try {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) throw new Error(`${rel}: source shorter than its stub`);
        got += bytesRead;
      }
      return buf;
    } finally {
      await fh.close();
      acc.fetchMs += performance.now() - t0;
    }
  };
}

// After a fill: the stub tree must hold the source's bytes (diff -r, run as a
// child: our own reads would not be served), modes and mtimes (lstat only
// here, which touches no content), and the server must have fetched each
// chunk exactly once.
async function verifyFill(src, stubDir, stats) {
  if (stats.failures !== 0 || stats.fetches !== expectedChunks || stats.bytesFetched !== treeBytes || stats.filesCompleted !== nFiles)
    throw new Error(`server.stats after the fill: ${JSON.stringify(stats)}; expected ${expectedChunks} fetches, ${treeBytes} bytes, ${nFiles} files completed, no failures`);
  await run('diff', ['-r', '-q', src, stubDir]); // exit 1 on any difference
  const bad = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(src, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      const a = fs.lstatSync(path.join(src, r)), b = fs.lstatSync(path.join(stubDir, r));
      if (a.mode !== b.mode || (e.isFile() && Math.abs(a.mtimeMs - b.mtimeMs) >= 1)) bad.push(`${r}: mode ${a.mode.toString(8)}/${b.mode.toString(8)}, mtime ${a.mtimeMs}/${b.mtimeMs}`);
      if (e.isDirectory()) walk(r);
    }
  };
  walk('');
  if (bad.length) throw new Error(`${bad.length} filled stubs differ from the source in mode or mtime, e.g. ${bad.slice(0, 3).join('; ')}`);
}

// On-disk layout (filefrag -v): extents of the big files, and how often the
// next block to read (files in walk order, as read-tree reads them) is not
// the one after the last: a fill in 1 MiB pwrite()s may lay files out
// differently from cp, which would show in cold reads on a real disk.
async function layout(dir) {
  const files = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {   // readdir order, as nftw()
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  walk(dir);
  let extents = 0, jumps = 0, last = null;
  for (let i = 0; i < files.length; i += 200) {
    const { out } = await run('filefrag', ['-v', '-b4096', ...files.slice(i, i + 200)]);
    // Extent lines: "   0:        0..    1023:      33792..     34815:   1024: ..."
    for (const m of out.matchAll(/^\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.\s*(\d+):/gm)) {
      extents++;
      if (last !== null && Number(m[1]) !== last + 1) jumps++;
      last = Number(m[2]);
    }
  }
  return { extents, discontinuities: jumps };
}

// ---- part 1: first-touch fill against cp -a ----
async function fillBench(mnt, src) {
  const samples = { fill: [], fill_sync: [], cp: [], cp_sync: [] };
  const reps = [];
  let server0 = null;
  const plain2 = path.join(mnt, 'plain2');
  for (let rep = 0; rep < opt.fillReps; rep++) {
    // Repetition 0 fills stub/, which part 2 then reads; later ones use a
    // throwaway stub tree (a stub can be filled only once).
    const stubDir = path.join(mnt, rep === 0 ? 'stub' : `stub-fill${rep}`);
    const pop = await populate(src, stubDir);
    const acc = { fetchMs: 0 };
    const server = await serveContent(stubDir, makeFetch(src, acc), { chunkSize: chunk });
    servers.add(server);
    const rec = { rep, populated: pop, marks: groupMarks() };  // one per unfilled stub
    for (const kind of order(rep, ['fill', 'cp'])) {
      await dropCaches();
      let ms;
      if (kind === 'fill') ms = await readTree(stubDir);   // every read waits for its chunk
      else ms = (await run('cp', ['-a', src, plain2])).ms;
      const syncMs = (await run('sync')).ms;               // what the writes left dirty
      samples[kind].push(ms);
      samples[`${kind}_sync`].push(ms + syncMs);
      rec[kind] = { ms: round(ms), sync_ms: round(syncMs) };
      console.log(`  fill rep ${rep + 1} ${kind.padEnd(4)}  ${fmt(ms, 0).padStart(6)} ms  ${fmt(mbps(ms), 1).padStart(7)} MB/s` +
        `  (+ sync ${fmt(syncMs, 0)} ms: ${fmt(mbps(ms + syncMs), 1)} MB/s)`);
    }
    rec.stats = { ...server.stats };
    rec.fetch_ms = round(acc.fetchMs);
    await verifyFill(src, stubDir, server.stats);
    console.log(`  fill rep ${rep + 1} ${rec.marks} marks at the start; server.stats ${JSON.stringify(server.stats)}, ${fmt(acc.fetchMs, 0)} ms inside fetch; bytes, modes and mtimes match the source`);
    reps.push(rec);
    await run('rm', ['-rf', plain2]);
    if (rep === 0) server0 = server;   // stays up for part 2
    else {
      await server.close();
      servers.delete(server);
      await run('rm', ['-rf', stubDir]);
    }
  }
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  return {
    server: server0,
    result: {
      expected_chunks: expectedChunks,
      stats: reps[0].stats,
      median_ms: Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(v)])),
      mb_per_s: Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(mbps(v), 1)])),
      // Throughput of the fill relative to cp -a (1 = as fast, 0.5 = half as fast).
      ratio_fill_cp: round(m.cp / m.fill), ratio_fill_cp_sync: round(m.cp_sync / m.fill_sync),
      samples: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map((x) => round(x))])),
      reps,
    },
  };
}

// ---- part 2: the filled stub tree against the plain copy ----
async function readBench(mnt, phase) {
  const s = { plain: { cold: [], warm: [] }, stub: { cold: [], warm: [] } };
  for (let rep = 0; rep < opt.reps; rep++) {
    for (const kind of order(rep, ['plain', 'stub'])) {
      const dir = path.join(mnt, kind);
      await dropCaches();
      const cold = await readTree(dir);
      // Right after: the whole tree is in the page cache. A warm read is
      // short and CPU-bound (noisy on a shared VM): the median of a few.
      const w = [];
      for (let i = 0; i < opt.warmReads; i++) w.push(await readTree(dir));
      const warm = median(w);
      s[kind].cold.push(cold);
      s[kind].warm.push(warm);
      console.log(`  ${phase.padEnd(7)} rep ${rep + 1} ${kind.padEnd(5)}  cold ${fmt(cold, 1).padStart(8)} ms  warm ${fmt(warm, 1).padStart(7)} ms`);
    }
  }
  const out = { samples: {} };
  for (const t of ['cold', 'warm']) {
    const p = median(s.plain[t]), q = median(s.stub[t]);
    out[t] = {
      plain_ms: round(p), stub_ms: round(q),
      ratio: round(q / p),  // stub/plain of the medians; target <= 1.05
      // The same, pairing the two runs of each repetition (less sensitive to drift).
      paired_ratio: round(median(s.stub[t].map((x, i) => x / s.plain[t][i]))),
    };
    out.samples[t] = { plain: s.plain[t].map((x) => round(x)), stub: s.stub[t].map((x) => round(x)) };
  }
  return out;
}

// Inode marks held by this process's fanotify groups, from /proc/self/fdinfo.
function groupMarks() {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fdinfo')) {
    try { n += (fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').match(/^fanotify ino:/gm) || []).length; } catch {}
  }
  return n;
}

let populate, serveContent;

async function main() {
  if (process.getuid() !== 0) throw new Error('run as root: fanotify pre-content marks, losetup, mount and drop_caches need it');
  ({ populate, serveContent } = require(path.join(root, 'dist')));
  fs.mkdirSync(buildDir, { recursive: true });
  sh('cc', ['-O2', '-Wall', '-o', path.join(buildDir, 'read-tree'), path.join(benchDir, 'read-tree.c')]);

  const { dev, mnt, sizeMiB } = makeImage();
  const load0 = os.loadavg();
  console.log(`image ${dev} (${sizeMiB} MiB sparse ext4) on ${mnt}; ${os.cpus().length} CPUs, Linux ${os.release()}, Node ${process.version}, load ${load0.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`tree: ${opt.bigFiles} x ${opt.bigMib} MiB + ${opt.smallFiles} x ${opt.smallKib} KiB (${opt.perDir} per directory) = ` +
    `${fmt(treeBytes / MiB, 1)} MiB in ${nFiles} files; chunk ${opt.chunkKib} KiB (${expectedChunks} chunks), reader buffer ${opt.bufKib} KiB, ` +
    `reps ${opt.reps}, fill reps ${opt.fillReps}`);

  const src = path.join(mnt, 'src');
  let t = performance.now();
  makeSource(src);
  sh('cp', ['-a', src, path.join(mnt, 'plain')]);
  sh('sync', []);
  console.log(`src/ and plain/ written in ${fmt((performance.now() - t) / 1000, 1)} s`);

  // From here on a server may be running: asynchronous child processes only.
  console.log('\nfirst-touch fill (cold caches) against cp -a:');
  const { server, result: fill } = await fillBench(mnt, src);
  const lay = { plain: await layout(path.join(mnt, 'plain')), stub: await layout(path.join(mnt, 'stub')) };
  console.log(`  layout: plain ${lay.plain.extents} extents, ${lay.plain.discontinuities} discontinuities in read order; ` +
    `stub ${lay.stub.extents} extents, ${lay.stub.discontinuities} discontinuities`);

  // The group is alive but should hold no mark any more (every stub complete).
  console.log(`\nreading the filled tree, server running (marks left on its group: ${groupMarks()}):`);
  const serving = await readBench(mnt, 'serving');
  await server.close();
  servers.delete(server);
  console.log('\nreading the filled tree, after server.close():');
  const closed = await readBench(mnt, 'closed');
  const load1 = os.loadavg();

  // ---- report ----
  console.log(`\n  first full read of the stub tree (${fmt(treeBytes / MiB, 1)} MiB, ${nFiles} files, cold), medians of ${opt.fillReps}:`);
  console.log('                        ms      MB/s   ms incl. sync   MB/s incl. sync');
  console.log(`  fill (stub read)  ${fmt(fill.median_ms.fill, 0).padStart(8)} ${fmt(fill.mb_per_s.fill, 1).padStart(9)} ${fmt(fill.median_ms.fill_sync, 0).padStart(15)} ${fmt(fill.mb_per_s.fill_sync, 1).padStart(17)}`);
  console.log(`  cp -a src plain2  ${fmt(fill.median_ms.cp, 0).padStart(8)} ${fmt(fill.mb_per_s.cp, 1).padStart(9)} ${fmt(fill.median_ms.cp_sync, 0).padStart(15)} ${fmt(fill.mb_per_s.cp_sync, 1).padStart(17)}`);
  console.log(`  fill/cp throughput ratio: ${fmt(fill.ratio_fill_cp, 2)} (incl. sync ${fmt(fill.ratio_fill_cp_sync, 2)})`);
  console.log(`  server.stats: ${fill.stats.fetches} fetches (expected ${expectedChunks} chunks of ${opt.chunkKib} KiB), ` +
    `${fill.stats.bytesFetched} bytes fetched, ${fill.stats.filesCompleted} files completed, ${fill.stats.failures} failures`);

  console.log(`\n  reading the whole tree, stub (filled) against plain, medians of ${opt.reps} (ms):`);
  console.log('  server    cache     plain      stub   stub/plain  paired  target');
  for (const [name, r] of [['running', serving], ['closed', closed]]) {
    for (const c of ['cold', 'warm'])
      console.log(`  ${name.padEnd(8)}  ${c}  ${fmt(r[c].plain_ms, 1).padStart(9)} ${fmt(r[c].stub_ms, 1).padStart(9)} ${fmt(r[c].ratio, 3).padStart(12)} ${fmt(r[c].paired_ratio, 3).padStart(7)}  <= 1.05`);
  }
  console.log(`  (cold: after sync + drop_caches; warm: median of the ${opt.warmReads} reads right after; load average ${load0[0].toFixed(2)} at the start, ${load1[0].toFixed(2)} at the end)`);

  const result = {
    bench: 'hsm',
    options: opt,
    env: { cpus: os.cpus().length, kernel: os.release(), node: process.version, loadavg_start: load0, loadavg_end: load1, image_mib: sizeMiB },
    tree: { files: nFiles, bytes: treeBytes, expected_chunks: expectedChunks, layout: lay },
    fill,
    read: { serving, closed },
  };
  const line = JSON.stringify(result);
  console.log(line);
  if (opt.out) fs.writeFileSync(opt.out, line + '\n');
}

main()
  .catch((e) => { console.error(`bench-hsm: ${e.stack || e}`); process.exitCode = 1; })
  .finally(shutdown);
