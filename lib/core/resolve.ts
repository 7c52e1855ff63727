// FileId -> path, through open_by_handle_at on a mount of the same filesystem
// (found by statfs f_fsid in the mount table). Only the mount point is cached,
// not an fd: a cached fd would keep the filesystem busy and block umount.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { binding } from './binding';
import { fromNative, invalidArg, systemError } from './errors';
import { FileId, formatFsid } from './fileid';
import { readMountInfo } from '../kernel/mountinfo';

const ENODEV = 19;
const FILEID_INVALID = 0xff;

// fsid -> a mount point of that filesystem, as last seen in the mount table.
const mountPoints = new Map<string, string>();

/** Rereads the mount table into the cache. */
function refreshMountPoints(): void {
  mountPoints.clear();
  // Mounts of the whole filesystem (root '/') first: a bind mount of a
  // subdirectory cannot name objects outside it.
  const mounts = readMountInfo().sort((a, b) => Number(b.root === '/') - Number(a.root === '/'));
  for (const m of mounts) {
    try {
      const [a, b] = binding.fsidOf(m.mountPoint);
      const fsid = formatFsid(a, b);
      if (!mountPoints.has(fsid)) mountPoints.set(fsid, m.mountPoint);
    } catch {
      // gone or unreachable: skip
    }
  }
}

function parseFsid(fsid: string): [number, number] {
  const m = /^([0-9a-f]{8}):([0-9a-f]{8})$/.exec(fsid);
  if (!m) throw invalidArg('fileId.fsid', fsid, 'must look like "hhhhhhhh:hhhhhhhh"');
  return [parseInt(m[1], 16), parseInt(m[2], 16)];
}

/**
 * Mount watchers tell the resolver about mounts as the kernel reports them,
 * so the cache stays current without rereading the mount table.
 * @internal
 */
export function noteMountPoint(fsid: string, mountPoint: string): void {
  if (!mountPoints.has(fsid)) mountPoints.set(fsid, mountPoint);
}

/**
 * The path of a FileId opened through one given mount point: null when the
 * object is gone, undefined when the mount point no longer holds that fsid.
 * @internal
 */
export function resolveVia(mountPoint: string, fileId: FileId): Promise<string | null | undefined> {
  return pathOfHandle(mountPoint, parseFsid(fileId.fsid), fileId);
}

/**
 * A directory's ancestry up to the directory at mountPoint, walked through
 * ".." (binding.dirChain, on the threadpool): [rootHandleType, rootHandle,
 * then (handleType, handle, name) for the directory and each parent];
 * null when it is gone, 'outside' when it is not under mountPoint,
 * undefined when mountPoint no longer holds that fsid or the walk failed.
 */
export function dirChainVia(mountPoint: string, dir: FileId): Promise<(number | Buffer | string)[] | 'outside' | null | undefined> {
  const [fsid0, fsid1] = parseFsid(dir.fsid);
  return new Promise<(number | Buffer | string)[] | 'outside' | null | undefined>((resolvePromise) =>
    binding.dirChain(mountPoint, fsid0, fsid1, dir.handleType, dir.handle, (err, chain) => resolvePromise(err ? undefined : chain)));
}

async function pathOfHandle(mountPoint: string, fsid: [number, number], id: FileId): Promise<string | null | undefined> {
  const p = await new Promise<string | null | undefined>((resolvePromise, reject) => {
    binding.pathOfHandle(mountPoint, fsid[0], fsid[1], id.handleType, id.handle,
      (err, found) => (err ? reject(fromNative(err)) : resolvePromise(found)));
  });
  return typeof p === 'string' && unlinked(p, id) ? null : p;
}

/**
 * An object that is still open somewhere opens by handle after it was
 * unlinked, and the kernel names it "<its old path> (deleted)": it has no
 * path. A file really named so is the one at that path, with its inode.
 */
function unlinked(p: string, id: FileId): boolean {
  if (!p.endsWith(' (deleted)')) return false;
  try {
    const st = fs.lstatSync(p, { bigint: true });
    return id.ino !== undefined && st.ino !== id.ino;
  } catch {
    return true;
  }
}

/**
 * The current path of a FileId (and optional child name), or null when the
 * object no longer exists (ESTALE) or has no name any more (unlinked, though
 * still open somewhere). Needs CAP_DAC_READ_SEARCH.
 */
export async function resolve(fileId: FileId, options: { name?: string } = {}): Promise<string | null> {
  if (typeof fileId !== 'object' || fileId === null || typeof fileId.fsid !== 'string' || !Buffer.isBuffer(fileId.handle))
    throw invalidArg('fileId', fileId, 'must be a FileId ({ fsid, handleType, handle })');
  const name = options.name;
  if (name !== undefined && (typeof name !== 'string' || name.includes('/')))
    throw invalidArg('options.name', name, 'must be a file name without "/"');
  if (fileId.handleType === FILEID_INVALID) return null;  // no object to open
  const fsid = parseFsid(fileId.fsid);
  for (const refresh of [false, true]) {
    if (refresh || !mountPoints.has(fileId.fsid)) refreshMountPoints();
    const mountPoint = mountPoints.get(fileId.fsid);
    if (mountPoint === undefined) break;
    const dir = await pathOfHandle(mountPoint, fsid, fileId);
    if (dir === undefined) continue;  // the mount changed under us: reread the table
    if (dir === null) return null;
    return name === undefined ? dir : path.join(dir, name);
  }
  throw systemError(ENODEV, 'open_by_handle_at', { details: `no mounted filesystem has fsid ${fileId.fsid}; it may have been unmounted` });
}
