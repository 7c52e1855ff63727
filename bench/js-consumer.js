'use strict';
// P1 consumer using the library; the twin of c-consumer.c.
// Usage: node js-consumer.js MOUNTPOINT N [--backlog]
// Prints "ready" once the mark is in place, counts CREATE/DELETE event bits
// until N (see c-consumer.c for why bits, not records), then prints
// {"events","records","cpu_us","wall_ms"} with the CPU of this whole process
// (all threads, so the library's reader thread is included) since "ready".
const { Fanotify } = require('../dist');

const FAN_CREATE = 0x100, FAN_DELETE = 0x200;

async function main() {
  const [mnt, n, mode] = process.argv.slice(2);
  const want = Number(n);
  const fan = new Fanotify({ report: { fid: true, dirFid: true, name: true }, unlimitedQueue: true });
  fan.add(mnt, ['create', 'delete'], { scope: 'filesystem' });
  process.stdout.write('ready\n');
  if (mode === '--backlog') await new Promise((r) => process.stdin.once('data', r)).then(() => process.stdin.pause());

  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let events = 0, records = 0, sink = 0;
  for await (const ev of fan) {
    records++;
    if (ev.overflow) throw new Error('queue overflow');
    const m = ev.mask;
    events += (m & FAN_CREATE ? 1 : 0) + (m & FAN_DELETE ? 1 : 0);
    // Decode the same fields the C consumer decodes: fsid, handle bytes, name.
    const d = ev.dir;
    if (d) sink ^= d.fsid.length ^ d.handle[0] ^ d.name.length;
    if (events >= want) break;
  }
  const cpu = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  process.stdout.write(JSON.stringify({ events, records, cpu_us: cpu.user + cpu.system, wall_ms: +wall.toFixed(1), sink }) + '\n');
  await fan.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
