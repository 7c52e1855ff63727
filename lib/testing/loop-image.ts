// fanotify/testing: throwaway filesystems on loop devices, for tests that need
// real kernel behaviour (filesystem errors, corrupted inodes, shut down
// filesystems) without touching the host's disks.
//
// Everything here needs root (CAP_SYS_ADMIN): losetup, mount and the ext4
// sysfs knobs are privileged. External tools are run with execFile and argument
// arrays, never through a shell.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

import '../core/dispose';
import { Ext4ErrorInfo, readExt4Errors } from '../watchers/ext4';
import { ownPrefix, Removable, sweep, sweepOnce, track, untrack } from './cleanup';
import { findTool, isMounted, runSyncQuiet } from './tools';

export type { Ext4ErrorInfo } from '../watchers/ext4';

const execFileAsync = promisify(execFile);


export type LoopImageType = 'ext4' | 'ext3' | 'ext2' | 'xfs';

export interface LoopImageOptions {
  /** Filesystem type (default 'ext4'). Types other than ext4 need their mkfs installed. */
  type?: LoopImageType;
  /** Image size in MiB (default 64). The image file is sparse. */
  sizeMiB?: number;
  /** Mount options, e.g. ['errors=continue']. */
  mountOptions?: readonly string[];
  /** Parent directory for the temporary directory (default os.tmpdir()). */
  dir?: string;
  /**
   * Files to create after mounting, relative to the mount point; parent
   * directories are made. A key ending in '/' makes an (empty) directory.
   */
  files?: Record<string, string>;
}

/** A failed external command (or a precondition of one). */
export class LoopImageError extends Error {
  /** The command line that failed, as an argument array (empty for precondition errors). */
  readonly command: string[];
  /** What the command wrote to stderr. */
  readonly stderr: string;
  /** Exit code, or a spawn error code such as 'ENOENT'. */
  readonly exitCode: number | string | undefined;

