// Reading watchers in tests with bounded waits: WatchRecorder for watch(),
// ErrorReader for watchErrors().
import { ErrorWatcher, FsErrorEvent, Watcher, WatchEvent } from '../lib';
import { bound, sleep, within } from './helpers';

/** Reads a watcher in the background into `seen`, so tests can wait on what arrived. */
export class WatchRecorder {
  readonly seen: WatchEvent[] = [];
  error: unknown = null;
  readonly done: Promise<void>;

  constructor(readonly watcher: Watcher) {
    this.done = (async () => {
      try {
        for (;;) {
          const r = await watcher.next();
          if (r.done) return;
          this.seen.push(r.value);
        }
      } catch (err) {
        this.error = err;
      }
    })();
  }

  /** The first event matching pred, waiting up to ms for it. */
  async waitFor(pred: (ev: WatchEvent) => boolean, what: string, ms = 5000): Promise<WatchEvent> {
    const deadline = Date.now() + bound(ms);
    for (;;) {
      const ev = this.seen.find(pred);
      if (ev) return ev;
      if (this.error) throw this.error;
      if (Date.now() > deadline) {
        const shown = this.seen.slice(-30).map((e) => `${e.path} [${e.events.join(',')}]${e.isDir ? ' dir' : ''}`);
        throw new Error(`no ${what} within ${ms} ms; last seen:\n  ${shown.join('\n  ')}`);
      }
      await sleep(10);
    }
  }

  /** Every event name seen for a path (the kernel merges events on one name still queued). */
  eventsAt(p: string): Set<string> {
    const out = new Set<string>();
    for (const ev of this.seen) if (ev.path === p) for (const e of ev.events) out.add(e);
    return out;
  }

  async close(): Promise<void> {
    await this.watcher.close();
    await within(5000, this.done, 'the recorder loop ending');
  }
}

/** Polls until check() is true; fails after ms. */
export async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + bound(ms);
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

/**
 * Reads a watcher with bounded waits. A next() that is still pending when a
 * wait times out is kept for the following call: the watcher allows only one
 * next() at a time.
 */
export class ErrorReader {
  #pending: Promise<IteratorResult<FsErrorEvent>> | null = null;

  constructor(readonly watcher: ErrorWatcher) {}

  /** The next event, or null when none arrives within ms. */
  async next(ms: number): Promise<FsErrorEvent | null> {
    this.#pending ??= this.watcher.next();
    const pending = this.#pending;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((res) => {
      timer = setTimeout(() => res('timeout'), ms);
    });
    const r = await Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
    if (r === 'timeout') return null;
    this.#pending = null;
    if (r.done) throw new Error('the watcher ended unexpectedly');
    return r.value;
  }

  /** The next event matching `match` (others are skipped); fails after ms. */
  async first(what: string, match: (e: FsErrorEvent) => boolean = () => true, ms = 5000): Promise<FsErrorEvent> {
    return within(ms, (async () => {
      for (;;) {
        const e = await this.next(ms);
        if (e && match(e)) return e;
      }
    })(), `waiting for ${what}`);
  }

  /** Every event arriving until `quietMs` pass without one (bounded by maxMs in all). */
  async drain(quietMs: number, match: (e: FsErrorEvent) => boolean = () => true, maxMs = 5000): Promise<FsErrorEvent[]> {
    const out: FsErrorEvent[] = [];
    const deadline = Date.now() + bound(maxMs);
    while (Date.now() < deadline) {
      const e = await this.next(quietMs);
      if (!e) break;
      if (match(e)) out.push(e);
    }
    return out;
  }
}
