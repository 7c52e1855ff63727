#!/usr/bin/env node
// lazy-mirror: mirrors SOURCE_DIR into STUB_DIR lazily.
//
//   sudo node examples/lazy-mirror.js SOURCE_DIR STUB_DIR
//
// The first run makes STUB_DIR a copy of SOURCE_DIR's tree (directories,
// symlinks, and for each file a sparse stub of the same size that holds no
// data yet: populate()). Then it serves the stubs (serveContent()): the first
// time any other process reads a part of a stub, the reader waits in the
// kernel while this process fetches that part from SOURCE_DIR and writes it
// into the stub, 1 MiB at a time; after that the data is local and reads cost
// nothing. Each fetch is printed. Ctrl-C stops serving cleanly: unfilled stubs
// go offline (mode 000) and remember what they hold (in the user.fanotify.stub
// xattr), so running the command again resumes where it left off.
//
// It is the same idea as the remote-fetch proof of concept that came with the
// kernel's pre-content events (github.com/josefbacik/remote-fetch: `populate`
// then `remote-fetch`), with SOURCE_DIR standing in for the remote side: swap
// the fetch function for an HTTP range request or an object-store GET and the
// mirror becomes a lazily downloaded one.
//
// Needs: root (CAP_SYS_ADMIN), Linux 6.14+ (FAN_PRE_ACCESS), and STUB_DIR on
// ext4, xfs or btrfs (pre-content events and user xattrs); tmpfs, overlayfs,
// NFS and FUSE will not do. Read the stubs from another process (a shell):
// this process's own reads of stubs not yet complete fail with EIO.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const { populate, serveContent } = require('../dist');

// statfs(2) magic numbers of the filesystems with pre-content support.
const SUPPORTED = new Map([
  [0xef53, 'ext4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
]);

function usage(message) {
  if (message) console.error(`lazy-mirror: ${message}`);
  console.error('usage: sudo node examples/lazy-mirror.js SOURCE_DIR STUB_DIR');
  process.exit(2);
}

/** The filesystem type of dir, or of its nearest existing parent. */
function fsTypeOf(dir) {
  let at = path.resolve(dir);
  for (;;) {
    try {
      return fs.statfsSync(at).type;
    } catch (err) {
      if (err.code !== 'ENOENT' || path.dirname(at) === at) throw err;
      at = path.dirname(at);
    }
  }
}

const inside = (child, parent) => child === parent || child.startsWith(parent + path.sep);

function mib(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1048576) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

async function main() {
  const [sourceArg, stubArg] = process.argv.slice(2);
  if (!sourceArg || !stubArg) usage();
  if (process.getuid() !== 0) usage('needs root (CAP_SYS_ADMIN) for pre-content events: run it with sudo');
  const source = fs.realpathSync(sourceArg);
  if (!fs.statSync(source).isDirectory()) usage(`${sourceArg} is not a directory`);
  const stubDir = path.resolve(stubArg);
  const stubReal = fs.existsSync(stubDir) ? fs.realpathSync(stubDir) : stubDir;
  if (inside(stubReal, source) || inside(source, stubReal)) usage('SOURCE_DIR and STUB_DIR must not contain each other');

  const type = fsTypeOf(stubDir);
  if (!SUPPORTED.has(type))
    usage(`${stubArg} is on a filesystem without pre-content support (statfs type 0x${type.toString(16)}); use a directory on ext4, xfs or btrfs`);

  // A new or empty STUB_DIR is populated; a non-empty one is taken to hold the
  // stubs of an earlier run, which are served again from where they were.
  const fresh = !fs.existsSync(stubDir) || fs.readdirSync(stubDir).length === 0;
  if (fresh) {
    const t = Date.now();
    const r = await populate(source, stubDir);
    console.log(`populated ${stubDir}: ${r.files} files (${mib(r.bytes)} to fetch on demand), ${r.dirs} dirs, ${r.symlinks} symlinks in ${Date.now() - t} ms`);
  } else {
    console.log(`${stubDir} is not empty: serving the stubs already there`);
  }

  const fetch = async ({ path: rel, offset, length }) => {
    const t = Date.now();
    const fh = await fs.promises.open(path.join(source, rel), 'r');
    try {
      const buf = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) throw new Error(`${rel} is shorter in ${source} than its stub`);
        got += bytesRead;
      }
      console.log(`fetch ${rel} [${offset}, ${offset + length}) ${mib(length)} in ${Date.now() - t} ms`);
      return buf;
    } catch (err) {
      // Thrown on: the reader gets EIO, never zeros.
      console.error(`fetch ${rel} [${offset}, ${offset + length}) failed: ${err.message}`);
      throw err;
    } finally {
      await fh.close();
    }
  };

  // Fetch failures are printed by fetch itself; the rest (timeouts, stubs read
  // through a read-only mount, states that could not be saved) here.
  const onError = (err) => {
    if (err.code !== 'ERR_FANOTIFY_FETCH') console.error(`serve: ${err.message}`);
  };
  const server = await serveContent(stubDir, fetch, { onError });
  console.log(`serving ${stubDir} from ${source} (pid ${process.pid}); read files there from another shell, Ctrl-C to stop`);

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: closing`);
    // A fetch that never ends would hold close() up: do not wait forever.
    const timer = setTimeout(() => {
      console.error('close() did not finish in 10 s; exiting anyway');
      process.exit(1);
    }, 10_000);
    await server.close();
    clearTimeout(timer);
    const s = server.stats;
    console.log(`closed: ${s.fetches} fetches, ${mib(s.bytesFetched)}, ${s.filesCompleted} files completed, ${s.failures} failures (${s.timeouts} timeouts); unfilled stubs are offline (mode 000) until the next run`);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  console.error(`lazy-mirror: ${err.message}`);
  process.exit(1);
});
