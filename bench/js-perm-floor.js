'use strict';
// P2's "Node floor": the same permission group as js-perm.js (the native
// reader, its timeout thread and fd ownership included) driven through the
// addon's internal interface: one JavaScript callback per batch answers every
// event from the parsed table, with no event objects, iterator or promises.
// Usage: node js-perm-floor.js DIR; output as js-perm.js.
const { binding } = require('../dist/core/binding');
const { groupConfig } = require('../dist/core/options');
const { constants: C } = require('../dist/core/constants');
const { batchViews, rowToken } = require('../dist/core/event');

const EV_STRIDE = 10, EV_FD = 4;

const cfg = groupConfig({ class: 'content', permission: { allowSelf: true } });
let answered = 0;
const group = new binding.Group(cfg.initFlags, cfg.eventFileFlags,
  { permissionClass: true, allowSelf: true, timeoutMs: cfg.timeoutMs === Infinity ? -1 : cfg.timeoutMs,
    defaultResponse: cfg.defaultResponse, bufferSize: 4096 },
  (batch) => consume(batch));
binding.mark(group.fd, C.FAN_MARK_ADD, C.FAN_OPEN_PERM | C.FAN_EVENT_ON_CHILD, -100, process.argv[2]);

function consume(batch) {
  for (; batch !== undefined; batch = group.read()) {
    if (typeof batch === 'number') throw new Error(`read: errno ${batch}`);
    const views = batchViews(batch);
    const ev = views.events;
    for (let row = 0; row < ev.length; row += EV_STRIDE) {
      const token = rowToken(views, row / EV_STRIDE);  // 64-bit: the batch's base plus the row's
      if (token !== 0) group.respond(token, C.FAN_ALLOW, ev[row + EV_FD]);  // the fd closes with the answer
      answered++;
    }
  }
}

const stop = () => {
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ answered, cpu_us: cpu.user + cpu.system }) + '\n');
  group.close();
  process.exit(0);
};
process.once('SIGTERM', stop).once('SIGINT', stop);
process.stdout.write('ready\n');
const first = group.read();
if (first !== undefined) consume(first);
