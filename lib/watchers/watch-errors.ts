// watchErrors(): filesystem errors (FAN_FS_ERROR) as an administrator wants
// them: which filesystem, which inode (and its path when it can be found),
// what error, how many times, and where in the filesystem's code (ext4 sysfs).
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import '../core/dispose';
import { binding } from '../core/binding';
import { FanotifyError, invalidArg } from '../core/errors';
import { Ext4ErrorInfo, ext4SysfsDir, readExt4Errors } from './ext4';
import { markedDevices } from './marked';
import { FanotifyEvent } from '../core/event';
import { FileId, formatFsid } from '../core/fileid';
import { Fanotify } from '../core/group';
import { MountMechanism, MountMonitor } from '../kernel/mount-monitor';
import { Mount, mountOf } from '../kernel/mount-table';
import { resolve } from '../core/resolve';

export interface ErrorFilesystem {
  fsid: string;
  mountPoint: string;
  /** The mount's source, usually the block device. */
  source: string;
  type: string;
}

export interface FsErrorEvent {
  /** When the event was read (the kernel does not timestamp it). */
  time: Date;
  /** Positive, as the kernel reports it. */
  errno: number;
  /** The filesystem's name for it: 117 is EFSCORRUPTED, 74 EFSBADCRC, 108 ESHUTDOWN. */
  code: string;
  /** Errors merged into this event since the previous one was read. */
  count: number;
  filesystem: ErrorFilesystem;
  /** The inode the error is about; absent for errors of the whole filesystem. */
  inode?: FileId & { path?: string };
  /**
   * Where the filesystem says the error happened: ext4's sysfs last_error_*,
   * which hold the last error only. Given only when that record is this
   * event's: ext4 has counted exactly the errors up to this event's (none
   * after it), and the record names the event's inode (or none, for an error
   * of the whole filesystem). For an event that merged several errors
   * (count > 1) it is the last of them. Otherwise it is left out, never
   * another error's. ext4 writes 0 for what does not apply (no block, no
   * inode): such fields are left out.
   */
  detail?: { function?: string; line?: number; inode?: number; block?: number; errcode?: string };
  /**
   * The kernel's event queue overflowed and error events were lost (errors of
   * one process on one filesystem merge into one event, but errors of
   * different processes do not). Such an event names no filesystem (fsid,
   * mountPoint, source and type are ''), its errno is 0, code 'OVERFLOW' and
   * count 0; ext4 still counts the lost errors in
   * /sys/fs/ext4/<dev>/errors_count.
   */
  overflow: boolean;
}

export interface SkippedFilesystem {
  mountPoint: string;
  type: string;
  source: string;
  /** An errno name when the kernel refused the mark, else 'ENOTSUP'. */
  code: string;
  reason: string;
}

export interface WatchErrorsOptions {
  /** Paths on the filesystems to watch. Omitted: every filesystem that can report errors, including later mounts. */
  paths?: readonly (string | URL)[];
  signal?: AbortSignal;
  /**
   * Look up inode.path with open_by_handle_at (default false). Off by default
   * because opening a corrupt inode makes ext4 report one more error (in
   * ext4_nfs_get_inode), which this watcher would then report as if the
   * system had it. Healthy inodes (the parent directory of a bad entry) get a
   * path; corrupt ones cannot be opened anyway. Tried once per inode.
   */
  resolvePaths?: boolean;
}

// Filesystems without a block device (tmpfs, proc, overlay, ...) have no
// on-disk structures to find corrupt: nothing to report. btrfs has no single
// device number (its subvolumes have anonymous ones) but does have a disk.
const DISK_WITHOUT_DEVICE_NUMBER = new Set(['btrfs', 'bcachefs', 'zfs']);
// How long to wait for ext4 to publish its error record after the event.
const DETAIL_WAIT_MS = 200;

interface Watched extends ErrorFilesystem {
  ext4Dir: string | null;
  /** ext4's errors_count that the events read so far account for. */
  errorsSeen: number;
  devMajor: number;
  devMinor: number;
  /** The mounts that hold it, by mount id; none: not mounted now (and not in `filesystems`). */
  mounts: Map<bigint, MountLike>;
  /** Its entry in `filesystems` while it is mounted. */
  listed: ErrorFilesystem | null;
}

