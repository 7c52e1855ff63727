// File ids: the fsid and file handle of FID records, and what can be decoded
// from a handle whose type is known.

export interface FileId {
  /** "hhhhhhhh:hhhhhhhh": the two 32-bit halves of the statfs f_fsid, in hex. */
  fsid: string;
  /** struct file_handle.handle_type (255 = FILEID_INVALID: no object, e.g. a superblock error). */
  handleType: number;
  /** The opaque f_handle bytes, for open_by_handle_at (see resolve()). */
  handle: Buffer;
  /** Decoded for handle types whose layout is known (ext4, xfs: FILEID_INO32_GEN, FILEID_INO64_GEN). */
  ino?: bigint;
  generation?: number;
}

// include/linux/exportfs.h
/** @internal */
export const FILEID_INO32_GEN = 1;
/** @internal */
export const FILEID_INO32_GEN_PARENT = 2;
/** @internal */
export const FILEID_INO64_GEN = 0x81;
/** @internal */
export const FILEID_INO64_GEN_PARENT = 0x82;
/** @internal */
export const FILEID_INVALID = 0xff;

/** @internal */
export function formatFsid(val0: number, val1: number): string {
  return `${(val0 >>> 0).toString(16).padStart(8, '0')}:${(val1 >>> 0).toString(16).padStart(8, '0')}`;
}

/** @internal A little-endian u32, inline: cheaper than readUInt32LE's checks on the hot path. */
export const u32At = (b: Uint8Array, at: number): number =>
  (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

/** @internal Builds a FileId; `handle` is copied so the id outlives the read buffer. */
export function makeFileId(fsid: string, handleType: number, handle: Buffer): FileId {
  const id: FileId = { fsid, handleType, handle };
  // Only the generic layouts: ext4 and xfs (32-bit inodes) use INO32_GEN with
  // exactly 8 bytes (tmpfs also says type 1, but with 12 bytes in another order).
  if ((handleType === FILEID_INO32_GEN && handle.length === 8) ||
      (handleType === FILEID_INO32_GEN_PARENT && handle.length === 16)) {
    id.ino = BigInt(u32At(handle, 0));
    id.generation = u32At(handle, 4);
  } else if ((handleType === FILEID_INO64_GEN && handle.length === 12) ||
             (handleType === FILEID_INO64_GEN_PARENT && handle.length === 24)) {
    id.ino = handle.readBigUInt64LE(0);
    id.generation = u32At(handle, 8);
  }
  return id;
}
