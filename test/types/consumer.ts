// A TypeScript program that uses the package as its users do: imports of
// 'fanotify' and 'fanotify/testing' from the installed tarball.
// test/package.test.ts (scripts/pack-test.js RESOLUTIONS) type-checks it
// inside a fresh project with `--strict` under each moduleResolution a
// project may use: node10 (commonjs), node16 and nodenext (as CommonJS, and
// as an ES module: a copy named consumer.mts), and bundler. It is never run:
// every function here is only declared. `@ts-expect-error` lines are
// misuses the types must reject.
import {
  constants, errnoName, FAN_DENY_ERRNO, Fanotify, FanotifyEvent, probe, resolve, watch, watchErrors, watchMounts,
} from 'fanotify';
import type {
  Decision, EventName, Features, FileId, FsErrorEvent, MarkEventName, MountEvent, WatchEvent,
} from 'fanotify';
import { LoopImage, LoopImageError } from 'fanotify/testing';
import type { LoopImageOptions } from 'fanotify/testing';
// @ts-expect-error: internals are in no published declaration (node10 reads dist/ paths; the others, "exports")
import { batchViews } from 'fanotify/dist/core/event';

// constants are typed with their values.
const fsError: 0x8000 = constants.FAN_FS_ERROR;
const denyEio: number = FAN_DENY_ERRNO(5);
const eioName: string = errnoName(117, { fs: true });

/** A permission group: events, decisions. */
export async function guard(dir: string, signal: AbortSignal): Promise<number> {
  const fan = new Fanotify({ class: 'content', permission: { timeoutMs: 2000, default: 'allow' } });
  fan.add(dir, ['openPerm', 'onDir'], { scope: 'mount' });
  let denied = 0;
  try {
    for await (const ev of fan.events({ signal })) {
      const e: FanotifyEvent = ev;
      const names: (EventName | 'overflow')[] = e.events;
      const decision: Decision = e.path?.endsWith('.secret') ? { deny: 'EPERM' } : 'allow';
      if (decision !== 'allow') denied++;
      ev.respond(decision);
      if (names.includes('overflow')) break;
      // @ts-expect-error: not a decision
      ev.respond('maybe');
    }
  } finally {
    await fan.close();
  }
  return denied;
}

/** A FID group: file ids, names, resolve(). */
export async function changes(dir: string): Promise<string[]> {
  await using fan = new Fanotify({ report: { fid: true, dirFid: true, name: true }, unlimitedQueue: true });
  const events: MarkEventName[] = ['create', 'delete', 'move', 'onDir'];
  fan.add(dir, events, { scope: 'filesystem' }).unref().ref();
  const seen: string[] = [];
  for await (const ev of fan) {
    const id: FileId | undefined = ev.dir ?? ev.file;
    if (!id) continue;
    const where: string | null = await resolve(id, { name: ev.dir?.name });
    if (where !== null) seen.push(where);
    const ino: bigint | undefined = id.ino;
    const error: { errno: number; code: string; count: number } | undefined = ev.error;
    const fd: number | null = ev.keepFd();
    if (ino === undefined && error === undefined && fd === null) break;
  }
  // @ts-expect-error: the class is one of three names
  new Fanotify({ class: 'notify' });
  return seen;
}

/** Marks: what add() and remove() take. */
export function marks(dir: string, nsfd: number): Fanotify {
  const fan = new Fanotify({ report: { mount: true } });
  fan.add(null, ['mntAttach', 'mntDetach'], { scope: 'mntns' });  // this process's namespace
  fan.add(nsfd, ['mntAttach'], { scope: 'mntns' }).remove(undefined, ['mntDetach'], { scope: 'mntns' });
  fan.add(new URL(`file://${dir}`), constants.FAN_OPEN | constants.FAN_CLOSE_WRITE);
  const names = ['open', 'close'] as const;
  fan.add(dir, names).flush('inode');
  // @ts-expect-error: 'bogus' is not an event name
  fan.add(dir, ['preAccess', 'bogus']);
  // @ts-expect-error: only scope 'mntns' has a default path
  fan.add(null, ['create']);
  // @ts-expect-error: nor with another scope
  fan.add(undefined, ['create'], { scope: 'filesystem' });
  // @ts-expect-error: events are names or a mask, not one name
  fan.remove(dir, 'create');
  return fan;
}

