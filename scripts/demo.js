#!/usr/bin/env node
// npm run demo: a tour on a throwaway ext4 image (needs root).
// 1. a filesystem-wide change feed with names and resolved paths;
// 2. a permission group that denies another process;
// 3. filesystem errors (FAN_FS_ERROR) provoked on purpose: a corrupted inode,
//    an entry pointing at a bad inode number, and a shut-down filesystem.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) {
  console.log('building (first run)...');
  spawnSync(process.execPath, [path.join(__dirname, 'build.js')], { stdio: 'inherit', cwd: root });
}
const { Fanotify, resolve, watchErrors } = require('../dist');
const { LoopImage } = require('../dist/testing');

/** Runs fn with a new group and always closes it (Node 20's JS has no `await using`). */
async function withGroup(options, fn) {
  const fan = new Fanotify(options);
  try {
    return await fn(fan);
  } finally {
    await fan.close();
  }
}

/** Reads events until `stop` returns true or ms pass. */
async function take(fan, ms, stop) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  try {
    for await (const ev of fan.events({ signal: ac.signal })) if (await stop(ev)) break;
  } catch (err) {
    if (err.name !== 'AbortError') throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function changeFeed(mnt) {
  console.log('1. change feed: a filesystem mark reporting directory ids and names');
  await withGroup({ report: { fid: true, dirFid: true, name: true } }, async (fan) => {
    fan.add(mnt, ['create', 'delete', 'movedFrom', 'movedTo', 'onDir'], { scope: 'filesystem' });
    fs.mkdirSync(path.join(mnt, 'docs'));
    fs.writeFileSync(path.join(mnt, 'docs', 'draft.txt'), 'hello');
    fs.renameSync(path.join(mnt, 'docs', 'draft.txt'), path.join(mnt, 'docs', 'final.txt'));
    fs.unlinkSync(path.join(mnt, 'docs', 'final.txt'));
    // The kernel merges events on one name that are still queued, so fewer
    // lines than operations may appear.
    await take(fan, 2000, async (ev) => {
      const where = await resolve(ev.dir, { name: ev.dir.name });
      console.log(`   ${ev.events.join('+').padEnd(18)} ${ev.isDir ? 'dir ' : 'file'} ${where}`);
      return ev.dir.name === 'final.txt' && ev.events.includes('delete');
    });
  });
}

async function permission(mnt) {
  console.log('\n2. permission: another process opening a file is denied');
  const secret = path.join(mnt, 'secret');
  fs.writeFileSync(secret, 'top secret\n');
  await withGroup({ class: 'content', permission: { timeoutMs: 3000 } }, async (fan) => {
    fan.add(secret, ['openPerm']);
    const child = spawn('cat', [secret], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await take(fan, 3000, (ev) => {
      console.log(`   pid ${ev.pid} wants to open ${ev.path}: deny`);
      ev.respond('deny');
      return true;
    });
    await new Promise((r) => child.on('close', r));
    console.log(`   cat says: ${stderr.trim()}`);
    // This process's own opens are answered natively, so this cannot deadlock.
    console.log(`   our own read still works: ${JSON.stringify(fs.readFileSync(secret, 'utf8').trim())}`);
  });
}

async function fsErrors(img) {
  console.log('\n3. filesystem errors (FAN_FS_ERROR) as ext4 reports them, with watchErrors()');
  const mnt = img.mountPoint;
  fs.mkdirSync(path.join(mnt, 'dir', 'bad'), { recursive: true });
  await img.corruptInode('dir/bad');          // debugfs: sif /dir/bad mode 0xff
  await img.linkToInode('dir/bad_link', 1);   // debugfs: ln <1> /dir/bad_link
  const watcher = watchErrors({ paths: [mnt] });
  const it = watcher[Symbol.asyncIterator]();
  const show = async (what) => {
    const timer = setTimeout(() => watcher.close(), 2000);  // never wait forever
    const { value: e } = await it.next();
    clearTimeout(timer);
    if (!e) return console.log(`   ${what}: no event`);
    const on = e.inode ? `inode ${e.inode.ino}` : 'the whole filesystem';
    const where = e.detail?.function ? ` in ${e.detail.function}:${e.detail.line}` : '';
    console.log(`   ${what.padEnd(36)} -> ${e.code} (${e.errno}) x${e.count} on ${on} of ${e.filesystem.source}${where}`);
  };
  const attempt = (fn) => { try { fn(); } catch { /* the error is the point */ } };
  attempt(() => fs.readdirSync(path.join(mnt, 'dir', 'bad')));
  await show('open a directory with a corrupt mode');
  attempt(() => fs.statSync(path.join(mnt, 'dir', 'bad_link')));
  await show('look up an entry pointing at inode 1');
  await img.triggerError('demo');
  await show('ext4 trigger_fs_error');
  await img.shutdown();                        // mount -o remount,abort
  await show('remount with abort');
  await watcher.close();
}

async function main() {
  if (process.getuid() !== 0) {
    console.error('The demo needs root (CAP_SYS_ADMIN): fanotify filesystem marks, loop devices and mounts are privileged.');
    process.exitCode = 1;
    return;
  }
  const img = await LoopImage.create({ sizeMiB: 64, mountOptions: ['errors=continue'] });
  console.log(`ext4 image on ${img.device}, mounted at ${img.mountPoint}\n`);
  try {
    await changeFeed(img.mountPoint);
    await permission(img.mountPoint);
    await fsErrors(img);
  } finally {
    console.log('\ncleaning up: unmount, detach the loop device, delete the image');
    await img.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
