// Mounts attached, detached and moved in a mount namespace, on every kernel:
// - 'fanotify' (Linux 6.15+): FAN_MNT_ATTACH / FAN_MNT_DETACH on a
//   FAN_MARK_MNTNS mark; the events carry the mount id, statmount(2) names it.
// - 'mountinfo' (before): an open /proc/<pid>/mountinfo signals each change of
//   the table with POLLPRI; the table is read again and compared with the one
//   before, by mount id (what libmount's monitor does). Changes that undo each
//   other between two reads (a mount made and unmounted at once) are not seen.
// Both keep the table as it is now (`mounts`), so a detach names what it was.
//
// Another namespace's mounts are named from its own table only: statmount(2)
// and listmount(2) are asked in this process's namespace. A namespace given
// as /proc/<pid>/ns/mnt is followed through /proc/<pid>/mountinfo; one given
// otherwise (an nsfs fd) gets the kernel's events, with mount ids alone.
import * as fs from 'node:fs';

import { binding, NativeMountTableWatch } from '../core/binding';
import { constants as C } from '../core/constants';
import { abortError, invalidArg } from '../core/errors';
import { FanotifyEvent } from '../core/event';
import { Fanotify } from '../core/group';
import { has, unsupported } from './capabilities';
import { Mount, mountIds, readMounts, statMount } from './mount-table';

const sameFilesystem = (a: Mount, b: Mount): boolean =>
  a.devMajor === b.devMajor && a.devMinor === b.devMinor && a.root === b.root && a.fsType === b.fsType && a.source === b.source;

export type MountMechanism = 'fanotify' | 'mountinfo';

/** @internal */
export interface MountChange {
  /**
   * A move is one change with the mount's new place; 'attach' and 'detach'
   * are the others. 'overflow': the kernel's queue overflowed and mount
   * events were lost (mountId 0n, mount null); the table was read again, and
   * the changes after it are the differences found. 'reread' (mountinfo
   * only, mountId 0n, mount null): the table was read again after a change;
   * a mount replaced by one that looks the same (mountinfo reuses ids at
   * once) shows no other change, so what depends on its superblock (a mark)
   * has to be checked.
   */
  kind: 'attach' | 'detach' | 'move' | 'overflow' | 'reread';
  mountId: bigint;
  /** The mount as it is now (attach, move) or was (detach); null when nothing is known of it. */
  mount: Mount | null;
}

/** @internal */
export interface MountMonitorOptions {
  /** An nsfs path or fd (default: this process's namespace, /proc/self/ns/mnt). */
  namespace?: string | number;
  signal?: AbortSignal;
}

// The mountinfo of the namespace an nsfs path names: /proc/<pid>/ns/mnt has
// its table at /proc/<pid>/mountinfo. An nsfs fd or a bind-mounted namespace
// file has no such table: null.
function mountinfoOf(namespace: string | number): string | null {
  const m = typeof namespace === 'string' ? /^\/proc\/(\d+|self|thread-self)\/ns\/mnt$/.exec(namespace) : null;
  return m === null ? null : `/proc/${m[1]}/mountinfo`;
}

/** Whether an nsfs path or fd is this process's own mount namespace. */
function isOwnNamespace(namespace: string | number | undefined): boolean {
  if (namespace === undefined) return true;
  try {
    const theirs = fs.statSync(typeof namespace === 'number' ? `/proc/self/fd/${namespace}` : namespace);
    const ours = fs.statSync('/proc/self/ns/mnt');
    return theirs.dev === ours.dev && theirs.ino === ours.ino;
  } catch {
    return false;  // no such file: the mark says why
  }
}

/** @internal */
export class MountMonitor implements AsyncIterableIterator<MountChange> {
  /** How mount changes reach us on this kernel. */
  readonly mechanism: MountMechanism;
  /** Whether mount ids are the kernel's unique 64-bit ones or mountinfo's, which a later mount may reuse. */
  readonly mountIds: 'unique' | 'reusable';
  readonly #known = new Map<bigint, Mount>();
  readonly #queue: MountChange[] = [];
  // The table followed: this namespace's (undefined) or another's mountinfo;
  // null when none can be read (another namespace given as an fd).
  readonly #mountinfo: string | undefined | null;
  // 'fanotify'
  readonly #group: Fanotify | null = null;
  readonly #events: AsyncIterableIterator<FanotifyEvent> | null = null;
  // 'mountinfo'
  readonly #table: NativeMountTableWatch | null = null;
  #dirty = false;
  #wake: (() => void) | null = null;
  #refed = true;
  #closed = false;
  #abortReported = false;
  readonly #signal: AbortSignal | undefined;

