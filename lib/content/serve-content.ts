// serveContent(stubDir, fetch): hierarchical storage on pre-content events
// (FAN_PRE_ACCESS, Linux 6.14+). The first access to a range of a stub made by
// populate() waits in the kernel while fetch() supplies the bytes, which are
// written through the event fd (opened read-write; writes through it make no
// events) before the access is allowed.
import * as fs from 'node:fs';
import * as path from 'node:path';

import '../core/dispose';
import { errnoNumber } from '../core/errno';
import { fromNative, invalidArg, systemError } from '../core/errors';
import { FanotifyEvent } from '../core/event';
import { Fanotify } from '../core/group';
import { Decision } from '../core/options';
import { has, lacks, unsupported } from '../kernel/capabilities';
import { StubState } from './stub-state';

export interface FetchRequest {
  /** The stub's path relative to stubDir. */
  path: string;
  offset: number;
  length: number;
  /** Aborted when the result is not wanted any more: timeoutMs passed, or the server closes. */
  signal: AbortSignal;
}

/** Returns exactly `length` bytes of the file at `offset`. */
export type Fetch = (request: FetchRequest) => Promise<Uint8Array> | Uint8Array;

/**
 * Why a reader was not served, or what the server could not do. `code` is an
 * errno name for system errors (with `errno`, `syscall`), else
 * ERR_FANOTIFY_FETCH (fetch threw or returned the wrong length; `cause`) or
 * ERR_FANOTIFY_FETCH_TIMEOUT.
 */
export interface ContentError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  /** The stub's absolute path, where known. */
  path?: string;
  /** The reading process, where known. */
  pid?: number;
}

export interface ServeContentOptions {
  /**
   * Fetch in aligned chunks of this many bytes (default 1 MiB): the kernel asks
   * page by page; fewer, larger fetches serve sequential readers better.
   */
  chunkSize?: number;
  /**
   * A reader waits at most this long for a fetch, then gets EIO and the fetch's
   * result is dropped (default 60000). If the JS thread is blocked, the native
   * layer answers EIO one second later.
   */
  timeoutMs?: number;
  /**
   * Called with each ContentError, after the reader concerned was answered.
   * The server serves on whatever it reports; stats counts them too. An
   * exception thrown here is rethrown as an uncaught exception.
   */
  onError?: (error: ContentError) => void;
}

export interface ContentServerStats {
  /** Fetches whose bytes were written into a stub. */
  fetches: number;
  bytesFetched: number;
  filesCompleted: number;
  /** Reads that got an error instead of content (EIO from us, EPERM from the kernel). */
  failures: number;
  /** Fetches that took longer than timeoutMs (their readers got EIO). */
  timeouts: number;
  /** Accesses the kernel could not hand over: a failed read() of the group, or an event without an fd. */
  readErrors: number;
  /** Fill states that could not be saved (the read was served all the same). */
  stateErrors: number;
}

interface Served {
  ino: number;
  state: StubState;
  rel: string;
  /** Settles when the fills queued so far are done. */
  lock: Promise<void>;
}

// The native deadline comes this much after the one JavaScript keeps: it
// answers only for a blocked JS thread, so that a late fetch is always known
// to be late before its reader was answered.
const NATIVE_BACKSTOP_MS = 1000;
// setTimeout's limit: longer timeouts are left to the native layer.
const MAX_TIMER_MS = 2 ** 31 - 1;
const EIO: Decision = { deny: 'EIO' };

export class ContentServer implements AsyncDisposable {
  readonly stats: ContentServerStats = {
    fetches: 0, bytesFetched: 0, filesCompleted: 0, failures: 0, timeouts: 0, readErrors: 0, stateErrors: 0,
  };
  readonly #fan: Fanotify;
  readonly #root: string;
  readonly #fetch: Fetch;
  readonly #chunk: number;
  readonly #timeoutMs: number;
  readonly #onError: ((error: ContentError) => void) | undefined;
  // By inode number: a stub renamed while served is still the same stub.
  readonly #served = new Map<number, Served>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #loop: Promise<void> | null = null;
  #closing: Promise<void> | null = null;

