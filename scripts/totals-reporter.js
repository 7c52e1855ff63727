// Jest reporter: ends the run with the totals on a line of their own,
// "N passed, N failed", which CI logs are searched for. Printed at exit so it
// comes after jest's own summary.
'use strict';

class TotalsReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const line = `${results.numPassedTests} passed, ${failed} failed\n`;
    process.once('exit', () => process.stdout.write(`\n${line}`));
  }
}

module.exports = TotalsReporter;
