// watchErrors(): filesystem errors (FAN_FS_ERROR) as an administrator wants
// them: which filesystem, which inode (and its path when it can be found),
// what error, how many times, and where in the filesystem's code (ext4 sysfs).
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { binding } from '../core/binding';
import { FanotifyError, invalidArg } from '../core/errors';
import { Ext4ErrorInfo, ext4SysfsDir, readExt4Errors } from './ext4';
import { FanotifyEvent } from '../core/event';
import { FileId, formatFsid } from '../core/fileid';
import { Fanotify } from '../core/group';
import { MountMechanism, MountMonitor } from '../kernel/mount-monitor';
import { mountOf, readMounts } from '../kernel/mount-table';
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
  paths?: (string | URL)[];
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
}

interface MountLike {
  mountPoint: string;
  fsType: string;
  source: string;
  devMajor: number;
  devMinor: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const FILEID_INVALID = 0xff;

function mountOfPath(p: string): MountLike {
  return mountOf(p) ?? { mountPoint: '/', fsType: 'unknown', source: 'unknown', devMajor: 0, devMinor: 0 };
}

/** The async iterator watchErrors() returns, with what it watches and what it skipped. */
export class ErrorWatcher implements AsyncIterableIterator<FsErrorEvent> {
  /** The filesystems watched, one per fsid. */
  readonly filesystems: ErrorFilesystem[] = [];
  /** Filesystems not watched (no paths given), with the reason. */
  readonly skipped: SkippedFilesystem[] = [];

  readonly #errors: Fanotify;
  readonly #events: AsyncIterableIterator<FanotifyEvent>;
  readonly #byFsid = new Map<string, Watched>();
  readonly #paths = new Map<string, string | null>();  // fsid:handle -> path, one lookup per inode
  readonly #resolvePaths: boolean;
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
    this.#errors = new Fanotify({ report: { fid: true } });
    try {
      if (paths) {
        for (const p of paths) this.#watchPath(p instanceof URL ? fileURLToPath(p) : p);
      } else {
        // The monitor first: a mount made while the others are marked is
        // among its changes, never missed.
        this.#mounts = new MountMonitor();
        this.#mounts.unref();  // following mounts alone must not keep the process alive
        for (const m of this.#mounts.mounts.values()) this.#consider(m);
        void this.#followMounts(this.#mounts);
      }
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
   * How filesystems mounted later are found (without `paths`): 'fanotify'
   * (the kernel's mount events, Linux 6.15+) or 'mountinfo' (changes of
   * /proc/self/mountinfo, before). null with `paths`.
   */
  get mountMechanism(): MountMechanism | null {
    return this.#mounts?.mechanism ?? null;
  }

  /** Stops watching; an iteration in progress ends. */
  async close(): Promise<void> {
    this.#closeNow();
  }

  #closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#mounts?.close();
    void this.#errors.close();
  }

  /** A path the caller asked for: its filesystem must take the mark, or this throws. */
  #watchPath(p: string): void {
    if (typeof p !== 'string' || p === '') throw invalidArg('options.paths', p, 'must hold non-empty paths');
    let fsid: string;
    try {
      fsid = formatFsid(...binding.fsidOf(p));
    } catch {
      // statfs failed: let fanotify_mark say why, with its hint (ENOENT, EACCES).
      this.#errors.add(p, ['fsError'], { scope: 'filesystem' });
      throw new Error('unreachable');
    }
    if (this.#byFsid.has(fsid)) return;
    this.#errors.add(p, ['fsError'], { scope: 'filesystem' });
    this.#remember(fsid, mountOfPath(p));
  }

  /** A mounted filesystem found without being asked for: watched if it can report errors. */
  #consider(m: MountLike): void {
    if (this.#closed) return;
    const skip = (code: string, reason: string): void => {
      this.skipped.push({ mountPoint: m.mountPoint, type: m.fsType, source: m.source, code, reason });
    };
    if (m.devMajor === 0 && !DISK_WITHOUT_DEVICE_NUMBER.has(m.fsType))
      return skip('ENOTSUP', `${m.fsType} has no block device, so no on-disk structures that could be found corrupt`);
    let fsid: string;
    try {
      fsid = formatFsid(...binding.fsidOf(m.mountPoint));
    } catch (err) {
      return skip((err as FanotifyError).code ?? 'EIO', `statfs failed: ${(err as Error).message}`);
    }
    // Marked again even when the fsid is known: a filesystem unmounted and
    // mounted again (after an fsck, say) lost its mark with the old mount.
    try {
      this.#errors.add(m.mountPoint, ['fsError'], { scope: 'filesystem' });
    } catch (err) {
      return skip((err as FanotifyError).code ?? 'EIO', (err as Error).message);
    }
    this.#remember(fsid, m);
  }

  /** Records (or, for a known fsid, updates) a watched filesystem. */
  #remember(fsid: string, m: MountLike): void {
    const ext4Dir = ext4SysfsDir(m.devMajor, m.devMinor);
    const errorsSeen = ext4Dir ? readExt4Errors(ext4Dir).errors_count ?? 0 : 0;
    const known = this.#byFsid.get(fsid);
    if (known) {
      // Mounted again: the sysfs directory and counters may be new.
      Object.assign(known, { ext4Dir, errorsSeen });
      return;
    }
    this.#byFsid.set(fsid, { fsid, mountPoint: m.mountPoint, source: m.source, type: m.fsType, ext4Dir, errorsSeen });
    this.filesystems.push({ fsid, mountPoint: m.mountPoint, source: m.source, type: m.fsType });
  }

  /** Mounts made after the start: watched as they come. */
  async #followMounts(mounts: MountMonitor): Promise<void> {
    try {
      for await (const change of mounts) {
        if (this.#closed) break;
        if (change.kind !== 'attach') this.#forgetUnmounted();  // a move is a detach from where it was
        if (change.kind !== 'detach' && change.mount) this.#consider(change.mount);
      }
    } catch {
      // closed under us: the iteration ends
    }
  }

  /** After a detach: drop filesystems (and skipped mounts) no longer mounted anywhere. */
  #forgetUnmounted(): void {
    const mounted = new Map<string, string>();  // fsid -> a mount point
    const points = new Set<string>();
    for (const m of this.#mounts?.mounts.values() ?? readMounts()) {
      points.add(m.mountPoint);
      try {
        const fsid = formatFsid(...binding.fsidOf(m.mountPoint));
        if (!mounted.has(fsid)) mounted.set(fsid, m.mountPoint);
      } catch {
        // gone meanwhile
      }
    }
    for (const [fsid, w] of [...this.#byFsid]) {
      const at = mounted.get(fsid);
      if (at !== undefined) {
        if (!points.has(w.mountPoint)) {
          // Still mounted, elsewhere.
          w.mountPoint = at;
          const listed = this.filesystems.find((f) => f.fsid === fsid);
          if (listed) listed.mountPoint = at;
        }
        continue;
      }
      this.#byFsid.delete(fsid);
      const i = this.filesystems.findIndex((f) => f.fsid === fsid);
      if (i >= 0) this.filesystems.splice(i, 1);
    }
    for (let i = this.skipped.length - 1; i >= 0; i--)
      if (!points.has(this.skipped[i].mountPoint)) this.skipped.splice(i, 1);
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
