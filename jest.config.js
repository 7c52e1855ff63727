// Tests run against the real kernel, one file at a time: they mount loop
// devices and hold filesystem-wide marks, which must not overlap.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }] },
  maxWorkers: 1,
  reporters: ['default', '<rootDir>/scripts/totals-reporter.js'],
  // Scaled under emulation (the kernel matrix): see TIME_SCALE in test/helpers.ts.
  testTimeout: 30000 * Math.max(1, Number(process.env.FANOTIFY_TEST_TIME_SCALE) || 1),
};
