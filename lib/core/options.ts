// Options and names -> fanotify_init / fanotify_mark flags, with validation.
import { constants as C, FAN_DENY_ERRNO } from './constants';
import { errnoNumber } from './errno';
import { invalidArg } from './errors';

export type GroupClass = 'notification' | 'content' | 'pre-content';

export interface ReportOptions {
  fid?: boolean;
  dirFid?: boolean;
  name?: boolean;
  targetFid?: boolean;
  pidfd?: boolean;
  tid?: boolean;
  fdError?: boolean;
  mount?: boolean;
}

export type Decision = 'allow' | 'deny' | { deny: number | string };

/** Whether the subject (process) or object (file) is trusted, for the audit log. */
export type AuditTrust = boolean | 'unknown';

/**
 * An audit record naming the rule that decided (FAN_INFO with
 * FAN_RESPONSE_INFO_AUDIT_RULE, Linux 6.3+), as fapolicyd writes them.
 */
export interface AuditRule {
  rule: number;
  subjectTrust?: AuditTrust;
  objectTrust?: AuditTrust;
}

export interface RespondOptions {
  /** Log the decision to the audit subsystem (needs the group option audit: true). */
  audit?: boolean | AuditRule;
}

export interface PermissionOptions {
  /** Unanswered permission events get `default` after this long. Default 5000; Infinity: never. */
  timeoutMs?: number;
  /** The answer given on timeout, close, break, worker exit and process exit. Default 'allow'. */
  default?: Decision;
  /** Answer this process's own permission events natively, at once, with `self`. Default true. */
  allowSelf?: boolean;
  /**
   * The answer to this process's own events while allowSelf is on. Default
   * 'allow'; a content server that must not see its own reads of holes
   * passes { deny: 'EIO' }.
   */
  self?: Decision;
}

export interface FanotifyOptions {
  class?: GroupClass;
  report?: ReportOptions;
  unlimitedQueue?: boolean;
  unlimitedMarks?: boolean;
  audit?: boolean;
  /** The event fd's open flags: 'r', 'w', 'rw' or an O_* number. Default 'r'. */
  eventFileFlags?: 'r' | 'w' | 'rw' | number;
  permission?: PermissionOptions;
}

export type EventName =
  | 'access' | 'modify' | 'attrib' | 'closeWrite' | 'closeNowrite' | 'open'
  | 'movedFrom' | 'movedTo' | 'create' | 'delete' | 'deleteSelf' | 'moveSelf'
  | 'openExec' | 'fsError' | 'openPerm' | 'accessPerm' | 'openExecPerm'
  | 'preAccess' | 'rename' | 'mntAttach' | 'mntDetach';

/** What add()/remove() accept: event names, the groups close and move, and the flags. */
export type MarkEventName = EventName | 'close' | 'move' | 'onDir' | 'eventOnChild';

export type Scope = 'inode' | 'mount' | 'filesystem' | 'mntns';

export interface MarkOptions {
  scope?: Scope;
  onlyDir?: boolean;
  dontFollow?: boolean;
  /** FAN_MARK_IGNORE: these events are ignored instead of reported. */
  ignore?: boolean;
  ignoreSurviveModify?: boolean;
  evictable?: boolean;
}

/** @internal */
export const EVENT_BITS: ReadonlyArray<readonly [EventName, number]> = [
  ['access', C.FAN_ACCESS],
  ['modify', C.FAN_MODIFY],
  ['attrib', C.FAN_ATTRIB],
  ['closeWrite', C.FAN_CLOSE_WRITE],
  ['closeNowrite', C.FAN_CLOSE_NOWRITE],
  ['open', C.FAN_OPEN],
  ['movedFrom', C.FAN_MOVED_FROM],
  ['movedTo', C.FAN_MOVED_TO],
  ['create', C.FAN_CREATE],
  ['delete', C.FAN_DELETE],
  ['deleteSelf', C.FAN_DELETE_SELF],
  ['moveSelf', C.FAN_MOVE_SELF],
  ['openExec', C.FAN_OPEN_EXEC],
  ['fsError', C.FAN_FS_ERROR],
  ['openPerm', C.FAN_OPEN_PERM],
  ['accessPerm', C.FAN_ACCESS_PERM],
  ['openExecPerm', C.FAN_OPEN_EXEC_PERM],
  ['preAccess', C.FAN_PRE_ACCESS],
  ['rename', C.FAN_RENAME],
  ['mntAttach', C.FAN_MNT_ATTACH],
  ['mntDetach', C.FAN_MNT_DETACH],
];

