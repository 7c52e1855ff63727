// What the running kernel can do: the one place that decides. Each feature is
// found by trying it once (not by reading the kernel version: distributions
// backport) and cached for the life of the process. Callers ask `has()`, and
// where a feature is missing and nothing can stand in for it, throw
// `unsupported()`: one error code that names the feature, the kernel it needs
// and the kernel running.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { binding } from '../core/binding';
import { constants as C, FAN_DENY_ERRNO } from '../core/constants';

export type Feature =
  | 'reportFid' | 'reportDirFid' | 'reportName' | 'reportTargetFid' | 'reportPidfd' | 'reportTid'
  | 'reportFdError' | 'reportMount' | 'fsError' | 'rename' | 'preAccess' | 'mountEvents' | 'mntnsMark'
  | 'filesystemMark' | 'evictable' | 'markIgnore' | 'auditRule' | 'denyErrno' | 'listmount';

interface FeatureInfo {
  /** What the user asked for, as an error message names it. */
  what: string;
  /** The mainline release that brought it. */
  since: string;
  /** null: could not tell (no privilege to try). */
  test(): boolean | null;
}

const O_RDONLY = 0;
const EPERM = 1;
const EINVAL = 22;
const ENOSYS = 38;
const EIO = 5;

/** A group fd; false when the kernel refuses the flags, null without the privilege to ask. */
function tryInit(flags: number): number | false | null {
  try {
    return binding.init(flags, O_RDONLY);
  } catch (err) {
    return (err as { errno?: number }).errno === EPERM ? null : false;
  }
}

/** @internal fanotify_init takes these flags (null: no privilege to ask). */
export function initWorks(flags: number): boolean | null {
  const fd = tryInit(flags);
  if (typeof fd !== 'number') return fd;
  binding.closeFd(fd);
  return true;
}

