// One line on stderr (process.emitWarning) when permission events are
// answered by their timeout: the process that caused each one waited in the
// kernel all that time, and without this nothing anywhere says so.
//
// The first is told at once; later ones at most once a minute, counted, so
// that a stuck consumer fills no log. What is left is told at close().
import type { Decision } from './options';

export const TIMEOUT_WARNING_CODE = 'FANOTIFY_PERMISSION_TIMEOUT';
const QUIET_MS = 60_000;

export class TimeoutWarning {
  readonly #timeoutMs: number;
  readonly #decision: Decision;
  #unsaid = 0;
  #lastAt = -Infinity;
  #timer: NodeJS.Timeout | null = null;

  constructor(timeoutMs: number, decision: Decision) {
    this.#timeoutMs = timeoutMs;
    this.#decision = decision;
  }

  /** `count` more events were answered by their timeout. */
  add(count: number): void {
    this.#unsaid += count;
    const wait = this.#lastAt + QUIET_MS - Date.now();
    if (wait <= 0) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), wait).unref();
  }

  /** Says what is unsaid now (close() calls it). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#unsaid === 0) return;
    const n = this.#unsaid;
    this.#unsaid = 0;
    this.#lastAt = Date.now();
    const what = n === 1 ? '1 permission event was' : `${n} permission events were`;
    process.emitWarning(
      `fanotify: ${what} answered by the timeout (permission.timeoutMs: ${this.#timeoutMs} ms) with the default ` +
        `${JSON.stringify(this.#decision)}, after the process that caused it waited that long. ` +
        'Keep a loop reading the group and answer each event with ev.respond(), or change permission.timeoutMs.',
      { type: 'FanotifyWarning', code: TIMEOUT_WARNING_CODE },
    );
  }
}
