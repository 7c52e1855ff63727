// watch() and watchErrors() following mounts as this kernel does it (mount
// events on Linux 6.15+, /proc/self/mountinfo before): the suite is in
// follow-suite.ts.
import { followSuite } from './follow-suite';

followSuite('following mounts');
