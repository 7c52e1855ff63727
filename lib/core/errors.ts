// Every failure is an Error with `code`, `errno`, `syscall`, `path` where one
// applies, and a message that says what to do about it.
//
// errno follows node:fs: negative (err.errno === -1 for EPERM), so code that
// already handles fs errors handles ours. Inside events (ev.error.errno) the
// number is positive, as the kernel reports it.
import { errnoDescription, errnoName } from './errno';

export interface FanotifyError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

/** @internal */
export interface ErrorContext {
  path?: string;
  /** Shown after the syscall, e.g. the scope and mask. */
  details?: string;
  /** Picks a more specific hint, `syscall:CODE:variant`, when there is one. */
  variant?: string;
}

// Why a syscall fails with this errno, and what to do. Keyed "syscall:ERRNO".
const HINTS: Readonly<Record<string, string>> = {
  'fanotify_init:EPERM':
    'fanotify needs CAP_SYS_ADMIN: run as root. Without it (Linux >= 5.13) only class "notification" groups with report.fid and inode marks are allowed.',
  'fanotify_init:EINVAL':
    'this kernel does not accept these flags: the kernel may be too old for one of them (see probe()), or they do not combine (pre-content and content classes cannot report fid; report.mount cannot combine with fid flags or content classes; report.name needs report.dirFid).',
  'fanotify_init:EINVAL:audit':
    'this kernel does not accept these flags: audit: true (FAN_ENABLE_AUDIT) needs a kernel built with audit support (CONFIG_AUDITSYSCALL), so try without audit; otherwise the kernel may be too old for another flag (see probe()).',
  'fanotify_init:EMFILE':
    'too many fanotify groups: raise /proc/sys/fs/fanotify/max_user_groups or close unused groups.',
  'fanotify_init:ENOSYS':
    'the fanotify_init system call is not there for this process: the kernel was built without CONFIG_FANOTIFY, or a seccomp filter (a container runtime) or an emulator (qemu-user) refuses it. Run on a Linux host or VM whose kernel has fanotify, or allow fanotify_init and fanotify_mark in the seccomp profile.',
  'fanotify_mark:EPERM':
    'mount, filesystem and mntns marks, and permission events, need CAP_SYS_ADMIN: run as root.',
  'fanotify_mark:EACCES': 'read access to the path is needed to mark it.',
  'fanotify_mark:ENOENT': 'the path does not exist.',
  'fanotify_mark:EISDIR':
    'an ignore mark on a directory must survive modification (add ignoreSurviveModify: true) and say whether it applies to the directory itself or its children (onDir, eventOnChild in the events).',
  'fanotify_mark:ENOTDIR': 'onlyDir was given but the path is not a directory.',
  'fanotify_mark:EXDEV':
    'the filesystem refuses this mark: a btrfs subvolume (or another filesystem whose objects have a different fsid than its root) cannot be marked by a group that reports file ids; mark the subvolume root or use a group without report.fid.',
  'fanotify_mark:ENODEV':
    'the filesystem refuses this mark: it has no fsid (statfs f_fsid is 0, as on some FUSE and network filesystems), which report.fid needs; use a group without report.fid.',
  'fanotify_mark:EOPNOTSUPP':
    'the filesystem refuses this mark: it cannot decode file handles (procfs, sysfs and other pseudo filesystems), which mount and filesystem marks need in a group that reports file ids (report.fid).',
  'fanotify_mark:EOPNOTSUPP:preAccess':
    'the filesystem refuses this mark: it has no pre-content support (ext4, xfs and btrfs have it; tmpfs and others do not).',
  'fanotify_mark:EINVAL':
    'the kernel refuses this combination: the events need a group option (fsError needs report.fid and scope "filesystem"; mntAttach/mntDetach need report.mount and scope "mntns"; permission events need class "content" or "pre-content"; preAccess needs "pre-content"), the kernel is too old for an event or flag (see probe()), or mntns was given a path that is not a mount namespace (nsfs) file.',
  'fanotify_mark:EINVAL:noFid':
    'these events carry no fd, so only a group that reports file ids gets them (create, delete, movedFrom, movedTo, rename, attrib, deleteSelf, moveSelf, fsError): new Fanotify({ report: { fid: true, dirFid: true, name: true } }) (fsError: report.fid and scope "filesystem", or watchErrors()), or watch() for a change feed with paths.',
  'fanotify_mark:EINVAL:mountScope':
    'a mount mark sees only events with an fd: create, delete, moves, rename, attrib, deleteSelf, moveSelf and fsError need scope "filesystem" or inode marks (a mount mark cannot tell which mount a directory entry changed through).',
  'fanotify_mark:ENOSPC':
    'too many marks: raise /proc/sys/fs/fanotify/max_user_marks, use unlimitedMarks, or use one mount/filesystem mark instead of many inode marks.',
  'fanotify_mark:EBADF': 'the group is closed or the fd is not open.',
  'open_by_handle_at:EPERM': 'resolving file handles needs CAP_DAC_READ_SEARCH: run as root.',
  'read:EMFILE':
    'the process is out of file descriptors for event fds: close kept fds (ev.keepFd()) sooner or raise the limit (ulimit -n).',
  'write:EINVAL':
    'the kernel refused this response: custom deny errnos need class "pre-content" and one of EIO, EPERM, EBUSY, ETXTBSY, EAGAIN, ENOSPC, EDQUOT; audit needs the group option audit: true, and an audit rule reply Linux 6.3 or later.',
};