const MARK_NAMES = new Map<string, number>([
  ...EVENT_BITS,
  ['close', C.FAN_CLOSE],
  ['move', C.FAN_MOVE],
  ['onDir', C.FAN_ONDIR],
  ['eventOnChild', C.FAN_EVENT_ON_CHILD],
]);

/** @internal Every name add() and remove() take: the events, the groups close and move, and the flags. */
export const MARK_EVENT_NAMES = [...MARK_NAMES.keys()] as readonly MarkEventName[];

const CLASS_FLAGS: Readonly<Record<GroupClass, number>> = {
  notification: C.FAN_CLASS_NOTIF,
  content: C.FAN_CLASS_CONTENT,
  'pre-content': C.FAN_CLASS_PRE_CONTENT,
};

const REPORT_FLAGS: Readonly<Record<keyof ReportOptions, number>> = {
  fid: C.FAN_REPORT_FID,
  dirFid: C.FAN_REPORT_DIR_FID,
  name: C.FAN_REPORT_NAME,
  targetFid: C.FAN_REPORT_TARGET_FID,
  pidfd: C.FAN_REPORT_PIDFD,
  tid: C.FAN_REPORT_TID,
  fdError: C.FAN_REPORT_FD_ERROR,
  mount: C.FAN_REPORT_MNT,
};

const SCOPE_FLAGS: Readonly<Record<Scope, number>> = {
  inode: C.FAN_MARK_INODE,
  mount: C.FAN_MARK_MOUNT,
  filesystem: C.FAN_MARK_FILESYSTEM,
  mntns: C.FAN_MARK_MNTNS,
};

const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CLOEXEC = 0o2000000;
const FILE_FLAGS: Readonly<Record<string, number>> = { r: O_RDONLY, w: O_WRONLY, rw: O_RDWR };

/** @internal The errnos the kernel accepts in FAN_DENY_ERRNO (fs/notify/fanotify/fanotify_user.c). */
export const DENY_ERRNOS: readonly string[] = ['EIO', 'EPERM', 'EBUSY', 'ETXTBSY', 'EAGAIN', 'ENOSPC', 'EDQUOT'];

/** @internal */
export interface GroupConfig {
  initFlags: number;
  eventFileFlags: number;
  groupClass: GroupClass;
  permissionClass: boolean;
  report: Required<ReportOptions>;
  audit: boolean;
  timeoutMs: number;
  defaultResponse: number;
  /** permission.default as given, for messages. */
  defaultDecision: Decision;
  allowSelf: boolean;
  selfResponse: number;
}

function checkObject(name: string, value: unknown): asserts value is Record<string, unknown> | undefined {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value)))
    throw invalidArg(name, value, 'must be an object');
}

function checkKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value))
    if (!known.includes(key)) throw invalidArg(`${name}.${key}`, value[key], `is not an option (known: ${known.join(', ')})`);
}

function bool(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalidArg(name, value, 'must be a boolean');
  return value;
}

