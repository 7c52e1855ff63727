// The fanotify group: marks, the event iterator, permission answers, close.
import { fileURLToPath } from 'node:url';

import { binding, NativeGroup, RawBatch } from './binding';
import './dispose';
import { constants as C } from './constants';
import { abortError, fromNative, invalidArg, stateError, systemError } from './errors';
import { Batch, batchViews, EVENT_STRIDE, EventOwner, FanotifyEvent, rowFd, rowIsPermission } from './event';
import { EventQueue } from './event-queue';
import { TimeoutWarning } from './timeout-warning';
import { lacks, missingInitFeature, missingMarkFeature, unsupported } from '../kernel/capabilities';
import {
  auditRuleInfo, Decision, decisionToResponse, eventMask, FanotifyOptions, GroupConfig, groupConfig, MarkEventName,
  MarkOptions, markFlags, Scope,
} from './options';

// Events with no fd to hand over (the kernel refuses them in a group that
// reports no file ids): named in the error, the one cause a user can miss.
const NEEDS_FID = C.FAN_CREATE | C.FAN_DELETE | C.FAN_MOVED_FROM | C.FAN_MOVED_TO | C.FAN_RENAME | C.FAN_ATTRIB |
  C.FAN_DELETE_SELF | C.FAN_MOVE_SELF | C.FAN_FS_ERROR;
const FID_FLAGS = C.FAN_REPORT_FID | C.FAN_REPORT_DIR_FID | C.FAN_REPORT_NAME | C.FAN_REPORT_TARGET_FID;

const AT_FDCWD = -100;
// Permission groups are read all the time (see the README's design notes), so
// what nobody consumes piles up here. Past this many events (the kernel's
// default max_queued_events), new ones are answered with the default, dropped,
// and reported as one overflow event, as the kernel does for its own queue.
// Events that carry an fd cost one open fd each while queued: fewer of those.
const MAX_QUEUED = 16384;
const MAX_QUEUED_FDS = 1024;

// What add() and remove() mark: a path, a file URL, or an open fd (for
// scope 'mntns', an nsfs fd). null: the default of scope 'mntns' alone.
type MarkPath = string | URL | number;
// Event names (MarkEventName) or a mask of FAN_* bits.
type MarkEvents = readonly MarkEventName[] | number;

// The next() that waits for events: settled by #pump() with the iterator
// result itself, so an event that arrives costs one promise settlement.
interface Waiter {
  resolve(result: IteratorResult<FanotifyEvent>): void;
  reject(err: unknown): void;
  /** The iterator ends (no more events, an error, an abort). */
  end(): void;
  iteration: Iteration;
}

// One events() iterator's state. Nothing in it (nor in its abort listener)
// refers to the iterator object, so that an iterator dropped unfinished can
// be collected, and its listener taken off the signal then.
interface Iteration {
  finished: boolean;
  /** An abort that came while no next() waited: the next next() rejects with it. */
  aborted: Error | null;
  /** Ends the iteration: default answers for what was handed over, listener off. */
  finish(): void;
  /** Takes the abort listener off the signal. */
  detach(): void;
}

// Iterators dropped without finishing: their abort listeners go with them.
const abortListeners = new FinalizationRegistry<() => void>((detach) => detach());

export interface EventsOptions {
  signal?: AbortSignal;
}

export class Fanotify implements AsyncIterable<FanotifyEvent> {
  readonly #config: GroupConfig;
  readonly #native: NativeGroup;
  readonly #owner: EventOwner;
  // Events handed over by the reader and not yet yielded.
  readonly #queue: EventQueue;
  #waiter: Waiter | null = null;
  #readError: Error | null = null;
  #current: FanotifyEvent | null = null;  // yielded; released when the step ends
  #closed = false;
  // An iteration ended (break, throw, abort) and no new one started: nobody
  // will answer permission events, so they get the default as they come.
  #abandoned = false;
  readonly #timeoutWarning: TimeoutWarning;

