'use strict';
// P3 tree and change set (used by scripts/bench-p3.js).
//
// Layout of D directories and F empty files under ROOT: T = ceil(sqrt(D)) top
// directories d<i>, the other D-T directories spread over them as
// d<(i-T) mod T>/s<i>; file j is f<j> in directory j mod D.
const fs = require('node:fs');
const path = require('node:path');

function layout(root, D, F) {
  const T = Math.min(D, Math.ceil(Math.sqrt(D)));
  const dir = (i) => (i < T ? path.join(root, `d${i}`) : path.join(root, `d${(i - T) % T}`, `s${i}`));
  const file = (j) => path.join(dir(j % D), `f${j}`);
  return { root, D, F, T, dir, file };
}

/** Creates the tree (synchronously; ~1-2 µs of JS per entry on top of the syscalls). */
function build(L, onProgress) {
  fs.mkdirSync(L.root);
  for (let i = 0; i < L.D; i++) fs.mkdirSync(L.dir(i));
  for (let j = 0; j < L.F; j++) {
    fs.closeSync(fs.openSync(L.file(j), 'wx'));
    if (onProgress && j % 100000 === 99999) onProgress(j + 1);
  }
}

// Small seeded PRNG, so every watcher sees the same change set.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The change set. Each op has a category and the (kind, path) keys a watcher
 * must report for it to count as delivered: `ours` in this library's terms
 * (a rename is movedFrom + movedTo), `other` in the normalized terms of
 * chokidar/parcel (a rename is delete + create).
 */
function changeSet(L, { creates = 1000, modifies = 1000, renames = 500, deletes = 1000, newDirs = 100, seed = 1 } = {}) {
  const rnd = mulberry32(seed);
  const ri = (n) => Math.floor(rnd() * n);
  const need = modifies + renames + deletes;
  if (need > L.F) throw new Error(`change set needs ${need} existing files, the tree has ${L.F}`);
  const picked = new Set();
  while (picked.size < need) picked.add(ri(L.F));
  const existing = [...picked];
  const ops = [];
  const both = (keys) => ({ ours: keys, other: keys });
  for (let k = 0; k < creates; k++) {
    const p = path.join(L.dir(ri(L.D)), `p3c${k}`);
    ops.push({ cat: 'create', p, keys: both([['create', p]]) });
  }
  for (let k = 0; k < modifies; k++) {
    const p = L.file(existing[k]);
    ops.push({ cat: 'modify', p, keys: both([['modify', p]]) });
  }
  for (let k = 0; k < renames; k++) {
    const j = existing[modifies + k];
    const from = L.file(j);
    let d = ri(L.D);
    if (d === j % L.D) d = (d + 1) % L.D; // across directories
    const to = path.join(L.dir(d), `p3r${k}`);
    ops.push({ cat: 'rename', from, to, keys: { ours: [['movedFrom', from], ['movedTo', to]], other: [['delete', from], ['create', to]] } });
  }
  for (let k = 0; k < deletes; k++) {
    const p = L.file(existing[modifies + renames + k]);
    ops.push({ cat: 'delete', p, keys: both([['delete', p]]) });
  }
  for (let k = 0; k < newDirs; k++) {
    const d = path.join(L.dir(ri(L.D)), `p3d${k}`);
    const f = path.join(d, 'f');
    ops.push({ cat: 'mkdir', p: d, keys: both([['create', d]]) });
    ops.push({ cat: 'createInNewDir', p: f, keys: both([['create', f]]) });
  }
  return ops;
}

/** Applies the change set (synchronous syscalls, as fast as they go); returns the wall time in ms. */
function apply(ops) {
  const t0 = performance.now();
  for (const op of ops) {
    switch (op.cat) {
      case 'create': case 'createInNewDir': fs.closeSync(fs.openSync(op.p, 'wx')); break;
      case 'modify': fs.appendFileSync(op.p, 'x\n'); break;
      case 'rename': fs.renameSync(op.from, op.to); break;
      case 'delete': fs.unlinkSync(op.p); break;
      case 'mkdir': fs.mkdirSync(op.p); break;
      default: throw new Error(op.cat);
    }
  }
  return performance.now() - t0;
}

/** Puts the tree back as it was (run while no watcher is running). */
function undo(ops) {
  for (const op of [...ops].reverse()) {
    try {
      switch (op.cat) {
        case 'create': case 'createInNewDir': fs.unlinkSync(op.p); break;
        case 'modify': fs.truncateSync(op.p, 0); break;
        case 'rename': fs.renameSync(op.to, op.from); break;
        case 'delete': fs.closeSync(fs.openSync(op.p, 'wx')); break;
        case 'mkdir': fs.rmdirSync(op.p); break;
      }
    } catch (e) {
      if (e.code !== 'ENOENT' && e.code !== 'EEXIST') throw e;
    }
  }
}

// Raw event kinds of each watcher -> the categories compared with the keys.
const normalize = {
  ours: (k) => k, // create, delete, movedFrom, movedTo, modify (attrib etc. stay as they are: spurious)
  chokidar: (k) => ({ add: 'create', addDir: 'create', change: 'modify', unlink: 'delete', unlinkDir: 'delete' })[k] ?? k,
  parcel: (k) => ({ create: 'create', update: 'modify', delete: 'delete' })[k] ?? k,
};

/**
 * Compares what a watcher delivered with the change set. `received` is a list
 * of [rawKind, path]. An op is delivered when all its keys arrived; a
 * received key that no op expects is spurious: `spurious` counts distinct
 * keys, `spurious_events` the events carrying them.
 */
function score(watcher, ops, received) {
  const norm = normalize[watcher];
  const got = new Map(); // "kind\0path" -> count
  for (const [k, p] of received) {
    const key = `${norm(k)}\0${p}`;
    got.set(key, (got.get(key) ?? 0) + 1);
  }
  const expected = new Set();
  const perCat = {};
  const missedSamples = [];
  let delivered = 0;
  for (const op of ops) {
    const keys = (watcher === 'ours' ? op.keys.ours : op.keys.other).map(([k, p]) => `${k}\0${p}`);
    for (const k of keys) expected.add(k);
    const ok = keys.every((k) => got.has(k));
    const c = (perCat[op.cat] ??= { expected: 0, delivered: 0 });
    c.expected++;
    if (ok) { delivered++; c.delivered++; }
    else if (missedSamples.length < 8) missedSamples.push({ cat: op.cat, missing: keys.filter((k) => !got.has(k)).map((k) => k.replace('\0', ' ')) });
  }
  const spurious = [...got.keys()].filter((k) => !expected.has(k));
  const spuriousEvents = spurious.reduce((s, k) => s + got.get(k), 0);
  const nullPath = received.filter(([, p]) => p === '<null>').length;
  const rawKinds = {};
  for (const [k, p] of received) { const kk = p === '<null>' ? `${k}(null path)` : k; rawKinds[kk] = (rawKinds[kk] ?? 0) + 1; }
  const dupes = [...got.values()].reduce((s, n) => s + (n - 1), 0);
  return {
    expected: ops.length, delivered, missed: ops.length - delivered, spurious: spurious.length,
    spurious_events: spuriousEvents, null_path_events: nullPath,
    raw_events: received.length, raw_kinds: rawKinds, duplicate_events: dupes, per_category: perCat,
    missed_samples: missedSamples, spurious_samples: spurious.slice(0, 8).map((k) => k.replace('\0', ' ')),
  };
}

module.exports = { layout, build, changeSet, apply, undo, score };
