// Prints the plain closing line CI reads ("N passed, N failed[, N skipped]") and keeps it in
// .data/test-summary.txt (or the `file` option: the cluster suite's own) so .ci/run can repeat
// it as its very last line.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

export default class SummaryReporter {
  constructor(_globalConfig, options = {}) {
    this.file = options.file ?? 'test-summary.txt';
  }

  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    let line = `${results.numPassedTests} passed, ${failed} failed`;
    if (results.numPendingTests) line += `, ${results.numPendingTests} skipped`;
    const dir = resolve(import.meta.dirname, '..', '..', '.data');
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, this.file), `${line}\n`);
    process.stdout.write(`\n${line}\n`);
  }
}