  constructor(options: MountMonitorOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalidArg('options', options, 'must be an object');
    const { namespace, signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw invalidArg('options.signal', signal, 'must be an AbortSignal');
    this.#signal = signal;
    const own = isOwnNamespace(namespace);
    const theirs = own || namespace === undefined ? null : mountinfoOf(namespace);
    if (has('mountEvents') && theirs === null) {
      this.mechanism = 'fanotify';
      this.mountIds = own ? mountIds() : 'unique';
      this.#mountinfo = own ? undefined : null;
      this.#group = new Fanotify({ report: { mount: true } });
      try {
        this.#group.add(namespace, ['mntAttach', 'mntDetach'], { scope: 'mntns' });
        this.#events = this.#group.events({ signal });
      } catch (err) {
        void this.#group.close();
        throw err;
      }
    } else {
      if (!own && theirs === null)
        throw unsupported('mntnsMark', {
          syscall: 'fanotify_mark', path: String(namespace),
          instead: "Without it, mounts are followed through /proc/PID/mountinfo: pass the namespace as '/proc/PID/ns/mnt'.",
        });
      this.mechanism = 'mountinfo';
      this.mountIds = own ? mountIds() : 'reusable';
      this.#mountinfo = own ? undefined : theirs!;
      this.#table = new binding.MountTableWatch(this.#mountinfo ?? '/proc/self/mountinfo', () => this.#changed());
      this.#table.unref();  // only a waiting next() keeps the process alive
    }
    // Read after the mark (or the poll) is in place: a mount made in between
    // is seen twice at worst, never missed.
    if (this.#mountinfo !== null) for (const m of readMounts(this.#mountinfo)) this.#known.set(m.mountId, m);
    if (signal?.aborted) this.close();
    signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  /** The mount table as far as the monitor knows: mount id -> mount. */
  get mounts(): ReadonlyMap<bigint, Mount> {
    return this.#known;
  }

  async next(): Promise<IteratorResult<MountChange>> {
    for (;;) {
      const change = this.#queue.shift();
      if (change) return { done: false, value: change };
      if (this.#closed) {
        // As the group's iterator: the aborted next() rejects, later ones are done.
        if (this.#signal?.aborted && !this.#abortReported) {
          this.#abortReported = true;
          throw abortError(this.#signal.reason);
        }
        return { done: true, value: undefined };
      }
      if (this.#events) await this.#nextEvent();
      else if (this.#dirty) this.#rescan();
      else await this.#tableChanged();
    }
  }

  async return(): Promise<IteratorResult<MountChange>> {
    this.close();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Whether a waiting next() keeps the process alive (the default). */
  ref(): this {
    this.#refed = true;
    this.#group?.ref();
    if (this.#wake) this.#table?.ref();
    return this;
  }

  unref(): this {
    this.#refed = false;
    this.#group?.unref();
    this.#table?.unref();
    return this;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    void this.#group?.close();
    this.#table?.close();
    this.#wake?.();
  }

  async #nextEvent(): Promise<void> {
    let r: IteratorResult<FanotifyEvent>;
    try {
      r = await this.#events!.next();
    } catch (err) {
      this.close();  // for-await calls no return() after a rejection
      if ((err as Error).name === 'AbortError') this.#abortReported = true;
      throw err;
    }
    if (r.done) return this.close();
    const ev = r.value;
    if (ev.overflow || ev.mountId === undefined) {
      // Events were lost: say so, then compare the tables (where one can be read).
      this.#queue.push({ kind: 'overflow', mountId: 0n, mount: null });
      if (this.#mountinfo !== null) this.#rescan();
      return;
    }
    const id = ev.mountId;
    const attach = (ev.mask & C.FAN_MNT_ATTACH) !== 0;
    const detach = (ev.mask & C.FAN_MNT_DETACH) !== 0;
    const before = this.#known.get(id) ?? null;
    if (attach) {
      const now = this.#mountinfo === null ? null : statMount(id);  // null if it is gone again already
      if (now) this.#known.set(id, now);
      this.#queue.push({ kind: detach ? 'move' : 'attach', mountId: id, mount: now ?? before });
    } else {
      this.#known.delete(id);
      this.#queue.push({ kind: 'detach', mountId: id, mount: before });
    }
  }

  #changed(): void {
    this.#dirty = true;
    this.#wake?.();
  }

  /** Waits for the mountinfo poll to report a change (or close()). */
  #tableChanged(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#refed) this.#table!.ref();
      this.#wake = () => {
        this.#wake = null;
        if (!this.#closed) this.#table!.unref();
        resolve();
      };
    });
  }

  /** Reads the table again and queues what changed since the last read. */
  #rescan(): void {
    this.#dirty = false;
    if (this.#mountinfo === null) return;  // no table to read
    const now = new Map<bigint, Mount>();
    for (const m of readMounts(this.#mountinfo)) now.set(m.mountId, m);
    for (const [id, before] of this.#known)
      if (!now.has(id)) this.#queue.push({ kind: 'detach', mountId: id, mount: before });
    for (const [id, m] of now) {
      const before = this.#known.get(id);
      if (!before) {
        this.#queue.push({ kind: 'attach', mountId: id, mount: m });
      } else if (!sameFilesystem(before, m)) {
        // A reusable id, given to another mount between two reads.
        this.#queue.push({ kind: 'detach', mountId: id, mount: before }, { kind: 'attach', mountId: id, mount: m });
      } else if (before.mountPoint !== m.mountPoint || before.parentId !== m.parentId) {
        this.#queue.push({ kind: 'move', mountId: id, mount: m });
      }
    }
    this.#known.clear();
    for (const [id, m] of now) this.#known.set(id, m);
    if (this.mechanism === 'mountinfo') this.#queue.push({ kind: 'reread', mountId: 0n, mount: null });
  }
}
