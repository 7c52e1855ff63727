#!/usr/bin/env node
// Builds what `npm test`, the demo and the benchmarks need from the current
// sources: the native addon (build/Release, which node-gyp-build prefers over
// prebuilds) and the TypeScript (dist/, with ESM wrappers).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const run = (script, args) =>
  execFileSync(process.execPath, [script, ...args], { cwd: root, stdio: 'inherit' });
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');

// Run directly (not through npm), node-gyp would download Node's headers; the
// ones installed with this node serve as well and need no network.
const prefix = path.dirname(path.dirname(process.execPath));
if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi')))
  process.env.npm_config_nodedir = prefix;

if (!fs.existsSync(path.join(root, 'build', 'Makefile'))) run(nodeGyp, ['configure']);
run(nodeGyp, ['build']);
run(require.resolve('typescript/bin/tsc'), ['-p', 'tsconfig.json']);
run(path.join(__dirname, 'esm-wrappers.js'), []);
run(path.join(__dirname, 'public-dts.js'), []);
// tsc writes files 0644: the command line (package.json "bin") must be executable.
fs.chmodSync(path.join(root, 'dist', 'cli.js'), 0o755);
