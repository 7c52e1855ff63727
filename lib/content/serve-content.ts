// serveContent(stubDir, fetch): hierarchical storage on pre-content events
// (FAN_PRE_ACCESS, Linux 6.14+). The first access to a range of a stub made by
// populate() waits in the kernel while fetch() supplies the bytes, which are
// written through the event fd (opened read-write; writes through it make no
// events) before the access is allowed.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { invalidArg } from '../core/errors';
import { FanotifyEvent } from '../core/event';
import { Fanotify } from '../core/group';
import { lacks, unsupported } from '../kernel/capabilities';
import { StubState } from './stub-state';

export interface FetchRequest {
  /** The stub's path relative to stubDir. */
  path: string;
  offset: number;
  length: number;
  /** Aborted when the server closes: the result is not wanted any more. */
  signal: AbortSignal;
}

/** Returns exactly `length` bytes of the file at `offset`. */
export type Fetch = (request: FetchRequest) => Promise<Uint8Array> | Uint8Array;

export interface ServeContentOptions {
  /**
   * Fetch in aligned chunks of this many bytes (default 1 MiB): the kernel asks
   * page by page; fewer, larger fetches serve sequential readers better.
   */
  chunkSize?: number;
  /** A reader waits at most this long for a fetch, then gets EIO (default 60000). */
  timeoutMs?: number;
}

export interface ContentServerStats {
  fetches: number;
  bytesFetched: number;
  filesCompleted: number;
  failures: number;
}

interface Served {
  ino: number;
  state: StubState;
  rel: string;
  lock: Promise<void>;
}

export class ContentServer {
  readonly stats: ContentServerStats = { fetches: 0, bytesFetched: 0, filesCompleted: 0, failures: 0 };
  readonly #fan: Fanotify;
  readonly #root: string;
  readonly #fetch: Fetch;
  readonly #chunk: number;
  // By inode number: a stub renamed while served is still the same stub.
  readonly #served = new Map<number, Served>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #loop: Promise<void> | null = null;
  #closing: Promise<void> | null = null;

  constructor(root: string, fetch: Fetch, options: ServeContentOptions) {
    this.#root = fs.realpathSync(root);
    this.#fetch = fetch;
    this.#chunk = options.chunkSize ?? 1 << 20;
    // Named for what it serves by, pre-content events (FAN_DENY_ERRNO came with them).
    if (lacks('preAccess')) throw unsupported('preAccess', { syscall: 'fanotify_mark', path: this.#root });
    // A reader that cannot be served must not read zeros: EIO on timeout.
    this.#fan = new Fanotify({
      class: 'pre-content',
      eventFileFlags: 'rw',
      unlimitedMarks: true,
      permission: { timeoutMs: options.timeoutMs ?? 60000, default: { deny: 'EIO' } },
    });
  }

  /** Marks every unfilled stub under the root and starts answering. */
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
    for await (const ev of this.#fan) {
      const work = this.#handle(ev).finally(() => this.#inflight.delete(work));
      this.#inflight.add(work);
    }
  }

  async #handle(ev: FanotifyEvent): Promise<void> {
    const fd = ev.fd;
    const range = ev.range;
    try {
      if (fd === null || !range) throw new Error('a pre-content event without fd or range');
      const served = this.#served.get(fs.fstatSync(fd).ino);
      if (!served) {
        ev.respond('allow');  // not a stub (any more)
        return;
      }
      // One fill at a time per file: concurrent readers of one range cause one fetch.
      const previous = served.lock;
      let release!: () => void;
      served.lock = new Promise<void>((r) => (release = r));
      await previous;
      try {
        // After close() the fd may name another file already: touch nothing.
        this.#abort.signal.throwIfAborted();
        await this.#fill(fd, served, range.offset, range.count);
        this.#abort.signal.throwIfAborted();
        // Before the answer, which closes the fd.
        if (served.state.complete && this.#served.has(served.ino)) this.#complete(fd, served);
      } finally {
        release();
      }
      ev.respond('allow');
    } catch (err) {
      if (process.env.FANOTIFY_DEBUG) console.error('serveContent:', err);
      this.stats.failures++;
      try {
        ev.respond({ deny: 'EIO' });  // never zeros passed off as content
      } catch {
        // answered already (timeout, close)
      }
    }
  }

  async #fill(fd: number, served: Served, offset: number, count: number): Promise<void> {
    const start = Math.floor(offset / this.#chunk) * this.#chunk;
    const end = Math.ceil((offset + count) / this.#chunk) * this.#chunk;
    // Split at chunk boundaries: one mmap event may cover a whole file.
    const pieces: [number, number][] = [];
    for (const [a0, b0] of served.state.missing(start, end - start))
      for (let a = a0; a < b0; a = Math.min(b0, (Math.floor(a / this.#chunk) + 1) * this.#chunk))
        pieces.push([a, Math.min(b0, (Math.floor(a / this.#chunk) + 1) * this.#chunk)]);
    if (pieces.length === 0) return;
    const signal = this.#abort.signal;
    // Writes change the stub's times; the copy keeps the source's.
    const times = fs.fstatSync(fd, { bigint: true });
    try {
      for (const [a, b] of pieces) await this.#fillPiece(fd, served, a, b, signal);
    } finally {
      if (!signal.aborted) fs.futimesSync(fd, Number(times.atimeNs) / 1e9, Number(times.mtimeNs) / 1e9);
    }
  }

  async #fillPiece(fd: number, served: Served, a: number, b: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const data = await abortable(() => this.#fetch({ path: served.rel, offset: a, length: b - a, signal }), signal);
    signal.throwIfAborted();
    if (!(data instanceof Uint8Array) || data.length !== b - a)
      throw new Error(`fetch returned ${data instanceof Uint8Array ? data.length : typeof data} bytes, not ${b - a}`);
    let written = 0;
    while (written < data.length) written += fs.writeSync(fd, data, written, data.length - written, a + written);
    this.stats.fetches++;
    this.stats.bytesFetched += data.length;
    served.state.add(a, b);
    served.state.write(fd);  // remembered across restarts
  }

  #complete(fd: number, served: Served): void {
    StubState.clear(fd);
    const file = path.join(this.#root, served.rel);
    try {
      this.#fan.remove(file, ['preAccess']);  // costs nothing from now on
    } catch {
      // renamed away: the mark goes with the group
    }
    this.#served.delete(served.ino);
    this.stats.filesCompleted++;
  }

  /**
   * Stops serving: fetches in flight are aborted, waiting readers get EIO, and
   * unfilled stubs go offline (mode 000) again.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
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
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve()
      .then(start)
      .then(resolve, reject)
      .finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Serves the stubs under stubDir (made by populate()): the first access to a
 * range fetches it. Needs CAP_SYS_ADMIN and a filesystem with pre-content
 * support (ext4, xfs, btrfs). This process's own reads of stubs are not
 * served (they are allowed at once, to avoid deadlocks): read them elsewhere.
 */
export async function serveContent(stubDir: string, fetch: Fetch, options: ServeContentOptions = {}): Promise<ContentServer> {
  if (typeof stubDir !== 'string' || stubDir === '') throw invalidArg('stubDir', stubDir, 'must be a directory path');
  if (typeof fetch !== 'function') throw invalidArg('fetch', fetch, 'must be a function ({ path, offset, length }) => bytes');
  const chunk = options.chunkSize ?? 1 << 20;
  if (!Number.isInteger(chunk) || chunk < 4096 || chunk % 4096 !== 0)
    throw invalidArg('options.chunkSize', chunk, 'must be a multiple of 4096');
  const server = new ContentServer(stubDir, fetch, options);
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}
