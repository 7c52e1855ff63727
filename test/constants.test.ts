// lib/core/constants.ts against what the native build sees (<linux/fanotify.h> of
// this machine plus src-native/uapi.h for what older headers lack), against the
// installed header itself, and the errno names.
import * as fs from 'node:fs';
import * as os from 'node:os';

import { binding } from '../lib/core/binding';
import { constants, FAN_DENY_ERRNO } from '../lib/core/constants';
import { errnoName, errnoNumber } from '../lib/core/errno';
import * as index from '../lib';

const lib = constants as Readonly<Record<string, number>>;

describe('constants', () => {
  test('every constant of the native build equals lib/core/constants.ts', () => {
    const native = binding.constants;
    const keys = Object.keys(native);
    expect(keys.length).toBeGreaterThan(60);
    const mismatches = keys
      .filter((key) => lib[key] !== native[key])
      .map((key) => `${key}: native ${native[key]}, lib ${lib[key]}`);
    expect(mismatches).toEqual([]);
  });

  test('the public entry point exports the same table', () => {
    expect(index.constants).toBe(constants);
    expect(Object.isFrozen(constants)).toBe(true);
  });

  // Names that 6.1-era distribution headers lack, with their values in Linux 6.18
  // (include/uapi/linux/fanotify.h).
  test.each([
    ['FAN_PRE_ACCESS', 0x00100000],
    ['FAN_MNT_ATTACH', 0x01000000],
    ['FAN_MNT_DETACH', 0x02000000],
    ['FAN_REPORT_FD_ERROR', 0x00002000],
    ['FAN_REPORT_MNT', 0x00004000],
    ['FAN_MARK_MNTNS', 0x00000110],
    ['FAN_EVENT_INFO_TYPE_RANGE', 6],
    ['FAN_EVENT_INFO_TYPE_MNT', 7],
    ['FAN_INFO', 0x20],
    ['FAN_RESPONSE_INFO_NONE', 0],
    ['FAN_RESPONSE_INFO_AUDIT_RULE', 1],
    ['FAN_ERRNO_BITS', 8],
    ['FAN_ERRNO_SHIFT', 24],
    ['FAN_ERRNO_MASK', 0xff],
    ['FAN_NOPIDFD', -1],
    ['FAN_EPIDFD', -2],
  ])('%s = %d (Linux 6.18)', (name, value) => {
    expect(lib[name]).toBe(value);
  });

  // The installed header, parsed: every object-like FAN_* / FANOTIFY_* macro is
  // in the table with the same value. Deprecated aggregates are left out on
  // purpose (the header says "do not use this in programs").
  const HEADER = '/usr/include/linux/fanotify.h';
  const DEPRECATED = new Set([
    'FAN_ALL_CLASS_BITS', 'FAN_ALL_INIT_FLAGS', 'FAN_ALL_MARK_FLAGS', 'FAN_ALL_EVENTS',
    'FAN_ALL_PERM_EVENTS', 'FAN_ALL_OUTGOING_EVENTS',
  ]);
  (fs.existsSync(HEADER) ? test : test.skip)(`every named constant of ${HEADER} is exported with its value`, () => {
    const text = fs.readFileSync(HEADER, 'utf8').replace(/\\\n/g, ' ').replace(/\/\*[\s\S]*?\*\//g, ' ');
    const macros = new Map<string, string>();
    for (const m of text.matchAll(/^#define\s+((?:FAN|FANOTIFY)_\w+)(?!\()\s+(.+)$/gm)) macros.set(m[1], m[2].trim());
    expect(macros.size).toBeGreaterThan(50);
    const problems: string[] = [];
    for (const [name, expr] of macros) {
      if (DEPRECATED.has(name)) continue;
      if (!(name in lib)) {
        problems.push(`${name} missing`);
        continue;
      }
      if (/sizeof/.test(expr)) continue;  // FAN_EVENT_METADATA_LEN: checked natively
      const js = expr.replace(/[A-Z_][A-Z0-9_]*/g, (id) => (id in lib ? `(${lib[id]})` : id)).replace(/(0x[0-9a-f]+|\d+)[uUlL]+/g, '$1');
      if (!/^[\s\d()|&<>~+\-xa-fA-F]*$/.test(js)) {
        problems.push(`${name}: cannot evaluate ${expr}`);
        continue;
      }
      // eslint-disable-next-line no-new-func
      const value = Function(`return (${js});`)() as number;
      if (lib[name] !== value) problems.push(`${name}: header ${expr} = ${value}, lib ${lib[name]}`);
    }
    expect(problems).toEqual([]);
  });

  test('FAN_EVENT_METADATA_LEN and the version are what the parser expects', () => {
    expect(lib.FAN_EVENT_METADATA_LEN).toBe(24);
    expect(lib.FANOTIFY_METADATA_VERSION).toBe(3);
  });

  test('FAN_DENY_ERRNO', () => {
    expect(FAN_DENY_ERRNO(5)).toBe(2 | (5 << 24));
    expect(FAN_DENY_ERRNO(5)).toBe(0x05000002);
    expect(FAN_DENY_ERRNO(os.constants.errno.EPERM)).toBe(0x01000002);
    expect(FAN_DENY_ERRNO(os.constants.errno.EDQUOT)).toBe(0x7a000002);
    // Only the low 8 bits of the errno fit; the result is an unsigned 32-bit value.
    expect(FAN_DENY_ERRNO(0x1ff)).toBe(0xff000002);
    expect(FAN_DENY_ERRNO(0)).toBe(lib.FAN_DENY);
    expect(index.FAN_DENY_ERRNO).toBe(FAN_DENY_ERRNO);
  });
});

describe('errno names', () => {
  test('117 is EUCLEAN, and EFSCORRUPTED for filesystem errors; 74 is EFSBADCRC', () => {
    expect(errnoName(117)).toBe('EUCLEAN');
    expect(errnoName(117, { fs: true })).toBe('EFSCORRUPTED');
    expect(errnoName(74)).toBe('EBADMSG');
    expect(errnoName(74, { fs: true })).toBe('EFSBADCRC');
    expect(errnoName(108, { fs: true })).toBe('ESHUTDOWN');
    expect(errnoName(5, { fs: true })).toBe('EIO');
    expect(errnoName(-117, { fs: true })).toBe('EFSCORRUPTED');
    expect(index.errnoName).toBe(errnoName);
  });

  test('errnoNumber knows the filesystem names and is case-insensitive', () => {
    expect(errnoNumber('EFSCORRUPTED')).toBe(117);
    expect(errnoNumber('EUCLEAN')).toBe(117);
    expect(errnoNumber('EFSBADCRC')).toBe(74);
    expect(errnoNumber('EBADMSG')).toBe(74);
    expect(errnoNumber('eio')).toBe(5);
    expect(errnoNumber('ENOTANERRNO')).toBeUndefined();
  });

  test('unknown numbers get E<number>', () => {
    expect(errnoName(9999)).toBe('E9999');
  });

  test('errnoName agrees with node:os on every errno number', () => {
    const names = new Map<number, string[]>();
    for (const [name, num] of Object.entries(os.constants.errno)) names.set(num, [...(names.get(num) ?? []), name]);
    // Linux calls 95 EOPNOTSUPP where libuv says ENOTSUP; both are the same number.
    const wrong = [...names].filter(([num, known]) => !known.includes(errnoName(num)) && !(num === 95 && errnoName(num) === 'EOPNOTSUPP'));
    expect(wrong).toEqual([]);
  });

  // Aliases Node itself uses (node:fs reports 95 as ENOTSUP; EWOULDBLOCK is
  // EAGAIN) must be known, or { deny: 'EWOULDBLOCK' } would be refused.
  test('errnoNumber resolves every name node:os knows, aliases included', () => {
    const unknown = Object.entries(os.constants.errno).filter(([name, num]) => errnoNumber(name) !== num);
    expect(unknown).toEqual([]);
  });
});
