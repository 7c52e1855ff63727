// Node 20 defines Symbol.asyncDispose (as Symbol.for('nodejs.asyncDispose'))
// only in its main realm; jest and other vm contexts have a Symbol without it,
// which breaks `await using` there. Define the same registered symbol so every
// realm agrees. Imported for its side effect before classes that use it.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Object.defineProperty(Symbol, 'asyncDispose', { value: Symbol.for('nodejs.asyncDispose') });
}
export {};