/** @internal */
export function groupConfig(options: FanotifyOptions = {}): GroupConfig {
  checkObject('options', options);
  checkKeys('options', options as Record<string, unknown>,
    ['class', 'report', 'unlimitedQueue', 'unlimitedMarks', 'audit', 'eventFileFlags', 'permission']);
  const groupClass = options.class ?? 'notification';
  if (!(groupClass in CLASS_FLAGS))
    throw invalidArg('options.class', groupClass, "must be 'notification', 'content' or 'pre-content'");
  let initFlags = CLASS_FLAGS[groupClass];

  checkObject('options.report', options.report);
  const reportIn = (options.report ?? {}) as Record<string, unknown>;
  checkKeys('options.report', reportIn, Object.keys(REPORT_FLAGS));
  const report = {} as Required<ReportOptions>;
  for (const [key, flag] of Object.entries(REPORT_FLAGS) as [keyof ReportOptions, number][]) {
    report[key] = bool(`options.report.${key}`, reportIn[key]);
    if (report[key]) initFlags |= flag;
  }
  if (report.name && !report.dirFid)
    throw invalidArg('options.report.name', true, 'needs report.dirFid too (FAN_REPORT_NAME requires FAN_REPORT_DIR_FID)');
  if (report.targetFid && !(report.fid && report.dirFid && report.name))
    throw invalidArg('options.report.targetFid', true, 'needs report.fid, report.dirFid and report.name too');
  if (bool('options.unlimitedQueue', options.unlimitedQueue)) initFlags |= C.FAN_UNLIMITED_QUEUE;
  if (bool('options.unlimitedMarks', options.unlimitedMarks)) initFlags |= C.FAN_UNLIMITED_MARKS;
  const audit = bool('options.audit', options.audit);
  if (audit) initFlags |= C.FAN_ENABLE_AUDIT;

  const eff = options.eventFileFlags ?? 'r';
  let eventFileFlags: number;
  if (typeof eff === 'number' && Number.isInteger(eff) && eff >= 0) eventFileFlags = eff;
  else if (typeof eff === 'string' && eff in FILE_FLAGS) eventFileFlags = FILE_FLAGS[eff];
  else throw invalidArg('options.eventFileFlags', eff, "must be 'r', 'w', 'rw' or a non-negative O_* number");
  eventFileFlags |= O_CLOEXEC;  // a child process must not inherit event fds

  checkObject('options.permission', options.permission);
  const perm = (options.permission ?? {}) as PermissionOptions;
  checkKeys('options.permission', perm as Record<string, unknown>, ['timeoutMs', 'default', 'allowSelf', 'self']);
  const timeoutMs = perm.timeoutMs === undefined ? 5000 : perm.timeoutMs;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0)
    throw invalidArg('options.permission.timeoutMs', timeoutMs, 'must be a number >= 0 (Infinity: never)');
  const groupClassIsPerm = groupClass !== 'notification';
  const defaultResponse = decisionToResponse(perm.default ?? 'allow', 'options.permission.default', groupClass, false);
  const allowSelf = perm.allowSelf === undefined ? true : bool('options.permission.allowSelf', perm.allowSelf);
  if (!allowSelf && perm.self !== undefined)
    throw invalidArg('options.permission.self', perm.self, 'needs allowSelf: true (with allowSelf: false, JavaScript answers its own events)');
  const selfResponse = decisionToResponse(perm.self ?? 'allow', 'options.permission.self', groupClass, false);

  return {
    initFlags, eventFileFlags, groupClass, permissionClass: groupClassIsPerm, report, audit,
    timeoutMs, defaultResponse, defaultDecision: perm.default ?? 'allow', allowSelf, selfResponse,
  };
}

/** @internal 'allow' | 'deny' | { deny: errno } -> the fanotify_response.response value. */
export function decisionToResponse(decision: unknown, name: string, groupClass: GroupClass, audit: boolean): number {
  let response: number;
  if (decision === 'allow') response = C.FAN_ALLOW;
  else if (decision === 'deny') response = C.FAN_DENY;
  else if (typeof decision === 'object' && decision !== null && 'deny' in decision) {
    const raw = (decision as { deny: unknown }).deny;
    const errno = typeof raw === 'string' ? errnoNumber(raw) : raw;
    const allowed = DENY_ERRNOS.map((n) => errnoNumber(n));
    if (typeof errno !== 'number' || !allowed.includes(errno))
      throw invalidArg(`${name}.deny`, raw, `must be one of ${DENY_ERRNOS.join(', ')} (the errnos the kernel accepts)`);
    if (groupClass !== 'pre-content')
      throw invalidArg(`${name}.deny`, raw, "needs class 'pre-content' (the kernel takes a custom deny errno only there)");
    response = FAN_DENY_ERRNO(errno);
  } else {
    throw invalidArg(name, decision, "must be 'allow', 'deny' or { deny: errno }");
  }
  if (audit) response |= C.FAN_AUDIT;
  return response >>> 0;
}

