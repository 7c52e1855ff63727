// FileId -> path, through open_by_handle_at with an fd on a mount of the same
// filesystem (found by statfs f_fsid in the mount table, then cached).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { binding } from './binding';
import { fromNative, invalidArg, systemError } from './errors';
import { FileId, formatFsid } from './fileid';
import { readMountInfo } from './mountinfo';

const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const ENODEV = 19;

// fsid -> a directory fd on a mount of that filesystem. Held for the process's
// life: one fd per filesystem ever resolved.
const mountFds = new Map<string, number>();

/** Finds (or refreshes) a mount fd for fsid; null when nothing mounted has it. */
function mountFdFor(fsid: string, refresh: boolean): number | null {
  const cached = mountFds.get(fsid);
  if (cached !== undefined && !refresh) return cached;
  if (cached !== undefined) {
    fs.closeSync(cached);
    mountFds.delete(fsid);
  }
  // Prefer mounts of the whole filesystem (root '/'): a bind mount of a
  // subdirectory cannot name objects outside it.
  const mounts = readMountInfo().sort((a, b) => Number(b.root === '/') - Number(a.root === '/'));
  for (const m of mounts) {
    let id: string;
    try {
      const [a, b] = binding.fsidOf(m.mountPoint);
      id = formatFsid(a, b);
    } catch {
      continue;  // unreachable or gone
    }
    if (id !== fsid) continue;
    try {
      // Not O_PATH: open_by_handle_at refuses O_PATH mount fds (EBADF).
      const fd = fs.openSync(m.mountPoint, fs.constants.O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      mountFds.set(fsid, fd);
      return fd;
    } catch {
      continue;
    }
  }
  return null;
}

function pathOfHandle(mountFd: number, id: FileId): Promise<string | null> {
  return new Promise((resolvePromise, reject) => {
    binding.pathOfHandle(mountFd, id.handleType, id.handle, (err, p) => (err ? reject(err) : resolvePromise(p ?? null)));
  });
}

/**
 * The current path of a FileId (and optional child name), or null when the
 * object no longer exists (ESTALE). Needs CAP_DAC_READ_SEARCH.
 */
export async function resolve(fileId: FileId, options: { name?: string } = {}): Promise<string | null> {
  if (typeof fileId !== 'object' || fileId === null || typeof fileId.fsid !== 'string' || !Buffer.isBuffer(fileId.handle))
    throw invalidArg('fileId', fileId, 'must be a FileId ({ fsid, handleType, handle })');
  const name = options.name;
  if (name !== undefined && (typeof name !== 'string' || name.includes('/')))
    throw invalidArg('options.name', name, 'must be a file name without "/"');
  if (fileId.handleType === 0xff) return null;  // FILEID_INVALID: no object to open
  for (const refresh of [false, true]) {
    const mountFd = mountFdFor(fileId.fsid, refresh);
    if (mountFd === null) break;
    try {
      const dir = await pathOfHandle(mountFd, fileId);
      if (dir === null) return null;
      return name === undefined || name === '.' ? dir : path.join(dir, name);
    } catch (err) {
      const e = fromNative(err) as Error & { code?: string };
      if (e.code === 'EBADF' && !refresh) continue;  // our mount fd went stale
      throw e;
    }
  }
  throw systemError(ENODEV, 'open_by_handle_at', { details: `no mounted filesystem has fsid ${fileId.fsid}; it may have been unmounted` });
}
