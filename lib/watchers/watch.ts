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
import { mountOf, readMounts } from '../kernel/mount-table';
import { EventName, eventMask, MarkEventName } from '../core/options';
import { noteMountPoint, resolveVia } from '../core/resolve';

export interface WatchOptions {
  /** What to report. Default: create, delete, movedFrom, movedTo, modify, attrib, onDir. */
  events?: MarkEventName[];
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

interface Watched extends WatchedFilesystem {
  /** All of the filesystem lies under the root: events we cannot name are still ours. */
  whole: boolean;
}

interface MountInfoLike {
  mountPoint: string;
  fsType: string;
  source: string;
  /** The directory of the filesystem mounted there ('/' for the whole filesystem). */
  root: string;
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
  readonly #dirPaths = new Map<string, string | null>();
  #rootFsid = '';
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
      this.#watch(this.root, { ...own, mountPoint: this.root, root: own.mountPoint === this.root ? own.root : '(part)' }, true);
      for (const m of table) {
        if (m.mountPoint !== this.root && under(m.mountPoint, this.root)) this.#watch(m.mountPoint, m, false);
      }
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

  #watch(markPath: string, m: MountInfoLike, mustWork: boolean): void {
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
      // Mounts stacked on one directory are all tried through the same path.
      if (!this.skipped.some((x) => x.mountPoint === m.mountPoint))
        this.skipped.push({ mountPoint: m.mountPoint, fsType: m.fsType, code: e.code ?? 'EIO', reason: e.message });
      return;
    }
    if (mustWork) this.#rootFsid = fsid;
    if (this.#byFsid.has(fsid)) return;
    const watched = { fsid, mountPoint: m.mountPoint, fsType: m.fsType, source: m.source };
    this.#byFsid.set(fsid, { ...watched, whole: m.root === '/' });
    this.filesystems.push(watched);
    noteMountPoint(fsid, m.mountPoint);
  }

  /**
   * After a mount went away: forget filesystems no longer mounted under the
   * root (their marks stay until close; their events are dropped).
   */
  #recheck(): void {
    const still = new Set<string>([this.#rootFsid]);
    for (const m of this.#mounts?.mounts.values() ?? readMounts()) {
      if (!under(m.mountPoint, this.root)) continue;
      try {
        still.add(formatFsid(...binding.fsidOf(m.mountPoint)));
      } catch {
        // gone meanwhile
      }
    }
    for (const fsid of [...this.#byFsid.keys()]) {
      if (still.has(fsid)) continue;
      this.#byFsid.delete(fsid);
      const i = this.filesystems.findIndex((f) => f.fsid === fsid);
      if (i >= 0) this.filesystems.splice(i, 1);
    }
    this.#dirPaths.clear();
  }

  /** Filesystems mounted under the root later: marked as they come. */
  async #followMounts(mounts: MountMonitor): Promise<void> {
    try {
      for await (const change of mounts) {
        if (this.#closed) break;
        if (change.kind !== 'attach') this.#recheck();  // a move is a detach from where it was
        const m = change.kind !== 'detach' ? change.mount : null;
        if (m && under(m.mountPoint, this.root)) this.#watch(m.mountPoint, m, false);
      }
    } catch {
      // closed under us
    }
  }

  async #dirPath(fs0: Watched, dir: FileId): Promise<string | null> {
    const key = `${dir.fsid}:${dir.handleType}:${dir.handle.toString('hex')}`;
    const cached = this.#dirPaths.get(key);
    if (cached !== undefined) return cached;
    // Through the mount under our root, so bind mounts elsewhere do not matter.
    const p = (await resolveVia(fs0.mountPoint, dir).catch(() => null)) ?? null;
    if (this.#dirPaths.size >= PATH_CACHE_MAX) this.#dirPaths.clear();
    if (p !== null) this.#dirPaths.set(key, p);
    return p;
  }

  async #describe(ev: FanotifyEvent): Promise<WatchEvent | null> {
    if (ev.overflow) {
      this.#dirPaths.clear();  // renames may have been lost too
      const rootFs = this.#byFsid.get(this.#rootFsid)!;
      return {
        events: [], mask: ev.mask, isDir: false, pid: 0, path: null, overflow: true,
        filesystem: { fsid: rootFs.fsid, mountPoint: rootFs.mountPoint, fsType: rootFs.fsType, source: rootFs.source },
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
      filesystem: { fsid: fsInfo.fsid, mountPoint: fsInfo.mountPoint, fsType: fsInfo.fsType, source: fsInfo.source },
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
