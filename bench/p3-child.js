'use strict';
// P3 watcher process: one watcher over a tree, run in a fresh Node process by
// scripts/bench-p3.js. Usage: node p3-child.js ours|chokidar|parcel|node ROOT
// "node" is the baseline: the same process with no watcher loaded; it reports
// "ready" at once.
//
// Protocol (stdout, one line each):
//   {"ready":true,"ready_ms":..,"load_ms":..,"rss":..,"hwm":..,
//    "heap_used":..,"external":..,"array_buffers":..}          once the watcher is ready
//   E\t<kind>\t<isDir 0|1>\t<path>                           per event (raw library kind)
//   {"done":true,"rss":..,"hwm":..,"events":..}                after "stop" on stdin
// "ready": ours = the Watcher constructor returned (its marks are in place);
// chokidar = the 'ready' event; parcel = subscribe() resolved.
const fs = require('node:fs');
const path = require('node:path');

const [kind, root] = process.argv.slice(2);
const out = (s) => process.stdout.write(s + '\n');
const hwm = () => {
  // Peak RSS of this process so far (kernel's high-water mark), bytes.
  const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : null;
};
let events = 0;
const emit = (k, isDir, p) => {
  events++;
  out(`E\t${k}\t${isDir ? 1 : 0}\t${p === null || p === undefined ? '<null>' : p}`);
};
let tLoad0, tLoad1, t0;
const ready = () => {
  const t1 = performance.now();
  const m = process.memoryUsage(); // m.external already includes m.arrayBuffers
  out(JSON.stringify({ ready: true, ready_ms: +(t1 - t0).toFixed(1), load_ms: +(tLoad1 - tLoad0).toFixed(1),
    rss: m.rss, hwm: hwm(), heap_used: m.heapUsed, external: m.external, array_buffers: m.arrayBuffers }));
};

async function main() {
  if (kind === 'ours') {
    tLoad0 = performance.now();
    const { watch } = require(path.join(__dirname, '..', 'dist'));
    tLoad1 = performance.now();
    t0 = performance.now();
    const w = watch(root);
    ready();
    (async () => {
      for await (const ev of w) {
        for (const name of ev.events) {
          if (name === 'onDir') continue;
          // With FAN_REPORT_DFID_NAME and no FAN_RENAME, a move is two events
          // (movedFrom, movedTo), each with `path`; from/to only with 'rename'.
          if (name === 'rename') {
            emit('movedFrom', ev.isDir, ev.from);
            emit('movedTo', ev.isDir, ev.to);
          } else emit(name, ev.isDir, ev.path);
        }
      }
    })().catch((e) => { console.error('ours:', e); process.exit(1); });
  } else if (kind === 'chokidar') {
    tLoad0 = performance.now();
    const chokidar = require('chokidar');
    tLoad1 = performance.now();
    t0 = performance.now();
    const w = chokidar.watch(root, { ignoreInitial: true });
    w.on('error', (e) => console.error('chokidar error:', e && e.message));
    w.once('ready', () => {
      ready();
      w.on('all', (ev, p) => emit(ev, ev === 'addDir' || ev === 'unlinkDir', p));
    });
  } else if (kind === 'parcel') {
    tLoad0 = performance.now();
    const parcel = require('@parcel/watcher');
    tLoad1 = performance.now();
    t0 = performance.now();
    let live = false;
    await parcel.subscribe(root, (err, evs) => {
      if (err) return console.error('parcel error:', err.message);
      if (!live) return;
      for (const e of evs) emit(e.type, 0, e.path);
    });
    live = true;
    ready();
  } else if (kind === 'node') {
    tLoad0 = tLoad1 = t0 = performance.now();
    ready();
  } else {
    console.error(`unknown watcher ${kind}`);
    process.exit(2);
  }
  let buf = '';
  process.stdin.setEncoding('utf8').on('data', (d) => {
    buf += d;
    if (buf.includes('stop')) {
      // Exit without closing the watcher: tearing down a million fs.watch
      // handles one by one is not what is being measured; the kernel drops
      // the inotify/fanotify state at exit.
      process.stdout.write(JSON.stringify({ done: true, rss: process.memoryUsage().rss, hwm: hwm(), events }) + '\n',
        () => process.exit(0));
    }
  });
}
main().catch((e) => { console.error(`${kind}:`, e); process.exit(1); });