const AUDIT_RULE_LEN = 16;  // struct fanotify_response_info_audit_rule

function trust(value: unknown, name: string): number {
  if (value === undefined || value === 'unknown') return 2;
  if (typeof value === 'boolean') return value ? 1 : 0;
  throw invalidArg(name, value, "must be true, false or 'unknown'");
}

/** @internal { rule, subjectTrust, objectTrust } -> the info record written after the response. */
export function auditRuleInfo(audit: unknown, name: string): Buffer {
  if (typeof audit !== 'object' || audit === null) throw invalidArg(name, audit, 'must be a boolean or { rule, subjectTrust?, objectTrust? }');
  const a = audit as Record<string, unknown>;
  for (const key of Object.keys(a))
    if (!['rule', 'subjectTrust', 'objectTrust'].includes(key)) throw invalidArg(`${name}.${key}`, a[key], 'is not an option');
  if (typeof a.rule !== 'number' || !Number.isInteger(a.rule) || a.rule < 0 || a.rule > 0xffffffff)
    throw invalidArg(`${name}.rule`, a.rule, 'must be an integer from 0 to 4294967295');
  const info = Buffer.alloc(AUDIT_RULE_LEN);
  info.writeUInt8(C.FAN_RESPONSE_INFO_AUDIT_RULE, 0);  // hdr.type; hdr.pad stays 0
  info.writeUInt16LE(AUDIT_RULE_LEN, 2);  // hdr.len
  info.writeUInt32LE(a.rule, 4);
  info.writeUInt32LE(trust(a.subjectTrust, `${name}.subjectTrust`), 8);
  info.writeUInt32LE(trust(a.objectTrust, `${name}.objectTrust`), 12);
  return info;
}

/** @internal Event names (or a mask) -> the mask for fanotify_mark. */
export function eventMask(events: unknown, name = 'events'): number {
  if (typeof events === 'number') {
    if (!Number.isInteger(events) || events < 0 || events > Number.MAX_SAFE_INTEGER)
      throw invalidArg(name, events, 'must be a non-negative integer mask');
    return events;
  }
  if (!Array.isArray(events)) throw invalidArg(name, events, 'must be an array of event names or a number mask');
  if (events.length === 0) throw invalidArg(name, events, 'must name at least one event');
  let mask = 0;
  for (const ev of events) {
    const bit = typeof ev === 'string' ? MARK_NAMES.get(ev) : undefined;
    if (bit === undefined)
      throw invalidArg(name, ev, `is not an event name (known: ${MARK_EVENT_NAMES.join(', ')})`);
    mask = (mask | bit) >>> 0;
  }
  return mask;
}

/** @internal Mark options -> fanotify_mark flags (without ADD/REMOVE). */
export function markFlags(options: MarkOptions = {}): { flags: number; scope: Scope } {
  checkObject('options', options);
  checkKeys('options', options as Record<string, unknown>,
    ['scope', 'onlyDir', 'dontFollow', 'ignore', 'ignoreSurviveModify', 'evictable']);
  const scope = options.scope ?? 'inode';
  if (!(scope in SCOPE_FLAGS))
    throw invalidArg('options.scope', scope, "must be 'inode', 'mount', 'filesystem' or 'mntns'");
  let flags = SCOPE_FLAGS[scope];
  if (bool('options.onlyDir', options.onlyDir)) flags |= C.FAN_MARK_ONLYDIR;
  if (bool('options.dontFollow', options.dontFollow)) flags |= C.FAN_MARK_DONT_FOLLOW;
  if (bool('options.evictable', options.evictable)) flags |= C.FAN_MARK_EVICTABLE;
  const ignore = bool('options.ignore', options.ignore);
  const surv = bool('options.ignoreSurviveModify', options.ignoreSurviveModify);
  if (surv && !ignore) throw invalidArg('options.ignoreSurviveModify', true, 'only applies with ignore: true');
  if (ignore) {
    flags |= C.FAN_MARK_IGNORE;
    // The kernel requires ignored-surv-modify on mount and filesystem ignore marks.
    if (surv || scope !== 'inode') flags |= C.FAN_MARK_IGNORED_SURV_MODIFY;
  }
  return { flags, scope };
}
