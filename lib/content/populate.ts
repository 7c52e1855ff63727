// populate(source, stubDir): the tree of source as stubs, files of the right
// size that take almost no space (sparse) and hold no content until
// serveContent() fills them on first access.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { constants as C } from '../core/constants';
import { invalidArg } from '../core/errors';
import { lacks, unsupported } from '../kernel/capabilities';
import { markRefusal } from '../kernel/probe';
import { StubState } from './stub-state';

export interface PopulateOptions {
  /**
   * Check first that serveContent() can serve stubs in stubDir (this kernel
   * has pre-content events and the filesystem takes their marks), and throw
   * if not, before anything is made. Default true; false makes the stubs
   * anyway, e.g. for another machine.
   */
  checkServable?: boolean;
}

export interface PopulateResult {
  files: number;
  dirs: number;
  symlinks: number;
  /** Sum of the stubs' sizes: what a full fill writes. */
  bytes: number;
}

/**
 * Makes stubDir mirror source: directories and symlinks as they are, regular
 * files as sparse stubs of the same size, with mode 000 while unfilled so that
 * nobody (but root) reads zeros from a stub no server serves; the real mode and
 * the fill state are in an extended attribute (user.fanotify.stub). Needs a
 * filesystem with user xattrs and pre-content support for serving (ext4, xfs,
 * btrfs): checked first, unless options.checkServable is false.
 */
export async function populate(source: string, stubDir: string, options: PopulateOptions = {}): Promise<PopulateResult> {
  if (typeof source !== 'string' || source === '') throw invalidArg('source', source, 'must be a directory path');
  if (typeof stubDir !== 'string' || stubDir === '') throw invalidArg('stubDir', stubDir, 'must be a directory path');
  if (typeof options !== 'object' || options === null) throw invalidArg('options', options, 'must be an object');
  if (options.checkServable !== undefined && typeof options.checkServable !== 'boolean')
    throw invalidArg('options.checkServable', options.checkServable, 'must be a boolean');
  if (options.checkServable !== false) checkServable(stubDir);
  const result: PopulateResult = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const walk = async (from: string, to: string): Promise<void> => {
    const st = await fs.promises.stat(from);
    await fs.promises.mkdir(to, { recursive: true });
    await fs.promises.chmod(to, st.mode & 0o7777);  // mkdir's mode passes through the umask
    result.dirs++;
    for (const entry of await fs.promises.readdir(from, { withFileTypes: true })) {
      const src = path.join(from, entry.name);
      const dst = path.join(to, entry.name);
      if (entry.isDirectory()) {
        await walk(src, dst);
      } else if (entry.isSymbolicLink()) {
        await fs.promises.symlink(await fs.promises.readlink(src), dst);
        result.symlinks++;
      } else if (entry.isFile()) {
        const fst = await fs.promises.stat(src, { bigint: true });
        const fh = await fs.promises.open(dst, 'wx', 0o600);
        try {
          const size = Number(fst.size);
          await fh.truncate(size);  // a hole: no blocks
          new StubState(size, Number(fst.mode) & 0o7777).write(fh.fd);
          await fh.chmod(0);            // offline until served
          await fh.utimes(Number(fst.atimeNs) / 1e9, Number(fst.mtimeNs) / 1e9);  // finer than Date's ms
        } finally {
          await fh.close();
        }
        result.files++;
        result.bytes += Number(fst.size);
      }
      // Devices, sockets, fifos: not content, not mirrored.
    }
  };
  await walk(source, stubDir);
  return result;
}

const SKIP_CHECK = 'Pass { checkServable: false } to make the stubs anyway.';

/**
 * Throws when serveContent() could never serve stubs made in stubDir: stubs
 * that nothing serves are mode 000 files of zeros. Tried on the nearest
 * directory that exists, as serveContent() will try it. Without the
 * privilege to try (pre-content groups need CAP_SYS_ADMIN), nothing is said:
 * a server runs as root, and will find out then.
 */
function checkServable(stubDir: string): void {
  let dir = path.resolve(stubDir);
  while (!fs.existsSync(dir)) dir = path.dirname(dir);
  if (lacks('preAccess')) throw unsupported('preAccess', { syscall: 'fanotify_mark', path: stubDir, instead: SKIP_CHECK });
  const refusal = markRefusal(C.FAN_CLASS_PRE_CONTENT, 0, C.FAN_PRE_ACCESS, dir) as NodeJS.ErrnoException | null;
  if (refusal === null || refusal.code === 'EPERM') return;
  refusal.message = `stubs in ${stubDir} could not be served: ${refusal.message} ${SKIP_CHECK}`;
  throw refusal;
}
