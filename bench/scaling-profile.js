#!/usr/bin/env node
// Where P1's time goes: runs bench/js-consumer.js (backlog mode by default)
// under `node --cpu-prof` (and, with --perf, the whole process under `perf
// record`, kernel and native code included), then prints the top self-time
// functions of the measured part only (samples from "go" to the end).
// Usage (as root): node bench/scaling-profile.js [--events N] [--fs ext4|tmpfs]
//   [--mode backlog|live] [--perf] [--c] [--syscalls] [--top K] [--dir OUT]
//   --c: also profile bench/c-consumer.c under perf (needs --perf).
//   --syscalls: count the consumers' system calls per event (perf stat on
//     syscall tracepoints; a 2-event run is subtracted to remove start-up).
// Leaves the .cpuprofile (open it in Chrome DevTools) and perf.data in OUT
// (default bench/build/profile-out/, gitignored). See bench/README.md, "Scaling".
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const buildDir = path.join(__dirname, 'build', 'profile'); // -O2 -g copies, apart from scripts/bench.js's
const opt = { events: 200000, fs: 'ext4', mode: 'backlog', perf: false, c: false, syscalls: false, top: 25, dir: path.join(__dirname, 'build', 'profile-out') }; // gitignored
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--events') opt.events = Number(process.argv[++i]);
  else if (a === '--fs') opt.fs = process.argv[++i];
  else if (a === '--perf') opt.perf = true;
  else if (a === '--mode') opt.mode = process.argv[++i];
  else if (a === '--syscalls') opt.syscalls = true;
  else if (a === '--c') opt.c = true;
  else if (a === '--top') opt.top = Number(process.argv[++i]);
  else if (a === '--dir') opt.dir = path.resolve(process.argv[++i]);
  else { console.error(`unknown argument ${a}`); process.exit(2); }
}
opt.events -= opt.events % 2;

const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const undo = [];
const cleanup = () => { while (undo.length) try { undo.pop()(); } catch (e) { console.error(`cleanup: ${e.message}`); } };
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function mountFs() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-profile-'));
  undo.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const mnt = fs.mkdtempSync(path.join(tmp, 'mnt-'));
  const inodes = Math.max(65536, Math.ceil(opt.events * 0.55) + 10000);
  const umount = () => { try { sh('umount', [mnt]); } catch { sh('umount', ['-l', mnt]); } };
  if (opt.fs === 'tmpfs') {
    sh('mount', ['-t', 'tmpfs', '-o', `size=1g,nr_inodes=${inodes}`, 'fanotify-profile', mnt]);
    undo.push(umount);
    return mnt;
  }
  const img = path.join(tmp, 'ext4.img');
  fs.closeSync(fs.openSync(img, 'w'));
  fs.truncateSync(img, (Math.ceil((inodes * 512) / (1 << 20)) + 256) * (1 << 20));
  sh('mkfs.ext4', ['-q', '-F', '-N', String(inodes), '-E', 'lazy_itable_init=0,lazy_journal_init=0', img]);
  const dev = sh('losetup', ['--find', '--show', img]);
  undo.push(() => sh('losetup', ['-d', dev]));
  sh('mount', [dev, mnt]);
  undo.push(umount);
  return mnt;
}

// Starts a consumer; backlog: fills the queue with the generator, says "go";
// live: runs the generator while the consumer reads. Waits for the consumer.
// Returns [the consumer's JSON, CLOCK_MONOTONIC us at "go" (live: at the
// generator's start)].
async function consumerRun(cmd, args, mnt, tag, events = opt.events) {
  const live = opt.mode === 'live';
  const dir = path.join(mnt, tag);
  fs.mkdirSync(dir);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise((res) => child.stdout.on('data', (d) => { out += d; if (out.includes('ready\n')) res(); }));
  const closed = new Promise((res) => child.once('close', res));
  await Promise.race([ready, closed]);
  let goUs = Number(process.hrtime.bigint() / 1000n);
  sh(path.join(buildDir, 'gen'), [dir, String(events / 2)]);
  if (!live) {
    goUs = Number(process.hrtime.bigint() / 1000n);
    child.stdin.write('go\n');
  }
  const code = await closed;
  fs.rmdirSync(dir);
  const json = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  if (code !== 0 || !json.length) throw new Error(`${tag}: exit ${code}: ${out}`);
  return [Object.assign({}, ...json), goUs];
}

