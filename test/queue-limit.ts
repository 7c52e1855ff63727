// The kernel's queue limit for new groups, lowered for one synchronous call:
// how tests make a queue overflow without queueing 16384 events. The limit
// is global (/proc/sys/fs/fanotify/max_queued_events, read by fanotify_init),
// so it is restored at once, before anything else can run here.
import * as fs from 'node:fs';

const FILE = '/proc/sys/fs/fanotify/max_queued_events';

/** Runs `make` (which creates the groups) with max_queued_events at `limit`. */
export function withQueueLimit<T>(limit: number, make: () => T): T {
  const before = fs.readFileSync(FILE, 'utf8').trim();
  fs.writeFileSync(FILE, String(limit));
  try {
    return make();
  } finally {
    fs.writeFileSync(FILE, before);
  }
}