/** @internal Builds the public error for a failed syscall (errno positive, as returned). */
export function systemError(errno: number, syscall: string, context: ErrorContext = {}): FanotifyError {
  const code = errnoName(errno);
  const hint = (context.variant && HINTS[`${syscall}:${code}:${context.variant}`]) || HINTS[`${syscall}:${code}`];
  const where = context.path !== undefined ? ` '${context.path}'` : '';
  const details = context.details ? ` (${context.details})` : '';
  const message = `${code}: ${errnoDescription(errno).toLowerCase()}, ${syscall}${where}${details}${hint ? `: ${hint}` : ''}`;
  const err = new Error(message) as FanotifyError;
  err.code = code;
  err.errno = -Math.abs(errno);
  err.syscall = syscall;
  if (context.path !== undefined) err.path = context.path;
  return err;
}

/** @internal Rethrows an error from the native binding in the public shape. */
export function fromNative(err: unknown, context: ErrorContext = {}): Error {
  const e = err as { errno?: unknown; syscall?: unknown; path?: unknown };
  // By shape, not instanceof: errors made by the addon belong to the main realm,
  // which is not ours under jest or node:vm.
  if (typeof err === 'object' && err !== null && typeof e.errno === 'number' && typeof e.syscall === 'string') {
    const path = context.path ?? (typeof e.path === 'string' ? e.path : undefined);
    const out = systemError(e.errno, e.syscall, { ...context, path });
    return out;
  }
  return err as Error;
}

/** @internal A TypeError for a bad argument, as Node's own ERR_INVALID_ARG_VALUE. */
export function invalidArg(name: string, value: unknown, reason: string): TypeError {
  const shown = typeof value === 'string' ? `'${value}'` : safeInspect(value);
  const err = new TypeError(`The argument '${name}' ${reason}. Received ${shown}`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

/** @internal An Error with a Node-style code, for states rather than arguments. */
export function stateError(code: string, message: string): Error & { code: string } {
  const err = new Error(message) as Error & { code: string };
  err.code = code;
  return err;
}

/** @internal What an aborted AbortSignal makes a waiting call reject with, as in node:events. */
export function abortError(reason: unknown): Error {
  const err = new Error('The operation was aborted', { cause: reason }) as Error & { code: string };
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  return err;
}

function safeInspect(value: unknown): string {
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s;
  } catch {
    return String(value);
  }
}