// Self time per function over the samples at or after `fromUs` (V8's profile
// clock is CLOCK_MONOTONIC in us on Linux, the same as process.hrtime).
function summarize(file, fromUs) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let t = prof.startTime, total = 0, firstT = null;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i];
    if (t < fromUs) continue;
    firstT ??= t;
    const dt = prof.timeDeltas[i + 1] ?? 0; // time until the next sample
    const cf = byId.get(prof.samples[i]).callFrame;
    if (cf.functionName === '(idle)') continue;
    const url = cf.url.replace(/^file:\/\//, '').replace(root + '/', '');
    const key = `${cf.functionName || '(anonymous)'}  ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]);
  return { total, rows, first: firstT };
}

// perf report of the samples from `fromUs` on (perf records with -k mono, so
// its timestamps are CLOCK_MONOTONIC too), self time by `sort`.
function perfTop(data, k, fromUs, sort = 'dso,sym') {
  const out = sh('perf', ['report', '-i', data, '--no-children', '--sort', sort, '--stdio', '--percent-limit', '0.5', '-g', 'none',
    '--time', `${(fromUs / 1e6).toFixed(6)},`]);
  return out.split('\n').filter((l) => /^\s+\d/.test(l)).slice(0, k).join('\n');
}

// Sums perf's self time (drain only) into categories, main thread vs the others.
const CATEGORIES = [
  ['kernel: fanotify read + copy out', /\[k\] (fanotify|fsnotify|copy_fid|copy_info|_copy_to_user|__check_object_size|__check_heap_object|__virt_addr_valid|kfree|__slab_free|kmem_cache_free|__memcg_slab|refill_obj_stock|put_pid|pid_vnr|__pi_memcpy|fsnotify_|ksys_read|vfs_read|__x64_sys_read|rw_verify_area)/],
  ['kernel: scheduling, irq, syscall entry', /\[k\] (finish_task_switch|_raw_spin_unlock_irq|irqentry_|do_syscall_64|entry_SYSCALL|syscall_exit|__schedule|schedule|futex|try_to_wake_up|native_|ep_poll|do_epoll|arch_exit)/],
  ['kernel: memory (page faults, zeroing)', /\[k\] (clear_page|exc_page_fault|handle_mm_fault|do_anonymous_page|__handle_mm_fault|alloc_pages|get_page_from_freelist|rmqueue|__alloc|folio|lru|mem_cgroup|release_pages|free_unref|zap_|unmap_|mas_|do_user_addr_fault|lock_vma)/],
  ['V8 optimizing compiler (TurboFan/Maglev)', /v8::internal::(compiler|maglev|turboshaft)|OptimizedCompilationJob|PipelineImpl|Turbofan/],
  ['V8 GC', /v8::internal::(Scavenger|Heap|MarkCompact|MarkingVisitor|ConcurrentMarking|Sweeper|MemoryAllocator|Evacuat|PagedSpace|NewSpace|SemiSpace|MinorMarkCompact|MarkingWorklist|LocalHeap|GCTracer|RememberedSet|SlotSet|ScavengeJob|MainMarkingVisitor|IncrementalMarking)|Scavenge/],
  ['V8 other compile (parse, bytecode, baseline)', /v8::internal::(Parser|Compiler|BytecodeGenerator|interpreter|baseline|Scanner|AstValueFactory|FeedbackVector|Deoptimizer|CodeStub|Assembler|SharedFunctionInfo::)/],
  ['JS: JIT code', /\[JIT\]|\[\.\] JS:/],
  ['JS: V8 builtins and ICs', /\[\.\] Builtins_/],
  ['addon (fanotify.node) and N-API', /fanotify\.node|napi_|Napi::|node::napi/],
  ['libc (malloc, free, memcpy, ...)', /libc\.so/],
];
function categories(data, fromUs) {
  // The consumer runs under perf: its pid (= its main thread's tid) is the
  // process with the most samples.
  const pids = sh('perf', ['report', '-i', data, '--no-children', '--sort', 'pid', '--stdio', '-g', 'none', '--time', `${(fromUs / 1e6).toFixed(6)},`]);
  const mainPid = Number(/^\s+[\d.]+%\s+(\d+):/m.exec(pids)?.[1]);
  const out = sh('perf', ['report', '-i', data, '--no-children', '--sort', 'pid,dso,sym', '--stdio', '--percent-limit', '0', '-g', 'none',
    '--time', `${(fromUs / 1e6).toFixed(6)},`]);
  const sums = new Map(), other = [];
  let main = 0, rest = 0;
  for (const l of out.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\d+):\S*\s+(.*)$/.exec(l);
    if (!m) continue;
    const pct = Number(m[1]), tid = Number(m[2]), what = m[3];
    if (tid === mainPid) main += pct; else rest += pct;
    const cat = CATEGORIES.find(([, re]) => re.test(what))?.[0] ?? 'other (node/V8 runtime, unresolved)';
    const c = sums.get(cat) ?? { main: 0, rest: 0 };
    if (tid === mainPid) c.main += pct; else c.rest += pct;
    sums.set(cat, c);
    if (cat.startsWith('other')) other.push([pct, what]);
  }
  const lines = [...sums.entries()].sort((a, b) => (b[1].main + b[1].rest) - (a[1].main + a[1].rest))
    .map(([k, v]) => `  ${(v.main + v.rest).toFixed(1).padStart(5)}%  (main thread ${v.main.toFixed(1).padStart(4)}%, other threads ${v.rest.toFixed(1).padStart(4)}%)  ${k}`);
  lines.push(`  main thread ${main.toFixed(1)}%, other threads ${rest.toFixed(1)}%; biggest "other": ` +
    other.sort((a, b) => b[0] - a[0]).slice(0, 4).map(([p, w]) => `${w.replace(/\s+/g, ' ').trim()} ${p}%`).join(', '));
  return lines.join('\n');
}

// System calls per event of both consumers: perf stat on syscall tracepoints
// over the whole process, minus a 2-event run of the same consumer.
const SYSCALLS = ['read', 'write', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'epoll_ctl', 'futex', 'mmap', 'munmap', 'madvise', 'brk', 'mprotect'];
async function syscalls(mnt) {
  const modeArgs = opt.mode === 'backlog' ? ['--backlog'] : [];
  const count = async (bin, n, tag) => {
    const out = path.join(opt.dir, `syscalls-${tag}.txt`);
    const cmd = bin === 'js' ? [process.execPath, path.join(__dirname, 'js-consumer.js')] : [path.join(buildDir, 'c-consumer')];
    const [r] = await consumerRun('perf', ['stat', '-x', ',', '-o', out, ...SYSCALLS.flatMap((c) => ['-e', `syscalls:sys_enter_${c}`]), '--',
      ...cmd, mnt, String(n), ...modeArgs], mnt, tag, n);
    const counts = {};
    for (const l of fs.readFileSync(out, 'utf8').split('\n')) {
      const [v, , ev] = l.split(',');
      const m = /sys_enter_(\w+)/.exec(ev ?? '');
      if (m) counts[m[1]] = Number(v) || 0;
    }
    return { counts, records: r.records, events: r.events };
  };
  console.log(`\n  system calls per 1000 events (${opt.mode}; whole process minus a 2-event run; records per 1000 events in brackets):`);
  for (const bin of ['c', 'js']) {
    const small = await count(bin, 2, `${bin}-2`);
    const big = await count(bin, opt.events, `${bin}-n`);
    const per = SYSCALLS.map((c) => [c, ((big.counts[c] ?? 0) - (small.counts[c] ?? 0)) * 1000 / big.events])
      .filter(([, v]) => Math.abs(v) >= 0.05).map(([c, v]) => `${c} ${v.toFixed(1)}`).join(', ');
    console.log(`  ${bin === 'c' ? 'C ' : 'JS'} [${(big.records * 1000 / big.events).toFixed(0)}]: ${per}`);
  }
  console.log('');
}

async function main() {
  if (process.getuid() !== 0) throw new Error('run as root');
  fs.mkdirSync(opt.dir, { recursive: true });
  fs.mkdirSync(buildDir, { recursive: true });
  for (const p of ['gen', 'c-consumer']) sh('cc', ['-O2', '-g', '-Wall', '-o', path.join(buildDir, p), path.join(__dirname, `${p}.c`)]);
  const mnt = mountFs();
  const modeArgs = opt.mode === 'backlog' ? ['--backlog'] : [];
  const consumerArgs = [path.join(__dirname, 'js-consumer.js'), mnt, String(opt.events), ...modeArgs];
  const perCpu = (r) => `${(r.cpu_us / r.events).toFixed(3)} us/event (${r.records} records, ${(r.cpu_us / 1000).toFixed(0)} ms CPU, ${r.wall_ms} ms wall)`;

  // 1. --cpu-prof: JavaScript functions of the main thread (wall-clock samples).
  const profDir = path.join(opt.dir, 'cpuprofile');
  fs.rmSync(profDir, { recursive: true, force: true });
  console.log(`JS consumer, ${opt.events} events, ${opt.mode}, ${opt.fs}`);
  if (opt.syscalls) await syscalls(mnt);
  const [r, goUs] = await consumerRun(process.execPath,
    ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=100', ...consumerArgs], mnt, 'js');
  console.log(`  under --cpu-prof: ${perCpu(r)}`);
  const file = path.join(profDir, fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile')));
  const { total, rows } = summarize(file, goUs);
  console.log(`\n  --cpu-prof, main thread, drain only (${(total / 1000).toFixed(0)} ms sampled): self time`);
  for (const [k, us] of rows.slice(0, opt.top)) console.log(`  ${(100 * us / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(1).padStart(7)} ms  ${k}`);
  console.log(`  (profile: ${path.relative(process.cwd(), file)})`);
  if (!opt.perf) return;

  // 2. perf: every thread of the process, kernel and native code included.
  const perf = (data) => ['record', '-q', '-k', 'mono', '-e', 'cpu-clock', '-F', '4999', '-g', '-o', data, '--'];
  const perfData = path.join(opt.dir, 'perf-js.data');
  const [rp, goP] = await consumerRun('perf', [...perf(perfData), process.execPath,
    '--perf-basic-prof-only-functions', '--interpreted-frames-native-stack', ...consumerArgs], mnt, 'js-perf');
  console.log(`\n  JS consumer under perf record: ${perCpu(rp)}`);
  console.log('\n  perf, JS process, drain only, by category:');
  console.log(categories(perfData, goP));
  console.log('\n  perf, JS process, drain only (all threads, kernel included), self time by dso/symbol:');
  console.log(perfTop(perfData, opt.top, goP));
  if (opt.c) {
    const cData = path.join(opt.dir, 'perf-c.data');
    const [rc, goC] = await consumerRun('perf', [...perf(cData), path.join(buildDir, 'c-consumer'), mnt, String(opt.events), ...modeArgs], mnt, 'c');
    console.log(`\n  C consumer under perf record: ${perCpu(rc)}; perf self time, drain only:`);
    console.log(perfTop(cData, opt.top, goC));
  }
}

main().catch((e) => { console.error(e.stack || e); process.exitCode = 1; }).finally(cleanup);
