// watch(): one iterator over every filesystem under a path, including those
// mounted there later. The kernel forbids mount reporting in a group that
// reports file ids, so this is two groups behind one API: a FID group with a
// filesystem mark per filesystem, and a mount group (FAN_MARK_MNTNS) whose
// attach events add the marks for new mounts.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { binding } from '../core/binding';
import { constants as C } from '../core/constants';
import { FanotifyError, invalidArg } from '../core/errors';
import { FanotifyEvent } from '../core/event';
import { FileId, formatFsid } from '../core/fileid';
import { Fanotify } from '../core/group';
import { MountMechanism, MountMonitor } from '../kernel/mount-monitor';
import { Mount, mountOf, readMounts } from '../kernel/mount-table';
import { EventName, eventMask, MarkEventName } from '../core/options';
import { noteMountPoint, resolveVia } from '../core/resolve';
import { markedDevices } from './marked';

export interface WatchOptions {
  /** What to report: names, as add() takes them, or a mask. Default: create, delete, movedFrom, movedTo, modify, attrib, onDir. */
  events?: readonly MarkEventName[] | number;
  signal?: AbortSignal;
  /** Also watch filesystems mounted under the path later (default true). */
  follow?: boolean;
  /**
   * FAN_UNLIMITED_QUEUE (default true): a burst larger than the kernel's queue
   * (max_queued_events, 16384 by default) is kept, at the cost of kernel
   * memory while the consumer catches up. With false, such a burst loses
   * events and the iterator yields one event with `overflow: true`.
   */
  unlimitedQueue?: boolean;
}

export interface WatchedFilesystem {
  fsid: string;
  mountPoint: string;
  fsType: string;
  source: string;
}

interface MountInfoLike {
  mountPoint: string;
  fsType: string;
  source: string;
  /** The directory of the filesystem mounted there ('/' for the whole filesystem). */
  root: string;
  devMajor?: number;
  devMinor?: number;
}

interface Watched {
  /** Its entry in `filesystems`, kept up to date. */
  listed: WatchedFilesystem;
  /** All of the filesystem lies under the root: events we cannot name are still ours. */
  whole: boolean;
  /**
   * The mounts under the root that hold it, by mount id: its paths are named
   * through one of them. The root's own filesystem is named through the root.
   */
  mounts: Map<bigint, MountInfoLike>;
  /** Its device ("major:minor"), as the kernel lists its mark; '' if unknown. */
  dev: string;
}

export interface WatchEvent {
  events: EventName[];
  mask: number;
  isDir: boolean;
  /** The process that caused it. */
  pid: number;
  /** The full path; null when its directory was gone before we could name it. */
  path: string | null;
  /** With 'rename': where it was and where it is. */
  from?: string | null;
  to?: string | null;
  filesystem: WatchedFilesystem;
  /** The kernel's queue overflowed: events were lost (and this one names nothing). */
  overflow: boolean;
}

const DEFAULT_EVENTS: MarkEventName[] = ['create', 'delete', 'movedFrom', 'movedTo', 'modify', 'attrib', 'onDir'];
// Directory paths by file handle. Any directory rename, move or delete clears
// it (a cached path below it would be stale); so does growing past the cap.
const PATH_CACHE_MAX = 65536;
const DIR_CHANGES = C.FAN_MOVED_FROM | C.FAN_MOVED_TO | C.FAN_RENAME | C.FAN_DELETE | C.FAN_DELETE_SELF | C.FAN_MOVE_SELF;
// Always asked of the kernel, whatever the caller wants: they keep the cache right.
const CACHE_EVENTS = C.FAN_MOVED_FROM | C.FAN_MOVED_TO | C.FAN_DELETE | C.FAN_ONDIR;

const under = (p: string, root: string): boolean =>
  p === root || p.startsWith(root === '/' ? '/' : `${root}/`);

export class Watcher implements AsyncIterableIterator<WatchEvent> {
  readonly root: string;
  readonly filesystems: WatchedFilesystem[] = [];
  /** Filesystems under the path that refused the mark (proc, sysfs, FUSE, ...), with why. */
  readonly skipped: { mountPoint: string; fsType: string; code: string; reason: string }[] = [];

