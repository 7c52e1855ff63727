// watch(): one iterator over every filesystem under a path, including those
// mounted there later. The kernel forbids mount reporting in a group that
// reports file ids, so this is two groups behind one API: a FID group with a
// filesystem mark per filesystem, and a mount group (FAN_MARK_MNTNS) whose
// attach events add the marks for new mounts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import '../core/dispose';
import { binding } from '../core/binding';
import { constants as C } from '../core/constants';
import { abortError, FanotifyError, invalidArg } from '../core/errors';
import { FanotifyEvent } from '../core/event';
import { FileId, formatFsid } from '../core/fileid';
import { Fanotify } from '../core/group';
import { MountMechanism, MountMonitor } from '../kernel/mount-monitor';
import { Mount, mountOf, readMounts } from '../kernel/mount-table';
import { EventName, eventMask, MarkEventName } from '../core/options';
import { dirChainVia, noteMountPoint } from '../core/resolve';
import { has } from '../kernel/capabilities';
import { compileIgnore, Ignore, IgnoreMatcher } from './ignore';
import { markedDevices } from './marked';
import { OUTSIDE, PathModel } from './path-model';

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
  /**
   * Paths not to report: globs relative to the root (picomatch syntax, dotfiles
   * included: 'node_modules', '**\/*.tmp'), RegExps tested on the path relative
   * to the root, or functions (fullPath, isDir) => boolean. An event is left
   * out when its path or a directory above it matches. Where the kernel can
   * (ignore marks, 6.0, and evictable marks, 5.19), a directory whose events
   * are all left out gets an ignore mark at its first event, so that its
   * files' churn is not even read.
   */
  ignore?: IgnoreMatcher | readonly IgnoreMatcher[];
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
  /** The path model's key of the directory its paths are named through ('' until known). */
  rootKey: string;
}

/**
 * Why an event's path is null: 'gone', its directory was removed before it
 * could be named (a tree deleted before any of it was seen); 'renamed', a
 * directory above it was renamed before it could be named, so the path it
 * had then is not known (a rescan event comes first); 'unnamed', its
 * filesystem could not name it (unmounted meanwhile, or an error).
 */
export type UnnamedReason = 'gone' | 'renamed' | 'unnamed';

/**
 * Why a consumer must read a subtree again ('rescan' events): 'overflow',
 * the kernel's queue overflowed and events were lost; 'renamed', an event's
 * directory was renamed before it could be named (its path is null).
 */
export type RescanReason = 'overflow' | 'renamed';

export interface WatchEvent {
  /** What happened; ['rescan'] for an instruction to read `path` (a directory) and all below it again. */
  events: (EventName | 'rescan')[];
  mask: number;
  isDir: boolean;
  /** The process that caused it. */
  pid: number;
  /**
   * The full path, as it was when the event happened; null when that is not
   * known (then `reason` says why). For 'rescan', the directory to read again.
   */
  path: string | null;
  /** With path null: why. With 'rescan': why. */
  reason?: UnnamedReason | RescanReason;
  /** With 'rename': where it was and where it is. */
  from?: string | null;
  to?: string | null;
  filesystem: WatchedFilesystem;
  /** The kernel's queue overflowed: events were lost (a 'rescan' of the root). */
  overflow: boolean;
}

const DEFAULT_EVENTS: MarkEventName[] = ['create', 'delete', 'movedFrom', 'movedTo', 'modify', 'attrib', 'onDir'];
// Directories the path model holds at most (LRU): about 200 bytes each.
const PATH_MODEL_MAX = 262144;
// Events read ahead of the one being named, to see what happened since
// (about 100 bytes each). A longer backlog behind a directory never seen
// gives a rescan instead of its path.
const AHEAD_MAX = 262144;
// Events waiting for the consumer: past this, reading stops (the kernel's
// queue holds the rest) and paths are named later, with the checks below.
const OUT_MAX = 16384;
const DIR_MOVES = C.FAN_MOVED_FROM | C.FAN_MOVED_TO | C.FAN_RENAME;

/** The path model's key of a file id. */
const keyOf = (id: FileId): string => `${id.fsid}:${id.handleType}:${id.handle.toString('hex')}`;

const under = (p: string, root: string): boolean =>
  p === root || p.startsWith(root === '/' ? '/' : `${root}/`);

