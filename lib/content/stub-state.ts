// The state of a stub file made by populate(): its real size and mode, and
// which byte ranges hold real content already. Kept in a user.* extended
// attribute on the file itself, so it survives restarts and moves with the file.
//
// Stored as JSON, {"v":2,"size":..,"mode":..,"grain":G,"filled":"<base64>"}:
// a bitmap where bit i (byte i >> 3, bit i & 7) says that [i*G, (i+1)*G)
// (clamped to the size) holds content. G is a power of two of at least 4 KiB,
// chosen so that the bitmap has at most MAX_GRAINS bits: the value stays under
// about 800 bytes, which fits ext4's limit for one xattr value (one block, 1 KiB
// on small filesystems). A file bigger than 4096 * 4 KiB gets coarser grains,
// and a filled range that covers no whole grain is not remembered: a restarted
// server fetches it again (the same bytes), never the other way round. In
// memory the state is exact. Version 1 (0.1.0) stored the ranges themselves,
// which outgrew the xattr under random access; it is still read.
import { binding } from '../core/binding';
import { fromNative } from '../core/errors';

export const STUB_XATTR = 'user.fanotify.stub';
/** Bits in the stored bitmap, at most. */
export const MAX_GRAINS = 4096;
const MIN_GRAIN = 4096;
const ENOSPC = 28;
const E2BIG = 7;

/** A half-open byte range [start, end). */
export type Range = [number, number];

interface StoredV1 {
  v: 1;
  size: number;
  mode: number;
  filled: Range[];
}

interface StoredV2 {
  v: 2;
  size: number;
  mode: number;
  grain: number;
  filled: string;
}

/** The smallest grain (a power of two, >= 4 KiB) that covers size in maxGrains bits. */
export function grainFor(size: number, maxGrains = MAX_GRAINS): number {
  let grain = MIN_GRAIN;
  while (Math.ceil(size / grain) > maxGrains) grain *= 2;
  return grain;
}

export class StubState {
  // Sorted, disjoint and not touching: adjacent ranges are merged.
  #filled: Range[] = [];
  // The stored form, kept up to date by add(): bit g is set when grain g is
  // wholly filled (saving after every chunk must not cost a pass over all ranges).
  readonly #grain: number;
  readonly #bits: Uint8Array;

  constructor(readonly size: number, readonly mode: number, filled: Range[] = []) {
    this.#grain = grainFor(size);
    this.#bits = new Uint8Array(Math.ceil(Math.ceil(size / this.#grain) / 8));
    for (const [a, b] of filled) this.add(a, b);
  }

  /** The state of a stub (path or fd), or null for a file that is not one. */
  static read(target: string | number): StubState | null {
    const raw = binding.getXattr(target, STUB_XATTR);
    if (raw === null) return null;
    return StubState.decode(raw, typeof target === 'string' ? `'${target}'` : `fd ${target}`);
  }

  /** A stored value (either version) back as a state; `where` names the file in errors. */
  static decode(raw: Buffer, where = 'a stub'): StubState {
    let s: StoredV1 | StoredV2;
    try {
      s = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw invalidState(where, (err as Error).message);
    }
    const common = typeof s === 'object' && s !== null && Number.isSafeInteger(s.size) && s.size >= 0 && Number.isInteger(s.mode);
    if (common && s.v === 1 && Array.isArray(s.filled)) return new StubState(s.size, s.mode, s.filled);
    if (common && s.v === 2 && typeof s.filled === 'string' && Number.isSafeInteger(s.grain) && s.grain >= MIN_GRAIN)
      return new StubState(s.size, s.mode, decode(s.filled, s.grain, s.size));
    if (common && (s.v === 1 || s.v === 2)) throw invalidState(where, 'a field is missing or of the wrong type');
    throw invalidState(where, `version ${(s as { v: unknown }).v}, which this version of fanotify does not know (a newer one wrote it?)`);
  }

  /**
   * Saves the state. Where the filesystem has less room for the value (other
   * xattrs in the same block), saves it coarser instead. Throws the setxattr
   * error when even that does not fit.
   */
  write(target: string | number): void {
    for (let maxGrains = MAX_GRAINS; ; maxGrains /= 8) {
      try {
        binding.setXattr(target, STUB_XATTR, this.encode(maxGrains));
        return;
      } catch (err) {
        const errno = (err as { errno?: number }).errno;
        if ((errno !== ENOSPC && errno !== E2BIG) || maxGrains <= 8) throw fromNative(err);
      }
    }
  }