  readonly #data: Fanotify;
  readonly #events: AsyncIterableIterator<FanotifyEvent>;
  readonly #mask: number;      // what the kernel reports
  readonly #wanted: number;    // what the caller asked for
  readonly #byFsid = new Map<string, Watched>();
  readonly #skippedIds = new Map<bigint, Watcher['skipped'][number]>();
  readonly #dirPaths = new Map<string, string | null>();
  #rootFsid = '';
  #rootInfo: MountInfoLike = { mountPoint: '', fsType: 'unknown', source: 'unknown', root: '(unknown)' };
  #mounts: MountMonitor | null = null;
  #closed = false;

  constructor(root: string, options: WatchOptions = {}) {
    if (typeof root !== 'string' || root === '') throw invalidArg('root', root, 'must be a path');
    if (typeof options !== 'object' || options === null) throw invalidArg('options', options, 'must be an object');
    const { signal, follow = true, unlimitedQueue = true } = options;
    this.#wanted = eventMask(options.events ?? DEFAULT_EVENTS, 'options.events');
    this.#mask = (this.#wanted | CACHE_EVENTS) >>> 0;
    this.root = fs.realpathSync(root);
    this.#data = new Fanotify({ report: { fid: true, dirFid: true, name: true }, unlimitedQueue });
    try {
      // The monitor first: a mount made while the others are marked is among
      // its changes, never missed.
      if (follow) {
        this.#mounts = new MountMonitor();
        this.#mounts.unref();  // following mounts alone must not keep the process alive
      }
      const table = this.#mounts ? [...this.#mounts.mounts.values()] : readMounts();
      // The filesystem of the root itself must take the mark: that one throws.
      const own: MountInfoLike = mountOf(this.root, table) ?? { mountPoint: '', fsType: 'unknown', source: 'unknown', root: '(unknown)' };
      this.#rootInfo = { ...own, mountPoint: this.root, root: own.mountPoint === this.root ? own.root : '(part)' };
      this.#watch(this.root, this.#rootInfo, true);
      // A path reaches the topmost of the mounts stacked on one directory.
      const topmost = new Map<string, Mount>();
      for (const m of table) if (m.mountPoint !== this.root && under(m.mountPoint, this.root)) topmost.set(m.mountPoint, m);
      for (const m of topmost.values()) this.#watch(m.mountPoint, m, false, m.mountId);
      if (this.#mounts) void this.#followMounts(this.#mounts);
      this.#events = this.#data.events({ signal });
    } catch (err) {
      this.#closeNow();
      throw err;
    }
    if (signal?.aborted) this.#closeNow();
    signal?.addEventListener('abort', () => this.#closeNow(), { once: true });
  }

  async next(): Promise<IteratorResult<WatchEvent>> {
    for (;;) {
      let r: IteratorResult<FanotifyEvent>;
      try {
        r = await this.#events.next();
      } catch (err) {
        this.#closeNow();  // for-await calls no return() after a rejection
        throw err;
      }
      if (r.done) {
        this.#closeNow();
        return { done: true, value: undefined };
      }
      const out = await this.#describe(r.value);
      if (out) return { done: false, value: out };
    }
  }

  /**
   * How filesystems mounted later are found: 'fanotify' (the kernel's mount
   * events, Linux 6.15+) or 'mountinfo' (changes of /proc/self/mountinfo,
   * before). null with follow: false.
   */
  get mountMechanism(): MountMechanism | null {
    return this.#mounts?.mechanism ?? null;
  }

  async return(): Promise<IteratorResult<WatchEvent>> {
    this.#closeNow();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async close(): Promise<void> {
    this.#closeNow();
  }

  #closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#mounts?.close();
    void this.#data.close();
  }

  /** Marks the filesystem at markPath (one statfs of it); records the mount that holds it. */
  #watch(markPath: string, m: MountInfoLike, mustWork: boolean, mountId?: bigint): void {
    let fsid: string;
    try {
      fsid = formatFsid(...binding.fsidOf(markPath));
    } catch (err) {
      if (mustWork) throw err;
      return;
    }
    // Marked again even when the fsid is known: a filesystem unmounted and
    // mounted again lost its mark with the old mount.
    try {
      this.#data.add(markPath, this.#mask, { scope: 'filesystem' });
    } catch (err) {
      if (mustWork) throw err;
      const e = err as FanotifyError;
      // Mounts stacked on one directory are all tried through the same path: listed once.
      let entry = this.skipped.find((x) => x.mountPoint === m.mountPoint);
      if (!entry) {
        entry = { mountPoint: m.mountPoint, fsType: m.fsType, code: e.code ?? 'EIO', reason: e.message };
        this.skipped.push(entry);
      }
      if (mountId !== undefined) this.#skippedIds.set(mountId, entry);
      return;
    }
    if (mustWork) this.#rootFsid = fsid;
    let w = this.#byFsid.get(fsid);
    if (!w) {
      const listed = { fsid, mountPoint: m.mountPoint, fsType: m.fsType, source: m.source };
      w = { listed, whole: m.root === '/', mounts: new Map(), dev: m.devMajor === undefined ? '' : `${m.devMajor}:${m.devMinor}` };
      this.#byFsid.set(fsid, w);
      this.filesystems.push(listed);
    }
    if (mountId !== undefined) w.mounts.set(mountId, m);
    this.#name(w);
    noteMountPoint(fsid, w.listed.mountPoint);
  }

