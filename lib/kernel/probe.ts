// What this kernel supports, found by trying each flag, scope and event (not
// by reading the kernel version: distributions backport).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { binding } from '../core/binding';
import { constants as C } from '../core/constants';
import { errnoName } from '../core/errno';
import { EVENT_BITS, EventName, ReportOptions, Scope } from '../core/options';

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
  /** Custom deny errnos (FAN_DENY_ERRNO) come with pre-content events. */
  denyErrno: boolean;
}

const O_RDONLY = 0;

function tryInit(flags: number): number | string {
  try {
    return binding.init(flags, O_RDONLY);
  } catch (err) {
    return errnoName((err as { errno: number }).errno);
  }
}

function works(flags: number): boolean {
  const fd = tryInit(flags);
  if (typeof fd === 'string') return false;
  binding.closeFd(fd);
  return true;
}

function canMark(initFlags: number, markFlags: number, mask: number, target: string): boolean {
  const fd = tryInit(initFlags);
  if (typeof fd === 'string') return false;
  try {
    binding.mark(fd, C.FAN_MARK_ADD | markFlags, mask, -100, target);
    return true;
  } catch {
    return false;
  } finally {
    binding.closeFd(fd);  // the kernel drops the marks with the group
  }
}

/** The kernel feature report. Needs CAP_SYS_ADMIN to say much. */
export function probe(): Features {
  const fidFlags = C.FAN_REPORT_FID | C.FAN_REPORT_DFID_NAME;
  const first = tryInit(C.FAN_CLASS_NOTIF);
  const available = typeof first === 'number';
  if (available) binding.closeFd(first);

  // A private directory to mark: inode marks on it disturb nobody.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-probe-'));
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, '');
  // Pre-content needs a filesystem that supports it; the root filesystem is the
  // best guess (the temp dir is often tmpfs, which refuses).
  try {
    const report = {
      fid: works(C.FAN_REPORT_FID),
      dirFid: works(C.FAN_REPORT_DIR_FID),
      name: works(C.FAN_REPORT_DFID_NAME),
      targetFid: works(C.FAN_REPORT_DFID_NAME_TARGET),
      pidfd: works(C.FAN_REPORT_PIDFD),
      tid: works(C.FAN_REPORT_TID),
      fdError: works(C.FAN_REPORT_FD_ERROR),
      mount: works(C.FAN_REPORT_MNT),
    };
    const events = {} as Record<EventName, boolean>;
    for (const [name, bit] of EVENT_BITS) {
      let initFlags: number = C.FAN_CLASS_NOTIF;
      let markFlags = 0;
      let target = dir;
      if (name === 'openPerm' || name === 'accessPerm' || name === 'openExecPerm') initFlags = C.FAN_CLASS_CONTENT;
      if (name === 'preAccess') { initFlags = C.FAN_CLASS_PRE_CONTENT; target = '/'; }
      if (['attrib', 'create', 'delete', 'movedFrom', 'movedTo', 'deleteSelf', 'moveSelf', 'rename'].includes(name)) initFlags |= fidFlags;
      if (name === 'fsError') { initFlags |= fidFlags; markFlags = C.FAN_MARK_FILESYSTEM; target = '/'; }
      if (name === 'mntAttach' || name === 'mntDetach') { initFlags |= C.FAN_REPORT_MNT; markFlags = C.FAN_MARK_MNTNS; target = '/proc/self/ns/mnt'; }
      events[name] = canMark(initFlags, markFlags, bit, target);
    }
    return {
      kernel: os.release(),
      available,
      ...(available ? {} : { reason: first as string }),
      classes: {
        notification: available,
        content: works(C.FAN_CLASS_CONTENT),
        'pre-content': works(C.FAN_CLASS_PRE_CONTENT),
      },
      report,
      groupFlags: {
        unlimitedQueue: works(C.FAN_UNLIMITED_QUEUE),
        unlimitedMarks: works(C.FAN_UNLIMITED_MARKS),
        audit: works(C.FAN_ENABLE_AUDIT),
      },
      scopes: {
        inode: canMark(C.FAN_CLASS_NOTIF, C.FAN_MARK_INODE, C.FAN_OPEN, dir),
        mount: canMark(C.FAN_CLASS_NOTIF, C.FAN_MARK_MOUNT, C.FAN_OPEN, dir),
        filesystem: canMark(C.FAN_CLASS_NOTIF, C.FAN_MARK_FILESYSTEM, C.FAN_OPEN, dir),
        mntns: canMark(C.FAN_REPORT_MNT, C.FAN_MARK_MNTNS, C.FAN_MNT_ATTACH, '/proc/self/ns/mnt'),
      },
      markFlags: {
        evictable: canMark(C.FAN_CLASS_NOTIF, C.FAN_MARK_EVICTABLE, C.FAN_OPEN, dir),
        ignore: canMark(C.FAN_CLASS_NOTIF, C.FAN_MARK_IGNORE, C.FAN_OPEN, file),
      },
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
      denyErrno: events.preAccess,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
