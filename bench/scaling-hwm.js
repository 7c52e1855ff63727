'use strict';
// Preloaded (node -r) into bench/js-consumer.js by scripts/bench-scaling.js:
// on exit, prints one more JSON line with the process's peak RSS (VmHWM), so
// the harness sees whether the consumer's memory grows with the backlog.
// Does nothing else (no timers, no CPU while the consumer runs).
const fs = require('node:fs');

process.on('exit', () => {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) fs.writeSync(1, JSON.stringify({ hwm_kb: Number(m[1]) }) + '\n');
  } catch { /* nothing to report */ }
});
