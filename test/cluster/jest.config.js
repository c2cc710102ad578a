// The cluster suite (`npm run test:cluster`): real processes, its own Temporal server, so no
// global setup. Not a project of `npm test`: its seven processes would compete with the
// integration suite for the machine's cores; .ci/run runs it after, and adds up both counts.
const swc = ['@swc/jest', {
  jsc: { parser: { syntax: 'typescript' }, target: 'es2023' },
  module: { type: 'es6' },
}];

export default {
  rootDir: '../..',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/cluster/**/*.test.ts'],
  reporters: ['default', ['<rootDir>/test/helpers/summary-reporter.js', { file: 'test-summary-cluster.txt' }]],
  maxWorkers: 1,
  testTimeout: 60_000,
};
