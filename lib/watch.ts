// watch(): one iterator over every filesystem under a path, including those
// mounted there later. The kernel forbids mount reporting in a group that
// reports file ids, so this is two groups behind one API: a FID group with a
// filesystem mark per filesystem, and a mount group (FAN_MARK_MNTNS) whose
// attach events add the marks for new mounts.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { binding } from './binding';
import { constants as C } from './constants';
import { FanotifyError, invalidArg } from './errors';
import { FanotifyEvent } from './event';
import { FileId, formatFsid } from './fileid';
import { Fanotify } from './group';
import { readMountInfo } from './mountinfo';
import { EventName, MarkEventName } from './options';
import { noteMountPoint, resolveVia } from './resolve';

export interface WatchOptions {
  /** What to report. Default: create, delete, movedFrom, movedTo, modify, attrib, onDir. */
  events?: MarkEventName[];
  signal?: AbortSignal;
  /** Also watch filesystems mounted under the path later (default true). */
  follow?: boolean;
}

export interface WatchedFilesystem {
  fsid: string;
  mountPoint: string;
  fsType: string;
  source: string;
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
}

const DEFAULT_EVENTS: MarkEventName[] = ['create', 'delete', 'movedFrom', 'movedTo', 'modify', 'attrib', 'onDir'];
// Directory paths by file handle. Any directory rename, move or delete clears
// it (a cached path below it would be stale); so does growing past the cap.
const PATH_CACHE_MAX = 65536;
const DIR_CHANGES = C.FAN_MOVED_FROM | C.FAN_MOVED_TO | C.FAN_RENAME | C.FAN_DELETE | C.FAN_DELETE_SELF | C.FAN_MOVE_SELF;

const under = (p: string, root: string): boolean =>
  p === root || p.startsWith(root === '/' ? '/' : `${root}/`);

export class Watcher implements AsyncIterableIterator<WatchEvent> {
  readonly root: string;
  readonly filesystems: WatchedFilesystem[] = [];
  /** Filesystems under the path that refused the mark (proc, sysfs, FUSE, ...), with why. */
  readonly skipped: { mountPoint: string; fsType: string; code: string; reason: string }[] = [];

  readonly #data: Fanotify;
  readonly #events: AsyncIterableIterator<FanotifyEvent>;
  readonly #mask: MarkEventName[];
  readonly #byFsid = new Map<string, WatchedFilesystem>();
  readonly #dirPaths = new Map<string, string | null>();
  #mounts: Fanotify | null = null;
  #closed = false;

  constructor(root: string, options: WatchOptions = {}) {
    if (typeof root !== 'string' || root === '') throw invalidArg('root', root, 'must be a path');
    if (typeof options !== 'object' || options === null) throw invalidArg('options', options, 'must be an object');
    const { signal, follow = true } = options;
    this.#mask = options.events ?? DEFAULT_EVENTS;
    this.root = fs.realpathSync(root);
    this.#data = new Fanotify({ report: { fid: true, dirFid: true, name: true } });
    try {
      // The filesystem of the root itself must take the mark: that one throws.
      this.#watch(this.root, { mountPoint: this.root, ...this.#mountOf(this.root) }, true);
      for (const m of readMountInfo()) {
        if (m.mountPoint !== this.root && under(m.mountPoint, this.root))
          this.#watch(m.mountPoint, { mountPoint: m.mountPoint, fsType: m.fsType, source: m.source }, false);
      }
      if (follow) this.#followMounts();
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
    void this.#mounts?.close();
    void this.#data.close();
  }

  #mountOf(p: string): { fsType: string; source: string } {
    let best = { mountPoint: '', fsType: 'unknown', source: 'unknown' };
    for (const m of readMountInfo())
      if (under(p, m.mountPoint) && m.mountPoint.length >= best.mountPoint.length) best = m;
    return { fsType: best.fsType, source: best.source };
  }

  #watch(markPath: string, m: { mountPoint: string; fsType: string; source: string }, mustWork: boolean): void {
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
      this.skipped.push({ mountPoint: m.mountPoint, fsType: m.fsType, code: e.code ?? 'EIO', reason: e.message });
      return;
    }
    if (this.#byFsid.has(fsid)) return;
    const watched = { fsid, mountPoint: m.mountPoint, fsType: m.fsType, source: m.source };
    this.#byFsid.set(fsid, watched);
    this.filesystems.push(watched);
    noteMountPoint(fsid, m.mountPoint);
  }

  #followMounts(): void {
    const mounts = new Fanotify({ report: { mount: true } });
    this.#mounts = mounts;
    mounts.add(undefined, ['mntAttach'], { scope: 'mntns' });
    mounts.unref();  // following mounts alone must not keep the process alive
    void (async () => {
      for await (const ev of mounts) {
        const m = ev.mountId === undefined ? null : binding.statMount(ev.mountId);
        if (m && !this.#closed && under(m.mountPoint, this.root)) this.#watch(m.mountPoint, m, false);
      }
    })().catch(() => {
      // closed under us
    });
  }

  async #dirPath(fs0: WatchedFilesystem | undefined, dir: FileId): Promise<string | null> {
    const key = `${dir.fsid}:${dir.handleType}:${dir.handle.toString('hex')}`;
    const cached = this.#dirPaths.get(key);
    if (cached !== undefined) return cached;
    let p: string | null = null;
    if (fs0) {
      // Through the mount under our root, so bind mounts elsewhere do not matter.
      const found = await resolveVia(fs0.mountPoint, dir).catch(() => null);
      p = found ?? null;
    }
    if (this.#dirPaths.size >= PATH_CACHE_MAX) this.#dirPaths.clear();
    if (p !== null) this.#dirPaths.set(key, p);
    return p;
  }

  async #describe(ev: FanotifyEvent): Promise<WatchEvent | null> {
    if (ev.overflow) return null;
    if (ev.isDir && (ev.mask & DIR_CHANGES)) this.#dirPaths.clear();
    const anyId = ev.dir ?? ev.from ?? ev.file;
    if (!anyId) return null;
    const fsInfo = this.#byFsid.get(anyId.fsid);
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
      filesystem: fsInfo ?? { fsid: anyId.fsid, mountPoint: '', fsType: '', source: '' },
    };
    if (ev.from || ev.to) {
      out.from = await join(ev.from);
      out.to = await join(ev.to);
    }
    // A filesystem mark sees the whole filesystem: keep what is under the root.
    const where = out.path ?? out.to ?? out.from;
    if (where !== null && where !== undefined && !under(where, this.root)) return null;
    return out;
  }
}

/** Changes under `root`, across every filesystem mounted there, with full paths. Needs CAP_SYS_ADMIN. */
export function watch(root: string, options: WatchOptions = {}): Watcher {
  return new Watcher(root, options);
}