  /**
   * Picks the mount a filesystem's paths are named through: the root for
   * the root's own filesystem, else a mount of all of it if there is one.
   */
  #name(w: Watched): void {
    this.#dirPaths.clear();  // cached paths may have been named through another mount
    if (w.listed.fsid === this.#rootFsid) return;
    const mounts = [...w.mounts.values()];
    const m = mounts.find((x) => x.root === '/') ?? mounts[0];
    if (!m) return;
    w.listed.mountPoint = m.mountPoint;
    w.whole = m.root === '/';
  }

  /**
   * A mount left the root (unmounted, or moved out): a filesystem with no
   * mount left under the root is forgotten (its mark stays until close; its
   * events are dropped), one with another is named through that one. From
   * the mount ids alone: no mount is asked anything (a hung NFS or FUSE
   * mount would block us).
   */
  #forget(mountId: bigint): void {
    for (const [fsid, w] of this.#byFsid) {
      if (!w.mounts.delete(mountId)) continue;
      if (w.mounts.size > 0 || fsid === this.#rootFsid) {
        this.#name(w);
        continue;
      }
      this.#drop(fsid);
    }
    const skipped = this.#skippedIds.get(mountId);
    if (skipped) {
      this.#skippedIds.delete(mountId);
      const i = this.skipped.indexOf(skipped);
      if (i >= 0 && ![...this.#skippedIds.values()].includes(skipped)) this.skipped.splice(i, 1);
    }
  }

  /** Forgets a filesystem: its events are dropped from now on. */
  #drop(fsid: string): void {
    const w = this.#byFsid.get(fsid);
    if (!w) return;
    this.#byFsid.delete(fsid);
    this.filesystems.splice(this.filesystems.indexOf(w.listed), 1);
    this.#dirPaths.clear();
  }

