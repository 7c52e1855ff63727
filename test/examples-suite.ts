// The examples' programs (examples/*.mjs), each run as a user runs it, as a
// jest suite: used by package.test.ts (from a project that installed the
// tarball, on the host) and examples-here.test.ts (from this repository, in
// the kernel matrix's guests). The running and poking is test/examples.js,
// which `npm run test:pack` uses too.
import type { Feature } from '../lib/kernel/capabilities';
import { LoopImage } from '../lib/testing';
import { bound, describeRoot, testFeature } from './helpers';

export interface ExampleContext { examples: string; cwd: string; env: NodeJS.ProcessEnv; jest: string }
export interface Ran { command: string; line: string; ms: number }
interface Examples {
  PROGRAMS: Record<string, { promise: string; feature?: Feature }>;
  runProgram(name: string, ctx: ExampleContext & { img: LoopImage; lacking: Feature[] }): Promise<Ran>;
  runJestExample(ctx: ExampleContext): Promise<Ran>;
}
// eslint-disable-next-line @typescript-eslint/no-var-requires
export const examples = require('./examples.js') as Examples;

/**
 * describeRoot(name) with one test per program, against a loop image; a
 * kernel without a feature a program needs gets its typed error instead.
 * `context` is called in each test (the project may be made in a beforeAll).
 */
export function describeExamples(name: string, context: () => ExampleContext, more?: () => void): void {
  describeRoot(name, () => {
    let img: LoopImage;
    beforeAll(async () => {
      img = await LoopImage.create({ mountOptions: ['errors=continue'] });
    });
    afterAll(async () => {
      await img?.dispose();
    });

    for (const [program, { promise, feature }] of Object.entries(examples.PROGRAMS)) {
      const run = (lacking: Feature[]) => async () => {
        const r = await examples.runProgram(program, { ...context(), img, lacking });
        console.log(`$ ${r.command}\n  ${r.line}`);
      };
      const title = `examples/${program}.mjs: ${promise}`;
      if (feature) testFeature(feature, title, run([]), bound(30_000), (missing) => run(missing)());
      else test(title, run([]), bound(30_000));
    }
    more?.();
  });
}
