// `--journal`: one structured systemd journal entry per filesystem error, so
// that `journalctl MESSAGE_ID=f757fbe62dc245a1aedb21520570b395` finds them all,
// with the filesystem, the error and the inode as fields.
//
// The journal's native protocol (systemd's JOURNAL_NATIVE_PROTOCOL): one
// datagram to /run/systemd/journal/socket holding the entry's fields as
// `KEY=VALUE\n`, or, for a value with a newline, `KEY\n`, its length as 64-bit
// little-endian, the value and `\n`. Sent from this process (the addon's
// sendDatagram), not through a helper such as logger(1): journald reads the
// sender's metadata (_SYSTEMD_UNIT, _COMM, ...) from /proc when the datagram
// arrives, which a helper that has already exited no longer has.
import * as fs from 'node:fs';

import { binding } from '../core/binding';
import { errnoName } from '../core/errno';
import type { FsErrorEvent } from '../index';

/** MESSAGE_ID of every filesystem error entry. */
export const FS_ERROR_MESSAGE_ID = 'f757fbe62dc245a1aedb21520570b395';
/** MESSAGE_ID of the entry saying the kernel's queue overflowed and errors were lost. */
export const OVERFLOW_MESSAGE_ID = '320985ab1eb6457cbc662b0a76828e89';

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';

// syslog priorities (sd-daemon.h)
const LOG_ERR = 3;
const LOG_WARNING = 4;

export type JournalFields = [name: string, value: string][];

/** The entry for one event of watchErrors(); `message` is its human-readable line. */
export function journalFields(e: FsErrorEvent, message: string): JournalFields {
  if (e.overflow) {
    return [['MESSAGE_ID', OVERFLOW_MESSAGE_ID], ['MESSAGE', message], ['PRIORITY', String(LOG_WARNING)], ['SYSLOG_IDENTIFIER', 'fanotify']];
  }
  const f: JournalFields = [
    ['MESSAGE_ID', FS_ERROR_MESSAGE_ID],
    ['MESSAGE', message],
    ['PRIORITY', String(LOG_ERR)],
    ['SYSLOG_IDENTIFIER', 'fanotify'],
    ['ERRNO', String(e.errno)],  // the journal's own field for an errno
    ['FANOTIFY_CODE', e.code],
    ['FANOTIFY_COUNT', String(e.count)],
    ['FANOTIFY_FSID', e.filesystem.fsid],
    ['FANOTIFY_DEVICE', e.filesystem.source],
    ['FANOTIFY_MOUNT_POINT', e.filesystem.mountPoint],
    ['FANOTIFY_FSTYPE', e.filesystem.type],
  ];
  if (e.inode?.ino !== undefined) f.push(['FANOTIFY_INODE', String(e.inode.ino)]);
  if (e.inode?.generation !== undefined) f.push(['FANOTIFY_INODE_GENERATION', String(e.inode.generation)]);
  if (e.inode?.path) f.push(['FANOTIFY_PATH', e.inode.path]);
  if (e.detail?.function) f.push(['FANOTIFY_FUNCTION', e.detail.function]);
  if (e.detail?.line !== undefined) f.push(['FANOTIFY_LINE', String(e.detail.line)]);
  if (e.detail?.block !== undefined) f.push(['FANOTIFY_BLOCK', String(e.detail.block)]);
  // An empty value says nothing: left out.
  return f.filter(([, v]) => v !== '');
}

const FIELD_NAME = /^[A-Z0-9][A-Z0-9_]*$/;

/** One entry as the native protocol's datagram. */
export function encodeEntry(fields: JournalFields): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    if (!FIELD_NAME.test(name)) throw new Error(`invalid journal field name '${name}'`);
    if (!value.includes('\n')) {
      parts.push(Buffer.from(`${name}=${value}\n`));
      continue;
    }
    const bytes = Buffer.from(value);
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(bytes.length));
    parts.push(Buffer.from(`${name}\n`), size, bytes, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Whether stdout is connected to the journal: systemd says so in
 * JOURNAL_STREAM (the device and inode of that stream, "DEV:INO"), and a
 * program should then log structured entries instead of lines.
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]) && st.ino === BigInt(m[2]);
  } catch {
    return false;
  }
}

/** Why the journal cannot be written here, or null when its socket is there. */
export function journalMissing(socketPath = JOURNAL_SOCKET): string | null {
  try {
    if (fs.statSync(socketPath).isSocket()) return null;
    return `${socketPath} is not a socket`;
  } catch (err) {
    return `${(err as NodeJS.ErrnoException).code}: no systemd-journald listens at ${socketPath}`;
  }
}

// journald busy (EAGAIN, ENOBUFS) or restarting (ECONNREFUSED, ENOENT): try again later.
const RETRY = new Set(['EAGAIN', 'ENOBUFS', 'ECONNREFUSED', 'ENOENT']);
const RETRY_MS = 200;
const MAX_QUEUED = 1000;

/**
 * Sends entries in order, without ever blocking: while journald cannot take
 * them they wait here (at most MAX_QUEUED, the oldest dropped first) and are
 * tried again every RETRY_MS.
 */
export class JournalWriter {
  readonly #queue: Buffer[] = [];
  #timer: NodeJS.Timeout | null = null;
  #dropped = 0;

  /** onError: an entry was dropped, and why. */
  constructor(private readonly onError: (message: string) => void, readonly socketPath = JOURNAL_SOCKET) {}

  send(fields: JournalFields): void {
    this.#queue.push(encodeEntry(fields));
    if (this.#queue.length > MAX_QUEUED) {
      this.#queue.shift();
      if (this.#dropped++ === 0) this.onError(`journal: more than ${MAX_QUEUED} entries waiting for journald: dropping the oldest`);
    }
    if (this.#timer === null) this.#flush();
  }

  /** How many entries are still waiting for journald. */
  get pending(): number {
    return this.#queue.length;
  }

  #flush(): void {
    this.#timer = null;
    while (this.#queue.length > 0) {
      const errno = binding.sendDatagram(this.socketPath, this.#queue[0]);
      if (errno !== 0 && RETRY.has(errnoName(errno))) {
        this.#timer = setTimeout(() => this.#flush(), RETRY_MS);
        return;
      }
      this.#queue.shift();
      if (errno !== 0) this.onError(`journal: an entry could not be sent (${errnoName(errno)}): dropped`);
    }
  }

  /** One last try; what journald still cannot take is dropped, and said. */
  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#flush();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#queue.length > 0) this.onError(`journal: ${this.#queue.length} entries not written (journald did not take them)`);
    this.#queue.length = 0;
  }
}
