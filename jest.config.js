// Tests run against the real kernel, one file at a time: they mount loop
// devices and hold filesystem-wide marks, which must not overlap.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }] },
  maxWorkers: 1,
  reporters: ['default', '<rootDir>/scripts/totals-reporter.js'],
  testTimeout: 30000,
};