interface MountLike {
  mountPoint: string;
  fsType: string;
  source: string;
  devMajor: number;
  devMinor: number;
  /** The directory of the filesystem mounted there ('/' for all of it). */
  root?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const FILEID_INVALID = 0xff;

const sameDevice = (a: { devMajor: number; devMinor: number }, b: { devMajor: number; devMinor: number }): boolean =>
  a.devMajor === b.devMajor && a.devMinor === b.devMinor;

/** The async iterator watchErrors() returns, with what it watches and what it skipped. */
export class ErrorWatcher implements AsyncIterableIterator<FsErrorEvent>, AsyncDisposable {
  /**
   * The filesystems watched, one per fsid, while they are mounted. One that
   * is unmounted leaves the list; mounted again, it is marked again (the
   * mark dies with the superblock) and listed again.
   */
  readonly filesystems: ErrorFilesystem[] = [];
  /** Filesystems not watched (no paths given), with the reason. */
  readonly skipped: SkippedFilesystem[] = [];

  readonly #errors: Fanotify;
  readonly #events: AsyncIterableIterator<FanotifyEvent>;
  readonly #byFsid = new Map<string, Watched>();
  readonly #paths = new Map<string, string | null>();  // fsid:handle -> path, one lookup per inode
  readonly #resolvePaths: boolean;
  // With paths: the filesystems asked for (by fsid); without: any.
  readonly #wanted: Set<string> | null;
  readonly #skippedIds = new Map<bigint, SkippedFilesystem>();
  #mounts: MountMonitor | null = null;
  #closed = false;
  // A read of the group started to see whether another event was queued;
  // the next next() takes its result.
  #held: Promise<IteratorResult<FanotifyEvent>> | null = null;
  // ext4 had counted more errors than the events read so far: set to its
  // count if no other event turns out to be queued (see #settle()).
  #behind: { fs: Watched; count: number } | null = null;