// A private directory to mark, with an empty file in it: marks on it
// disturb nobody. On a filesystem that refuses a mark the kernel still tells
// an unknown flag (EINVAL, checked first) from a refusal (EXDEV, ENODEV,
// EOPNOTSUPP): only EINVAL means the kernel lacks it. Removed as soon as the
// question is answered: one kept for the process's life was left behind by
// every process that died of a signal (a daemon stopped with SIGTERM). Where
// the temporary directory is read-only (a sandboxed service), this module's
// own directory and file stand in: marked for an instant, by a group that
// reads nothing.
function inScratch<T>(fn: (dir: string, file: string) => T): T {
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-probe-'));
  } catch {
    return fn(__dirname, __filename);
  }
  try {
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, '');
    return fn(dir, file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** @internal The kernel understands this mark (whether or not the filesystem takes it). */
export function markKnown(initFlags: number, markFlags: number, mask: number, target?: string): boolean | null {
  if (target === undefined) return inScratch((dir) => markKnown(initFlags, markFlags, mask, dir));
  const fd = tryInit(initFlags);
  if (typeof fd !== 'number') return fd;
  try {
    binding.mark(fd, C.FAN_MARK_ADD | markFlags, mask, -100, target);
    return true;
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    return errno === EPERM ? null : errno !== EINVAL;
  } finally {
    binding.closeFd(fd);  // the kernel drops the marks with the group
  }
}

/**
 * The kernel takes this response shape. With FAN_INFO and fd FAN_NOFD the
 * kernel checks the response and its info record, then stops (there is no
 * event to answer): a way to ask without a permission event. Kernels without
 * FAN_INFO (before 6.3) or FAN_DENY_ERRNO (before 6.14) say EINVAL.
 */
function responseKnown(groupClass: number, response: number): boolean | null {
  const fd = tryInit(groupClass);
  if (typeof fd !== 'number') return fd;
  try {
    const info = Buffer.alloc(16);
    info.writeUInt8(C.FAN_RESPONSE_INFO_AUDIT_RULE, 0);
    info.writeUInt16LE(16, 2);
    return binding.writeResponse(fd, C.FAN_NOFD, (response | C.FAN_INFO) >>> 0, info) === 0;
  } finally {
    binding.closeFd(fd);
  }
}

const FID = C.FAN_REPORT_FID | C.FAN_REPORT_DFID_NAME;

const FEATURES: Readonly<Record<Feature, FeatureInfo>> = {
  reportFid: { what: 'report.fid (FAN_REPORT_FID)', since: '5.1', test: () => initWorks(C.FAN_REPORT_FID) },
  reportDirFid: { what: 'report.dirFid (FAN_REPORT_DIR_FID)', since: '5.9', test: () => initWorks(C.FAN_REPORT_DIR_FID) },
  reportName: { what: 'report.name (FAN_REPORT_NAME)', since: '5.9', test: () => initWorks(C.FAN_REPORT_DFID_NAME) },
  reportTargetFid: {
    what: 'report.targetFid (FAN_REPORT_TARGET_FID)', since: '5.17',
    test: () => initWorks(C.FAN_REPORT_DFID_NAME_TARGET),
  },
  reportPidfd: { what: 'report.pidfd (FAN_REPORT_PIDFD)', since: '5.15', test: () => initWorks(C.FAN_REPORT_PIDFD) },
  reportTid: { what: 'report.tid (FAN_REPORT_TID)', since: '4.20', test: () => initWorks(C.FAN_REPORT_TID) },
  reportFdError: {
    what: 'report.fdError (FAN_REPORT_FD_ERROR)', since: '6.13 (6.12.4 and 6.6.66 with the stable backport)',
    test: () => initWorks(C.FAN_REPORT_FD_ERROR),
  },
  reportMount: { what: 'report.mount (FAN_REPORT_MNT)', since: '6.15', test: () => initWorks(C.FAN_REPORT_MNT) },
  fsError: {
    what: 'filesystem error events (FAN_FS_ERROR)', since: '5.16',
    test: () => markKnown(FID, C.FAN_MARK_FILESYSTEM, C.FAN_FS_ERROR),
  },
  rename: { what: 'rename events (FAN_RENAME)', since: '5.17', test: () => markKnown(FID, 0, C.FAN_RENAME) },
  preAccess: {
    what: 'pre-content events (FAN_PRE_ACCESS)', since: '6.14',
    test: () => inScratch((_dir, file) => markKnown(C.FAN_CLASS_PRE_CONTENT, 0, C.FAN_PRE_ACCESS, file)),
  },
  mountEvents: {
    what: 'mount events (FAN_MNT_ATTACH, FAN_MNT_DETACH)', since: '6.15',
    test: () => markKnown(C.FAN_REPORT_MNT, C.FAN_MARK_MNTNS, C.FAN_MNT_ATTACH | C.FAN_MNT_DETACH, '/proc/self/ns/mnt'),
  },
  mntnsMark: {
    what: "mount namespace marks (scope 'mntns', FAN_MARK_MNTNS)", since: '6.15',
    test: () => markKnown(C.FAN_REPORT_MNT, C.FAN_MARK_MNTNS, C.FAN_MNT_ATTACH, '/proc/self/ns/mnt'),
  },
  filesystemMark: {
    what: "filesystem marks (scope 'filesystem', FAN_MARK_FILESYSTEM)", since: '4.20',
    test: () => markKnown(C.FAN_CLASS_NOTIF, C.FAN_MARK_FILESYSTEM, C.FAN_OPEN),
  },
  evictable: {
    what: 'evictable marks (FAN_MARK_EVICTABLE)', since: '5.19',
    test: () => markKnown(C.FAN_CLASS_NOTIF, C.FAN_MARK_EVICTABLE, C.FAN_OPEN),
  },
  markIgnore: {
    what: 'ignore marks (FAN_MARK_IGNORE)', since: '6.0',
    test: () => inScratch((_dir, file) => markKnown(C.FAN_CLASS_NOTIF, C.FAN_MARK_IGNORE, C.FAN_OPEN, file)),
  },
  auditRule: {
    what: 'audit rule replies (FAN_INFO with FAN_RESPONSE_INFO_AUDIT_RULE)', since: '6.3',
    test: () => responseKnown(C.FAN_CLASS_CONTENT, C.FAN_ALLOW),
  },
  denyErrno: {
    what: 'custom deny errnos ({ deny: errno }, FAN_DENY_ERRNO)', since: '6.14',
    test: () => responseKnown(C.FAN_CLASS_PRE_CONTENT, FAN_DENY_ERRNO(EIO)),
  },
  listmount: {
    what: 'listmount(2) and statmount(2)', since: '6.8',
    test: () => {
      try {
        binding.listMounts();
        return true;
      } catch (err) {
        return (err as { errno?: number }).errno !== ENOSYS;
      }
    },
  },
};

const cache = new Map<Feature, boolean | null>();

// FANOTIFY_WITHOUT=mountEvents,listmount makes the library behave as on a
// kernel without those features (their fallbacks and errors), on the real
// kernel: how the fallbacks are tested on a new kernel too.
const without = new Set((process.env.FANOTIFY_WITHOUT ?? '').split(',').map((s) => s.trim()).filter(Boolean));

function known(feature: Feature): boolean | null {
  let answer = cache.get(feature);
  if (answer === undefined) {
    answer = without.has(feature) ? false : FEATURES[feature].test();
    cache.set(feature, answer);
  }
  return answer;
}

/** @internal The running kernel has the feature: tried once, then cached (false where it could not be tried, without CAP_SYS_ADMIN). */
export function has(feature: Feature): boolean {
  return known(feature) === true;
}

/** @internal The running kernel is known to lack it. Without the privilege to try, nothing is known: the kernel's own error says why. */
export function lacks(feature: Feature): boolean {
  return known(feature) === false;
}

/** @internal The release that brought a feature, as messages and the README name it. */
export function since(feature: Feature): string {
  return FEATURES[feature].since;
}

export interface UnsupportedError extends Error {
  code: 'ERR_FANOTIFY_UNSUPPORTED';
  /** The feature's name in has(). */
  feature: Feature;
  /** The Linux release that brought it. */
  requires: string;
  /** The running kernel (uname -r). */
  kernel: string;
  errno: number;
  syscall: string;
  path?: string;
}

/**
 * The error for a feature this kernel lacks: at the call that asked for it.
 * errno and syscall say how the kernel refuses it (EINVAL from fanotify_init,
 * fanotify_mark or write, ENOSYS from a missing system call).
 * @internal
 */
export function unsupported(feature: Feature, context: { syscall: string; errno?: number; path?: string; instead?: string }): UnsupportedError {
  const info = FEATURES[feature];
  const kernel = os.release();
  const instead = context.instead ? ` ${context.instead}` : '';
  const err = new Error(
    `${info.what} needs Linux ${info.since} or later; this kernel is ${kernel} and does not have it.${instead}`,
  ) as UnsupportedError;
  err.code = 'ERR_FANOTIFY_UNSUPPORTED';
  err.feature = feature;
  err.requires = info.since;
  err.kernel = kernel;
  err.errno = -(context.errno ?? EINVAL);
  err.syscall = context.syscall;
  if (context.path !== undefined) err.path = context.path;
  return err;
}

/** @internal fanotify_init flags -> the first feature among them this kernel lacks, if any. */
export function missingInitFeature(flags: number): Feature | undefined {
  const checks: [number, Feature][] = [
    [C.FAN_REPORT_MNT, 'reportMount'],
    [C.FAN_REPORT_FD_ERROR, 'reportFdError'],
    [C.FAN_REPORT_TARGET_FID, 'reportTargetFid'],
    [C.FAN_REPORT_PIDFD, 'reportPidfd'],
    [C.FAN_REPORT_NAME, 'reportName'],
    [C.FAN_REPORT_DIR_FID, 'reportDirFid'],
    [C.FAN_REPORT_FID, 'reportFid'],
    [C.FAN_REPORT_TID, 'reportTid'],
  ];
  return checks.find(([bit, feature]) => (flags & bit) !== 0 && lacks(feature))?.[1];
}

/** @internal fanotify_mark flags and mask -> the first feature among them this kernel lacks, if any. */
export function missingMarkFeature(flags: number, mask: number): Feature | undefined {
  const scope = flags & (C.FAN_MARK_FILESYSTEM | C.FAN_MARK_MOUNT | C.FAN_MARK_MNTNS);
  const checks: [boolean, Feature][] = [
    [scope === C.FAN_MARK_MNTNS, 'mntnsMark'],
    [(mask & (C.FAN_MNT_ATTACH | C.FAN_MNT_DETACH)) !== 0, 'mountEvents'],
    [(mask & C.FAN_PRE_ACCESS) !== 0, 'preAccess'],
    [(mask & C.FAN_FS_ERROR) !== 0, 'fsError'],
    [(mask & C.FAN_RENAME) !== 0, 'rename'],
    [(flags & C.FAN_MARK_IGNORE) === C.FAN_MARK_IGNORE, 'markIgnore'],
    [(flags & C.FAN_MARK_EVICTABLE) !== 0, 'evictable'],
    [scope === C.FAN_MARK_FILESYSTEM, 'filesystemMark'],
  ];
  return checks.find(([asked, feature]) => asked && lacks(feature))?.[1];
}
