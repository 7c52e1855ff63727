// watch() as a sync tool uses it: a scripted change set (creates, appends,
// mkdir -p five deep, a directory renamed with contents and files made in it
// after, moves across directories, rm -rf, hard and symbolic links, a rename
// over a file, deletes in directories named before, renames of directories
// that existed before the watch), then the stream replayed into a set of
// paths. Two properties, for three consumers (one that reads as events come,
// one that starts only after the script has finished, and one whose event
// loop was blocked all through the script, so that every directory is named
// late):
//
// - exact: every path an event reports existed under that name at that point
//   of the script (checked against the tree after each step, in order);
// - complete: the replay, acting on 'rescan' by reading the named subtree
//   again, ends with exactly the tree on disk.
//
// No timing: the script's steps are fs calls; the consumers differ only in
// when the event loop runs.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { watch, WatchEvent } from '../lib';
import { LoopImage } from '../lib/testing';
import { bound, describeRoot, within } from './helpers';

const EVENTS = ['create', 'delete', 'rename', 'modify', 'onDir'] as const;

/** Every path under dir, relative ('' for dir itself is left out), directories with a trailing '/'. */
function tree(dir: string, prefix = ''): Set<string> {
  const out = new Set<string>();
  const walk = (abs: string, rel: string): void => {
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      if (rel === '' && e.name === 'lost+found') continue;
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        out.add(`${prefix}${r}/`);
        walk(path.join(abs, e.name), r);
      } else {
        out.add(`${prefix}${r}`);
      }
    }
  };
  walk(dir, '');
  return out;
}

const has = (t: Set<string>, p: string): boolean => t.has(p) || t.has(`${p}/`);

/** The script, one fs call per step, relative to root. */
function steps(root: string): (() => void)[] {
  const at = (p: string) => path.join(root, p);
  const append = (p: string, s: string) => () => fs.appendFileSync(at(p), s);
  return [
    // the first repro: deletes in directories named before
    append('pre/d/f', 'more'),
    () => fs.rmdirSync(at('pre/d/e')),
    () => fs.unlinkSync(at('pre/d/f')),
    () => fs.rmdirSync(at('pre/d')),
    // the second: a late reader must not say create b/f
    () => fs.mkdirSync(at('a')),
    () => fs.writeFileSync(at('a/f'), 'x'),
    () => fs.renameSync(at('a'), at('b')),
    // a file appended as a2/f1, then its directory renamed
    () => fs.mkdirSync(at('a2')),
    () => fs.writeFileSync(at('a2/f1'), 'x'),
    append('a2/f1', 'y'),
    () => fs.renameSync(at('a2'), at('a3')),
    // creates and appends
    () => fs.writeFileSync(at('top.txt'), 'top'),
    append('top.txt', 'more'),
    // mkdir -p five deep, files in the deepest
    () => fs.mkdirSync(at('n1/n2/n3/n4/n5'), { recursive: true }),
    () => fs.writeFileSync(at('n1/n2/n3/n4/n5/deep.txt'), 'deep'),
    // a directory with contents renamed, then a file made inside it
    () => fs.renameSync(at('b'), at('c')),
    () => fs.writeFileSync(at('c/g'), 'g'),
    // moves across directories
    () => fs.renameSync(at('c/g'), at('n1/n2/g')),
    () => fs.renameSync(at('a3'), at('n1/n2/n3/a3')),
    // hard and symbolic links
    () => fs.linkSync(at('top.txt'), at('c/hard')),
    () => fs.symlinkSync('../top.txt', at('c/soft')),
    // a rename over a file
    () => fs.writeFileSync(at('c/victim'), 'v'),
    () => fs.renameSync(at('c/hard'), at('c/victim')),
    // rm -rf, depth first
    () => fs.rmSync(at('n1'), { recursive: true }),
    // renames of directories that existed before the watch, then files in them
    () => fs.renameSync(at('pre/old'), at('pre/old2')),
    () => fs.writeFileSync(at('pre/old2/sub/y'), 'y'),
    () => fs.renameSync(at('pre/old2/sub'), at('pre/sub2')),
    append('pre/sub2/x', 'x'),
    () => fs.renameSync(at('pre/keep'), at('moved-keep')),
    () => fs.unlinkSync(at('moved-keep/k1')),
    // a directory made and removed between two reads
    () => fs.mkdirSync(at('brief')),
    () => fs.rmdirSync(at('brief')),
  ];
}

