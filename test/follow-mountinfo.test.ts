// watch() and watchErrors() following mounts through /proc/self/mountinfo,
// on every kernel: FANOTIFY_WITHOUT makes the capability layer answer as a
// kernel before 6.8 would (see mounts-mountinfo.test.ts). Set before the
// library loads (jest gives each test file its own modules); children
// started by the suite inherit it.
process.env.FANOTIFY_WITHOUT = 'mountEvents,mntnsMark,reportMount,listmount';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { followSuite } = require('./follow-suite') as typeof import('./follow-suite');

followSuite('following mounts through /proc/self/mountinfo');