  /** The value stored, with at most maxGrains bits in its bitmap. */
  encode(maxGrains = MAX_GRAINS): Buffer {
    const grain = grainFor(this.size, maxGrains);
    const stored: StoredV2 = { v: 2, size: this.size, mode: this.mode, grain, filled: this.#bitmap(grain / this.#grain) };
    return Buffer.from(JSON.stringify(stored));
  }

  static clear(target: string | number): void {
    try {
      binding.removeXattr(target, STUB_XATTR);
    } catch (err) {
      throw fromNative(err);
    }
  }

  get complete(): boolean {
    const f = this.#filled;
    return this.size === 0 || (f.length === 1 && f[0][0] === 0 && f[0][1] >= this.size);
  }

  /** The filled ranges (a copy). */
  get filled(): Range[] {
    return this.#filled.map(([a, b]) => [a, b]);
  }

  /** The parts of [offset, offset + length) (clamped to the size) not filled yet. */
  missing(offset: number, length: number): Range[] {
    let at = Math.max(0, offset);
    const end = Math.min(this.size, offset + length);
    const gaps: Range[] = [];
    const f = this.#filled;
    for (let i = this.#firstEndingAfter(at); i < f.length && f[i][0] < end; i++) {
      if (f[i][0] > at) gaps.push([at, f[i][0]]);
      at = Math.max(at, f[i][1]);
    }
    if (at < end) gaps.push([at, end]);
    return gaps;
  }

  /** Records [start, end) as filled. */
  add(start: number, end: number): void {
    if (end <= start) return;
    const [a0, b0] = [start, end];
    const f = this.#filled;
    // The ranges that overlap or touch [start, end) are f[lo..hi): merged into one.
    const lo = this.#firstEndingAfter(start - 1);
    let hi = lo;
    while (hi < f.length && f[hi][0] <= end) hi++;
    if (hi > lo) {
      start = Math.min(start, f[lo][0]);
      end = Math.max(end, f[hi - 1][1]);
    }
    f.splice(lo, hi - lo, [start, end]);
    // Only grains that meet [a0, b0) can have become whole (within [start, end)).
    const g0 = Math.floor(a0 / this.#grain);
    const g1 = Math.min(Math.ceil(b0 / this.#grain), this.#bits.length * 8);
    for (let g = g0; g < g1; g++) {
      const a = g * this.#grain;
      const b = Math.min(this.size, a + this.#grain);
      if (a >= b) break;
      if (start <= a && b <= end) this.#bits[g >> 3] |= 1 << (g & 7);
    }
  }

  /** The index of the first range that ends after `at` (binary search). */
  #firstEndingAfter(at: number): number {
    const f = this.#filled;
    let lo = 0;
    let hi = f.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (f[mid][1] > at) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * The bitmap, base64 without trailing zero bytes, with `ratio` of our
   * grains to one bit (1, or a power of 8 when the filesystem has less room).
   */
  #bitmap(ratio: number): string {
    let bits = this.#bits;
    if (ratio > 1) {
      const fine = Math.ceil(this.size / this.#grain);
      const coarse = new Uint8Array(Math.ceil(Math.ceil(fine / ratio) / 8));
      for (let c = 0; c * ratio < fine; c++) {
        let whole = true;
        for (let g = c * ratio; whole && g < Math.min(fine, (c + 1) * ratio); g++) whole = (bits[g >> 3] & (1 << (g & 7))) !== 0;
        if (whole) coarse[c >> 3] |= 1 << (c & 7);
      }
      bits = coarse;
    }
    let used = bits.length;
    while (used > 0 && bits[used - 1] === 0) used--;
    return Buffer.from(bits.buffer, bits.byteOffset, used).toString('base64');
  }
}

/** The ranges a stored bitmap says are filled. */
function decode(filled: string, grain: number, size: number): Range[] {
  const bits = Buffer.from(filled, 'base64');
  const ranges: Range[] = [];
  for (let g = 0; g < bits.length * 8; g++) {
    if (!(bits[g >> 3] & (1 << (g & 7)))) continue;
    const a = g * grain;
    const b = Math.min(size, (g + 1) * grain);
    const last = ranges[ranges.length - 1];
    if (last && last[1] === a) last[1] = b;
    else if (a < b) ranges.push([a, b]);
  }
  return ranges;
}

function invalidState(where: string, why: string): Error & { code: string; path?: string } {
  const err = new Error(
    `the ${STUB_XATTR} xattr of ${where} is not a fill state this version can read (${why}): ` +
      'remove that stub and run populate() again, or remove the xattr if the file holds all its content',
  ) as Error & { code: string; path?: string };
  err.code = 'ERR_FANOTIFY_STUB_STATE';
  if (where.startsWith("'")) err.path = where.slice(1, -1);
  return err;
}
