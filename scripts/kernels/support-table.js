#!/usr/bin/env node
// The README's support table, from a matrix run: each guest saved what
// `fanotify probe --json` said on its kernel (kernel-logs/<kernel>/probe.json)
// and its jest totals (jest.log); the last column is this machine's kernel,
// probed now, with the totals of a suite run here when its output is given.
// Prints markdown.
// Usage: node scripts/kernels/support-table.js [kernel-logs [host-jest-output]]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const repo = path.join(__dirname, '..', '..');
const logs = process.argv[2] ?? path.join(repo, 'kernel-logs');
const hostLog = process.argv[3];

// What a row needs from probe(); `fallback` names what stands in when the
// kernel lacks it (else the call throws ERR_FANOTIFY_UNSUPPORTED).
const rows = [
  {
    what: 'notification, content and permission events, fids, names, filesystem marks, `FAN_FS_ERROR`, `watchErrors({ paths })`',
    has: (p) => p.classes.notification && p.classes.content && p.report.fid && p.report.dirFid && p.report.name &&
      p.scopes.filesystem && p.events.fsError && p.records.error,
  },
  {
    what: '`rename`, `report.targetFid`, ignore and evictable marks (5.17–6.0); `watch()`\'s exact paths and `ignore` marks',
    has: (p) => p.events.rename && p.report.targetFid && p.markFlags.ignore && p.markFlags.evictable,
  },
  { what: 'audit rule replies, `respond(d, { audit: { rule } })` (6.3)', has: (p) => p.auditRule },
  {
    what: 'mount table (`listmount`/`statmount`, 6.8): unique mount ids',
    has: (p) => p.mounts.mountIds === 'unique',
    fallback: 'mountinfo, reusable ids',
  },
  { what: '`report.fdError` (6.13; 6.12.4 backport)', has: (p) => p.report.fdError },
  { what: '`preAccess`, `serveContent()`, `{ deny: errno }` (6.14)', has: (p) => p.events.preAccess && p.denyErrno },
  {
    what: '`watchMounts()`, `fanotify mounts` (mount events, 6.15)',
    has: (p) => p.mounts.mechanism === 'fanotify',
    fallback: 'mountinfo',
  },
  {
    what: 'following new mounts: `watch()`, `watchErrors()` without paths, `fanotify errors`, `fanotify watch`',
    has: (p) => p.mounts.mechanism === 'fanotify',
    fallback: 'mountinfo',
  },
  { what: '`report.mount`, scope `\'mntns\'`, `watchMounts({ namespace: fd })` (6.15)', has: (p) => p.report.mount && p.scopes.mntns },
];

function release(kernel) {
  const m = /^(\d+)\.(\d+)/.exec(kernel);
  return m ? `${m[1]}.${m[2]}` : kernel;
}

function totals(file) {
  try {
    const log = fs.readFileSync(file, 'utf8');
    const all = log.match(/^\d+ passed, \d+ failed$/gm);
    return all ? all[all.length - 1] : 'no totals';
  } catch {
    return 'no run';
  }
}

const columns = [];
for (const name of fs.existsSync(logs) ? fs.readdirSync(logs) : []) {
  const file = path.join(logs, name, 'probe.json');
  if (!fs.existsSync(file)) continue;
  columns.push({ probe: JSON.parse(fs.readFileSync(file, 'utf8')), suite: totals(path.join(logs, name, 'jest.log')) });
}
if (columns.length === 0) {
  console.error(`support-table: no probe.json under ${logs}: run bash scripts/kernels.sh first`);
  process.exit(1);
}
const cli = path.join(repo, 'dist', 'cli.js');
columns.push({ probe: JSON.parse(execFileSync(process.execPath, [cli, 'probe', '--json'], { encoding: 'utf8' })), suite: hostLog ? totals(hostLog) : 'not given' });
columns.sort((a, b) => release(a.probe.kernel).localeCompare(release(b.probe.kernel), 'en', { numeric: true }));

const line = (cells) => `| ${cells.join(' | ')} |`;
console.log(line(['feature', ...columns.map((c) => release(c.probe.kernel))]));
console.log(line(['---', ...columns.map(() => '---')]));
for (const r of rows) {
  console.log(line([r.what, ...columns.map((c) => (r.has(c.probe) ? 'native' : r.fallback ? `fallback: ${r.fallback}` : 'error'))]));
}
console.log(line(['the suite (`CI=true`), in that run', ...columns.map((c) => c.suite)]));
console.log();
console.log(`Kernels: ${columns.map((c) => c.probe.kernel).join(', ')}.`);