  /** Filesystems mounted under the root later: marked as they come. */
  async #followMounts(mounts: MountMonitor): Promise<void> {
    try {
      for await (const change of mounts) {
        if (this.#closed) break;
        const m = change.mount;
        const inside = m !== null && under(m.mountPoint, this.root);
        if (change.kind === 'attach') {
          if (inside) this.#watch(m.mountPoint, m, false, change.mountId);
        } else if (change.kind === 'move') {
          const w = [...this.#byFsid.values()].find((x) => x.mounts.has(change.mountId));
          if (w && inside) {
            w.mounts.set(change.mountId, m);  // moved within the root: the same filesystem
            this.#name(w);
          } else {
            this.#forget(change.mountId);
            if (inside) this.#watch(m.mountPoint, m, false, change.mountId);  // moved in
          }
        } else if (change.kind === 'overflow' || change.kind === 'reread') {
          this.#checkMarks();
        } else if (change.kind === 'detach') {
          this.#forget(change.mountId);
          // A mount it hid (stacked on the same directory) is reached now.
          const below = m && inside ? [...mounts.mounts.values()].filter((x) => x.mountPoint === m.mountPoint).pop() : undefined;
          if (below && !this.#holds(below.mountId)) this.#watch(below.mountPoint, below, false, below.mountId);
        }
      }
    } catch {
      // closed under us
    }
  }

  /**
   * A filesystem whose mark is gone was unmounted and mounted again unseen
   * (mountinfo gives the new mount the old one's id): a new superblock, to
   * mark again, perhaps with a new fsid (tmpfs has one per mount).
   */
  #checkMarks(): void {
    if (this.#closed) return;
    const marked = markedDevices(this.#data.fd);
    for (const [fsid, w] of [...this.#byFsid]) {
      if (w.dev === '' || marked.has(w.dev)) continue;
      if (fsid === this.#rootFsid) {
        try {
          this.#watch(this.root, this.#rootInfo, true);
        } catch {
          continue;  // gone: its unmount comes as a change of its own
        }
        if (this.#rootFsid !== fsid) this.#drop(fsid);
        continue;
      }
      const mounts = [...w.mounts];
      for (const [id] of mounts) this.#forget(id);
      for (const [id, m] of mounts) this.#watch(m.mountPoint, m, false, id);
    }
  }

  #holds(mountId: bigint): boolean {
    return this.#skippedIds.has(mountId) || [...this.#byFsid.values()].some((w) => w.mounts.has(mountId));
  }

  async #dirPath(fs0: Watched, dir: FileId): Promise<string | null> {
    const key = `${dir.fsid}:${dir.handleType}:${dir.handle.toString('hex')}`;
    const cached = this.#dirPaths.get(key);
    if (cached !== undefined) return cached;
    // Through the mount under our root, so bind mounts elsewhere do not matter.
    const p = (await resolveVia(fs0.listed.mountPoint, dir).catch(() => null)) ?? null;
    if (this.#dirPaths.size >= PATH_CACHE_MAX) this.#dirPaths.clear();
    if (p !== null) this.#dirPaths.set(key, p);
    return p;
  }

  async #describe(ev: FanotifyEvent): Promise<WatchEvent | null> {
    if (ev.overflow) {
      this.#dirPaths.clear();  // renames may have been lost too
      return {
        events: [], mask: ev.mask, isDir: false, pid: 0, path: null, overflow: true,
        filesystem: { ...this.#byFsid.get(this.#rootFsid)!.listed },
      };
    }
    if (ev.isDir && (ev.mask & DIR_CHANGES)) this.#dirPaths.clear();
    // Asked for only to keep the cache right?
    if (!(ev.mask & this.#wanted & ~C.FAN_ONDIR) || (ev.isDir && !(this.#wanted & C.FAN_ONDIR))) return null;
    const anyId = ev.dir ?? ev.from ?? ev.file;
    if (!anyId) return null;
    const fsInfo = this.#byFsid.get(anyId.fsid);
    if (!fsInfo) return null;  // no longer mounted under the root
    const join = async (id: (FileId & { name?: string }) | undefined): Promise<string | null> => {
      if (!id) return null;
      const dir = await this.#dirPath(fsInfo, id);
      return dir === null ? null : id.name && id.name !== '.' ? path.join(dir, id.name) : dir;
    };
    const out: WatchEvent = {
      events: ev.events.filter((e): e is EventName => e !== 'overflow'),
      mask: ev.mask,
      isDir: ev.isDir,
      pid: ev.pid,
      path: await join(ev.dir ?? ev.to ?? ev.file),
      filesystem: { ...fsInfo.listed },
      overflow: false,
    };
    if (ev.from || ev.to) {
      out.from = await join(ev.from);
      out.to = await join(ev.to);
    }
    // A filesystem mark sees the whole filesystem: keep what is under the root,
    // and what cannot be named only if all of its filesystem is.
    const where = out.path ?? out.to ?? out.from;
    if (where === null || where === undefined) {
      // An event about an object alone (no directory entry) that is gone
      // already, like the link count change of an unlinked file: nothing to say.
      if (!ev.dir && !ev.from && !ev.to) return null;
      return fsInfo.whole ? out : null;
    }
    return under(where, this.root) ? out : null;
  }
}

/** Changes under `root`, across every filesystem mounted there, with full paths. Needs CAP_SYS_ADMIN. */
export function watch(root: string, options: WatchOptions = {}): Watcher {
  return new Watcher(root, options);
}