  // Made and started by serveContent(), after its checks: not part of the public type.
  private constructor(root: string, fetch: Fetch, options: ServeContentOptions) {
    this.#root = fs.realpathSync(root);
    this.#fetch = fetch;
    this.#chunk = options.chunkSize ?? 1 << 20;
    this.#timeoutMs = options.timeoutMs ?? 60000;
    this.#onError = options.onError;
    // Named for what it serves by, pre-content events (FAN_DENY_ERRNO came with them).
    if (lacks('preAccess')) throw unsupported('preAccess', { syscall: 'fanotify_mark', path: this.#root });
    this.#fan = new Fanotify({
      class: 'pre-content',
      eventFileFlags: 'rw',
      unlimitedMarks: true,
      // An fd the kernel cannot open (EMFILE, a read-only mount) comes as an
      // event, which the kernel denies, instead of failing the read().
      report: { fdError: has('reportFdError') },
      permission: {
        timeoutMs: this.#timeoutMs + NATIVE_BACKSTOP_MS,
        // A reader that cannot be served must not read zeros: EIO.
        default: EIO,
        // Nor this process: its reads cannot be served (the fill needs the JS
        // thread, which may be the one blocked in the read), so they fail at once.
        self: EIO,
      },
    });
  }

  /** @internal A started server, or the error that stopped it (closed again). */
  static async _serve(root: string, fetch: Fetch, options: ServeContentOptions): Promise<ContentServer> {
    const server = new ContentServer(root, fetch, options);
    try {
      await server.start();
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** @internal Marks every unfilled stub under the root and starts answering. */
  async start(): Promise<void> {
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await fs.promises.readdir(dir, { withFileTypes: true })) {
        const p = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(p);
        else if (entry.isFile()) this.#serve(p);
      }
    };
    await walk(this.#root);
    this.#loop = this.#run();
  }

  #serve(file: string): void {
    const state = StubState.read(file);
    if (!state) return;
    if (state.complete) {
      this.#finish(file, state);
      return;
    }
    // An inode mark on each unfilled stub: filled files cost nothing.
    this.#fan.add(file, ['preAccess']);
    fs.chmodSync(file, state.mode);  // online while served
    const ino = fs.statSync(file).ino;
    this.#served.set(ino, { ino, state, rel: path.relative(this.#root, file), lock: Promise.resolve() });
  }

