// The events a group has read and not yielded yet. Batches stay as the addon
// handed them over, and their rows become FanotifyEvent objects one at a time,
// as they are yielded: objects made for a whole 64 KiB batch at once (about
// 900 events) lived through young-generation GCs, which were a fifth of the
// library's cost per event when draining a backlog.
import { Batch, EventOwner, FanotifyEvent } from './event';

interface Entry {
  batch: Batch;
  next: number;  // the next row to yield
  end: number;
  skip: Uint8Array | null;  // rows dropped when the batch came in
  answered: boolean;  // its permission events were answered with the default
}

export class EventQueue {
  readonly #owner: EventOwner;
  readonly #reportsPidfd: boolean;
  #entries: (Entry | FanotifyEvent)[] = [];
  #head = 0;
  #size = 0;
  #fds = 0;
  #overflowQueued = false;

  constructor(owner: EventOwner, reportsPidfd: boolean) {
    this.#owner = owner;
    this.#reportsPidfd = reportsPidfd;
  }

  /** Events not yielded yet. */
  get size(): number {
    return this.#size;
  }

  /** Of those, notification events holding an event fd. */
  get fds(): number {
    return this.#fds;
  }

  /** Queues a batch's rows but those marked in `skip`; `kept` and `fds` count what is queued. */
  pushBatch(batch: Batch, rows: number, skip: Uint8Array | null, kept: number, fds: number): void {
    if (kept === 0) return;
    this.#entries.push({ batch, next: 0, end: rows, skip, answered: false });
    this.#size += kept;
    this.#fds += fds;
  }

  /** Queues an overflow event, unless one is waiting already. */
  pushOverflow(): void {
    if (this.#overflowQueued) return;
    this.#overflowQueued = true;
    this.#entries.push(FanotifyEvent.overflow());
    this.#size++;
  }

  shift(): FanotifyEvent | null {
    while (this.#head < this.#entries.length) {
      const entry = this.#entries[this.#head];
      if (entry instanceof FanotifyEvent) {
        this.#advance();
        this.#size--;
        this.#overflowQueued = false;
        return entry;
      }
      while (entry.next < entry.end) {
        const row = entry.next++;
        if (entry.skip !== null && entry.skip[row]) continue;
        const ev = FanotifyEvent._fromBatch(entry.batch, row, this.#owner, this.#reportsPidfd);
        if (entry.answered) ev._answeredElsewhere();
        this.#size--;
        if (ev.fd !== null && !ev.isPermission) this.#fds--;
        if (entry.next === entry.end) this.#advance();
        return ev;
      }
      this.#advance();
    }
    return null;
  }

  /** The group answered every pending event: those queued must not answer again. */
  markAnswered(): void {
    for (let i = this.#head; i < this.#entries.length; i++) {
      const entry = this.#entries[i];
      if (!(entry instanceof FanotifyEvent)) entry.answered = true;
    }
  }

  /** Forgets everything; for a closed group, which closed the fds itself. */
  clear(): void {
    this.#entries = [];
    this.#head = 0;
    this.#size = 0;
    this.#fds = 0;
    this.#overflowQueued = false;
  }

  #advance(): void {
    if (++this.#head === this.#entries.length) {
      this.#entries = [];
      this.#head = 0;
    }
  }
}
