// fanotify for Node.js: the public entry point.
export { Fanotify } from './group';
export type { EventsOptions } from './group';
export { FanotifyEvent } from './event';
export type { RawRecord } from './event';
export type { FileId } from './fileid';
export { constants, FAN_DENY_ERRNO } from './constants';
export type {
  AuditRule, AuditTrust, Decision, EventName, FanotifyOptions, GroupClass, MarkEventName, MarkOptions, PermissionOptions,
  ReportOptions, RespondOptions, Scope,
} from './options';
export { errnoName } from './errno';
export type { FanotifyError } from './errors';
export { resolve } from './resolve';
export { probe } from './probe';
export type { Features } from './probe';
export { ErrorWatcher, watchErrors } from './watch-errors';
export type { ErrorFilesystem, FsErrorEvent, SkippedFilesystem, WatchErrorsOptions } from './watch-errors';
export type { StatMount } from './binding';
export { MountWatcher, watchMounts } from './watch-mounts';
export type { MountEvent, WatchMountsOptions } from './watch-mounts';
export { watch, Watcher } from './watch';
export type { WatchEvent, WatchOptions, WatchedFilesystem } from './watch';
export { populate } from './populate';
export type { PopulateResult } from './populate';
export { ContentServer, serveContent } from './serve-content';
export type { ContentServerStats, Fetch, FetchRequest, ServeContentOptions } from './serve-content';