export class Watcher implements AsyncIterableIterator<WatchEvent>, AsyncDisposable {
  readonly root: string;
  readonly filesystems: WatchedFilesystem[] = [];
  /** Filesystems under the path that refused the mark (proc, sysfs, FUSE, ...), with why. */
  readonly skipped: { mountPoint: string; fsType: string; code: string; reason: string }[] = [];

  readonly #data: Fanotify;
  readonly #events: AsyncIterableIterator<FanotifyEvent>;
  readonly #mask: number;      // what the kernel reports
  readonly #wanted: number;    // what the caller asked for
  // FAN_RENAME and FAN_REPORT_TARGET_FID (5.17): each directory created,
  // moved or deleted is known by its own handle. Without them, any
  // directory change makes the model start again.
  readonly #exact: boolean;
  readonly #byFsid = new Map<string, Watched>();
  readonly #skippedIds = new Map<bigint, Watcher['skipped'][number]>();
  readonly #model = new PathModel(PATH_MODEL_MAX);
  // Read eagerly, named at once, queued for the consumer.
  readonly #ahead: FanotifyEvent[] = [];
  // The directories that events read ahead rename or delete, each with
  // those events in order: where such a directory was at the event being
  // named is where its first one says it was.
  readonly #aheadMoves = new Map<string, FanotifyEvent[]>();
  readonly #out: WatchEvent[] = [];
  #wake: (() => void) | null = null;    // the consumer's next(), waiting for #out
  #space: (() => void) | null = null;   // the reader, waiting for room in #out
  #error: unknown = null;
  #ended = false;
  #rescanSaid = false;  // a 'renamed' rescan was queued for the events read ahead
  #aheadLost = false;   // the events read ahead cannot say where directories were
  readonly #ignore: Ignore | null;
  readonly #ignoreMask: number;  // for kernel ignore marks; 0: the kernel has none
  #eventsRead = 0;
  #rootFsid = '';
  #rootInfo: MountInfoLike = { mountPoint: '', fsType: 'unknown', source: 'unknown', root: '(unknown)' };
  #mounts: MountMonitor | null = null;
  #closed = false;

