// probe(): what this kernel supports, and with { path } what the filesystem
// there supports. Kernel questions come from the capability layer (each
// tried once, independently of any filesystem: a refusal by the filesystem
// tried is not a missing kernel feature); filesystem questions are tried on
// the path each time.
import * as fs from 'node:fs';
import * as os from 'node:os';

import { binding } from '../core/binding';
import { constants as C } from '../core/constants';
import { errnoName } from '../core/errno';
import { fromNative } from '../core/errors';
import { EVENT_BITS, EventName, ReportOptions, Scope } from '../core/options';
import { Feature, has, initWorks as initAnswer, markKnown as markAnswer } from './capabilities';

// null (no privilege to try) reports as false, as the kernel's answer to this caller.
const initWorks = (flags: number): boolean => initAnswer(flags) === true;
const markKnown = (initFlags: number, markFlags: number, mask: number): boolean => markAnswer(initFlags, markFlags, mask) === true;
import { MountMechanism } from './mount-monitor';
import { mountIds, mountOf } from './mount-table';

export interface Features {
  kernel: string;
  /** fanotify_init worked at all (false without CAP_SYS_ADMIN for most of it). */
  available: boolean;
  /** Why not, when not available: an errno name. */
  reason?: string;
  classes: { notification: boolean; content: boolean; 'pre-content': boolean };
  report: Record<keyof ReportOptions, boolean>;
  groupFlags: { unlimitedQueue: boolean; unlimitedMarks: boolean; audit: boolean };
  scopes: Record<Scope, boolean>;
  markFlags: { evictable: boolean; ignore: boolean };
  events: Record<EventName, boolean>;
  records: { fid: boolean; dfid: boolean; dfidName: boolean; oldNewDfidName: boolean; pidfd: boolean; error: boolean; range: boolean; mnt: boolean };
  /** Custom deny errnos (FAN_DENY_ERRNO, Linux 6.14). */
  denyErrno: boolean;
  /** Audit rule replies (FAN_INFO, Linux 6.3). */
  auditRule: boolean;
  /**
   * How watchMounts(), watch() and watchErrors() follow mounts here: the
   * kernel's mount events, or /proc/self/mountinfo; and whether the mount
   * ids they report are unique (listmount, Linux 6.8) or reusable.
   */
  mounts: { mechanism: MountMechanism; mountIds: 'unique' | 'reusable' };
  /** With probe({ path }): what the filesystem at the path accepts. */
  filesystem?: FilesystemFeatures;
}

export interface FilesystemFeatures {
  path: string;
  fsType: string;
  /** Marks in groups that report file ids (report.fid): the filesystem has usable handles and an fsid. */
  fid: boolean;
  /** A filesystem mark (scope 'filesystem') in a group that reports file ids. */
  filesystemMark: boolean;
  /** FAN_FS_ERROR marks (a filesystem mark with report.fid). */
  fsError: boolean;
  /** Pre-content (preAccess) marks. */
  preContent: boolean;
  /** Why each 'false': the errno name and message the kernel's refusal gives. */
  reasons: Partial<Record<'fid' | 'filesystemMark' | 'fsError' | 'preContent', string>>;
}

export interface ProbeOptions {
  /** Also ask what the filesystem at this path accepts. */
  path?: string;
}

const FID = C.FAN_REPORT_FID | C.FAN_REPORT_DFID_NAME;
const FID_EVENTS = ['attrib', 'create', 'delete', 'movedFrom', 'movedTo', 'deleteSelf', 'moveSelf'];
const PERMISSION = ['openPerm', 'accessPerm', 'openExecPerm'];
// Events that came with a feature of the capability layer.
const EVENT_FEATURES: Partial<Record<EventName, Feature>> = {
  fsError: 'fsError', rename: 'rename', preAccess: 'preAccess', mntAttach: 'mountEvents', mntDetach: 'mountEvents',
};

function firstError(): string | null {
  try {
    binding.closeFd(binding.init(C.FAN_CLASS_NOTIF, 0));
    return null;
  } catch (err) {
    return errnoName((err as { errno: number }).errno);
  }
}

