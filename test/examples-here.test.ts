// The examples' programs (examples/*.mjs, the README's), run from this
// repository against the kernel under test: what the kernel matrix runs in
// place of the package test, which runs them from the installed tarball on
// the host (jest.config.js says which runs where). 'fanotify' resolves to
// this package by self-reference. As there: each is poked until it does what
// it promises, then SIGINT must end it with exit 0 and nothing on stderr; a
// kernel without a feature an example needs gets its typed error instead.
import * as path from 'node:path';

import type { Feature } from '../lib/kernel/capabilities';
import { LoopImage } from '../lib/testing';
import { bound, describeRoot, testFeature } from './helpers';

interface Ran { command: string; line: string; ms: number }
interface ExampleContext { examples: string; cwd: string; env: NodeJS.ProcessEnv; jest: string }
interface Examples {
  PROGRAMS: Record<string, { promise: string; feature?: Feature }>;
  runProgram(name: string, ctx: ExampleContext & { img: LoopImage; lacking: Feature[] }): Promise<Ran>;
}
// eslint-disable-next-line @typescript-eslint/no-var-requires
const examples = require('./examples.js') as Examples;

const ROOT = path.join(__dirname, '..');
const context: ExampleContext = {
  examples: path.join(ROOT, 'examples'),
  cwd: ROOT,
  env: process.env,
  jest: path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'),
};

describeRoot('the examples, run from this repository', () => {
  let img: LoopImage;
  beforeAll(async () => {
    img = await LoopImage.create({ mountOptions: ['errors=continue'] });
  });
  afterAll(async () => {
    await img?.dispose();
  });

  for (const [name, program] of Object.entries(examples.PROGRAMS)) {
    const run = (lacking: Feature[]) => async () => {
      const r = await examples.runProgram(name, { ...context, img, lacking });
      console.log(`$ ${r.command}\n  ${r.line}`);
    };
    const title = `examples/${name}.mjs: ${program.promise}`;
    if (program.feature) testFeature(program.feature, title, run([]), bound(30_000), (missing) => run(missing)());
    else test(title, run([]), bound(30_000));
  }
});
