'use strict';
// P1's "Node floor": the same group, mark and native reader as js-consumer.js,
// but driven through the addon's internal interface with no event objects,
// no iterator and no promises: one JavaScript callback per batch, which counts
// mask bits in the parsed table and touches the DFID_NAME record's fields
// through the record table. What this costs above c-consumer is what any
// Node consumer of a readable fd pays per wake-up (epoll, the loop turn,
// MakeCallback, N-API); what js-consumer costs above this is our JavaScript.
// Usage: node js-floor.js MOUNTPOINT N [--backlog]; output as js-consumer.js.
const { binding } = require('../dist/core/binding');
const { groupConfig } = require('../dist/core/options');
const { constants: C } = require('../dist/core/constants');
const { batchViews } = require('../dist/core/event');

const EV_STRIDE = 10, EV_MASK_LO = 2, EV_FIRST_RECORD = 6, EV_RECORD_COUNT = 7;
const REC_STRIDE = 9, REC_C = 6, REC_E = 8;  // handle length, name length

function main() {
  const [mnt, n, mode] = process.argv.slice(2);
  const want = Number(n);
  const cfg = groupConfig({ report: { fid: true, dirFid: true, name: true }, unlimitedQueue: true });
  let events = 0, records = 0, sink = 0, c0, t0;
  const group = new binding.Group(cfg.initFlags, cfg.eventFileFlags,
    { permissionClass: false, allowSelf: true, timeoutMs: -1, defaultResponse: 0, bufferSize: 64 * 1024 },
    (batch) => consume(batch));
  binding.mark(group.fd, C.FAN_MARK_ADD | C.FAN_MARK_FILESYSTEM, C.FAN_CREATE | C.FAN_DELETE, -100, mnt);

  function consume(raw) {
    for (;;) {
      if (typeof raw === 'number') throw new Error(`read: errno ${raw}`);
      const { bytes, events: ev, records: rec } = batchViews(raw);
      for (let row = 0; row < ev.length; row += EV_STRIDE) {
        records++;
        const m = ev[row + EV_MASK_LO];
        events += (m & C.FAN_CREATE ? 1 : 0) + (m & C.FAN_DELETE ? 1 : 0);
        const r = ev[row + EV_FIRST_RECORD] * REC_STRIDE;
        if (ev[row + EV_RECORD_COUNT] > 0) sink ^= rec[r + REC_C] ^ rec[r + REC_E] ^ bytes.length;
      }
      if (events >= want) return finish();
      raw = group.read();  // undefined: the next batch comes through this callback
      if (raw === undefined) return;
    }
  }

  function finish() {
    const cpu = process.cpuUsage(c0);
    const wall = performance.now() - t0;
    group.close();
    process.stdout.write(JSON.stringify({ events, records, cpu_us: cpu.user + cpu.system, wall_ms: +wall.toFixed(1), sink }) + '\n',
      () => process.exit(0));
  }

  function start() {
    c0 = process.cpuUsage();
    t0 = performance.now();
    const first = group.read();
    if (first !== undefined) consume(first);
  }

  process.stdout.write('ready\n');
  if (mode === '--backlog') process.stdin.once('data', () => { process.stdin.pause(); start(); });
  else start();
}
main();