/** Internals are not part of the types: events come from a group only. */
export function internals(ev: FanotifyEvent): void {
  // @ts-expect-error: the constructor is private
  new FanotifyEvent({ bytes: Buffer.alloc(0), events: new Int32Array(10), records: new Int32Array(0) }, 0, null);
  // @ts-expect-error: the group's own end of an iteration step
  ev._release();
  // @ts-expect-error: made by the group when it drops events
  FanotifyEvent.overflow();
}

/** Filesystem health: watchErrors(). */
export async function health(signal: AbortSignal): Promise<void> {
  const watcher = watchErrors({ paths: ['/data'], signal, resolvePaths: false });
  const watched: string[] = watcher.filesystems.map((f) => f.mountPoint);
  const skipped: string[] = watcher.skipped.map((s) => `${s.mountPoint}: ${s.reason}`);
  for await (const e of watcher) {
    const ev: FsErrorEvent = e;
    const line = `${ev.time.toISOString()} ${ev.code} (${ev.errno}) x${ev.count} ${ev.filesystem.source}`;
    console.log(line, ev.inode?.ino, ev.detail?.function, ev.detail?.line, watched, skipped);
  }
  await watcher.close();
}

/** Mounts: watchMounts(). */
export async function mounts(signal: AbortSignal): Promise<bigint[]> {
  const watcher = watchMounts({ signal });
  const ids: bigint[] = [...watcher.mounts.keys()];
  for await (const m of watcher) {
    const ev: MountEvent = m;
    const kind: 'attach' | 'detach' | 'move' | 'overflow' = ev.kind;
    if (kind === 'detach') ids.push(ev.mountId);
    console.log(ev.mountPoint, ev.fsType, ev.source);
  }
  return ids;
}

/** One feed over every filesystem under a path: watch(). */
export async function feed(root: string, signal: AbortSignal): Promise<void> {
  const watcher = watch(root, { events: ['create', 'delete', 'movedFrom', 'movedTo', 'modify', 'onDir'], signal });
  for await (const e of watcher) {
    const ev: WatchEvent = e;
    const path: string | null = ev.path;
    console.log(ev.events.join(','), path, ev.isDir, ev.pid, ev.filesystem.fsType, watcher.root);
  }
  // @ts-expect-error: not an event name
  watch(root, { events: ['created'] });
  const names = ['create', 'delete'] as const;
  watch(root, { events: names });  // readonly arrays too, as add() takes them
  watch(root, { events: constants.FAN_CREATE | constants.FAN_ONDIR, follow: false });  // or a mask
}

/** The kernel feature report. */
export function features(): boolean {
  const f: Features = probe();
  return f.available && f.events.fsError && f.scopes.mntns && f.report.fid && f.records.error && f.denyErrno;
}

/** The test kit: a throwaway ext4 image (await using disposes it). */
export async function brokenImage(): Promise<number | undefined> {
  const options: LoopImageOptions = { type: 'ext4', sizeMiB: 64, mountOptions: ['errors=continue'], files: { 'dir/bad/': '' } };
  await using img = await LoopImage.create(options);
  const device: string = img.device;
  const mountPoint: string = img.mountPoint;
  await img.corruptInode('dir/bad');
  await img.linkToInode('dir/link', 1);
  await img.triggerError('test');
  await img.remount(['errors=continue']);
  await img.shutdown();
  const count = img.lastError().errors_count;
  console.log(device, mountPoint, count);
  try {
    await img.dispose();
  } catch (err) {
    if (err instanceof LoopImageError) console.log(err.command.join(' '), err.stderr, err.exitCode);
  }
  // @ts-expect-error: the constructor is private; LoopImage.create() makes images
  new LoopImage();
  return count;
}

export const values = { fsError, denyEio, eioName };
