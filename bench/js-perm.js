'use strict';
// P2 permission consumer using the library; the twin of c-perm.c.
// Usage: node js-perm.js DIR   Answers 'allow' to every FAN_OPEN_PERM under DIR
// until SIGTERM/SIGINT, then prints {"answered","cpu_us"}.
const { Fanotify } = require('../dist');

const fan = new Fanotify({ class: 'content', permission: { allowSelf: true } });
fan.add(process.argv[2], ['openPerm', 'eventOnChild']);
let answered = 0;
const stop = async () => {
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ answered, cpu_us: cpu.user + cpu.system }) + '\n');
  await fan.close();
  process.exit(0);
};
process.once('SIGTERM', stop).once('SIGINT', stop);
process.stdout.write('ready\n');
(async () => {
  for await (const ev of fan) {
    ev.respond('allow');
    answered++;
  }
})().catch((e) => { console.error(e); process.exit(1); });
