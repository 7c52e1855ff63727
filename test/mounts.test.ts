// watchMounts() as this kernel does it (mount events on Linux 6.15+,
// /proc/self/mountinfo before): the suite is in mount-suite.ts.
import { mountSuite } from './mount-suite';

mountSuite('watchMounts()');
