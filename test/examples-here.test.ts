// The examples' programs (examples/*.mjs, the README's), run from this
// repository against the kernel under test: what the kernel matrix runs in
// place of the package test, which runs them from the installed tarball on
// the host (jest.config.js says which runs where). 'fanotify' resolves to
// this package by self-reference.
import * as path from 'node:path';

import { describeExamples } from './examples-suite';

const ROOT = path.join(__dirname, '..');

describeExamples('the examples, run from this repository', () => ({
  examples: path.join(ROOT, 'examples'),
  cwd: ROOT,
  env: process.env,
  jest: path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'),
}));
