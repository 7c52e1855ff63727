// watchMounts(): mounts attached, detached and moved in a mount namespace, on
// every kernel (lib/kernel/mount-monitor.ts: the kernel's mount events on
// Linux 6.15+, /proc/<pid>/mountinfo before). A detach is named from the
// table the watcher keeps, seeded when it starts, so mounts that existed
// before the watch are named when they go.
import '../core/dispose';
import { invalidArg } from '../core/errors';
import { Mount } from '../kernel/mount-table';
import { MountMechanism, MountMonitor } from '../kernel/mount-monitor';

export interface MountEvent {
  /**
   * A move is one event with the new place; 'attach' and 'detach' are the
   * others. 'overflow': the kernel's queue overflowed and mount events were
   * lost (mountId is 0n, nothing else is set); the watcher read the table
   * again, and the events after it are the differences it found, so a mount
   * made and removed meanwhile is not seen. Only the kernel's mount events
   * (mechanism 'fanotify') can overflow.
   */
  kind: 'attach' | 'detach' | 'move' | 'overflow';
  /**
   * The mount id: the unique 64-bit one (listmount(2), statmount(2)) where the
   * kernel has it (Linux 6.8+, `watcher.mountIds === 'unique'`), else the id of
   * /proc/self/mountinfo, which a later mount may reuse ('reusable').
   */
  mountId: bigint;
  mountPoint?: string;
  fsType?: string;
  source?: string;
}

export interface WatchMountsOptions {
  signal?: AbortSignal;
  /**
   * The mount namespace: an nsfs path or fd. Default: this process's,
   * /proc/self/ns/mnt. Another namespace's mounts are named from its
   * /proc/PID/mountinfo, so a `/proc/PID/ns/mnt` path is followed through
   * that file (mechanism 'mountinfo', reusable ids); given as an fd (or
   * another path), it gets the kernel's events with mount ids only.
   */
  namespace?: string | number;
}

/** Mount events as an async iterator; `return()` or the signal ends it. */
export class MountWatcher implements AsyncIterableIterator<MountEvent>, AsyncDisposable {
  readonly #monitor: MountMonitor;

  constructor(options: WatchMountsOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalidArg('options', options, 'must be an object');
    this.#monitor = new MountMonitor(options);
  }

  /** How mount changes are learnt here: the kernel's mount events, or changes of mountinfo. */
  get mechanism(): MountMechanism {
    return this.#monitor.mechanism;
  }

  /** Whether `mountId`s are unique or may be reused (kernels without listmount, before 6.8; another namespace's mountinfo). */
  get mountIds(): 'unique' | 'reusable' {
    return this.#monitor.mountIds;
  }

  /** What is mounted now, as far as the watcher knows (mount id -> mount); empty for a namespace given as an fd. */
  get mounts(): ReadonlyMap<bigint, Mount> {
    return this.#monitor.mounts;
  }

  async next(): Promise<IteratorResult<MountEvent>> {
    let r = await this.#monitor.next();
    while (!r.done && r.value.kind === 'reread') r = await this.#monitor.next();  // nothing a mount watcher reports
    if (r.done) return r;
    const { kind, mountId, mount } = r.value;
    const out: MountEvent = { kind: kind as MountEvent['kind'], mountId };
    if (mount) Object.assign(out, { mountPoint: mount.mountPoint, fsType: mount.fsType, source: mount.source });
    return { done: false, value: out };
  }

  async return(): Promise<IteratorResult<MountEvent>> {
    this.#monitor.close();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async close(): Promise<void> {
    this.#monitor.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#monitor.close();
  }
}

/** Mount attach/detach/move events of a mount namespace. Needs CAP_SYS_ADMIN. */
export function watchMounts(options: WatchMountsOptions = {}): MountWatcher {
  return new MountWatcher(options);
}
