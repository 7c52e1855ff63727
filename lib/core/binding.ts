// Loads the native addon: build/Release when built from source, otherwise the
// prebuilt binary for this platform from prebuilds/ (node-gyp-build picks).
import * as path from 'node:path';

export interface NativeGroupOptions {
  permissionClass: boolean;
  allowSelf: boolean;
  /** The response to this process's own permission events (with allowSelf); absent: FAN_ALLOW. */
  selfResponse?: number;
  timeoutMs: number;
  defaultResponse: number;
  /** read() buffer size: how many events (and so event fds) one batch can hold. */
  bufferSize: number;
  /** Called with how many permission events their deadline answered since the last call. */
  onExpired?: (count: number) => void;
}

/**
 * A batch as the addon hands it over: the errno of a failed read, or one
 * ArrayBuffer holding [event ints, record ints, byte count, events dropped
 * before it, token base low, high 32 bits] (6 int32), the event table, the
 * record table and the bytes read (see batchViews()).
 */
export type RawBatch = number | ArrayBuffer;
export type BatchCallback = (batch: RawBatch) => void;

export interface NativeGroup {
  readonly fd: number;
  /** A batch if the kernel has events now; else undefined and onBatch gets it later. */
  read(): RawBatch | undefined;
  /** One read now, whatever the poller knows; nothing armed when there is nothing. */
  readAvailable(): RawBatch | undefined;
  /**
   * 0 when answered, ENOENT when not pending, else the kernel's errno (the
   * event stays pending). releaseFd (or -1): released first, whatever the
   * outcome, so that it closes just before the answer. Tokens are integers
   * below 2^53 (src-native/pending.h).
   */
  respond(token: number, response: number, releaseFd: number, info?: Buffer): number;
  /** Answers every pending event with the default. */
  answerPending(): void;
  /** Answers one pending event with the default (FAN_DENY if the kernel refuses it). */
  answerDefault(token: number): void;
  /** JavaScript is done with an event fd or pidfd (token: its permission event, or 0). */
  release(fd: number, token: number): void;
  /** The caller owns the fd from now on; false if it was not the group's. */
  keep(fd: number): boolean;
  /** Answers what is pending and still queued in the kernel, and closes the group. */
  close(): void;
  ref(): void;
  unref(): void;
}

/** Calls back whenever the mount table behind a mountinfo file changes (POLLPRI). */
export interface NativeMountTableWatch {
  close(): void;
  ref(): void;
  unref(): void;
}

export interface Binding {
  MountTableWatch: new (mountinfoPath: string, onChange: () => void) => NativeMountTableWatch;
  /** Writes one fanotify_response (and info records); 0 or the kernel's errno. For probing only. */
  writeResponse(fd: number, eventFd: number, response: number, info?: Buffer): number;
  Group: new (initFlags: number, eventFileFlags: number, options: NativeGroupOptions, onBatch: BatchCallback) => NativeGroup;
  init(flags: number, eventFileFlags: number): number;
  mark(fd: number, flags: number, mask: number, dirfd: number, path: string | null): void;
  closeFd(fd: number): void;
  dup(fd: number): number;
  /** One datagram to the unix socket at socketPath, without waiting: 0 or the errno (EAGAIN, ENOENT, ...). */
  sendDatagram(socketPath: string, data: Buffer): number;
  parse(bytes: Buffer): { events: Int32Array; records: Int32Array; truncated: boolean };
  fsidOf(path: string): [number, number];
  /** path: the object's path; null: it is gone; undefined: mountPoint no longer holds that fsid. */
  pathOfHandle(mountPoint: string, fsid0: number, fsid1: number, handleType: number, handle: Buffer,
    cb: (err: Error | null, path?: string | null) => void): void;
  /**
   * A directory's ancestry to the mount's root (see handles.h): [rootType,
   * rootHandle, (type, handle, name)...]; null: gone; 'outside'; undefined:
   * mountPoint no longer holds that fsid.
   */
  dirChain(mountPoint: string, fsid0: number, fsid1: number, handleType: number, handle: Buffer,
    cb: (err: Error | null, chain?: (number | Buffer | string)[] | 'outside' | null) => void): void;
  /** A directory opened by its handle through the mount at mountPoint: an fd the caller closes. */
  openDirByHandle(mountPoint: string, handleType: number, handle: Buffer): number;
  /** statmount(2); null when the mount is gone. */
  statMount(mountId: bigint): StatMount | null;
  /** listmount(2): every mount id of this mount namespace. */
  listMounts(): bigint[];
  /** null when the attribute is absent. */
  getXattr(target: string | number, name: string): Buffer | null;
  setXattr(target: string | number, name: string, value: Buffer): void;
  removeXattr(target: string | number, name: string): boolean;
  constants: Record<string, number>;
}

export interface StatMount {
  mountId: bigint;
  parentId: bigint;
  /** The id /proc/self/mountinfo shows. */
  mountIdOld: number;
  parentIdOld: number;
  devMajor: number;
  devMinor: number;
  fsType: string;
  mountPoint: string;
  mountRoot: string;
  source: string;
}

function load(): Binding {
  if (process.platform !== 'linux')
    throw new Error(`fanotify is a Linux kernel interface; it cannot run on ${process.platform}.`);
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('node-gyp-build')(path.join(__dirname, '..', '..')) as Binding;
  } catch (err) {
    const e = new Error(
      `fanotify: no native binary that loads here (${process.platform}-${process.arch}, Node-API). ` +
        'Prebuilt ones come for linux-x64 and linux-arm64 with glibc 2.28 or later; anywhere else ' +
        '(musl/Alpine, an older glibc, another CPU) build it from source, in your project: ' +
        '`npm rebuild fanotify --foreground-scripts` (needs python3, make and a C++17 compiler; ' +
        'if npm reports the install script as not allowed, run `npm install-scripts approve fanotify` first). ' +
        `Cause: ${(err as Error).message}`,
    ) as Error & { code: string };
    e.code = 'ERR_FANOTIFY_NO_BINARY';
    throw e;
  }
}

export const binding: Binding = load();
