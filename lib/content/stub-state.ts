// The state of a stub file made by populate(): its real size and mode, and
// which byte ranges hold real content already. Kept in a user.* extended
// attribute on the file itself, so it survives restarts and moves with the file.
import { binding } from '../core/binding';

export const STUB_XATTR = 'user.fanotify.stub';

interface Stored {
  v: 1;
  size: number;
  mode: number;
  /** Sorted, merged, half-open [start, end) ranges that hold real content. */
  filled: [number, number][];
}

export class StubState {
  constructor(readonly size: number, readonly mode: number, private filled: [number, number][] = []) {}

  /** The state of a stub (path or fd), or null for a file that is not one. */
  static read(target: string | number): StubState | null {
    const raw = binding.getXattr(target, STUB_XATTR);
    if (raw === null) return null;
    const s = JSON.parse(raw.toString('utf8')) as Stored;
    return new StubState(s.size, s.mode, s.filled);
  }

  write(target: string | number): void {
    const stored: Stored = { v: 1, size: this.size, mode: this.mode, filled: this.filled };
    binding.setXattr(target, STUB_XATTR, Buffer.from(JSON.stringify(stored)));
  }

  static clear(target: string | number): void {
    binding.removeXattr(target, STUB_XATTR);
  }

  get complete(): boolean {
    return this.size === 0 || (this.filled.length === 1 && this.filled[0][0] === 0 && this.filled[0][1] >= this.size);
  }

  get filledBytes(): number {
    return this.filled.reduce((n, [a, b]) => n + (b - a), 0);
  }

  /** The parts of [offset, offset + length) (clamped to the size) not filled yet. */
  missing(offset: number, length: number): [number, number][] {
    let at = Math.max(0, offset);
    const end = Math.min(this.size, offset + length);
    const gaps: [number, number][] = [];
    for (const [a, b] of this.filled) {
      if (b <= at) continue;
      if (a >= end) break;
      if (a > at) gaps.push([at, a]);
      at = Math.max(at, b);
    }
    if (at < end) gaps.push([at, end]);
    return gaps;
  }

  /** Records [start, end) as filled. */
  add(start: number, end: number): void {
    const all = [...this.filled, [start, end] as [number, number]].sort((x, y) => x[0] - y[0]);
    const merged: [number, number][] = [];
    for (const r of all) {
      const last = merged[merged.length - 1];
      if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
      else merged.push([r[0], r[1]]);
    }
    this.filled = merged;
  }
}
