// watch()'s `ignore` option: which paths are not reported. An event is
// ignored when its path, or a directory above it up to the root, matches;
// so 'node_modules' leaves out everything below every node_modules.
import * as path from 'node:path';
import type Picomatch from 'picomatch';

import { invalidArg } from '../core/errors';

/**
 * A glob relative to the root (picomatch syntax, dotfiles included:
 * 'node_modules', '**\/*.tmp', '.git/**'), a RegExp tested on the path
 * relative to the root, or a function given the full path and whether it is
 * a directory.
 */
export type IgnoreMatcher = string | RegExp | ((path: string, isDir: boolean) => boolean);

/** Whether a full path (under root) is ignored, by itself or by a directory above it. */
export interface Ignore {
  path(full: string, isDir: boolean): boolean;
  /** The directory, or one above it, is ignored: so is everything in it. */
  dir(full: string): boolean;
}

export function compileIgnore(root: string, option: IgnoreMatcher | readonly IgnoreMatcher[] | undefined): Ignore | null {
  if (option === undefined) return null;
  const list = (Array.isArray(option) ? option : [option]) as readonly unknown[];
  const tests: ((rel: string, full: string, isDir: boolean) => boolean)[] = list.map((m, i) => {
    const name = Array.isArray(option) ? `options.ignore[${i}]` : 'options.ignore';
    if (typeof m === 'string') {
      if (m === '') throw invalidArg(name, m, 'must be a non-empty glob');
      // Loaded only when a glob is given.
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const picomatch = require('picomatch') as typeof Picomatch;
      const match = picomatch(m, { dot: true });
      return (rel) => match(rel);
    }
    if (m instanceof RegExp) return (rel) => { m.lastIndex = 0; return m.test(rel); };
    if (typeof m === 'function') return (_rel, full, isDir) => m(full, isDir) === true;
    throw invalidArg(name, m, 'must be a glob, a RegExp or a function (path, isDir) => boolean');
  });
  if (tests.length === 0) return null;
  const one = (full: string, isDir: boolean): boolean => {
    const rel = path.relative(root, full);
    if (rel === '' || rel.startsWith('..')) return false;  // the root itself, or outside it
    return tests.some((t) => t(rel, full, isDir));
  };
  const dir = (full: string): boolean => {
    for (let at = full; at !== root && at.length > root.length; at = path.dirname(at)) if (one(at, true)) return true;
    return false;
  };
  return { path: (full, isDir) => one(full, isDir) || dir(path.dirname(full)), dir };
}
