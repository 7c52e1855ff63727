// What `fanotify errors --listen/--textfile` tells Prometheus: the errors of
// each filesystem by code, the last error (time, and inode and place as an
// info series), and the monitor's own health. Names follow Prometheus's
// conventions: counters end in _total, times are in seconds, info series end
// in _info and have the value 1.
import { formatExposition, MetricFamily, Sample } from './exposition';
import type { ErrorFilesystem, FsErrorEvent, SkippedFilesystem } from '../index';

/**
 * The codes every watched filesystem's error counter starts with, at 0: a
 * counter that first appears at 1 looks to rate() and increase() like one
 * that was always 1, so an alert on them would miss the first error. These
 * are the errors filesystems report (ext4: corruption, bad checksum, I/O
 * error, shut down); another code is counted from its first error.
 */
export const SEEDED_CODES: readonly string[] = ['EFSCORRUPTED', 'EFSBADCRC', 'EIO', 'ESHUTDOWN'];

interface FsLabels {
  device: string;
  mountpoint: string;
  fstype: string;
  fsid: string;
  [name: string]: string;
}

interface FsSeries {
  labels: FsLabels;
  /** Errors by code, as the kernel counted them (an event's count). */
  errors: Map<string, number>;
  /** Seconds since the epoch. */
  lastTime?: number;
  lastInfo?: { code: string; inode: string; function: string; line: string };
  watched: boolean;
}

const labelsOf = (f: ErrorFilesystem): FsLabels => ({ device: f.source, mountpoint: f.mountPoint, fstype: f.type, fsid: f.fsid });

/** The monitor's state, as metric families. */
export class ErrorMetrics {
  /** By fsid: one set of series per filesystem, as watchErrors() names them. */
  readonly #fs = new Map<string, FsSeries>();
  #skipped: readonly SkippedFilesystem[] = [];
  #overflows = 0;
  #up = 1;

  /**
   * What is watched and skipped now (watcher.filesystems and .skipped). A
   * filesystem that is no longer mounted keeps its series only if it had
   * errors: a machine that mounts many filesystems in turn (a CI runner's
   * loop images) must not grow a series for each one.
   */
  update(watched: readonly ErrorFilesystem[], skipped: readonly SkippedFilesystem[]): void {
    const now = new Set<string>();
    for (const f of watched) {
      now.add(f.fsid);
      const s = this.#series(f);
      s.labels = labelsOf(f);  // mounted elsewhere, or again
      s.watched = true;
    }
    for (const [fsid, s] of this.#fs) {
      if (now.has(fsid)) continue;
      s.watched = false;
      if (s.errors.size === 0) this.#fs.delete(fsid);
    }
    this.#skipped = [...skipped];
  }

  /**
   * The monitor stops: what a textfile left behind says. Up 0, nothing
   * watched; the counts of filesystems that had errors stay.
   */
  stopped(): void {
    this.#up = 0;
    this.update([], []);
  }

  /** One event of watchErrors(). */
  record(e: FsErrorEvent): void {
    if (e.overflow) {
      this.#overflows++;
      return;
    }
    const s = this.#series(e.filesystem);
    s.errors.set(e.code, (s.errors.get(e.code) ?? 0) + e.count);
    s.lastTime = e.time.getTime() / 1000;
    s.lastInfo = {
      code: e.code,
      inode: e.inode?.ino !== undefined ? String(e.inode.ino) : '',
      function: e.detail?.function ?? '',
      line: e.detail?.line !== undefined ? String(e.detail.line) : '',
    };
  }

  #series(f: ErrorFilesystem): FsSeries {
    let s = this.#fs.get(f.fsid);
    if (!s) this.#fs.set(f.fsid, (s = { labels: labelsOf(f), errors: new Map(), watched: false }));
    return s;
  }

  families(): MetricFamily[] {
    const series = [...this.#fs.values()].sort((a, b) => a.labels.mountpoint.localeCompare(b.labels.mountpoint) || a.labels.fsid.localeCompare(b.labels.fsid));
    const errors: Sample[] = [];
    const times: Sample[] = [];
    const infos: Sample[] = [];
    for (const s of series) {
      const codes = [...SEEDED_CODES, ...[...s.errors.keys()].filter((c) => !SEEDED_CODES.includes(c)).sort()];
      for (const code of codes) errors.push({ labels: { ...s.labels, code }, value: s.errors.get(code) ?? 0 });
      if (s.lastTime !== undefined) times.push({ labels: s.labels, value: s.lastTime });
      if (s.lastInfo) infos.push({ labels: { ...s.labels, ...s.lastInfo }, value: 1 });
    }
    // Two skipped mounts can look the same (stacked on one mount point): one
    // series, counting them, as a duplicate series would fail the scrape.
    const skipped = new Map<string, Sample>();
    for (const m of this.#skipped) {
      const labels = { mountpoint: m.mountPoint, fstype: m.type, reason: m.code };
      const key = JSON.stringify(labels);
      const sample = skipped.get(key) ?? { labels, value: 0 };
      sample.value++;
      skipped.set(key, sample);
    }
    return [
      { name: 'fanotify_up', type: 'gauge', help: '1 while the monitor runs; 0 in the textfile it leaves when it stops.', samples: [{ value: this.#up }] },
      {
        name: 'fanotify_filesystems_watched', type: 'gauge', help: 'Filesystems whose errors are watched (FAN_FS_ERROR filesystem marks).',
        samples: [{ value: series.filter((s) => s.watched).length }],
      },
      {
        name: 'fanotify_filesystems_skipped', type: 'gauge',
        help: 'Mounts not watched, by reason: ENOTSUP (no block device, so nothing on disk to find corrupt) or the errno the kernel refused the mark with.',
        samples: [...skipped.values()],
      },
      {
        name: 'fanotify_queue_overflows_total', type: 'counter',
        help: "Times the kernel's event queue overflowed and error events were lost (ext4 still counts them in /sys/fs/ext4/*/errors_count).",
        samples: [{ value: this.#overflows }],
      },
      { name: 'fanotify_fs_errors_total', type: 'counter', help: 'Filesystem errors the kernel reported (FAN_FS_ERROR), by filesystem and error code.', samples: errors },
      { name: 'fanotify_fs_last_error_timestamp_seconds', type: 'gauge', help: 'When the last error of the filesystem was reported, in seconds since the epoch.', samples: times },
      {
        name: 'fanotify_fs_last_error_info', type: 'gauge',
        help: 'The last error of the filesystem: its code, inode (empty: the whole filesystem) and where the filesystem detected it (ext4: function and line).',
        samples: infos,
      },
    ];
  }

  /** The text exposition of families(). */
  render(): string {
    return formatExposition(this.families());
  }
}
