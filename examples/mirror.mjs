// mirror.mjs [SOURCE] [STUBS]: STUBS (default /data/mirror) mirrors SOURCE (default /srv/remote-copy), filled on first read.
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { populate, serveContent } from 'fanotify';

const [source = '/srv/remote-copy', stubs = '/data/mirror'] = process.argv.slice(2);
// The first run makes the stubs; a later one serves those left by the last (what was filled stays).
if (!existsSync(stubs)) await populate(source, stubs);
// The bytes of one chunk: here read from the source; an HTTP range request in real life.
const server = await serveContent(stubs, async ({ path, offset, length }) => {
  console.log(`fetch ${path} at ${offset}, ${length} bytes`);
  const file = await open(join(source, path));
  try {
    const bytes = Buffer.alloc(length);
    await file.read(bytes, 0, length, offset);
    return bytes;
  } finally {
    await file.close();
  }
});
process.once('SIGINT', () => void server.close());
