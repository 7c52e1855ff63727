// Jest reporter: ends the run with the totals on a line of their own,
// "N passed, N failed", which CI logs are searched for.
'use strict';

class TotalsReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    process.stdout.write(`\n${results.numPassedTests} passed, ${failed} failed\n`);
  }
}

module.exports = TotalsReporter;
