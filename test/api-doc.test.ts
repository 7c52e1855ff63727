// API.md mentions everything users can reach, and the lists of what that is
// come from the code, never from a list kept by hand: the exports and their
// members from the published declarations (dist/index.d.ts and
// dist/testing.d.ts, read with the TypeScript compiler API, so @internal
// parts do not count), the error codes from lib/, the commands and options
// from the CLI's own table. A name counts as mentioned when it appears in code
// (`...` or a fenced block) in API.md; an option key, a field or a member
// only in a section that names its type (or, for the CLI, under "Command
// line"). Needs `npm run build` first; no root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

import { COMMANDS } from '../lib/cli';
import { HELP_OPTION } from '../lib/cli/command';

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const API = fs.readFileSync(path.join(ROOT, 'API.md'), 'utf8');
const ENTRIES = ['index.d.ts', 'testing.d.ts'].map((f) => path.join(DIST, f));

function filesUnder(dir: string, ext: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p, ext) : e.name.endsWith(ext) ? [p] : [];
  });
}

/** The code in some markdown: inline `code` spans and fenced blocks, one per line. */
function codeOf(md: string): string {
  const fenced = [...md.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  const inline = [...md.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '').matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  return [...fenced, ...inline].join('\n');
}

/** Whether `word` appears in `code` as a whole word (names like 'pre-content' included). */
const inCode = (code: string, word: string): boolean =>
  new RegExp(`(?<![\\w$-])${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w$-])`).test(code);

/** API.md split at its headings. */
const SECTIONS = API.split(/^(?=#{1,6} )/m);
const ALL_CODE = codeOf(API);

/** The code of the sections that name `type` in code. */
function codeAbout(type: string): string {
  return SECTIONS.filter((s) => inCode(codeOf(s), type)).map(codeOf).join('\n');
}

interface PublicSurface {
  /** Every export name of 'fanotify' and 'fanotify/testing'. */
  exports: string[];
  /** Exported interfaces and classes -> their own public members. */
  members: Map<string, string[]>;
  /** Exported type aliases of string literals -> the strings. */
  literals: Map<string, string[]>;
}

function publicSurface(): PublicSurface {
  const program = ts.createProgram(ENTRIES, { noEmit: true, types: ['node'], skipLibCheck: true });
  const checker = program.getTypeChecker();
  const out: PublicSurface = { exports: [], members: new Map(), literals: new Map() };
  for (const entry of ENTRIES) {
    const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const name = exported.getName();
      out.exports.push(name);
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      for (const decl of symbol.getDeclarations() ?? []) {
        if (ts.isClassDeclaration(decl) || ts.isInterfaceDeclaration(decl)) {
          // Named members only: no constructor, #private or [Symbol.asyncIterator]; no private ones.
          const names = decl.members
            .filter((m) => m.name !== undefined && (ts.isIdentifier(m.name) || ts.isStringLiteral(m.name)))
            .filter((m) => !(ts.getCombinedModifierFlags(m as ts.Declaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)))
            .map((m) => (m.name as ts.Identifier | ts.StringLiteral).text);
          out.members.set(name, [...new Set(names)]);
        } else if (ts.isTypeAliasDeclaration(decl)) {
          const type = checker.getTypeAtLocation(decl.name);
          const parts = type.isUnion() ? type.types : [type];
          const strings = parts.filter((t): t is ts.StringLiteralType => t.isStringLiteral()).map((t) => t.value);
          if (strings.length > 0 && strings.length === parts.filter((t) => !(t.flags & ts.TypeFlags.BooleanLike)).length)
            out.literals.set(name, strings);
        }
      }
    }
  }
  return out;
}

/** Every error code lib/ gives an error: ERR_* anywhere, and `code = '...'` assignments (ABORT_ERR). */
function errorCodes(): string[] {
  const codes = new Set<string>();
  for (const file of filesUnder(path.join(ROOT, 'lib'), '.ts')) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\bERR_[A-Z0-9_]+\b/g)) codes.add(m[0]);
    for (const m of text.matchAll(/\bcode = '([A-Z][A-Z0-9_]+)'/g)) codes.add(m[1]);
  }
  return [...codes].sort();
}

describe('API.md', () => {
  let surface: PublicSurface;
  beforeAll(() => {
    if (!fs.existsSync(ENTRIES[0])) throw new Error('no dist/index.d.ts: run `npm run build` first');
    const built = fs.statSync(ENTRIES[0]).mtimeMs;
    const stale = filesUnder(path.join(ROOT, 'lib'), '.ts').filter((f) => fs.statSync(f).mtimeMs > built);
    if (stale.length > 0) throw new Error(`dist/ is older than ${path.relative(ROOT, stale[0])}: run \`npm run build\` first`);
    surface = publicSurface();
  });

  test('the lists come out of the code (a broken extraction would make every test pass)', () => {
    expect(surface.exports).toEqual(expect.arrayContaining(['Fanotify', 'watchErrors', 'LoopImage', 'withLoopImage']));
    expect(surface.members.get('FanotifyEvent')).toEqual(expect.arrayContaining(['events', 'file', 'respond', 'keepFd']));
    expect(surface.members.get('FanotifyOptions')).toEqual(expect.arrayContaining(['class', 'permission']));
    expect(surface.literals.get('Scope')).toEqual(['inode', 'mount', 'filesystem', 'mntns']);
    expect(errorCodes()).toEqual(expect.arrayContaining(['ERR_FANOTIFY_UNSUPPORTED', 'ERR_ALREADY_RESPONDED', 'ABORT_ERR']));
    expect(COMMANDS.length).toBeGreaterThan(0);
  });

  test("names every export of 'fanotify' and 'fanotify/testing'", () => {
    expect(surface.exports.filter((name) => !inCode(ALL_CODE, name))).toEqual([]);
  });

  test('names every option, field and member, in a section about its type', () => {
    const missing: string[] = [];
    for (const [type, names] of surface.members) {
      const code = codeAbout(type);
      for (const name of names) if (!inCode(code, name)) missing.push(`${type}.${name}`);
    }
    expect(missing).toEqual([]);
  });

  test('names every value of the string unions (event names, scopes, classes, features, ...)', () => {
    const missing: string[] = [];
    for (const [type, values] of surface.literals) {
      const code = codeAbout(type);
      for (const value of values) if (!inCode(code, value)) missing.push(`${type} '${value}'`);
    }
    expect(missing).toEqual([]);
  });

  test('names every error code used in lib/', () => {
    expect(errorCodes().filter((code) => !inCode(ALL_CODE, code))).toEqual([]);
  });

  test('names every command of the command line and its options', () => {
    const cli = SECTIONS.filter((s) => /^## Command line/.test(s)).map(codeOf).join('\n');
    const missing: string[] = [];
    for (const command of COMMANDS) {
      if (!inCode(cli, command.name)) missing.push(command.name);
      for (const o of [...command.options, HELP_OPTION]) {
        if (!cli.includes(`--${o.name}`)) missing.push(`${command.name} --${o.name}`);
        if (o.short && !cli.includes(`-${o.short}`)) missing.push(`${command.name} -${o.short}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
