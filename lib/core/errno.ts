// Errno numbers <-> names, with the names filesystems use.
import { ERRNO_TABLE } from './errno-table';

// ext4 and xfs report these under their filesystem names (fs/ext4/ext4.h):
// 117 is EFSCORRUPTED (alias EUCLEAN), 74 EFSBADCRC (alias EBADMSG).
const FS_NAMES: Readonly<Record<number, string>> = { 117: 'EFSCORRUPTED', 74: 'EFSBADCRC' };

const BY_NAME = new Map<string, number>();
for (const [num, [name]] of Object.entries(ERRNO_TABLE)) BY_NAME.set(name, Number(num));
for (const [num, name] of Object.entries(FS_NAMES)) BY_NAME.set(name, Number(num));
// Aliases the generic table lists under their other name (node:fs says ENOTSUP).
for (const [name, num] of [['EWOULDBLOCK', 11], ['EDEADLOCK', 35], ['ENOTSUP', 95]] as const) BY_NAME.set(name, num);

/**
 * The kernel's name for a positive errno. With `fs: true` (filesystem errors),
 * 117 is EFSCORRUPTED and 74 EFSBADCRC. Unknown numbers give `E<number>`.
 */
export function errnoName(errno: number, options: { fs?: boolean } = {}): string {
  const n = Math.abs(errno);
  if (options.fs && FS_NAMES[n]) return FS_NAMES[n];
  return ERRNO_TABLE[n]?.[0] ?? `E${n}`;
}

/** @internal The kernel's description of an errno ("Structure needs cleaning"). */
export function errnoDescription(errno: number): string {
  return ERRNO_TABLE[Math.abs(errno)]?.[1] ?? `Unknown error ${Math.abs(errno)}`;
}

/** @internal The positive errno for a name (EIO, EUCLEAN, EFSCORRUPTED, ...), or undefined. */
export function errnoNumber(name: string): number | undefined {
  return BY_NAME.get(name.toUpperCase());
}
