// probe() against the running kernel: everything this project relies on is
// there on the CI machines (Linux 6.18), and the report has its full shape.
import { probe } from '../lib';
import { describeRoot } from './helpers';

describeRoot('probe()', () => {
  test('reports every class, report flag, scope, event and record as supported on this kernel', () => {
    const f = probe();
    expect(f.available).toBe(true);
    expect(f.kernel).toMatch(/^\d+\.\d+/);
    for (const group of [f.classes, f.report, f.groupFlags, f.scopes, f.markFlags, f.events, f.records]) {
      for (const [name, ok] of Object.entries(group)) expect([name, ok]).toEqual([name, true]);
    }
    expect(f.denyErrno).toBe(true);
  });

  test('leaves no fd behind', () => {
    const before = require('node:fs').readdirSync('/proc/self/fd').length;
    probe();
    expect(require('node:fs').readdirSync('/proc/self/fd').length).toBe(before);
  });
});