  constructor(message: string, command: string[] = [], stderr = '', exitCode?: number | string) {
    super(message);
    this.name = 'LoopImageError';
    this.command = command;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

const ROOT_HINT = 'LoopImage needs root (CAP_SYS_ADMIN) for losetup and mount';

const SUPPORTED_TYPES: readonly LoopImageType[] = ['ext4', 'ext3', 'ext2', 'xfs'];

function needsRootHint(stderr: string): boolean {
  return (
    (typeof process.getuid === 'function' && process.getuid() !== 0) ||
    /permission denied|operation not permitted|must be superuser/i.test(stderr)
  );
}

/** A command line for messages, quoting arguments that need it. */
function formatCommand(command: string[]): string {
  return command.map((a) => (/^[\w@%+=:,./<>-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** Runs a tool; on failure throws a LoopImageError carrying the command and its stderr. */
async function run(tool: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const file = findTool(tool) ?? tool;
  const command = [tool, ...args];
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { encoding: 'utf8' });
    return { stdout, stderr };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; code?: number | string };
    const stderr = (err.stderr ?? '').trim();
    let message = `\`${formatCommand(command)}\` failed`;
    if (typeof err.code === 'number') message += ` (exit ${err.code})`;
    else if (err.code === 'ENOENT') message += `: ${tool} not found`;
    else if (err.code) message += ` (${err.code})`;
    if (stderr) message += `: ${stderr}`;
    if (needsRootHint(stderr)) message += `\n${ROOT_HINT}`;
    throw new LoopImageError(message, command, stderr, err.code);
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A filesystem image on a loop device, mounted in a temporary directory. */
export class LoopImage implements AsyncDisposable {
  // Until disposed, removed at exit or on a fatal signal (./cleanup.ts): a
  // crashed, interrupted or killed test run must not leave mounts and loop
  // devices behind.
  readonly #tracked: Removable = { removeNow: () => this.#disposeSync() };

  /** Directory holding the image and the mount point; removed by dispose(). */
  readonly #root: string;
  readonly #type: LoopImageType;
  /** Path of the image file. */
  readonly imagePath: string;
  /** Where the filesystem is mounted. */
  readonly mountPoint: string;
  #mountOptions: string[];
  #device = '';
  #attached = false; // our image is (as far as we know) attached to #device
  #queue: Promise<unknown> = Promise.resolve(); // serialises unmount/remount operations
  #disposing: Promise<void> | undefined;
  #disposed = false;

  private constructor(root: string, type: LoopImageType, mountOptions: string[]) {
    this.#root = root;
    this.#type = type;
    this.#mountOptions = mountOptions;
    this.imagePath = path.join(root, 'image');
    this.mountPoint = path.join(root, 'mnt');
    track(this.#tracked);
  }

  /**
   * Creates a sparse image, makes a filesystem on it, attaches it to a free
   * loop device and mounts it. If any step fails, the steps already done are
   * undone before the error is thrown.
   */
  static async create(options: LoopImageOptions = {}): Promise<LoopImage> {
    const type = options.type ?? 'ext4';
    if (!SUPPORTED_TYPES.includes(type)) {
      throw new LoopImageError(`LoopImage: unsupported filesystem type '${type}' (use ${SUPPORTED_TYPES.join(', ')})`);
    }
    const sizeMiB = options.sizeMiB ?? 64;
    if (!Number.isFinite(sizeMiB) || sizeMiB <= 0) {
      throw new LoopImageError(`LoopImage: sizeMiB must be a positive number, got ${sizeMiB}`);
    }
    const mkfs = `mkfs.${type}`;
    if (!findTool(mkfs)) {
      throw new LoopImageError(`LoopImage: ${mkfs} not found, cannot make ${type === 'xfs' ? 'an' : 'a'} ${type} image (install its mkfs tools)`);
    }

    // What killed processes left (SIGKILL gives no chance to clean up).
    sweepOnce();
    // realpath: the kernel reports the loop's backing file by its real path,
    // which #ownsDevice() compares against imagePath. The owner's name in the
    // path lets sweep() tell whose leftovers these are.
    const parent = fs.realpathSync(options.dir ?? os.tmpdir());
    const root = await fsp.mkdtemp(path.join(parent, ownPrefix()));
    const img = new LoopImage(root, type, [...(options.mountOptions ?? [])]);
    try {
      const fh = await fsp.open(img.imagePath, 'wx');
      try {
        await fh.truncate(Math.ceil(sizeMiB * 1024 * 1024)); // sparse: no blocks written
      } finally {
        await fh.close();
      }
      if (type === 'xfs') {
        await run(mkfs, ['-q', '-f', img.imagePath]);
      } else {
        // No lazy init: otherwise ext4lazyinit keeps writing in the background
        // after mount, which makes tests noisy and unmounts slower.
        await run(mkfs, ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', img.imagePath]);
      }
      const { stdout } = await run('losetup', ['--find', '--show', img.imagePath]);
      img.#device = stdout.trim();
      img.#attached = true;
      await fsp.mkdir(img.mountPoint);
      await img.#mount();
      for (const [rel, content] of Object.entries(options.files ?? {})) {
        const target = img.#hostPath(rel);
        if (rel.endsWith('/')) {
          await fsp.mkdir(target, { recursive: true });
        } else {
          await fsp.mkdir(path.dirname(target), { recursive: true });
          await fsp.writeFile(target, content);
        }
      }
      return img;
    } catch (err) {
      try {
        await img.dispose();
      } catch (cleanupErr) {
        if (err instanceof Error) err.message += `\n(cleanup after the failure also failed: ${String(cleanupErr)})`;
      }
      throw err;
    }
  }

  /** Filesystem type. */
  get type(): LoopImageType {
    return this.#type;
  }

  /** Loop device, like '/dev/loop3'. */
  get device(): string {
    return this.#device;
  }

  /** Loop device name, like 'loop3' (as in /sys/fs/ext4/loop3). */
  get devName(): string {
    return path.basename(this.#device);
  }

  /** The options the filesystem is mounted with (by create() and remount()). */
  get mountOptions(): string[] {
    return [...this.#mountOptions];
  }

  /** True once dispose() has completed. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Makes the inode at `relPath` (relative to the fs root) invalid: sets its
   * mode to 0xff, which has no file type bits, so looking it up fails with
   * EUCLEAN ("Structure needs cleaning", ext4's EFSCORRUPTED) and ext4
   * records an error. Node has no name for EUCLEAN: its errors carry
   * errno -117 and code 'Unknown system error -117'. ext2/3/4 only.
   */
  async corruptInode(relPath: string): Promise<void> {
    await this.#debugfsEdit('corruptInode', `sif ${this.#fsPath(relPath)} mode 0xff`);
  }

  /**
   * Adds a directory entry at `relPath` pointing at inode number `ino`
   * without touching that inode: with ino 1 (or beyond s_inodes_count) a
   * lookup fails with EUCLEAN, "bad inode number". ext2/3/4 only.
   */
  async linkToInode(relPath: string, ino: number): Promise<void> {
    if (!Number.isSafeInteger(ino) || ino < 0) {
      throw new LoopImageError(`LoopImage.linkToInode: inode number must be a non-negative integer, got ${ino}`);
    }
    await this.#debugfsEdit('linkToInode', `ln <${ino}> ${this.#fsPath(relPath)}`);
  }

  /**
   * Makes ext4 report an error, through /sys/fs/ext4/<dev>/trigger_fs_error:
   * the kernel logs it, counts it and emits a fanotify FS_ERROR event (with
   * error EFSCORRUPTED and no inode). What else happens depends on the
   * errors= mount option (continue, remount-ro, panic!). Waits (up to 2 s)
   * until the error shows in lastError(), since ext4 with errors=continue
   * updates those counters from a deferred work item.
   */
  async triggerError(message = 'test'): Promise<void> {
    const file = this.#ext4Sysfs('trigger_fs_error');
    if (!fs.existsSync(file)) {
      throw new LoopImageError(
        `LoopImage.triggerError: ${file} does not exist; it needs a filesystem driven by ext4 (this one is ${this.#type})`,
      );
    }
    // The kernel ignores an empty message (no error is raised at all).
    if (message.replace(/\n$/, '') === '') throw new LoopImageError('LoopImage.triggerError: message must not be empty');
    const before = this.lastError().errors_count ?? 0;
    try {
      await fsp.writeFile(file, message);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new LoopImageError(`LoopImage.triggerError: writing ${file} failed: ${err.message}` +
        (needsRootHint(err.message) ? `\n${ROOT_HINT}` : ''), [], '', err.code);
    }
    await this.waitForErrorCount(before + 1, 2000).catch(() => undefined);
  }

  /**
   * Shuts the filesystem down with `mount -o remount,abort`: the journal is
   * aborted and further modifications fail. Note: on recent kernels (seen on
   * 6.18) ext4 then goes "emergency read-only", so writes fail with EROFS,
   * not ESHUTDOWN/EIO; ext4 records the error as ESHUTDOWN. ext2/3/4 only;
   * remount() (a fresh mount) brings the filesystem back.
   */
  async shutdown(): Promise<void> {
    this.#requireExt('shutdown');
    await this.#op(() => run('mount', ['-o', 'remount,abort', this.mountPoint]));
  }

  /**
   * Unmounts and mounts again: a fresh superblock, with no cached inodes and
   * no aborted/read-only state left over. With `options`, these replace the
   * mount options from now on (also for the remounts of corruptInode() and
   * linkToInode()).
   */
  async remount(options?: readonly string[]): Promise<void> {
    await this.#op(async () => {
      await this.#unmount(false);
      if (options) this.#mountOptions = [...options];
      await this.#mount();
    });
  }

  /** ext4's error record for this filesystem (see Ext4ErrorInfo); {} if not ext4-driven. */
  lastError(): Ext4ErrorInfo {
    return readExt4Errors(path.join('/sys/fs/ext4', this.devName));
  }

  /**
   * Waits until ext4's errors_count reaches `min` (ext4 with errors=continue
   * publishes it from deferred work, so it can lag the error by a moment).
   * Rejects after `timeoutMs`.
   */
  async waitForErrorCount(min: number, timeoutMs = 2000): Promise<Ext4ErrorInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = this.lastError();
      if ((info.errors_count ?? 0) >= min) return info;
      if (Date.now() >= deadline) {
        throw new LoopImageError(
          `LoopImage.waitForErrorCount: errors_count is ${info.errors_count ?? 'absent'} after ${timeoutMs} ms, expected >= ${min}`,
        );
      }
      await delay(20);
    }
  }

  /**
   * Unmounts (retrying while busy, lazily as a last resort), detaches the
   * loop device and deletes the image and temporary directories. Idempotent;
   * safe after any failure. If a step fails the others still run, and the
   * error is thrown after; calling again retries what is left.
   */
  dispose(): Promise<void> {
    if (this.#disposed) return Promise.resolve();
    // Concurrent calls share one attempt; wait for a running operation so we
    // don't unmount underneath a corruptInode().
    this.#disposing ??= this.#queue
      .catch(() => undefined)
      .then(() => this.#disposeAsync())
      .finally(() => {
        this.#disposing = undefined;
      });
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  async #disposeAsync(): Promise<void> {
    const errors: unknown[] = [];
    try {
      await this.#unmount(true);
    } catch (e) {
      errors.push(e);
    }
    try {
      await this.#detach();
    } catch (e) {
      errors.push(e);
    }
    try {
      // Never rm -r through a live mount: that would walk into the image's
      // filesystem and then fail on the busy mount point anyway.
      if (isMounted(this.mountPoint)) throw new LoopImageError(`LoopImage.dispose: ${this.mountPoint} is still mounted`);
      await fsp.rm(this.#root, { recursive: true, force: true });
    } catch (e) {
      errors.push(e);
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `LoopImage.dispose: ${errors.length} cleanup steps failed`);
    this.#disposed = true;
    untrack(this.#tracked);
  }

  /**
   * Removes what image owners that are gone left behind: a process killed
   * with SIGKILL cannot clean up, so every image's directory carries its
   * owner's pid and start time (fanotify-loop-<pid>-<start>-...). Unmounts,
   * detaches and deletes those of processes that no longer run, wherever
   * they are mounted; images of live processes are left alone. Each
   * process's first create() does this too. Returns the directories removed.
   */
  static sweep(): string[] {
    return sweep();
  }

  // At exit or on a signal only synchronous work runs: lazy unmount (cannot
  // fail on busy), detach, delete.
  #disposeSync(): void {
    if (isMounted(this.mountPoint)) runSyncQuiet('umount', ['-l', this.mountPoint]);
    if (this.#attached && this.#ownsDevice()) runSyncQuiet('losetup', ['-d', this.#device]);
    if (!isMounted(this.mountPoint)) {
      try {
        fs.rmSync(this.#root, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  }

  async #mount(): Promise<void> {
    const args = ['-t', this.#type];
    if (this.#mountOptions.length > 0) args.push('-o', this.#mountOptions.join(','));
    await run('mount', [...args, this.#device, this.mountPoint]);
  }

  /** Unmounts, retrying while busy (briefly-open files); `lazy` allows umount -l as a last resort. */
  async #unmount(lazy: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (!isMounted(this.mountPoint)) return;
      try {
        await run('umount', [this.mountPoint]);
        return;
      } catch (e) {
        const busy = e instanceof LoopImageError && /busy/i.test(e.stderr);
        if (busy && attempt < 6) {
          await delay(50 * attempt);
          continue;
        }
        if (!lazy) {
          if (busy && e instanceof Error) e.message += `\nclose all files under ${this.mountPoint} first`;
          throw e;
        }
        // Detaches the mount now; the kernel finishes when the last user goes.
        await run('umount', ['-l', this.mountPoint]);
        return;
      }
    }
  }

  async #detach(): Promise<void> {
    if (!this.#attached) return;
    // Loop devices are shared system-wide: if ours was already detached and
    // the number reused by someone else, leave theirs alone.
    if (this.#ownsDevice()) {
      // After a lazy unmount the device may still be busy; the kernel then
      // marks it autoclear and detaches it when the mount goes away.
      await run('losetup', ['-d', this.#device]);
    }
    this.#attached = false;
  }

  #ownsDevice(): boolean {
    if (!this.#device) return false;
    try {
      const backing = fs.readFileSync(`/sys/block/${this.devName}/loop/backing_file`, 'utf8').trim();
      return backing.replace(/ \(deleted\)$/, '') === this.imagePath;
    } catch {
      return false; // no such device, or nothing attached to it
    }
  }

  /** Runs an operation that (un)mounts, one at a time, and not after dispose. */
  #op<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#disposed || this.#disposing) {
      return Promise.reject(new LoopImageError('LoopImage: already disposed'));
    }
    const result = this.#queue.catch(() => undefined).then(fn);
    this.#queue = result;
    return result;
  }

  /** Unmounts, applies one debugfs write command to the image, mounts again. */
  async #debugfsEdit(what: string, request: string): Promise<void> {
    this.#requireExt(what);
    if (!findTool('debugfs')) throw new LoopImageError(`LoopImage.${what}: debugfs not found (install e2fsprogs)`);
    await this.#op(async () => {
      // debugfs must not write under a mounted filesystem: a full unmount
      // (no lazy fallback) also means the remount reads the edited inode.
      await this.#unmount(false);
      let editError: unknown;
      try {
        const { stdout, stderr } = await run('debugfs', ['-w', '-R', request, this.imagePath]);
        // debugfs exits 0 even when the request fails ("File not found by
        // ext2_lookup"): any stderr besides its version banner is an error.
        const problems = stderr
          .split('\n')
          .filter((line) => line.trim() !== '' && !/^debugfs \d/.test(line));
        if (problems.length > 0) {
          const command = ['debugfs', '-w', '-R', request, this.imagePath];
          throw new LoopImageError(
            `LoopImage.${what}: \`${formatCommand(command)}\` failed: ${problems.join('\n')}${stdout.trim() ? `\n${stdout.trim()}` : ''}`,
            command,
            stderr.trim(),
            0,
          );
        }
      } catch (e) {
        editError = e;
      }
      try {
        await this.#mount();
      } catch (mountError) {
        if (editError instanceof Error) editError.message += `\n(remounting also failed: ${String(mountError)})`;
        throw editError ?? mountError;
      }
      if (editError) throw editError;
    });
  }

  #requireExt(what: string): void {
    if (this.#type === 'xfs') throw new LoopImageError(`LoopImage.${what} supports ext2/ext3/ext4 only, not ${this.#type}`);
  }

  #ext4Sysfs(name: string): string {
    return path.join('/sys/fs/ext4', this.devName, name);
  }

  /**
   * A path inside the filesystem as debugfs wants it: absolute from the fs
   * root. Accepts a path relative to the fs root (leading '/' optional) or an
   * absolute path under mountPoint.
   */
  #fsPath(relPath: string): string {
    let rel = relPath;
    if (rel === this.mountPoint || rel.startsWith(this.mountPoint + '/')) rel = rel.slice(this.mountPoint.length);
    const p = path.posix.normalize('/' + rel).replace(/\/+$/, '');
    if (p === '' || p === '/' || p === '/.') throw new LoopImageError(`LoopImage: '${relPath}' names the filesystem root`);
    // debugfs splits its request on whitespace and treats quotes specially.
    if (/[\s"'\\]/.test(p)) throw new LoopImageError(`LoopImage: path '${relPath}' must not contain whitespace, quotes or backslashes`);
    return p;
  }

  /** Host path of a path relative to the mount point, refusing to escape it. */
  #hostPath(rel: string): string {
    const target = path.join(this.mountPoint, rel);
    if (target !== this.mountPoint && !target.startsWith(this.mountPoint + path.sep)) {
      throw new LoopImageError(`LoopImage: '${rel}' is outside the mount point`);
    }
    return target;
  }
}

/** Creates a LoopImage, runs `fn` with it and always disposes it, even if `fn` throws. */
export async function withLoopImage<T>(
  options: LoopImageOptions | undefined,
  fn: (img: LoopImage) => T | Promise<T>,
): Promise<T> {
  const img = await LoopImage.create(options);
  let result: T;
  try {
    result = await fn(img);
  } catch (err) {
    // Keep fn's error as the one thrown; a cleanup failure is only appended.
    await img.dispose().catch((disposeErr: unknown) => {
      if (err instanceof Error) err.message += `\n(dispose also failed: ${String(disposeErr)})`;
    });
    throw err;
  }
  await img.dispose();
  return result;
}
