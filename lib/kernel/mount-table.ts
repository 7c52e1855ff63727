// The mount table, the same on every kernel: listmount(2) + statmount(2)
// where the kernel has them (6.8), with 64-bit mount ids that are never
// reused; /proc/<pid>/mountinfo before that, with the kernel's older ids,
// which a later mount may reuse.
import * as fs from 'node:fs';

import { binding } from '../core/binding';
import { has } from './capabilities';
import { readMountInfo } from './mountinfo';

export interface Mount {
  /** The mount id: unique (64-bit) where `mountIds()` is 'unique', else mountinfo's reusable one. */
  mountId: bigint;
  parentId: bigint;
  mountPoint: string;
  /** The directory of the filesystem that is mounted ('/' for all of it; a bind mount's source). */
  root: string;
  fsType: string;
  source: string;
  devMajor: number;
  devMinor: number;
}

/** @internal Which ids this kernel's table has: 'unique' (listmount, 6.8) or 'reusable' (mountinfo). */
export function mountIds(): 'unique' | 'reusable' {
  return has('listmount') ? 'unique' : 'reusable';
}

// statmount names the source only since 6.14 (STATMOUNT_SB_SOURCE): before,
// it comes from mountinfo, by the old id statmount also gives.
function sourcesByOldId(): Map<number, string> {
  return new Map(readMountInfo().map((m) => [m.mountId, m.source]));
}

/** @internal One mount by its unique id (statmount); null when it is gone or the kernel has no statmount. */
export function statMount(mountId: bigint, sources: () => Map<number, string> = sourcesByOldId): Mount | null {
  if (!has('listmount')) return null;
  const m = binding.statMount(mountId);
  if (!m) return null;
  const source = m.source || (sources().get(m.mountIdOld) ?? '');
  return {
    mountId: m.mountId, parentId: m.parentId, mountPoint: m.mountPoint, root: m.mountRoot,
    fsType: m.fsType, source, devMajor: m.devMajor, devMinor: m.devMinor,
  };
}

/**
 * The mounts of a namespace. `mountinfo` names another namespace's table
 * (/proc/<pid>/mountinfo); listmount only lists this process's own.
 * @internal
 */
export function readMounts(mountinfo?: string): Mount[] {
  if (mountinfo === undefined && has('listmount')) {
    const out: Mount[] = [];
    let sources: Map<number, string> | undefined;
    const lazy = (): Map<number, string> => (sources ??= sourcesByOldId());  // read once, and only if needed
    for (const id of binding.listMounts()) {
      const m = statMount(id, lazy);  // null when unmounted meanwhile
      if (m) out.push(m);
    }
    return out;
  }
  return readMountInfo(mountinfo).map((m) => {
    const [major, minor] = m.dev.split(':').map(Number);
    return {
      mountId: BigInt(m.mountId), parentId: BigInt(m.parentId), mountPoint: m.mountPoint, root: m.root,
      fsType: m.fsType, source: m.source, devMajor: major, devMinor: minor,
    };
  });
}

const inside = (p: string, mountPoint: string): boolean =>
  p === mountPoint || p.startsWith(mountPoint === '/' ? '/' : `${mountPoint}/`);

/** @internal The mount a path lives on: the last-mounted of the longest mount points above its real path. */
export function mountOf(p: string, table: Iterable<Mount> = readMounts()): Mount | undefined {
  const real = fs.realpathSync(p);
  let best: Mount | undefined;
  for (const m of table)
    if (inside(real, m.mountPoint) && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  return best;
}
