// `--textfile PATH`: the metrics in a .prom file for node_exporter's textfile
// collector, which reads every *.prom file of its directory at each scrape.
// Written atomically (a temporary file in the same directory, fsync, rename),
// so a scrape never reads half a file.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

import { UsageError } from './command';

/** The absolute path; a usage error (exit 2) unless it names a .prom file in an existing directory. */
export function parseTextfile(value: string | boolean | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new UsageError('--textfile needs a path (a .prom file)');
  const file = path.resolve(value);
  if (!file.endsWith('.prom') || path.basename(file) === '.prom')
    throw new UsageError(`--textfile '${value}': the name must end in .prom (node_exporter's textfile collector reads only *.prom files)`);
  let dir: fs.Stats;
  try {
    dir = fs.statSync(path.dirname(file));
  } catch {
    throw new UsageError(`--textfile '${value}': the directory ${path.dirname(file)} does not exist (it is node_exporter's --collector.textfile.directory)`);
  }
  if (!dir.isDirectory()) throw new UsageError(`--textfile '${value}': ${path.dirname(file)} is not a directory`);
  return file;
}

/** Replaces `file` with `text` at once: readers see the old file or the new one, never a part. */
export async function writeAtomically(file: string, text: string): Promise<void> {
  // Not *.prom, so node_exporter never reads it; hidden, and ours by pid.
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const handle = await fsp.open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(text);
      await handle.sync();  // the data is on disk before the name points at it
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  // The rename itself, durable: best effort (some filesystems refuse fsync of a directory).
  const dir = await fsp.open(path.dirname(file), 'r').catch(() => null);
  await dir?.sync().catch(() => undefined);
  await dir?.close();
}

/**
 * Keeps the file up to date: write() while a write is under way only
 * replaces what the next write says, so the file always ends with the last
 * text and no two writes race.
 */
export class Textfile {
  #next: string | null = null;
  #writing: Promise<void> | null = null;

  /** onError: a write failed (the next write tries again). */
  constructor(readonly path: string, private readonly onError: (err: Error) => void) {}

  /** Resolves when the file holds `text` (or a later text), or the write failed. */
  write(text: string): Promise<void> {
    this.#next = text;
    this.#writing ??= this.#drain();
    return this.#writing;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#next !== null) {
        const text = this.#next;
        this.#next = null;
        try {
          await writeAtomically(this.path, text);
        } catch (err) {
          this.onError(err as Error);
        }
      }
    } finally {
      this.#writing = null;
    }
  }
}