  constructor(root: string | URL, options: WatchOptions = {}) {
    if (root instanceof URL) root = fileURLToPath(root);
    if (typeof root !== 'string' || root === '') throw invalidArg('root', root, 'must be a path or a file URL');
    if (typeof options !== 'object' || options === null) throw invalidArg('options', options, 'must be an object');
    const { signal, follow = true, unlimitedQueue = true } = options;
    this.#wanted = eventMask(options.events ?? DEFAULT_EVENTS, 'options.events');
    this.#exact = has('rename') && has('reportTargetFid');
    // Always asked of the kernel, whatever the caller wants: they keep the model right.
    const modelEvents = C.FAN_CREATE | C.FAN_DELETE | C.FAN_ONDIR | (this.#exact ? C.FAN_RENAME : C.FAN_MOVED_FROM | C.FAN_MOVED_TO);
    this.#mask = (this.#wanted | modelEvents) >>> 0;
    this.root = fs.realpathSync(root);
    this.#ignore = compileIgnore(this.root, options.ignore);
    // Directory events are never ignored in the kernel (no FAN_ONDIR), nor
    // renames (one out of an ignored directory would be lost): they keep the
    // path model right.
    this.#ignoreMask = this.#ignore && has('markIgnore') && has('evictable')
      ? ((this.#mask & ~(C.FAN_RENAME | C.FAN_ONDIR)) | C.FAN_EVENT_ON_CHILD) >>> 0
      : 0;
    this.#data = new Fanotify({ report: { fid: true, dirFid: true, name: true, targetFid: this.#exact }, unlimitedQueue });
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
    if (signal?.aborted) {
      this.#fail(abortError(signal.reason));
    } else {
      signal?.addEventListener('abort', () => this.#fail(abortError(signal.reason)), { once: true });
      void this.#read();
    }
  }

  async next(): Promise<IteratorResult<WatchEvent>> {
    for (;;) {
      if (this.#error !== null) {
        const err = this.#error;
        this.#error = null;
        this.#closeNow();  // for-await calls no return() after a rejection
        throw err;
      }
      const value = this.#out.shift();
      if (value !== undefined) {
        this.#space?.();
        return { done: false, value };
      }
      if (this.#ended || this.#closed) {
        this.#closeNow();
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /**
   * Reads events as they come, whether or not the consumer asks yet, and
   * names them at once: the path a directory has when its event is read is
   * the path it had when the event happened, unless it was renamed in
   * between, which the events read ahead show (#dirPath). Stops while
   * OUT_MAX events wait for the consumer.
   */
  async #read(): Promise<void> {
    try {
      while (!this.#closed) {
        while (this.#out.length >= OUT_MAX && !this.#closed) await new Promise<void>((resolve) => (this.#space = resolve));
        this.#space = null;
        if (this.#closed) break;
        let ev = this.#ahead.shift();
        if (ev !== undefined) this.#unindex(ev);
        if (ev === undefined) {
          this.#rescanSaid = false;
          const r = await this.#events.next();
          if (r.done) break;
          ev = r.value;
        }
        await this.#describe(ev);
      }
    } catch (err) {
      if (!this.#closed) this.#error = err;
    }
    this.#ended = true;
    this.#wake?.();
  }

  #push(e: WatchEvent): void {
    this.#out.push(e);
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #fail(err: unknown): void {
    if (this.#closed) return;
    this.#error = err;
    this.#closeNow();
  }

  /**
   * How filesystems mounted later are found: 'fanotify' (the kernel's mount
   * events, Linux 6.15+) or 'mountinfo' (changes of /proc/self/mountinfo,
   * before). null with follow: false.
   */
  get mountMechanism(): MountMechanism | null {
    return this.#mounts?.mechanism ?? null;
  }

  /** @internal For tests: events read from the kernel. */
  get _eventsRead(): number {
    return this.#eventsRead;
  }

  /** @internal For bench/watch-model.js: directories the path model holds. */
  get _modelSize(): number {
    return this.#model.size;
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

  /** `await using w = watch(...)`: closed at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#closeNow();
  }

  #closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#mounts?.close();
    void this.#data.close();
    this.#ahead.length = 0;
    this.#aheadMoves.clear();
    this.#space?.();
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
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
      w = { listed, whole: m.root === '/', mounts: new Map(), dev: m.devMajor === undefined ? '' : `${m.devMajor}:${m.devMinor}`, rootKey: '' };
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
    // Paths may be named through another mount from now on: the model starts again.
    this.#model.clear();
    w.rootKey = '';
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
    this.#model.clear();
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

  /** The directory a filesystem's paths are named through: the root, or its mount under the root. */
  #namingPath(w: Watched): string {
    return w.listed.fsid === this.#rootFsid ? this.root : w.listed.mountPoint;
  }

  /**
   * The path `dir` had when the event being named happened. A directory
   * changes place only by its own rename, and events come in order, so its
   * place then is: the model's, for a directory it has seen; else where the
   * first of its renames or its delete among the events read ahead (all the
   * kernel holds) says it was; else where the kernel finds it now (its
   * ancestry through ".."), since nothing moved it since. The same for each
   * parent up to one the model knows. Only when the events ahead cannot all
   * be read (more than AHEAD_MAX, an overflow, a kernel that does not say
   * which directory moved) is the path not known: 'renamed', after a rescan.
   */
  async #dirPath(w: Watched, dir: FileId, depth = 0): Promise<string | null | UnnamedReason> {
    const key = keyOf(dir);
    const known = this.#model.path(key);
    if (known !== undefined) return known;
    if (depth > 4096) return 'unnamed';
    if (!this.#readAhead()) return this.#uncertain(w);
    const placed = this.#placeAhead(key);
    if (placed !== undefined) {
      const parent = await this.#dirPath(w, placed.dir, depth + 1);
      if (typeof parent !== 'string' && parent !== null) return parent;
      this.#model.set(key, keyOf(placed.dir), placed.name);
      return this.#model.path(key) ?? 'unnamed';
    }
    const naming = this.#namingPath(w);
    const chain = await dirChainVia(naming, dir);
    // What happened while the kernel was asked: read it too.
    if (!this.#readAhead()) return this.#uncertain(w);
    if (this.#aheadMoves.has(key)) return this.#dirPath(w, dir, depth + 1);
    if (chain === undefined) return 'unnamed';
    if (chain === null) return 'gone';  // and no delete ahead: removed before it could be named
    if (chain === 'outside') {
      this.#model.set(key, OUTSIDE, '');
      return null;
    }
    const rootKey = keyOf({ fsid: dir.fsid, handleType: chain[0] as number, handle: chain[1] as Buffer });
    if (w.rootKey !== rootKey) {
      this.#model.setRoot(rootKey, naming);
      w.rootKey = rootKey;
    }
    // Up the ancestry to a directory the model knows, or to one moved since
    // (placed as the events ahead say); below it, nothing moved since the
    // event, so each is where the kernel found it. (Events read later than
    // this lookup happened after it: they do not change that.)
    const ids: FileId[] = [];
    for (let i = 2; i < chain.length; i += 3) ids.push({ fsid: dir.fsid, handleType: chain[i] as number, handle: chain[i + 1] as Buffer });
    let top = ids.length;
    for (let i = 1; i < ids.length; i++) {
      const k = keyOf(ids[i]);
      if (this.#model.path(k) !== undefined) {
        top = i;
        break;
      }
      if (this.#aheadMoves.has(k)) {
        const above = await this.#dirPath(w, ids[i], depth + 1);
        if (typeof above !== 'string' && above !== null) return above;
        top = i;
        break;
      }
    }
    for (let i = 0; i < top; i++)
      this.#model.set(keyOf(ids[i]), i + 1 < ids.length ? keyOf(ids[i + 1]) : rootKey, chain[2 + i * 3 + 2] as string);
    return this.#model.path(key) ?? 'unnamed';
  }

  /** Where a directory was before the first of its renames or its delete read ahead. */
  #placeAhead(key: string): { dir: FileId; name: string } | undefined {
    const ev = this.#aheadMoves.get(key)?.[0];
    const at = ev && (ev.mask & C.FAN_RENAME ? ev.from : ev.dir);
    return at?.name ? { dir: at, name: at.name } : undefined;
  }

  /**
   * Reads everything the kernel holds now into #ahead. False when the events
   * ahead cannot say where directories were: more than AHEAD_MAX of them,
   * an overflow among them, or a directory move on a kernel that does not
   * say which directory moved.
   */
  #readAhead(): boolean {
    while (this.#ahead.length < AHEAD_MAX) {
      const ev = this.#data.takeNow();
      if (ev === null) break;
      this.#ahead.push(ev);
      this.#index(ev);
      if (ev.overflow) this.#aheadLost = true;
    }
    return this.#ahead.length < AHEAD_MAX && !this.#aheadLost;
  }

  #index(ev: FanotifyEvent): void {
    if (!ev.isDir) return;
    if (!this.#exact) {
      if (ev.mask & (DIR_MOVES | C.FAN_DELETE)) this.#aheadLost = true;
      return;
    }
    if (!(ev.mask & (C.FAN_RENAME | C.FAN_DELETE))) return;
    const child = ev.file;
    if (child === undefined) return;
    const key = keyOf(child);
    const list = this.#aheadMoves.get(key);
    if (list) list.push(ev);
    else this.#aheadMoves.set(key, [ev]);
  }

  #unindex(ev: FanotifyEvent): void {
    if (this.#ahead.length === 0) this.#aheadLost = false;
    if (!this.#exact || !ev.isDir || !(ev.mask & (C.FAN_RENAME | C.FAN_DELETE)) || ev.file === undefined) return;
    const key = keyOf(ev.file);
    const list = this.#aheadMoves.get(key);
    if (list?.[0] === ev) list.shift();
    if (list?.length === 0) this.#aheadMoves.delete(key);
  }

  /** A path not known: said once, by a rescan of the root, for the events read ahead. */
  #uncertain(w: Watched): 'renamed' {
    if (!this.#rescanSaid) {
      this.#rescanSaid = true;
      this.#push(this.#rescan(w, 'renamed'));
    }
    return 'renamed';
  }

  #rescan(w: Watched | undefined, reason: RescanReason): WatchEvent {
    return {
      events: ['rescan'], mask: 0, isDir: true, pid: 0, path: this.root, reason, overflow: reason === 'overflow',
      filesystem: { ...(w ?? this.#byFsid.get(this.#rootFsid)!).listed },
    };
  }

  /** Keeps the model right after an event: directories born, moved and deleted. */
  #learn(ev: FanotifyEvent): void {
    if (!ev.isDir) return;
    if (!this.#exact) {
      if (ev.mask & (DIR_MOVES | C.FAN_DELETE)) this.#model.clear();
      return;
    }
    const child = ev.file;
    if (child === undefined) return;
    const key = keyOf(child);
    // The kernel merges a queued event with a later one of the same entry
    // (a directory made, then removed: "create,delete"), at the first one's
    // place: a merged delete came later, when, the stream does not say. So
    // only a delete alone forgets the directory; a merged one leaves a node
    // no event will name again (its handle is never reused), for the LRU.
    if (ev.mask & C.FAN_RENAME) {
      const to = ev.to;
      if (to) this.#model.set(key, keyOf(to), to.name);
    } else if (ev.mask & C.FAN_CREATE) {
      const dir = ev.dir;
      if (dir?.name) this.#model.set(key, keyOf(dir), dir.name);
    } else if ((ev.mask & ~C.FAN_ONDIR) === C.FAN_DELETE) {
      this.#model.delete(key);
    }
  }

  /** Names an event and queues what the consumer is to see of it. */
  async #describe(ev: FanotifyEvent): Promise<void> {
    this.#eventsRead++;
    if (ev.overflow) {
      this.#model.clear();  // renames may have been lost too
      this.#push(this.#rescan(undefined, 'overflow'));
      return;
    }
    // An event about an object alone (no directory entry), like the link
    // count change of an unlinked file: it has no name to say.
    const anyId = ev.dir ?? ev.from ?? ev.to;
    const fsInfo = anyId && this.#byFsid.get(anyId.fsid);
    if (!fsInfo) return;  // not on a filesystem under the root (any more)
    // Asked for only to keep the model right?
    const wanted = (ev.mask & this.#wanted & ~C.FAN_ONDIR) !== 0 && (!ev.isDir || (this.#wanted & C.FAN_ONDIR) !== 0);
    if (!wanted) {
      // A directory the model never saw needs no naming to be learnt: its
      // parent is named when an event in it needs that.
      this.#learn(ev);
      return;
    }
    let reason: UnnamedReason | undefined;
    const join = async (id: (FileId & { name?: string }) | undefined): Promise<string | null> => {
      if (!id) return null;
      const dir = await this.#dirPath(fsInfo, id);
      if (dir === null) return null;
      if (dir === 'gone' || dir === 'renamed' || dir === 'unnamed') {
        reason ??= dir;
        return null;
      }
      return id.name && id.name !== '.' ? path.join(dir, id.name) : dir;
    };
    const out: WatchEvent = {
      events: ev.events.filter((e): e is EventName => e !== 'overflow'),
      mask: ev.mask,
      isDir: ev.isDir,
      pid: ev.pid,
      path: await join(ev.dir ?? ev.to),
      filesystem: { ...fsInfo.listed },
      overflow: false,
    };
    if (ev.from || ev.to) {
      out.from = await join(ev.from);
      out.to = await join(ev.to);
      if (out.path === null) out.path = out.to ?? out.from ?? null;
    }
    if (reason !== undefined) out.reason = reason;
    this.#learn(ev);
    // A filesystem mark sees the whole filesystem: keep what is under the
    // root, and what cannot be named, with the reason.
    const where = out.path;  // with from/to: to, else from
    if (where === null) {
      if (reason !== undefined) this.#push(out);  // else known to be outside the root
      return;
    }
    if (!under(where, this.root) && !(out.from != null && under(out.from, this.root))) return;
    if (this.#ignore && this.#ignored(out)) {
      const dir = ev.dir;
      if (this.#ignoreMask !== 0 && dir && out.path !== null && this.#ignore.dir(path.dirname(out.path))) this.#ignoreInKernel(fsInfo, dir);
      return;
    }
    this.#push(out);
  }

  /** Left out by the ignore option: its path, or (a rename) both of its paths, where they are under the root. */
  #ignored(e: WatchEvent): boolean {
    const ignore = this.#ignore!;
    const gone = (p: string | null | undefined): boolean => p == null || !under(p, this.root) || ignore.path(p, e.isDir);
    if (e.from !== undefined || e.to !== undefined) return gone(e.from) && gone(e.to);
    return e.path !== null && ignore.path(e.path, e.isDir);
  }

  /**
   * An ignore mark on a directory whose events are all left out, through
   * its handle (a path could name another directory by now): evictable, so
   * it pins nothing; the kernel drops it under memory pressure, and the next
   * event there sets it again.
   */
  #ignoreInKernel(w: Watched, dir: FileId): void {
    let fd = -1;
    try {
      fd = binding.openDirByHandle(this.#namingPath(w), dir.handleType, dir.handle);
      this.#data.add(fd, this.#ignoreMask, { ignore: true, ignoreSurviveModify: true, evictable: true });
    } catch {
      // gone, or refused: its events are left out here, as before
    } finally {
      if (fd >= 0) binding.closeFd(fd);
    }
  }
}

/** Changes under `root`, across every filesystem mounted there, with full paths. Needs CAP_SYS_ADMIN. */
export function watch(root: string | URL, options: WatchOptions = {}): Watcher {
  return new Watcher(root, options);
}
