#!/usr/bin/env node
// What watch()'s path model costs: the P3 tree (bench/p3-tree.js, 100k
// directories by default, no files) on a loop-mounted ext4, a watch() on
// it, then one file created in every directory, so that every directory,
// all made before the watch, is named once (looked up by handle, then kept
// in the model). Prints the JS heap before and after (after a GC), the
// model's size, and the time per directory named.
// Usage (as root): node --expose-gc bench/watch-model.js [--dirs D]
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');

const { watch } = require('../dist');
const { LoopImage } = require('../dist/testing');
const tree = require('./p3-tree.js');

const arg = process.argv.indexOf('--dirs');
const D = arg > 0 ? Number(process.argv[arg + 1]) : 100000;
const MiB = 1 << 20;
const heap = () => {
  global.gc?.();
  return process.memoryUsage().heapUsed;
};

async function main() {
  if (!global.gc) throw new Error('run with node --expose-gc');
  // ext4 makes an inode per 16 KiB: room for each directory and its new file.
  const img = await LoopImage.create({ sizeMiB: Math.max(256, Math.ceil((D * 3 * 16) / 1024)) });
  try {
    const L = tree.layout(path.join(img.mountPoint, 'p3'), D, 0);
    tree.build(L);
    const w = watch(L.root, { events: ['create'] });
    const before = heap();
    const t0 = performance.now();
    let named = 0;

    const reading = (async () => {
      for await (const e of w) {
        if (e.path === null) throw new Error(`unnamed: ${e.reason}`);
        if (++named === D) break;
      }
    })();
    // From another process, as changes come in real life.
    const maker = spawn(process.execPath, ['-e', `
      const fs = require('node:fs');
      const { layout } = require(${JSON.stringify(require.resolve('./p3-tree.js'))});
      const L = layout(${JSON.stringify(L.root)}, ${D}, 0);
      for (let i = 0; i < ${D}; i++) fs.closeSync(fs.openSync(L.dir(i) + '/new', 'wx'));`], { stdio: 'inherit' });
    const made = new Promise((resolve) => maker.once('close', resolve));
    await reading;
    await made;
    const ms = performance.now() - t0;
    const after = heap();
    const size = w._modelSize;
    await w.close();
    const result = {
      dirs: D, named, model_nodes: size, heap_before_mib: before / MiB, heap_after_mib: after / MiB,
      model_mib: (after - before) / MiB, bytes_per_dir: (after - before) / D, us_per_dir: (ms * 1000) / D,
    };
    console.log(`${D} directories named: model ${size} nodes, JS heap ${result.heap_before_mib.toFixed(1)} -> ` +
      `${result.heap_after_mib.toFixed(1)} MiB (+${result.model_mib.toFixed(1)} MiB, ${result.bytes_per_dir.toFixed(0)} bytes a directory); ` +
      `${result.us_per_dir.toFixed(1)} us a directory (create, read, named)`);
    console.log(JSON.stringify(result));
  } finally {
    await img.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
