// health.mjs [PATH...]: errors of every filesystem, and of those mounted later (or of the PATHs' filesystems only).
import { watchErrors } from 'fanotify';

const paths = process.argv.slice(2);
const ac = new AbortController();
process.once('SIGINT', () => ac.abort());
try {
  for await (const e of watchErrors({ paths: paths.length > 0 ? paths : undefined, signal: ac.signal })) {
    console.log(e.time, e.code, e.count, e.filesystem.mountPoint, e.inode?.ino, e.detail?.function);
  }
} catch (err) {
  if (!ac.signal.aborted) throw err;  // an aborted iteration ends with an AbortError
}
