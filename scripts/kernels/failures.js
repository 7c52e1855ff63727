#!/usr/bin/env node
// Lists the failed tests of a guest's jest run from its output (jest.log):
// file, test name and the first two lines of the error, as plain text.
// Read from the default reporter's text because jest's --json can itself
// fail (it cannot serialize a BigInt in a failed expectation).
// Usage: node failures.js jest.log
'use strict';
const fs = require('node:fs');

// eslint-disable-next-line no-control-regex
const lines = fs.readFileSync(process.argv[2], 'utf8').replace(/\x1b\[[0-9;]*m/g, '').split('\n');
const out = [];
let file = null;
for (let i = 0; i < lines.length; i++) {
  const l = lines[i];
  const suite = /^(PASS|FAIL) (\S+)/.exec(l);
  if (suite) { file = suite[1] === 'FAIL' ? suite[2] : null; if (file) out.push(file); continue; }
  // The end, or jest's summary, which repeats what came before.
  if (/^(Test Suites: |Summary of all failing tests)/.test(l)) break;
  const head = /^ {2}● (.*)$/.exec(l);
  if (!file || !head || head[1] === 'Console') continue;
  // A test with several errors has one block each: the first one is enough.
  if (out.includes(`  ${head[1]}`)) continue;
  out.push(`  ${head[1]}`);
  let n = 0;
  for (let j = i + 1; j < lines.length && n < 2; j++) {
    const m = lines[j].trim();
    if (/^ {2}● /.test(lines[j]) || /^(PASS|FAIL) /.test(lines[j])) break;
    if (/^at /.test(m) || /^>? *\d+ \|/.test(m)) break;   // the stack, the code frame
    if (m) { out.push(`      ${m}`); n++; }
  }
}
process.stdout.write(out.length ? `${out.join('\n')}\n` : 'no failed tests\n');
