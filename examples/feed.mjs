// feed.mjs [DIR]: changes under DIR (default /srv) with full paths, over every filesystem mounted there.
import { watch } from 'fanotify';

const feed = watch(process.argv[2] ?? '/srv', { events: ['create', 'delete', 'rename', 'modify', 'onDir'], ignore: ['node_modules', '**/*.tmp'] });
process.once('SIGINT', () => void feed.close());
for await (const e of feed) {
  console.log(e.events, e.path);  // ['create'] '/srv/data/new.txt' (also isDir, pid, filesystem: { mountPoint, fsType, ... })
}
