// The README's programs are the package's examples/, byte for byte: every
// ```js block whose first line is "// NAME.mjs ..." (or "// NAME.test.js")
// is examples/NAME.mjs, and every file there is in the README, so the two
// cannot drift. Each is type-checked, as written, with tsc --strict. They
// run in test/package.test.ts, from the copy a fresh project installed from
// the tarball (test/examples.js): once per suite, not twice.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { bound } from './helpers';

const ROOT = path.join(__dirname, '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const EXAMPLES = path.join(ROOT, 'examples');
// Inside the package (build/ is ignored by git and npm), so 'fanotify' is this package.
const DIR = path.join(ROOT, 'build', 'readme-programs');

const shown = new Map<string, string>();
for (const m of README.matchAll(/```js\n(\/\/ ([\w.-]+\.m?js)\b[^\n]*\n[\s\S]*?)```/g)) shown.set(m[2], m[1]);
// The programs; the unit file and alert rules there are checked by their own
// tools (test/monitoring-services.test.ts).
const files = fs.readdirSync(EXAMPLES).filter((f) => /\.m?js$/.test(f)).sort();

afterAll(() => fs.rmSync(DIR, { recursive: true, force: true }));

test('the README shows every file of examples/, and each is one the package test runs', () => {
  expect([...shown.keys()].sort()).toEqual(files);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { PROGRAMS } = require('./examples.js') as { PROGRAMS: Record<string, unknown> };
  expect(files).toEqual([...Object.keys(PROGRAMS).map((n) => `${n}.mjs`), 'health.test.js'].sort());
});

test('each README program is its examples/ file, byte for byte', () => {
  const inFiles = Object.fromEntries(files.map((f) => [f, fs.readFileSync(path.join(EXAMPLES, f), 'utf8')]));
  expect(Object.fromEntries(shown)).toEqual(inFiles);
});

test('each type-checks with tsc --strict, as written', () => {
  // The programs as .mts (ES modules), the jest test as checked JavaScript
  // (CommonJS, as this package's .js files are); 'fanotify' resolves to this
  // package by self-reference, through its "exports".
  const dir = path.join(DIR, 'types');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) fs.copyFileSync(path.join(EXAMPLES, f), path.join(dir, f.replace(/\.mjs$/, '.mts')));
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, allowJs: true, checkJs: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022',
      types: ['node', 'jest'], typeRoots: [path.join(ROOT, 'node_modules', '@types')], skipLibCheck: true,
    },
    include: ['*.mts', '*.js'],
  }));
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8' });
}, bound(60_000));