function prepare(root: string): void {
  for (const d of ['pre/d/e', 'pre/old/sub', 'pre/keep']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.writeFileSync(path.join(root, 'pre/d/f'), 'f');
  fs.writeFileSync(path.join(root, 'pre/old/sub/x'), 'x');
  for (const k of ['k1', 'k2']) fs.writeFileSync(path.join(root, 'pre/keep', k), k);
}

type Consumer = 'prompt' | 'late' | 'blocked';

/** Each rejection of exactness or completeness, as text: the test expects none. */
function check(root: string, trees: Set<string>[], stream: WatchEvent[]): { inexact: string[]; replay: Set<string>; unnamed: string[] } {
  const rel = (p: string): string => path.relative(root, p);
  const inexact: string[] = [];
  const unnamed: string[] = [];
  let k = 1;
  const explained = (e: WatchEvent, s: number): boolean => {
    const before = trees[s - 1];
    const after = trees[s];
    const p = e.path === null ? '' : rel(e.path);
    // The kernel merges later events of one entry into the queued one, at
    // its place: a merged event is where its first part happened (create,
    // then modify, then delete).
    if (e.events.includes('rename')) return has(before, rel(e.from!)) && has(after, rel(e.to!));
    if (e.events.includes('create')) return !has(before, p) && has(after, p);
    if (e.events.includes('modify')) return has(after, p);
    return has(before, p) && !has(after, p);  // delete
  };
  const replay = new Set(trees[0]);
  const removeUnder = (p: string): void => {
    for (const x of [...replay]) if (x === p || x === `${p}/` || x.startsWith(`${p}/`)) replay.delete(x);
  };
  const readFromDisk = (p: string): void => {
    const abs = path.join(root, p);
    if (!fs.existsSync(abs)) return;
    if (fs.lstatSync(abs).isDirectory()) {
      replay.add(`${p}/`);
      for (const x of tree(abs, `${p}/`)) replay.add(x);
    } else {
      replay.add(p);
    }
  };
  for (const e of stream) {
    if (e.events.includes('rescan')) {
      const p = rel(e.path!);
      if (p === '') {
        replay.clear();
        for (const x of tree(root)) replay.add(x);
      } else {
        removeUnder(p);
        readFromDisk(p);
      }
      continue;
    }
    const shown = e.events.includes('rename') ? `${e.from === null ? 'null' : rel(e.from!)} -> ${e.to === null ? 'null' : rel(e.to!)}` : e.path === null ? 'null' : rel(e.path);
    if (e.path === null || e.from === null || e.to === null) {
      unnamed.push(`${e.events.join(',')} ${shown} (${e.reason})`);
      if (e.reason === undefined) inexact.push(`${e.events.join(',')} ${shown}: a null path without a reason`);
    }
    if (e.path !== null && e.from !== null && e.to !== null) {
      let s = k;
      while (s < trees.length && !explained(e, s)) s++;
      if (s === trees.length) inexact.push(`${e.events.join(',')} ${shown} (after step ${k})`);
      else k = s;
    }
    // The replay: what a sync tool does with each event.
    if (e.events.includes('rename')) {
      const from = e.from ? rel(e.from) : null;
      const to = e.to ? rel(e.to) : null;
      const moved = from === null ? [] : [...replay].filter((x) => x === from || x === `${from}/` || x.startsWith(`${from}/`));
      if (from !== null) removeUnder(from);
      if (to === null) continue;
      if (moved.length === 0) {
        // Not known here (read after a rescan, or unnamed): what is there now.
        removeUnder(to);
        readFromDisk(to);
        continue;
      }
      removeUnder(to);  // a rename over a file replaces it
      for (const x of moved) replay.add(to + x.slice(from!.length));
    } else if (e.path === null) {
      continue;
    } else if (e.events.includes('delete')) {
      removeUnder(rel(e.path));
    } else if (e.events.includes('create')) {
      replay.add(e.isDir ? `${rel(e.path)}/` : rel(e.path));
    }
  }
  return { inexact, replay, unnamed };
}

describeRoot('watch(): the stream replays to the tree on disk, every path as it was', () => {
  let img: LoopImage;
  beforeAll(async () => {
    img = await LoopImage.create({ sizeMiB: 64 });
  });
  afterAll(async () => {
    await img?.dispose();
  });

  for (const consumer of ['prompt', 'late', 'blocked'] as Consumer[]) {
    test(`a ${consumer} consumer`, async () => {
      const root = path.join(img.mountPoint, consumer);
      fs.mkdirSync(root);
      prepare(root);
      const trees = [tree(root)];
      const stream: WatchEvent[] = [];
      const watcher = watch(root, { events: [...EVENTS] });
      try {
        const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
        let reading: Promise<void> | undefined;
        const read = async (): Promise<void> => {
          for await (const e of watcher) stream.push(e);
        };
        if (consumer === 'prompt') reading = read();
        for (const step of steps(root)) {
          step();
          trees.push(tree(root));
          // The loop turns between steps, except for the blocked consumer.
          if (consumer !== 'blocked') for (let i = 0; i < 3; i++) await turn();
        }
        // A last event to wait for: everything before it has been read then.
        fs.writeFileSync(path.join(root, 'end'), '');
        trees.push(tree(root));
        reading ??= read();
        await within(bound(10_000), (async () => {
          while (!stream.some((e) => e.path === path.join(root, 'end'))) await turn();
        })(), 'the last event');
        await watcher.close();
        await reading;
        if (process.env.DEBUG_REPLAY) console.log(stream.map((e) => `${e.events} ${e.path} ${e.from ?? ""} ${e.to ?? ""} ${e.reason ?? ""}`).join("\n"));
        const { inexact, replay, unnamed } = check(root, trees, stream);
        expect({ inexact, replay: [...replay].sort() }).toEqual({ inexact: [], replay: [...trees[trees.length - 1]].sort() });
        if (consumer !== 'blocked') expect(unnamed).toEqual([]);
        console.log(`${consumer}: ${stream.length} events, ${stream.filter((e) => e.events.includes('rescan')).length} rescans, unnamed: ${unnamed.join('; ') || 'none'}`);
      } finally {
        await watcher.close();
      }
    });
  }
});