  constructor(options: FanotifyOptions = {}) {
    this.#config = groupConfig(options);
    const cfg = this.#config;
    this.#timeoutWarning = new TimeoutWarning(cfg.timeoutMs, cfg.defaultDecision);
    // Checked now, not when the first timeout would write it and the kernel
    // refused: an answer nobody can give leaves the opener waiting.
    if (cfg.defaultResponse >>> 24 !== 0 && lacks('denyErrno'))
      throw unsupported('denyErrno', { syscall: 'write', instead: "Use default: 'deny' (EPERM)." });
    if (cfg.selfResponse >>> 24 !== 0 && lacks('denyErrno'))
      throw unsupported('denyErrno', { syscall: 'write', instead: "Use self: 'deny' (EPERM)." });
    // Asked before the kernel: its EINVAL does not say which flag it lacks.
    const missing = missingInitFeature(cfg.initFlags);
    if (missing) throw unsupported(missing, { syscall: 'fanotify_init' });
    try {
      this.#native = new binding.Group(
        cfg.initFlags,
        cfg.eventFileFlags,
        {
          permissionClass: cfg.permissionClass,
          allowSelf: cfg.allowSelf,
          selfResponse: cfg.selfResponse,
          timeoutMs: cfg.timeoutMs === Infinity ? -1 : cfg.timeoutMs,
          defaultResponse: cfg.defaultResponse,
          bufferSize: readBufferSize(cfg),
          onExpired: (count) => this.#timeoutWarning.add(count),
        },
        (batch) => this.#onBatch(batch),
      );
    } catch (err) {
      throw fromNative(err, {
        details: `class '${cfg.groupClass}', flags 0x${cfg.initFlags.toString(16)}`,
        variant: cfg.audit ? 'audit' : undefined,
      });
    }
    const native = this.#native;
    this.#owner = {
      respond: (token, decision, audit, releaseFd) => this.#respond(token, decision, audit, releaseFd),
      release: (fd, token) => native.release(fd, token),
      keep: (fd) => native.keep(fd),
    };
    this.#queue = new EventQueue(this.#owner, cfg.report.pidfd);
  }

  /** The fanotify fd (-1 once closed). */
  get fd(): number {
    return this.#native.fd;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Adds events to the mark on `path` (an fd for scope 'mntns'). Returns this. */
  add(path: MarkPath, events: MarkEvents, options?: MarkOptions): this;
  /** With scope 'mntns' the path may be null or undefined: this process's namespace, /proc/self/ns/mnt. */
  add(path: MarkPath | null | undefined, events: MarkEvents, options: MarkOptions & { scope: 'mntns' }): this;
  add(path: MarkPath | null | undefined, events: MarkEvents, options?: MarkOptions): this {
    return this.#mark(C.FAN_MARK_ADD, path, events, options);
  }

  /** Removes events from the mark on `path`. Returns this. */
  remove(path: MarkPath, events: MarkEvents, options?: MarkOptions): this;
  /** With scope 'mntns' the path may be null or undefined: this process's namespace, /proc/self/ns/mnt. */
  remove(path: MarkPath | null | undefined, events: MarkEvents, options: MarkOptions & { scope: 'mntns' }): this;
  remove(path: MarkPath | null | undefined, events: MarkEvents, options?: MarkOptions): this {
    return this.#mark(C.FAN_MARK_REMOVE, path, events, options);
  }

  /** Removes every mark of one scope (default 'inode'). Returns this. */
  flush(scope: Scope = 'inode'): this {
    this.#checkOpen('flush');
    const { flags } = markFlags({ scope });
    try {
      binding.mark(this.#native.fd, C.FAN_MARK_FLUSH | flags, 0, AT_FDCWD, '/');
    } catch (err) {
      throw fromNative(err);
    }
    return this;
  }

  /** Which EINVAL hint fits a refused mark (errors.ts). */
  #markVariant(mask: number, scope: Scope): string | undefined {
    if (mask & C.FAN_PRE_ACCESS) return 'preAccess';
    if (!(mask & NEEDS_FID)) return undefined;
    if (!(this.#config.initFlags & FID_FLAGS)) return 'noFid';
    return scope === 'mount' ? 'mountScope' : undefined;
  }

  // The types above are for TypeScript; JavaScript callers get every check here.
  #mark(action: number, pathArg: unknown, events: unknown, options: MarkOptions = {}): this {
    const verb = action === C.FAN_MARK_ADD ? 'add' : 'remove';
    this.#checkOpen(verb);
    const mask = eventMask(events);
    const { flags, scope } = markFlags(options);
    const missing = action === C.FAN_MARK_ADD ? missingMarkFeature(flags, mask) : undefined;
    let dirfd = AT_FDCWD;
    let path: string | null;
    if (typeof pathArg === 'number') {
      if (!Number.isInteger(pathArg) || pathArg < 0) throw invalidArg('path', pathArg, 'must be an open fd');
      dirfd = pathArg;
      path = null;
    } else if (pathArg === undefined || pathArg === null) {
      if (scope !== 'mntns') throw invalidArg('path', pathArg, "must be a path (only scope 'mntns' has a default)");
      path = '/proc/self/ns/mnt';
    } else if (pathArg instanceof URL) {
      path = fileURLToPath(pathArg);
    } else if (typeof pathArg === 'string' && pathArg.length > 0 && !pathArg.includes('\0')) {
      path = pathArg;
    } else {
      throw invalidArg('path', pathArg, 'must be a non-empty string, a file URL or an fd');
    }
    if (missing) throw unsupported(missing, { syscall: 'fanotify_mark', path: path ?? `fd ${dirfd}` });
    try {
      binding.mark(this.#native.fd, action | flags, mask, dirfd, path);
    } catch (err) {
      throw fromNative(err, {
        path: path ?? `fd ${dirfd}`,
        details: `scope '${scope}', mask 0x${mask.toString(16)}`,
        variant: this.#markVariant(mask, scope),
      });
    }
    return this;
  }

  /**
   * @internal For watch(): the next event already read, or readable now,
   * without waiting; null when there is none (or a next() waits).
   */
  takeNow(): FanotifyEvent | null {
    if (this.#closed || this.#waiter !== null) return null;
    const ev = this.#shift();
    if (ev !== null) return ev;
    const now = this.#native.readAvailable();
    if (now === undefined) return null;
    this.#queueBatch(now);
    return this.#shift();
  }

  /** The async iterator over events, with an optional AbortSignal. */
  events(options: EventsOptions = {}): AsyncIterableIterator<FanotifyEvent> {
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw invalidArg('options.signal', signal, 'must be an AbortSignal');
    this.#abandoned = false;
    this.#readError = null;  // a read error of an earlier loop is not this one's
    const state = this.#iteration(signal);
    const iterator: AsyncIterableIterator<FanotifyEvent> = {
      next: () => {
        if (state.aborted) {
          const err = state.aborted;
          state.aborted = null;
          return Promise.reject(err);
        }
        if (state.finished) return Promise.resolve({ done: true, value: undefined });
        if (signal?.aborted) {
          state.finish();
          return Promise.reject(abortError(signal.reason));
        }
        // Fast path: events already read are handed out without waiting.
        const value = this.#shift();
        if (value !== null) return Promise.resolve({ done: false, value });
        // A mistake of the caller's, refused; the loop that waits goes on (were
        // it ended, the events it waits for would get the default unseen).
        if (this.#waiter)
          return Promise.reject(stateError('ERR_FANOTIFY_CONCURRENT_NEXT', 'another next() is already waiting for this group'));
        return new Promise<IteratorResult<FanotifyEvent>>((resolve, reject) => {
          this.#waiter = { resolve, reject, end: state.finish, iteration: state };
          this.#pump();
        });
      },
      return: async () => {
        state.finish();
        return { done: true, value: undefined };
      },
      throw: async (err) => {
        state.finish();
        throw err;
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    if (signal) abortListeners.register(iterator, state.detach, state);
    return iterator;
  }

  /** The state of a new iteration, listening to `signal`. */
  #iteration(signal: AbortSignal | undefined): Iteration {
    const onAbort = () => {
      if (state.finished) return;
      const err = abortError(signal!.reason);
      state.finish();
      const waiter = this.#waiter;
      if (waiter?.iteration === state) {
        this.#waiter = null;
        waiter.reject(err);
      } else {
        state.aborted = err;  // for the next next()
      }
    };
    const state: Iteration = {
      finished: false,
      aborted: null,
      // Breaking out, throwing in the loop body or aborting: nobody will
      // answer what was handed over, so the default answers it now (and,
      // until a new loop starts, every permission event that comes).
      finish: () => {
        if (state.finished) return;
        state.finished = true;
        this.#abandoned = true;
        state.detach();
        abortListeners.unregister(state);
        this.#endStep();
        this.#answerHandedOver();
      },
      detach: () => signal?.removeEventListener('abort', onAbort),
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    return state;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<FanotifyEvent> {
    return this.events();
  }

  /** Keeps the event loop alive while a read waits (the default). */
  ref(): this {
    if (!this.#closed) this.#native.ref();
    return this;
  }

  /** Lets the process exit while a read waits. */
  unref(): this {
    if (!this.#closed) this.#native.unref();
    return this;
  }

  /**
   * Closes the group: pending permission events get the default answer, fds
   * handed over and not kept are closed, and iterators end.
   */
  async close(): Promise<void> {
    this.#closeNow();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#closeNow();
  }

  #closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#endStep();
    // Answers what is pending, joins the reader, closes every fd handed over.
    this.#native.close();
    this.#timeoutWarning.flush();
    this.#queue.clear();
    this.#pump();
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw stateError('ERR_FANOTIFY_CLOSED', `cannot ${what}: the fanotify group is closed`);
  }

  /** Ends the current step and yields the next queued event, if any. */
  #shift(): FanotifyEvent | null {
    this.#endStep();
    const ev = this.#queue.shift();
    this.#current = ev;
    return ev;
  }

  /**
   * Settles the waiting next(), if any, when it can be: with an event, the end
   * (closed) or a read error. Otherwise makes sure a read is armed: a busy
   * group has events now (no loop turn), else the native side calls #onBatch
   * when some come.
   */
  #pump(): void {
    const waiter = this.#waiter;
    if (waiter === null) return;
    let result: IteratorResult<FanotifyEvent> | null = null;
    let error: unknown = null;
    try {
      for (;;) {
        const ev = this.#shift();
        if (ev !== null) {
          result = { done: false, value: ev };
          break;
        }
        if (this.#closed) {
          result = { done: true, value: undefined };
          break;
        }
        if (this.#readError) {
          error = this.#readError;
          this.#readError = null;
          break;
        }
        const now = this.#native.read();
        if (now === undefined) return;  // armed: #onBatch pumps again
        this.#queueBatch(now);
      }
    } catch (err) {
      error = err;
    }
    this.#waiter = null;
    if (result !== null && !result.done) return waiter.resolve(result);
    waiter.end();
    if (result !== null) waiter.resolve(result);
    else waiter.reject(error);
  }

  /** A batch from the native side, read while a next() waited. */
  #onBatch(raw: RawBatch): void {
    this.#queueBatch(raw);
    this.#pump();
  }

  #queueBatch(raw: RawBatch): void {
    if (this.#closed) return;
    if (typeof raw === 'number') {
      // For the loop that runs; none runs once a loop ended (events() clears it too).
      if (!this.#abandoned) this.#readError = systemError(raw, 'read');
    } else {
      const batch = batchViews(raw);
      const rows = batch.events.length / EVENT_STRIDE;
      const queue = this.#queue;
      let kept = 0, fds = 0, overflow = batch.dropped > 0;  // dropped: answered by the addon
      let skip: Uint8Array | null = null;
      for (let i = 0; i < rows; i++) {
        const isPermission = rowIsPermission(batch, i);
        const holdsFd = !isPermission && rowFd(batch, i) >= 0;
        const full = queue.size + kept >= MAX_QUEUED || (holdsFd && queue.fds + fds >= MAX_QUEUED_FDS);
        if (full || (this.#abandoned && isPermission)) {
          this.#drop(batch, i, isPermission);
          (skip ??= new Uint8Array(rows))[i] = 1;
          overflow ||= full;
          continue;
        }
        kept++;
        if (holdsFd) fds++;
      }
      queue.pushBatch(batch, rows, skip, kept, fds);
      if (overflow) queue.pushOverflow();
    }
  }

  /** Answers (with the default) and closes an event nobody will see. */
  #drop(batch: Batch, row: number, isPermission: boolean): void {
    const ev = FanotifyEvent._fromBatch(batch, row, this.#owner, this.#config.report.pidfd);
    if (isPermission) ev._answerDefault(this.#native);
    ev._release();
  }

  #endStep(): void {
    const ev = this.#current;
    this.#current = null;
    ev?._release();
  }

  #answerHandedOver(): void {
    if (!this.#config.permissionClass || this.#closed) return;
    this.#native.answerPending();
    this.#queue.markAnswered();
  }

  #respond(token: number, decision: Decision, audit: unknown, releaseFd: number): number {
    const cfg = this.#config;
    const info = typeof audit === 'boolean' ? undefined : auditRuleInfo(audit, 'options.audit');
    if (audit !== false && !cfg.audit) throw invalidArg('options.audit', audit, 'needs the group option audit: true (FAN_ENABLE_AUDIT)');
    let response = decisionToResponse(decision, 'decision', cfg.groupClass, audit !== false);
    // Refused before anything is written: the event stays pending, its fd open.
    if (response >>> 24 !== 0 && lacks('denyErrno'))
      throw unsupported('denyErrno', { syscall: 'write', instead: "Answer 'deny' (EPERM) instead." });
    if (info && lacks('auditRule'))
      throw unsupported('auditRule', { syscall: 'write', instead: 'Answer with { audit: true } instead.' });
    if (info) response = (response | C.FAN_INFO) >>> 0;
    return this.#native.respond(token, response, releaseFd, info);
  }
}

// The kernel opens an fd for every fd event it copies out in one read(), so a
// big buffer can mean thousands of open fds at once (and EMFILE). Groups that
// report file ids get FAN_NOFD events and can read 64 KiB at a time.
function readBufferSize(cfg: GroupConfig): number {
  const noFds = (cfg.report.fid || cfg.report.dirFid || cfg.report.mount) && !cfg.permissionClass;
  return noFds ? 64 * 1024 : 4096;
}
