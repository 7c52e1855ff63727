// The fill state of a stub (lib/content/stub-state.ts): exact in memory, a
// bounded bitmap when stored, never claiming more than was filled, and still
// reading what 0.1.0 stored (JSON ranges). The last test saves it on a real
// ext4 with 1 KiB blocks where another xattr leaves it less room.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { grainFor, MAX_GRAINS, Range, STUB_XATTR, StubState } from '../lib/content/stub-state';
import { binding } from '../lib/core/binding';
import { LoopImage } from '../lib/testing';
import { describeRoot, within } from './helpers';

const KiB = 1024;
const MiB = 1 << 20;

/** A small deterministic generator (tests must be the same every run). */
function lcg(seed: number): () => number {
  let x = seed;
  return () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

// The reference model, naive on purpose: sort and merge everything added.
function merged(ranges: Range[]): Range[] {
  const out: Range[] = [];
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function complement(ranges: Range[], size: number): Range[] {
  const out: Range[] = [];
  let at = 0;
  for (const [a, b] of ranges) {
    if (a > at) out.push([at, a]);
    at = b;
  }
  if (at < size) out.push([at, size]);
  return out;
}

/** What the stored form keeps: the grains that lie wholly in a filled range. */
function wholeGrains(ranges: Range[], size: number, grain: number): Range[] {
  const whole: Range[] = [];
  for (let a = 0; a < size; a += grain) {
    const b = Math.min(size, a + grain);
    if (ranges.some(([x, y]) => x <= a && b <= y)) whole.push([a, b]);
  }
  return merged(whole);
}

describe('StubState', () => {
  test('random ranges: exact in memory; stored, only whole grains, never more than filled', () => {
    const rand = lcg(7);
    for (let round = 0; round < 20; round++) {
      // Sizes that are not multiples of the grain, some with grains above 4 KiB.
      const size = Math.floor(rand() * 40 * MiB) + 1;
      const added: Range[] = [];
      const state = new StubState(size, 0o644);
      for (let i = 0; i < 60; i++) {
        const a = Math.floor(rand() * size);
        const b = Math.min(size, a + 1 + Math.floor(rand() * (rand() < 0.2 ? 4 * MiB : 64 * KiB)));
        added.push([a, b]);
        state.add(a, b);
      }
      const exact = merged(added);
      expect(state.filled).toEqual(exact);
      // missing() is the complement, clamped to the size.
      expect(state.missing(0, size + 10)).toEqual(complement(exact, size));

      const back = StubState.decode(state.encode());
      expect(back.size).toBe(size);
      expect(back.mode).toBe(0o644);
      expect(back.filled).toEqual(wholeGrains(exact, size, grainFor(size)));
    }
  });

  test('thousands of disjoint ranges in a big file: the value stays under 800 bytes', () => {
    const size = 2 ** 40;  // 1 TiB: 256 MiB grains
    const state = new StubState(size, 0o600);
    for (let i = 0; i < 100_000; i += 2) state.add(i * MiB, (i + 1) * MiB);  // 50000 ranges
    expect(state.filled).toHaveLength(50_000);
    expect(grainFor(size)).toBe(size / MAX_GRAINS);
    expect(state.encode().length).toBeLessThan(800);
    // A bitmap full of ones, the largest there is.
    const full = new StubState(size, 0o600);
    full.add(0, size);
    expect(full.complete).toBe(true);
    expect(full.encode().length).toBeLessThan(800);
    expect(StubState.decode(full.encode()).complete).toBe(true);
  });

  test('a 16 MiB file keeps 4 KiB grains: every other page is remembered exactly', () => {
    const size = 16 * MiB;
    const state = new StubState(size, 0o644);
    for (let p = 0; p < size / 4096; p += 2) state.add(p * 4096, (p + 1) * 4096);
    expect(StubState.decode(state.encode()).filled).toEqual(state.filled);
  });

  test('the last grain ends at the size; an empty file is complete', () => {
    const state = new StubState(10_000, 0o644);
    state.add(8192, 10_000);
    expect(StubState.decode(state.encode()).filled).toEqual([[8192, 10_000]]);
    state.add(0, 8192);
    expect(state.complete).toBe(true);
    expect(new StubState(0, 0o644).complete).toBe(true);
  });

  test("version 1 (0.1.0's JSON ranges) is read", () => {
    const v1 = Buffer.from(JSON.stringify({ v: 1, size: 3 * MiB, mode: 0o640, filled: [[0, MiB], [2 * MiB, 2 * MiB + 5]] }));
    const state = StubState.decode(v1);
    expect(state).toMatchObject({ size: 3 * MiB, mode: 0o640 });
    expect(state.filled).toEqual([[0, MiB], [2 * MiB, 2 * MiB + 5]]);
    expect(state.missing(0, 3 * MiB)).toEqual([[MiB, 2 * MiB], [2 * MiB + 5, 3 * MiB]]);
  });

  test('a value this version cannot read is an error naming the file and what to do', () => {
    for (const raw of ['{', '{"v":3,"size":1,"mode":0}', '{"v":2,"size":1,"mode":0,"grain":0,"filled":""}']) {
      let err: (Error & { code?: string; path?: string }) | undefined;
      try {
        StubState.decode(Buffer.from(raw), "'/x/stub'");
      } catch (e) {
        err = e as Error;
      }
      expect(err).toMatchObject({ code: 'ERR_FANOTIFY_STUB_STATE', path: '/x/stub' });
      expect(err!.message).toMatch(/populate\(\) again/);
    }
  });
});

describeRoot('StubState on ext4 with 1 KiB blocks', () => {
  test('with less room (another xattr in the block) it is saved coarser instead of failing', async () => {
    await using img = await within(30_000, LoopImage.create({ sizeMiB: 64 }), 'LoopImage.create');
    const file = path.join(img.mountPoint, 'stub');
    fs.writeFileSync(file, '');
    const size = 64 * MiB;  // 16 KiB grains: 4096 bits, a 684-byte base64 bitmap
    fs.truncateSync(file, size);
    // Another xattr takes 400 of the block's 1024 bytes.
    binding.setXattr(file, 'user.other', Buffer.alloc(400, 1));
    const state = new StubState(size, 0o644);
    for (let g = 0; g < MAX_GRAINS; g += 2) state.add(g * 16 * KiB, (g + 1) * 16 * KiB);
    state.add(0, 8 * MiB);  // 512 whole 16 KiB grains, 64 whole 128 KiB grains
    expect(() => binding.setXattr(file, STUB_XATTR, state.encode())).toThrow(expect.objectContaining({ errno: 28 }));  // ENOSPC
    state.write(file);
    const back = StubState.read(file)!;
    expect(back.filled).toEqual([[0, 8 * MiB]]);  // the coarse grains that were whole
  });
});