  #finish(file: string, state: StubState): void {
    fs.chmodSync(file, state.mode);
    StubState.clear(file);
  }

  async #run(): Promise<void> {
    let failedInARow = 0;
    while (!this.#fan.closed) {
      try {
        for await (const ev of this.#fan) {
          failedInARow = 0;
          // #handle answers on every path; a bug that made it throw must not end the process.
          const work = this.#handle(ev).catch((err) => this.#report(err)).finally(() => this.#inflight.delete(work));
          this.#inflight.add(work);
        }
      } catch (err) {
        if (this.#fan.closed) break;
        // A failed read(): the kernel denied that access already. Serve on, in
        // a new loop; after a macrotask, and slower while reads keep failing.
        this.stats.readErrors++;
        this.stats.failures++;
        this.#report(readError(err));
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 2 ** failedInARow++)));
      }
    }
  }

  async #handle(ev: FanotifyEvent): Promise<void> {
    const range = ev.range;
    if (ev.fd === null || !range) return this.#unservable(ev);
    let answered = false;
    /** Answers once; false when it was answered already (by the native backstop, or close()). */
    const answer = (decision: Decision): boolean => {
      if (answered) return false;
      answered = true;
      try {
        ev.respond(decision);
        return true;
      } catch {
        return false;
      }
    };
    // Aborted when the result is not wanted: the deadline passed, or close().
    const wanted = new AbortController();
    const onClose = (): void => wanted.abort(this.#abort.signal.reason);
    this.#abort.signal.addEventListener('abort', onClose, { once: true });
    let served: Served | undefined;
    const timer = this.#timeoutMs <= MAX_TIMER_MS ? setTimeout(() => {
      if (!answer(EIO)) return;
      this.stats.timeouts++;
      this.stats.failures++;
      const err = timeoutError(served?.rel, this.#abs(served), range, this.#timeoutMs, ev.pid);
      wanted.abort(err);
      this.#report(err);
    }, this.#timeoutMs) : undefined;
    // This handler's own fd of the stub: ev.fd is closed when the event is
    // answered (by the deadline too), and its number may then name another file.
    let fd = -1;
    try {
      fd = ev.keepFd()!;
      served = this.#served.get(fs.fstatSync(fd).ino);
      // Not a stub (any more): nothing to fill.
      if (served) await this.#fillRange(fd, served, range.offset, range.count, wanted.signal);
      wanted.signal.throwIfAborted();
      // Closed before the answer: an exec allowed while our writable fd is open fails with ETXTBSY.
      const own = fd;
      fd = -1;
      fs.closeSync(own);
      if (!answer('allow')) {
        // Answered EIO before we could: by the native deadline (the JS thread
        // was blocked past it), or when a failed read() ended the loop.
        this.stats.failures++;
        this.#report(answeredError(served?.rel, this.#abs(served), range, ev.pid));
      }
    } catch (err) {
      // Late or closed: answered, counted and reported already.
      if (wanted.signal.aborted) return;
      if (!answer(EIO)) return;  // never zeros passed off as content
      this.stats.failures++;
      const e = fromNative(err, { path: this.#abs(served) }) as ContentError;
      if (e.pid === undefined) e.pid = ev.pid;
      this.#report(e);
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener('abort', onClose);
      if (fd >= 0) closeQuietly(fd);
    }
  }

  /** An event without an fd: the kernel could not open the stub for us, and denied the access itself. */
  #unservable(ev: FanotifyEvent): void {
    this.stats.readErrors++;
    this.stats.failures++;
    if (ev.fdError) {
      this.#report(fdError(ev.fdError, ev.pid));
      return;
    }
    const answered = (() => {
      try {
        ev.respond(EIO);
        return true;
      } catch {
        return false;
      }
    })();
    const err = new Error(`a pre-content event without ${ev.fd === null ? 'an fd' : 'a range'} (pid ${ev.pid}); ${answered ? 'answered EIO' : 'answered already'}`) as ContentError;
    err.code = 'ERR_FANOTIFY_UNEXPECTED_EVENT';
    err.pid = ev.pid;
    this.#report(err);
  }

  /** Fills what [offset, offset + count) misses, one fill at a time per file. */
  async #fillRange(fd: number, served: Served, offset: number, count: number, signal: AbortSignal): Promise<void> {
    // Concurrent readers of one range cause one fetch. The lock passes on only
    // when the fills before it are done, also when this one gives up early.
    const previous = served.lock;
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    served.lock = previous.then(() => mine);
    try {
      await abortable(() => previous, signal);
      await this.#fill(fd, served, offset, count, signal);
      signal.throwIfAborted();
      if (served.state.complete && this.#served.has(served.ino)) this.#complete(fd, served);
    } finally {
      release();
    }
  }

  async #fill(fd: number, served: Served, offset: number, count: number, signal: AbortSignal): Promise<void> {
    const start = Math.floor(offset / this.#chunk) * this.#chunk;
    const end = Math.ceil((offset + count) / this.#chunk) * this.#chunk;
    // Split at chunk boundaries: one mmap event may cover a whole file.
    const pieces: [number, number][] = [];
    for (const [a0, b0] of served.state.missing(start, end - start))
      for (let a = a0; a < b0; a = Math.min(b0, (Math.floor(a / this.#chunk) + 1) * this.#chunk))
        pieces.push([a, Math.min(b0, (Math.floor(a / this.#chunk) + 1) * this.#chunk)]);
    if (pieces.length === 0) return;
    // Writes change the stub's times; the copy keeps the source's.
    const times = fs.fstatSync(fd, { bigint: true });
    let wrote = false;
    try {
      for (const [a, b] of pieces) {
        await this.#fillPiece(fd, served, a, b, signal);
        wrote = true;
      }
    } finally {
      if (wrote) fs.futimesSync(fd, Number(times.atimeNs) / 1e9, Number(times.mtimeNs) / 1e9);
    }
  }

  async #fillPiece(fd: number, served: Served, a: number, b: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    let data: Uint8Array;
    try {
      data = await abortable(() => this.#fetch({ path: served.rel, offset: a, length: b - a, signal }), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw fetchError(served.rel, this.#abs(served), a, b, `failed: ${(err as Error)?.message ?? err}`, err);
    }
    // Nothing is written once the reader was answered: this check and the writes are one synchronous step.
    signal.throwIfAborted();
    if (!(data instanceof Uint8Array) || data.length !== b - a)
      throw fetchError(served.rel, this.#abs(served), a, b,
        `returned ${data instanceof Uint8Array ? `${data.length} bytes` : typeof data}, not ${b - a} bytes: fetch must return exactly length bytes`);
    let written = 0;
    try {
      while (written < data.length) written += fs.writeSync(fd, data, written, data.length - written, a + written);
    } catch (err) {
      throw withAdvice(systemError(Math.abs((err as NodeJS.ErrnoException).errno ?? 5), 'write', { path: this.#abs(served) }),
        'the fetched bytes could not be written into the stub, so the reader got EIO');
    }
    this.stats.fetches++;
    this.stats.bytesFetched += data.length;
    served.state.add(a, b);
    this.#saveState(fd, served);
  }

  /** Remembered across restarts; a failure costs a fetch again after a restart, never this read. */
  #saveState(fd: number, served: Served): void {
    try {
      served.state.write(fd);
    } catch (err) {
      this.stats.stateErrors++;
      this.#report(withAdvice(fromNative(err, { path: this.#abs(served) }) as ContentError,
        'the fill state could not be saved; the read was served, and a server started later fetches again what the saved state lacks'));
    }
  }

  #complete(fd: number, served: Served): void {
    try {
      StubState.clear(fd);
    } catch (err) {
      // The saved state says complete: the next start() clears it.
      this.stats.stateErrors++;
      this.#report(withAdvice(fromNative(err, { path: this.#abs(served) }) as ContentError, 'the filled stub keeps its xattr until the next start'));
    }
    const file = path.join(this.#root, served.rel);
    try {
      this.#fan.remove(file, ['preAccess']);  // costs nothing from now on
    } catch {
      // renamed away: the mark goes with the group
    }
    this.#served.delete(served.ino);
    this.stats.filesCompleted++;
  }

  #abs(served: Served | undefined): string | undefined {
    return served && path.join(this.#root, served.rel);
  }

  #report(err: ContentError): void {
    if (process.env.FANOTIFY_DEBUG) console.error('serveContent:', err);
    if (!this.#onError) return;
    try {
      this.#onError(err);
    } catch (thrown) {
      process.nextTick(() => {
        throw thrown;
      });
    }
  }

  /**
   * Stops serving: fetches in flight are aborted, waiting readers get EIO, and
   * unfilled stubs go offline (mode 000) again.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** `await using server = await serveContent(...)`: closed at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#abort.abort(new Error('the content server was closed'));
    await this.#fan.close();  // answers every waiting reader with the default, EIO
    await Promise.allSettled([...this.#inflight]);
    await this.#loop;
    for (const s of this.#served.values()) {
      try {
        fs.chmodSync(path.join(this.#root, s.rel), 0);
      } catch {
        // moved or removed meanwhile
      }
    }
    this.#served.clear();
  }
}

/** fetch() raced against the signal: a fetch that never settles cannot hold close() up. */
function abortable<T>(start: () => Promise<T> | T, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve()
      .then(start)
      .then(resolve, reject)
      .finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // nothing to do about it
  }
}

function withAdvice<E extends Error>(err: E, advice: string): E {
  err.message = `${err.message}: ${advice}`;
  return err;
}

function fetchError(rel: string, abs: string | undefined, a: number, b: number, what: string, cause?: unknown): ContentError {
  const err = new Error(`fetch of '${rel}' [${a}, ${b}) ${what}; the reader got EIO, and the next read of that range fetches again`,
    cause === undefined ? undefined : { cause }) as ContentError;
  err.code = 'ERR_FANOTIFY_FETCH';
  if (abs !== undefined) err.path = abs;
  return err;
}

function timeoutError(rel: string | undefined, abs: string | undefined, range: { offset: number; count: number },
  timeoutMs: number, pid: number): ContentError {
  const what = rel === undefined ? 'a stub' : `'${rel}'`;
  const err = new Error(
    `the read of ${what} [${range.offset}, ${range.offset + range.count}) by pid ${pid} was not served within timeoutMs (${timeoutMs} ms): ` +
      'the reader got EIO, and what fetch returns later is dropped. Raise timeoutMs or make fetch faster.',
  ) as ContentError;
  err.code = 'ERR_FANOTIFY_FETCH_TIMEOUT';
  if (abs !== undefined) err.path = abs;
  err.pid = pid;
  return err;
}

function answeredError(rel: string | undefined, abs: string | undefined, range: { offset: number; count: number },
  pid: number): ContentError {
  const what = rel === undefined ? 'a stub' : `'${rel}'`;
  const err = new Error(
    `the read of ${what} [${range.offset}, ${range.offset + range.count}) by pid ${pid} was answered EIO before it was served ` +
      '(the JS thread was blocked past the deadline, or a failed read() of the group ended the loop); the bytes were kept',
  ) as ContentError;
  err.code = 'ERR_FANOTIFY_FETCH_TIMEOUT';
  if (abs !== undefined) err.path = abs;
  err.pid = pid;
  return err;
}

// Why the kernel cannot open a stub read-write for the server, and what to do.
function openAdvice(code: string): string {
  if (code === 'EROFS')
    return 'a stub reached through a read-only mount cannot be filled; read it through a writable mount of the filesystem';
  if (code === 'EMFILE' || code === 'ENFILE')
    return 'the serving process is out of file descriptors; raise its limit (ulimit -n) or serve fewer readers at once';
  return 'the kernel could not open the stub read-write for the server';
}

/** An event the kernel could not open an fd for (report.fdError). */
function fdError(code: string, pid: number): ContentError {
  const err = withAdvice(systemError(errnoNumber(code) ?? 5, 'open') as ContentError,
    `the kernel could not open a stub for the server and denied that read of pid ${pid} (EPERM): ${openAdvice(code)}`);
  err.pid = pid;
  return err;
}

/** A failed read() of the group (kernels without report.fdError). */
function readError(err: unknown): ContentError {
  const e = err as ContentError;
  if (typeof e?.code !== 'string') return e;
  return withAdvice(e, `the kernel denied that read (EPERM), and the server goes on: ${openAdvice(e.code)}`);
}

/**
 * Serves the stubs under stubDir (made by populate()): the first access to a
 * range fetches it. Needs CAP_SYS_ADMIN and a filesystem with pre-content
 * support (ext4, xfs, btrfs). This process's own reads of stubs that are not
 * complete fail with EIO (serving them could deadlock): read them elsewhere.
 */
export async function serveContent(stubDir: string, fetch: Fetch, options: ServeContentOptions = {}): Promise<ContentServer> {
  if (typeof stubDir !== 'string' || stubDir === '') throw invalidArg('stubDir', stubDir, 'must be a directory path');
  if (typeof fetch !== 'function') throw invalidArg('fetch', fetch, 'must be a function ({ path, offset, length }) => bytes');
  const chunk = options.chunkSize ?? 1 << 20;
  if (!Number.isInteger(chunk) || chunk < 4096 || chunk % 4096 !== 0)
    throw invalidArg('options.chunkSize', chunk, 'must be a multiple of 4096');
  const timeoutMs = options.timeoutMs ?? 60000;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0)
    throw invalidArg('options.timeoutMs', timeoutMs, 'must be a number >= 0 (Infinity: never)');
  if (options.onError !== undefined && typeof options.onError !== 'function')
    throw invalidArg('options.onError', options.onError, 'must be a function (error) => void');
  return ContentServer._serve(stubDir, fetch, options);
}