  constructor(options: WatchErrorsOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalidArg('options', options, 'must be an object');
    const { paths, signal, resolvePaths = false } = options;
    if (typeof resolvePaths !== 'boolean') throw invalidArg('options.resolvePaths', resolvePaths, 'must be a boolean');
    this.#resolvePaths = resolvePaths;
    if (paths !== undefined && (!Array.isArray(paths) || paths.length === 0))
      throw invalidArg('options.paths', paths, 'must be a non-empty array of paths (or omitted: every filesystem)');
    this.#wanted = paths ? new Set() : null;
    this.#errors = new Fanotify({ report: { fid: true } });
    try {
      // The monitor first: a mount made while the others are marked is
      // among its changes, never missed. With paths too: their filesystems
      // are marked again when they are mounted again.
      this.#mounts = new MountMonitor();
      this.#mounts.unref();  // following mounts alone must not keep the process alive
      const table = [...this.#mounts.mounts.values()];
      if (paths) for (const p of paths) this.#watchPath(p instanceof URL ? fileURLToPath(p) : p, table);
      else for (const m of table) this.#consider(m, m.mountId);
      void this.#followMounts(this.#mounts);
      this.#events = this.#errors.events({ signal });
    } catch (err) {
      this.#closeNow();
      throw err;
    }
    if (signal?.aborted) this.#closeNow();
    signal?.addEventListener('abort', () => this.#closeNow(), { once: true });
  }

  async next(): Promise<IteratorResult<FsErrorEvent>> {
    for (;;) {
      let r: IteratorResult<FanotifyEvent>;
      try {
        r = await this.#read();
      } catch (err) {
        this.#closeNow();  // for-await calls no return() after a rejection
        throw err;
      }
      if (r.done) {
        this.#closeNow();
        return { done: true, value: undefined };
      }
      const ev = r.value;
      if (ev.overflow) {
        // The lost errors are in ext4's counts: start counting from there.
        for (const w of this.#byFsid.values()) if (w.ext4Dir) w.errorsSeen = readExt4Errors(w.ext4Dir).errors_count ?? 0;
        this.#behind = null;
        return { done: false, value: overflowEvent() };
      }
      if (!ev.error || !ev.file) continue;
      const out = await this.#describe(ev);
      await this.#settle();
      return { done: false, value: out };
    }
  }

  /** The group's next event: the one a look-ahead read already asked for, if any. */
  #read(): Promise<IteratorResult<FanotifyEvent>> {
    const held = this.#held;
    if (held === null) return this.#events.next();
    this.#held = null;
    if (!this.#closed) this.#errors.ref();
    return held;
  }

  /**
   * ext4 counted more errors than the events read so far. If another event
   * is queued, those errors are its own and it will match them. If none is
   * (every error ext4 counts was queued before ext4 counted it), they came
   * without an event of ours (before the mark, or errors ext4 reports to no
   * one): count from ext4's number from now on.
   */
  async #settle(): Promise<void> {
    const behind = this.#behind;
    if (behind === null || this.#closed) return;
    this.#behind = null;
    const held = this.#events.next();
    held.catch(() => undefined);  // the next next() sees the rejection
    this.#held = held;
    const queued = await Promise.race([
      held.then(() => true, () => true),
      new Promise<boolean>((r) => setImmediate(() => r(false))),
    ]);
    if (queued) return;
    if (!this.#closed) this.#errors.unref();  // a read nobody waits for must not keep the process alive
    behind.fs.errorsSeen = Math.max(behind.fs.errorsSeen, behind.count);
  }

  async return(): Promise<IteratorResult<FsErrorEvent>> {
    this.#closeNow();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * How mounts are followed (filesystems mounted later, and those mounted
   * again): 'fanotify' (the kernel's mount events, Linux 6.15+) or
   * 'mountinfo' (changes of /proc/self/mountinfo, before).
   */
  get mountMechanism(): MountMechanism | null {
    return this.#mounts?.mechanism ?? null;
  }

  /** Stops watching; an iteration in progress ends. */
  async close(): Promise<void> {
    this.#closeNow();
  }

  /** `await using w = watchErrors(...)`: closed at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#closeNow();
  }

  #closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#mounts?.close();
    void this.#errors.close();
  }

  /** A path the caller asked for: its filesystem must take the mark, or this throws. */
  #watchPath(p: string, table: Mount[]): void {
    if (typeof p !== 'string' || p === '') throw invalidArg('options.paths', p, 'must hold non-empty paths');
    let fsid: string;
    try {
      fsid = formatFsid(...binding.fsidOf(p));
    } catch {
      // statfs failed: let fanotify_mark say why, with its hint (ENOENT, EACCES).
      this.#errors.add(p, ['fsError'], { scope: 'filesystem' });
      throw new Error('unreachable');
    }
    this.#wanted!.add(fsid);
    if (this.#byFsid.has(fsid)) return;
    this.#errors.add(p, ['fsError'], { scope: 'filesystem' });
    const own = mountOf(p, table) ?? { mountId: -1n, mountPoint: '/', fsType: 'unknown', source: 'unknown', devMajor: 0, devMinor: 0 };
    const w = this.#remember(fsid, own);
    w.mounts.set(own.mountId, own);
    // Every mount of its device holds it: unmounting one of two does not end it.
    for (const m of table) if (sameDevice(m, own)) w.mounts.set(m.mountId, m);
    this.#name(w);
  }

  /** A mounted filesystem found without being asked for: watched if it can report errors. */
  #consider(m: MountLike, mountId: bigint): void {
    if (this.#closed) return;
    const skip = (code: string, reason: string): void => {
      const entry = { mountPoint: m.mountPoint, type: m.fsType, source: m.source, code, reason };
      this.skipped.push(entry);
      this.#skippedIds.set(mountId, entry);
    };
    if (m.devMajor === 0 && !DISK_WITHOUT_DEVICE_NUMBER.has(m.fsType))
      return skip('ENOTSUP', `${m.fsType} has no block device, so no on-disk structures that could be found corrupt`);
    let fsid: string;
    try {
      fsid = formatFsid(...binding.fsidOf(m.mountPoint));
    } catch (err) {
      return skip((err as FanotifyError).code ?? 'EIO', `statfs failed: ${(err as Error).message}`);
    }
    this.#markMount(fsid, m, mountId, skip);
  }

  /** A mount of a filesystem we watch (or, without paths, may watch): marked, and recorded. */
  #markMount(fsid: string, m: MountLike, mountId: bigint, skip?: (code: string, reason: string) => void): void {
    const known = this.#byFsid.get(fsid);
    // A mounted filesystem keeps its mark; one mounted again lost it with its
    // old superblock (after an fsck, say), and is marked again.
    if (!known || known.mounts.size === 0) {
      try {
        this.#errors.add(m.mountPoint, ['fsError'], { scope: 'filesystem' });
      } catch (err) {
        return skip?.((err as FanotifyError).code ?? 'EIO', (err as Error).message);
      }
    }
    const w = this.#remember(fsid, m);
    w.mounts.set(mountId, m);
    this.#name(w);
  }

  /** Records a watched filesystem, or one mounted again (its sysfs directory and counts may be new). */
  #remember(fsid: string, m: MountLike): Watched {
    let w = this.#byFsid.get(fsid);
    if (w && w.mounts.size > 0) return w;
    const ext4Dir = ext4SysfsDir(m.devMajor, m.devMinor);
    const errorsSeen = ext4Dir ? readExt4Errors(ext4Dir).errors_count ?? 0 : 0;
    const fields = { mountPoint: m.mountPoint, source: m.source, type: m.fsType, ext4Dir, errorsSeen, devMajor: m.devMajor, devMinor: m.devMinor };
    if (w) Object.assign(w, fields);
    else this.#byFsid.set(fsid, (w = { fsid, ...fields, mounts: new Map(), listed: null }));
    return w;
  }

  /** Names a watched filesystem by one of its mounts (one of all of it first), and lists it while it has one. */
  #name(w: Watched): void {
    const mounts = [...w.mounts.values()];
    const m = mounts.find((x) => x.mountPoint === w.mountPoint) ?? mounts.find((x) => x.root === '/') ?? mounts[0];
    if (m) w.mountPoint = m.mountPoint;
    if (m && !w.listed) {
      w.listed = { fsid: w.fsid, mountPoint: w.mountPoint, source: w.source, type: w.type };
      this.filesystems.push(w.listed);
    } else if (!m && w.listed) {
      this.filesystems.splice(this.filesystems.indexOf(w.listed), 1);
      w.listed = null;
    }
    if (w.listed) w.listed.mountPoint = w.mountPoint;
  }

  /** Mounts made and unmounted after the start. */
  async #followMounts(mounts: MountMonitor): Promise<void> {
    try {
      for await (const change of mounts) {
        if (this.#closed) break;
        const m = change.mount;
        if (change.kind === 'detach') this.#unmounted(change.mountId);
        else if (change.kind === 'move' && this.#holds(change.mountId)) this.#moved(change.mountId, m!);
        else if (change.kind === 'overflow' || change.kind === 'reread') this.#checkMarks();
        else if (m) this.#mounted(m, change.mountId);
      }
    } catch {
      // closed under us: the iteration ends
    }
  }

  /**
   * A new mount. Without paths, any filesystem that can report errors is
   * watched. With paths, only the ones asked for, found again on their
   * device or at their mount point: no other mount is asked anything.
   */
  #mounted(m: MountLike, mountId: bigint): void {
    if (this.#wanted === null) return this.#consider(m, mountId);
    for (const w of this.#byFsid.values()) {
      if (!sameDevice(w, m) && w.mountPoint !== m.mountPoint) continue;
      let fsid: string;
      try {
        fsid = formatFsid(...binding.fsidOf(m.mountPoint));
      } catch {
        return;  // gone again
      }
      if (this.#wanted.has(fsid)) this.#markMount(fsid, m, mountId);
      return;
    }
  }

  #moved(mountId: bigint, m: Mount): void {
    for (const w of this.#byFsid.values()) {
      if (!w.mounts.has(mountId)) continue;
      if (w.mountPoint === w.mounts.get(mountId)!.mountPoint) w.mountPoint = m.mountPoint;
      w.mounts.set(mountId, m);
      this.#name(w);
    }
    const skipped = this.#skippedIds.get(mountId);
    if (skipped) skipped.mountPoint = m.mountPoint;
  }

  /**
   * An unmount: a filesystem with no mount left leaves `filesystems` (it is
   * marked again if it comes back). From the mount ids alone: no mount is
   * asked anything (a hung NFS or FUSE mount would block us).
   */
  #unmounted(mountId: bigint): void {
    for (const w of this.#byFsid.values()) if (w.mounts.delete(mountId)) this.#name(w);
    const skipped = this.#skippedIds.get(mountId);
    if (skipped) {
      this.#skippedIds.delete(mountId);
      const i = this.skipped.indexOf(skipped);
      if (i >= 0) this.skipped.splice(i, 1);
    }
  }

  #holds(mountId: bigint): boolean {
    return this.#skippedIds.has(mountId) || [...this.#byFsid.values()].some((w) => w.mounts.has(mountId));
  }

  /**
   * A mounted filesystem whose mark is gone was unmounted and mounted again
   * unseen (mountinfo gives the new mount the old one's id): taken as the
   * unmount and mount it was, so it is marked again, with the new
   * superblock's counts.
   */
  #checkMarks(): void {
    if (this.#closed) return;
    const marked = markedDevices(this.#errors.fd);
    for (const w of [...this.#byFsid.values()]) {
      if (w.mounts.size === 0 || marked.has(`${w.devMajor}:${w.devMinor}`)) continue;
      const mounts = [...w.mounts];
      for (const [id] of mounts) this.#unmounted(id);
      for (const [id, m] of mounts) this.#mounted(m, id);
    }
  }

  async #describe(ev: FanotifyEvent): Promise<FsErrorEvent> {
    const file = ev.file!;
    const fsInfo = this.#byFsid.get(file.fsid);
    const out: FsErrorEvent = {
      time: new Date(),
      errno: ev.error!.errno,
      code: ev.error!.code,
      count: ev.error!.count,
      filesystem: fsInfo
        ? { fsid: fsInfo.fsid, mountPoint: fsInfo.mountPoint, source: fsInfo.source, type: fsInfo.type }
        : { fsid: file.fsid, mountPoint: '', source: '', type: '' },
      overflow: false,
    };
    // The detail first: a path lookup may add an error record of its own.
    if (fsInfo?.ext4Dir) {
      const detail = await this.#ext4Detail(fsInfo, ev.error!.count, file);
      if (detail) out.detail = detail;
    }
    if (file.handleType !== FILEID_INVALID && file.handle.length > 0) {
      out.inode = { ...file };
      const p = this.#resolvePaths ? await this.#pathOf(file) : undefined;
      if (p) out.inode.path = p;
    }
    return out;
  }

  /** Best effort: a corrupt inode often cannot be opened. Tried once per inode. */
  async #pathOf(file: FileId): Promise<string | undefined> {
    const key = `${file.fsid}:${file.handleType}:${file.handle.toString('hex')}`;
    if (!this.#paths.has(key)) {
      let p: string | null = null;
      try {
        p = await resolve(file);
      } catch {
        // gone, corrupt or unreachable: no path
      }
      this.#paths.set(key, p);
    }
    return this.#paths.get(key) ?? undefined;
  }

  /**
   * ext4's record of its last error, if it is this event's. ext4 counts an
   * error (errors_count) and records it after the event is queued, from
   * deferred work: wait (briefly) until it has counted this event's errors.
   * The record is this event's only if it counted no error after them.
   */
  async #ext4Detail(fsInfo: Watched, count: number, file: FileId): Promise<FsErrorEvent['detail'] | undefined> {
    const want = fsInfo.errorsSeen + count;
    let info: Ext4ErrorInfo = readExt4Errors(fsInfo.ext4Dir!);
    for (let waited = 0; (info.errors_count ?? 0) < want && waited < DETAIL_WAIT_MS; waited += 5) {
      await sleep(5);
      info = readExt4Errors(fsInfo.ext4Dir!);
    }
    const counted = info.errors_count ?? 0;
    if (counted < want) {
      // Not counted (yet): nothing to match; count from ext4's number.
      fsInfo.errorsSeen = counted;
      return undefined;
    }
    fsInfo.errorsSeen = want;
    if (counted > want) {
      // The record is of a later error: another event's, or one without an event.
      this.#behind = { fs: fsInfo, count: counted };
      return undefined;
    }
    // A merged event names its first error's inode; the record is its last's.
    const ino = file.handleType === FILEID_INVALID ? 0n : file.ino;
    if (ino !== undefined && BigInt(info.last_error_ino ?? 0) !== ino) return undefined;
    const detail: NonNullable<FsErrorEvent['detail']> = {};
    if (info.last_error_func) detail.function = info.last_error_func;
    if (info.last_error_line) detail.line = info.last_error_line;
    if (info.last_error_ino) detail.inode = info.last_error_ino;
    if (info.last_error_block) detail.block = info.last_error_block;
    if (info.last_error_errname) detail.errcode = info.last_error_errname;
    return detail;
  }
}

/** What next() yields when the kernel's queue overflowed. */
function overflowEvent(): FsErrorEvent {
  return {
    time: new Date(), errno: 0, code: 'OVERFLOW', count: 0,
    filesystem: { fsid: '', mountPoint: '', source: '', type: '' }, overflow: true,
  };
}

/** Filesystem errors as they happen (FAN_FS_ERROR). Needs CAP_SYS_ADMIN. */
export function watchErrors(options: WatchErrorsOptions = {}): ErrorWatcher {
  return new ErrorWatcher(options);
}
