// The cluster suite (`npm run test:cluster`): real processes, its own Temporal server, so no
// global setup. Kept out of the default run until it has been seen passing on the CI machine.
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
  maxWorkers: 1,
  testTimeout: 60_000,
};
