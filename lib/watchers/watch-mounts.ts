// watchMounts(): mounts attached, detached and moved in this mount namespace
// (FAN_MNT_ATTACH / FAN_MNT_DETACH on a FAN_MARK_MNTNS mark, Linux 6.15+).
// The events carry only the 64-bit mount id: statmount(2) names attached
// mounts; detached ones are named from a cache seeded with listmount(2) at
// start, so mounts that existed before the watch are named too.
import { binding, StatMount } from '../core/binding';
import { constants as C } from '../core/constants';
import { invalidArg } from '../core/errors';
import { Fanotify } from '../core/group';

export interface MountEvent {
  /** A move is one event with both bits; 'attach' and 'detach' are the others. */
  kind: 'attach' | 'detach' | 'move';
  /** The unique 64-bit mount id (statmount(2), listmount(2)). */
  mountId: bigint;
  mountPoint?: string;
  fsType?: string;
  source?: string;
}

export interface WatchMountsOptions {
  signal?: AbortSignal;
  /** The mount namespace: an nsfs path or fd. Default: this process's, /proc/self/ns/mnt. */
  namespace?: string | number;
}

type Known = StatMount;

/** Mount events as an async iterator; `return()` or the signal ends it. */
export class MountWatcher implements AsyncIterableIterator<MountEvent> {
  readonly #group: Fanotify;
  readonly #events: AsyncIterableIterator<import('../core/event').FanotifyEvent>;
  // mount id -> what it was, for naming detaches.
  readonly #known = new Map<bigint, Known>();

  constructor(options: WatchMountsOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalidArg('options', options, 'must be an object');
    const { signal, namespace } = options;
    this.#group = new Fanotify({ report: { mount: true } });
    try {
      this.#group.add(namespace, ['mntAttach', 'mntDetach'], { scope: 'mntns' });
      // Seeded after the mark: a mount made in between is seen twice at worst.
      for (const id of binding.listMounts()) {
        const m = binding.statMount(id);
        if (m) this.#known.set(id, m);
      }
      this.#events = this.#group.events({ signal });
    } catch (err) {
      void this.#group.close();
      throw err;
    }
    if (signal?.aborted) void this.#group.close();
    signal?.addEventListener('abort', () => void this.#group.close(), { once: true });
  }

  /** What is mounted now, as far as the watcher knows (mount id -> mount). */
  get mounts(): ReadonlyMap<bigint, Known> {
    return this.#known;
  }

  async next(): Promise<IteratorResult<MountEvent>> {
    for (;;) {
      let r: IteratorResult<import('../core/event').FanotifyEvent>;
      try {
        r = await this.#events.next();
      } catch (err) {
        await this.#group.close();  // for-await calls no return() after a rejection
        throw err;
      }
      if (r.done) return { done: true, value: undefined };
      const ev = r.value;
      if (ev.mountId === undefined) continue;  // an overflow: nothing to name
      const attach = (ev.mask & C.FAN_MNT_ATTACH) !== 0;
      const detach = (ev.mask & C.FAN_MNT_DETACH) !== 0;
      const kind = attach && detach ? 'move' : attach ? 'attach' : 'detach';
      const id = ev.mountId;
      let known = this.#known.get(id);
      if (attach) {
        const m = binding.statMount(id);  // null if it is gone again already
        if (m) this.#known.set(id, (known = m));
      } else {
        this.#known.delete(id);
      }
      const out: MountEvent = { kind, mountId: id };
      if (known) Object.assign(out, { mountPoint: known.mountPoint, fsType: known.fsType, source: known.source });
      return { done: false, value: out };
    }
  }

  async return(): Promise<IteratorResult<MountEvent>> {
    await this.#group.close();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async close(): Promise<void> {
    await this.#group.close();
  }
}

/** Mount attach/detach/move events of a mount namespace. Needs CAP_SYS_ADMIN. */
export function watchMounts(options: WatchMountsOptions = {}): MountWatcher {
  return new MountWatcher(options);
}
