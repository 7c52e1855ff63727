// watchMounts() through the /proc/self/mountinfo fallback, on every kernel:
// FANOTIFY_WITHOUT makes the capability layer answer as a kernel before 6.8
// would (no mount events, no listmount), so the fallback that 6.1 and 6.12
// use is also tested where the kernel has mount events. Set before the
// library loads (jest gives each test file its own modules).
process.env.FANOTIFY_WITHOUT = 'mountEvents,mntnsMark,reportMount,listmount';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { mountSuite } = require('./mount-suite') as typeof import('./mount-suite');

mountSuite('watchMounts() through /proc/self/mountinfo');
