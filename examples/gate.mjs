// gate.mjs PID [FILE]: deny opens of FILE (default /srv/secret) to every process but PID.
import { Fanotify } from 'fanotify';

const trusted = Number(process.argv[2]);
const file = process.argv[3] ?? '/srv/secret';
if (!Number.isInteger(trusted)) throw new Error('usage: node gate.mjs PID [FILE]');
const fan = new Fanotify({ class: 'content', permission: { timeoutMs: 5000, default: 'allow' } });
fan.add(file, ['openPerm']);
process.once('SIGINT', () => void fan.close());  // answers what is pending with the default
for await (const ev of fan) ev.respond(ev.pid === trusted ? 'allow' : 'deny');
