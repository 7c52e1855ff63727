#!/usr/bin/env node
// Lists the failed tests of a guest's jest run, read from jest's --json
// output: file, test name and the first two lines of the error, as plain
// text. Usage: node failures.js jest.json [repository]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const file = process.argv[2];
const report = JSON.parse(fs.readFileSync(file, 'utf8'));
const root = process.argv[3] || process.cwd();
// eslint-disable-next-line no-control-regex
const plain = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
// The first two lines of the message, before the stack and the code frame.
const head = (msg) => {
  const lines = [];
  for (const l of plain(msg || '').split('\n').map((x) => x.trim())) {
    if (/^at /.test(l) || /^>? *\d+ \|/.test(l)) break;
    if (l) lines.push(l);
  }
  return lines.slice(0, 2);
};

const out = [];
for (const suite of report.testResults) {
  const name = path.relative(root, suite.name);
  const failed = suite.assertionResults.filter((t) => t.status === 'failed');
  if (failed.length === 0 && suite.status !== 'failed') continue;
  out.push(name);
  for (const t of failed) {
    out.push(`  ${[...t.ancestorTitles, t.title].join(' › ')}`);
    for (const l of head(t.failureMessages[0])) out.push(`      ${l}`);
  }
  // A file that failed outside any test (it did not compile, a hook threw).
  if (failed.length === 0) for (const l of head(suite.message)) out.push(`      ${l}`);
}
process.stdout.write(out.length ? `${out.join('\n')}\n` : 'no failed tests\n');
