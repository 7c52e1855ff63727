// fanotify for Node.js: the public entry point.
export { Fanotify } from './core/group';
export type { EventsOptions } from './core/group';
export { FanotifyEvent } from './core/event';
export type { RawRecord } from './core/event';
export type { FileId } from './core/fileid';
export { constants, FAN_DENY_ERRNO } from './core/constants';
export type {
  AuditRule, AuditTrust, Decision, EventName, FanotifyOptions, GroupClass, MarkEventName, MarkOptions, PermissionOptions,
  ReportOptions, RespondOptions, Scope,
} from './core/options';
export { errnoName } from './core/errno';
export type { FanotifyError } from './core/errors';
export { resolve } from './core/resolve';
export { probe } from './kernel/probe';
export type { Features, FilesystemFeatures, ProbeOptions } from './kernel/probe';
export type { Feature, UnsupportedError } from './kernel/capabilities';
export type { Mount } from './kernel/mount-table';
export type { MountMechanism } from './kernel/mount-monitor';
export { ErrorWatcher, watchErrors } from './watchers/watch-errors';
export type { ErrorFilesystem, FsErrorEvent, SkippedFilesystem, WatchErrorsOptions } from './watchers/watch-errors';
export { MountWatcher, watchMounts } from './watchers/watch-mounts';
export type { MountEvent, WatchMountsOptions } from './watchers/watch-mounts';
export { watch, Watcher } from './watchers/watch';
export type { RescanReason, UnnamedReason, WatchEvent, WatchOptions, WatchedFilesystem } from './watchers/watch';
export type { IgnoreMatcher } from './watchers/ignore';
export { populate } from './content/populate';
export type { PopulateOptions, PopulateResult } from './content/populate';
export { ContentServer, serveContent } from './content/serve-content';
export type { ContentError, ContentServerStats, Fetch, FetchRequest, ServeContentOptions } from './content/serve-content';
