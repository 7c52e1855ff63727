// What ext4 records about its own errors, in /sys/fs/ext4/<dev>/: the function,
// line, inode and block of the last error. The kernel's FAN_FS_ERROR event has
// no such "location" record (the original proposal had one; upstream did not
// merge it), so this is where watchErrors() finds it.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A field is absent when its sysfs file is absent or empty. */
export interface Ext4ErrorInfo {
  errors_count?: number;
  last_error_func?: string;
  last_error_line?: number;
  last_error_ino?: number;
  last_error_block?: number;
  /** ext4's own architecture-independent code (EXT4_ERR_*), not an errno: 5 is EFSCORRUPTED. */
  last_error_errcode?: number;
  /** last_error_errcode decoded to a name, e.g. 'EFSCORRUPTED' (ext4 calls EUCLEAN that). */
  last_error_errname?: string;
  /** Seconds since the epoch. */
  last_error_time?: number;
}

// ext4's EXT4_ERR_* codes (fs/ext4/ext4.h), as stored in last_error_errcode.
const EXT4_ERR_NAMES: Readonly<Record<number, string>> = {
  1: 'UNKNOWN', 2: 'EIO', 3: 'ENOMEM', 4: 'EFSBADCRC', 5: 'EFSCORRUPTED', 6: 'ENOSPC',
  7: 'ENOKEY', 8: 'EROFS', 9: 'EFBIG', 10: 'EEXIST', 11: 'ERANGE', 12: 'EOVERFLOW',
  13: 'EBUSY', 14: 'ENOTDIR', 15: 'ENOTEMPTY', 16: 'ESHUTDOWN', 17: 'EFAULT',
};

/**
 * The /sys/fs/ext4/<name> directory of the filesystem on device major:minor,
 * or null when ext4 does not drive it. <name> is the kernel's block device
 * name (loop3, sda1, dm-0), found through /sys/dev/block.
 * @internal
 */
export function ext4SysfsDir(major: number, minor: number): string | null {
  try {
    const name = path.basename(fs.realpathSync(`/sys/dev/block/${major}:${minor}`));
    const dir = path.join('/sys/fs/ext4', name);
    return fs.existsSync(path.join(dir, 'errors_count')) ? dir : null;
  } catch {
    return null;
  }
}

/** @internal */
export function readExt4Errors(dir: string): Ext4ErrorInfo {
  const read = (name: string): string | undefined => {
    try {
      const value = fs.readFileSync(path.join(dir, name), 'utf8').trim();
      return value === '' ? undefined : value;
    } catch {
      return undefined;
    }
  };
  const num = (name: string): number | undefined => {
    const value = read(name);
    return value === undefined ? undefined : Number(value);
  };
  const info: Ext4ErrorInfo = {
    errors_count: num('errors_count'),
    last_error_func: read('last_error_func'),
    last_error_line: num('last_error_line'),
    last_error_ino: num('last_error_ino'),
    last_error_block: num('last_error_block'),
    last_error_errcode: num('last_error_errcode'),
    last_error_time: num('last_error_time'),
  };
  if (info.last_error_errcode) info.last_error_errname = EXT4_ERR_NAMES[info.last_error_errcode] ?? 'UNKNOWN';
  // Drop absent fields so `'x' in info` and toEqual() behave as documented.
  for (const key of Object.keys(info) as (keyof Ext4ErrorInfo)[]) {
    if (info[key] === undefined) delete info[key];
  }
  return info;
}