/** The kernel feature report; with { path }, the filesystem's too. Needs CAP_SYS_ADMIN to say much. */
export function probe(options: ProbeOptions = {}): Features {
  const reason = firstError();
  const available = reason === null;
  const events = {} as Record<EventName, boolean>;
  for (const [name, bit] of EVENT_BITS) {
    const feature = EVENT_FEATURES[name];
    if (feature) events[name] = has(feature);
    else if (PERMISSION.includes(name)) events[name] = markKnown(C.FAN_CLASS_CONTENT, 0, bit);
    else events[name] = markKnown(FID_EVENTS.includes(name) ? FID : C.FAN_CLASS_NOTIF, 0, bit);
  }
  const report = {
    fid: has('reportFid'),
    dirFid: has('reportDirFid'),
    name: has('reportName'),
    targetFid: has('reportTargetFid'),
    pidfd: has('reportPidfd'),
    tid: has('reportTid'),
    fdError: has('reportFdError'),
    mount: has('reportMount'),
  };
  const out: Features = {
    kernel: os.release(),
    available,
    ...(available ? {} : { reason: reason! }),
    classes: {
      notification: available,
      content: initWorks(C.FAN_CLASS_CONTENT),
      'pre-content': initWorks(C.FAN_CLASS_PRE_CONTENT),
    },
    report,
    groupFlags: {
      unlimitedQueue: initWorks(C.FAN_UNLIMITED_QUEUE),
      unlimitedMarks: initWorks(C.FAN_UNLIMITED_MARKS),
      audit: initWorks(C.FAN_ENABLE_AUDIT),
    },
    scopes: {
      inode: markKnown(C.FAN_CLASS_NOTIF, C.FAN_MARK_INODE, C.FAN_OPEN),
      mount: markKnown(C.FAN_CLASS_NOTIF, C.FAN_MARK_MOUNT, C.FAN_OPEN),
      filesystem: has('filesystemMark'),
      mntns: has('mntnsMark'),
    },
    markFlags: { evictable: has('evictable'), ignore: has('markIgnore') },
    events,
    records: {
      fid: report.fid,
      dfid: report.dirFid,
      dfidName: report.name,
      oldNewDfidName: events.rename,
      pidfd: report.pidfd,
      error: events.fsError,
      range: events.preAccess,
      mnt: events.mntAttach,
    },
    denyErrno: has('denyErrno'),
    auditRule: has('auditRule'),
    mounts: { mechanism: has('mountEvents') ? 'fanotify' : 'mountinfo', mountIds: mountIds() },
  };
  if (options.path !== undefined) out.filesystem = probeFilesystem(options.path);
  return out;
}

/**
 * Tries one mark on target in a new group: null when the kernel takes it,
 * else the error (fanotify_init's, or the mark's with the path and advice).
 */
export function markRefusal(initFlags: number, markFlags: number, mask: number, target: string): Error | null {
  let fd: number;
  try {
    fd = binding.init(initFlags, 0);
  } catch (err) {
    return fromNative(err) as Error;
  }
  try {
    binding.mark(fd, C.FAN_MARK_ADD | markFlags, mask, -100, target);
    return null;
  } catch (err) {
    return fromNative(err, { path: target, variant: mask & C.FAN_PRE_ACCESS ? 'preAccess' : undefined }) as Error;
  } finally {
    binding.closeFd(fd);
  }
}

/** Tries each filesystem question on the path: a mark that works, or the kernel's reason. */
function probeFilesystem(target: string): FilesystemFeatures {
  fs.accessSync(target);  // ENOENT and the like as node:fs says them
  const reasons: FilesystemFeatures['reasons'] = {};
  const attempt = (key: keyof FilesystemFeatures['reasons'], initFlags: number, markFlags: number, mask: number): boolean => {
    const refusal = markRefusal(initFlags, markFlags, mask, target);
    if (refusal) reasons[key] = refusal.message;
    return !refusal;
  };
  const kernelLacks = (key: keyof FilesystemFeatures['reasons'], feature: Feature): false => {
    reasons[key] = `this kernel (${os.release()}) has no ${feature}`;
    return false;
  };
  const fsType = mountOf(target)?.fsType ?? 'unknown';
  return {
    path: target,
    fsType,
    fid: attempt('fid', FID, 0, C.FAN_CREATE),
    filesystemMark: attempt('filesystemMark', FID, C.FAN_MARK_FILESYSTEM, C.FAN_CREATE),
    fsError: has('fsError') ? attempt('fsError', C.FAN_REPORT_FID, C.FAN_MARK_FILESYSTEM, C.FAN_FS_ERROR) : kernelLacks('fsError', 'fsError'),
    preContent: has('preAccess')
      ? attempt('preContent', C.FAN_CLASS_PRE_CONTENT, 0, C.FAN_PRE_ACCESS)
      : kernelLacks('preContent', 'preAccess'),
    reasons,
  };
}
