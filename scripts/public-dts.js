#!/usr/bin/env node
// Keeps in dist/ only the declaration files that a user's TypeScript can reach
// from the package's entry points (dist/index.d.ts, dist/testing.d.ts, and what
// they import). The others describe internals (the addon binding, the event
// queue, the command line) that no import of 'fanotify' or 'fanotify/testing'
// reaches, and with their @internal parts stripped (tsconfig.json
// "stripInternal") they may not even compile on their own. Run after tsc.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const dist = path.join(__dirname, '..', 'dist');
const ENTRIES = ['index.d.ts', 'testing.d.ts'];

const reached = new Set();
const todo = ENTRIES.map((e) => path.join(dist, e));
while (todo.length > 0) {
  const file = todo.pop();
  if (reached.has(file)) continue;
  reached.add(file);
  const { importedFiles, referencedFiles } = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  for (const { fileName } of [...importedFiles, ...referencedFiles]) {
    if (!fileName.startsWith('.')) continue;  // node:*, another package's types
    const target = path.resolve(path.dirname(file), `${fileName.replace(/\.js$/, '')}.d.ts`);
    if (!fs.existsSync(target)) throw new Error(`${path.relative(dist, file)} imports '${fileName}', and there is no ${path.relative(dist, target)}`);
    todo.push(target);
  }
}

(function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(p);
    else if (entry.name.endsWith('.d.ts') && !reached.has(p)) fs.rmSync(p);
  }
})(dist);
