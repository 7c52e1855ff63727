// changes.mjs [DIR]: everything created, deleted or moved on the filesystem that holds DIR (default /srv).
import { Fanotify, resolve } from 'fanotify';

const dir = process.argv[2] ?? '/srv';
const fan = new Fanotify({ report: { fid: true, dirFid: true, name: true } });
fan.add(dir, ['create', 'delete', 'movedFrom', 'movedTo', 'onDir'], { scope: 'filesystem' });
process.once('SIGINT', () => void fan.close());  // ends the loop below
for await (const ev of fan) {
  const where = ev.dir ? await resolve(ev.dir, { name: ev.dir.name }) : null;
  console.log(ev.events.join(','), where ?? '(gone)');
}
