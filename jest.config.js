// Tests run against the real kernel, one file at a time: they mount loop
// devices and hold filesystem-wide marks, which must not overlap.
//
// The kernel matrix (scripts/kernels.sh, FANOTIFY_KERNEL_MATRIX in the guest)
// runs what involves the kernel. What does not (the npm package: pack,
// install, types; the API docs and README checks; the real monitoring
// services) runs once, on the host. The examples run on both: on the host
// from the installed tarball (package.test.ts), in each guest from this
// repository (examples-here.test.ts).
const HOST_ONLY = ['package', 'api-doc', 'readme-programs', 'monitoring-services'];
const GUEST_ONLY = ['examples-here'];
const notHere = process.env.FANOTIFY_KERNEL_MATRIX ? HOST_ONLY : GUEST_ONLY;

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', ...notHere.map((name) => `/test/${name}\\.test\\.ts$`)],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }] },
  maxWorkers: 1,
  reporters: ['default', '<rootDir>/scripts/totals-reporter.js'],
  // Scaled under emulation (the kernel matrix): see TIME_SCALE in test/helpers.ts.
  testTimeout: 30000 * Math.max(1, Number(process.env.FANOTIFY_TEST_TIME_SCALE) || 1),
};
