// fanotify/testing: the test kit's entry point.
export * from './testing/loop-image';
