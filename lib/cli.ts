#!/usr/bin/env node
// The `fanotify` command line: `fanotify <command> [options] [args]`.
//
// Commands live in one table (COMMANDS below): a name, a usage line, a summary,
// the options it accepts and a run function. To add one, write its run
// function and add a row; parsing, help, signals and error reporting are
// shared. Human-readable lines by default, `--json` for one JSON object per
// line; diagnostics go to stderr, results to stdout, each as whole lines.
//
// Exit codes: 0 success (and Ctrl-C / SIGTERM), 1 failure, 2 usage error.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ErrorFilesystem, ErrorWatcher, Features, FsErrorEvent, probe, watchErrors } from './index';

// ---------------------------------------------------------------------------
// Command table and argument parsing

export interface OptionSpec {
  /** Long name, without the dashes: 'json' is --json. */
  name: string;
  /** One letter: 'v' is -v. */
  short?: string;
  /** Placeholder for the value, if the option takes one ('--depth N'); else a flag. */
  value?: string;
  help: string;
}

export interface ParsedArgs {
  positionals: string[];
  /** Flags are true when given; options with a value hold the (last) value. */
  options: Record<string, string | boolean | undefined>;
}

export interface CommandContext {
  args: ParsedArgs;
  /** Aborted on SIGINT / SIGTERM (or when stdout goes away): stop and return 0. */
  signal: AbortSignal;
  /** Writes one whole line to stdout. */
  out(line: string): void;
  /** Writes one whole line to stderr. */
  err(line: string): void;
}

export interface Command {
  name: string;
  /** Arguments after the command name, for the usage line: '[PATH...] [--json]'. */
  usage: string;
  summary: string;
  options: OptionSpec[];
  /** Positional arguments allowed (default 0). */
  maxPositionals?: number;
  /** Resolves to the exit code. Throws UsageError (exit 2) or anything else (exit 1). */
  run(ctx: CommandContext): Promise<number>;
}

/** A mistake on the command line: reported with the usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: Command) {
    super(message);
    this.name = 'UsageError';
  }
}

const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', help: 'show this help' };
const VERBOSE_OPTION: OptionSpec = { name: 'verbose', short: 'v', help: 'say more (on stderr)' };
const JSON_OPTION: OptionSpec = { name: 'json', help: 'one JSON object per line' };

/** Parses the arguments after the command name against the command's options. */
export function parseArgs(argv: readonly string[], command: Command): ParsedArgs {
  const specs = [HELP_OPTION, ...command.options];
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const parsed: ParsedArgs = { positionals: [], options: {} };
  const bad = (msg: string): never => {
    throw new UsageError(msg, command);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      const spec = byLong.get(name);
      if (!spec) bad(`unknown option '--${name}'`);
      if (spec!.value === undefined) {
        if (eq !== -1) bad(`option '--${name}' takes no value`);
        parsed.options[name] = true;
      } else if (eq !== -1) {
        parsed.options[name] = arg.slice(eq + 1);
      } else {
        if (i + 1 >= argv.length) bad(`option '--${name}' needs a value (${spec!.value})`);
        parsed.options[name] = argv[++i];
      }
    } else if (arg.startsWith('-') && arg !== '-') {
      // -v, -hv; a short option with a value takes the rest or the next argument.
      for (let j = 1; j < arg.length; j++) {
        const spec = byShort.get(arg[j]);
        if (!spec) bad(`unknown option '-${arg[j]}'`);
        if (spec!.value === undefined) {
          parsed.options[spec!.name] = true;
          continue;
        }
        const rest = arg.slice(j + 1);
        if (rest !== '') parsed.options[spec!.name] = rest;
        else if (i + 1 < argv.length) parsed.options[spec!.name] = argv[++i];
        else bad(`option '-${arg[j]}' needs a value (${spec!.value})`);
        break;
      }
    } else {
      parsed.positionals.push(arg);
    }
  }
  if (!parsed.options.help && parsed.positionals.length > (command.maxPositionals ?? 0)) {
    bad(command.maxPositionals
      ? `too many arguments: ${parsed.positionals.slice(command.maxPositionals).join(' ')}`
      : `unexpected argument '${parsed.positionals[0]}'`);
  }
  return parsed;
}

// ---------------------------------------------------------------------------
// Output helpers

const writeLine = (stream: NodeJS.WriteStream) => (line: string): void => {
  // One write per line: readers of a pipe never see half a line.
  stream.write(`${line}\n`);
};

/** An error as one line: no stack, no embedded newlines. */
function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n').map((s) => s.trim()).filter(Boolean).join(' ');
}

function isPermissionError(err: unknown): boolean {
  const e = err as { code?: unknown; syscall?: unknown };
  return e?.code === 'EPERM' && (e.syscall === 'fanotify_init' || e.syscall === 'fanotify_mark');
}

function describeFs(f: ErrorFilesystem): string {
  if (!f.mountPoint) return `filesystem fsid ${f.fsid}`;
  return `${f.type || 'unknown'} ${f.source || 'none'} on ${f.mountPoint}`;
}

// ---------------------------------------------------------------------------
// fanotify errors

/** FsErrorEvent as plain JSON: time ISO, ino decimal string, handle hex. */
export function errorEventToJson(e: FsErrorEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {
    time: e.time.toISOString(),
    errno: e.errno,
    code: e.code,
    count: e.count,
    filesystem: { fsid: e.filesystem.fsid, mountPoint: e.filesystem.mountPoint, source: e.filesystem.source, type: e.filesystem.type },
  };
  if (e.inode) {
    const inode: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e.inode)) {
      if (v === undefined) continue;
      inode[k] = Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'bigint' ? v.toString() : v;
    }
    out.inode = inode;
  }
  if (e.detail) out.detail = { ...e.detail };
  return out;
}

/**
 * One readable line:
 * `2026-11-22T02:46:48.746Z EFSCORRUPTED (117) x1 ext4 /dev/loop0 on /mnt: inode 13 gen 2938 [/mnt/dir/bad] at ext4_lookup:1787`
 */
export function formatErrorEvent(e: FsErrorEvent): string {
  let line = `${e.time.toISOString()} ${e.code} (${e.errno}) x${e.count} ${describeFs(e.filesystem)}: `;
  if (e.inode) {
    const i = e.inode;
    line += i.ino !== undefined
      ? `inode ${i.ino}${i.generation !== undefined ? ` gen ${i.generation}` : ''}`
      : `inode handle ${i.handleType}:${i.handle.toString('hex')}`;
    if (i.path) line += ` [${i.path}]`;
  } else {
    line += 'filesystem';
  }
  const d = e.detail;
  if (d) {
    if (d.function) line += ` at ${d.function}${d.line !== undefined ? `:${d.line}` : ''}`;
    const extra: string[] = [];
    if (d.inode !== undefined && (e.inode?.ino === undefined || BigInt(d.inode) !== e.inode.ino)) extra.push(`inode ${d.inode}`);
    if (d.block !== undefined) extra.push(`block ${d.block}`);
    if (d.errcode && d.errcode !== e.code) extra.push(`ext4 ${d.errcode}`);
    if (extra.length) line += ` (${extra.join(', ')})`;
  }
  return line;
}

async function runErrors(ctx: CommandContext): Promise<number> {
  const { args, signal, out, err } = ctx;
  const json = args.options.json === true;
  const verbose = args.options.verbose === true;
  const paths = args.positionals.length ? args.positionals : undefined;
  let watcher: ErrorWatcher;
  try {
    watcher = watchErrors({ paths, signal, resolvePaths: args.options['resolve-paths'] === true });
  } catch (e) {
    if (isPermissionError(e)) throw new NeedsPrivilege(e);
    throw e;
  }
  let announced = 0;
  let announcedSkipped = 0;
  const announce = (): void => {
    for (; announced < watcher.filesystems.length; announced++) {
      const f = watcher.filesystems[announced];
      err(`watching ${describeFs(f)} (fsid ${f.fsid})`);
    }
    for (; announcedSkipped < watcher.skipped.length; announcedSkipped++) {
      const s = watcher.skipped[announcedSkipped];
      if (verbose) err(`skipping ${s.type} ${s.source} on ${s.mountPoint}: ${s.code}: ${s.reason}`);
    }
  };
  // Later mounts (no PATH given) are added by the watcher as they appear.
  const poll = setInterval(announce, 250);
  poll.unref();
  try {
    announce();
    if (watcher.filesystems.length === 0) {
      const denied = watcher.skipped.find((s) => s.code === 'EPERM');
      if (denied) throw new NeedsPrivilege(new Error(`${denied.code}: ${denied.reason}`));
      err('no mounted filesystem can report errors (yet); waiting for new mounts');
    }
    for await (const e of watcher) {
      out(json ? JSON.stringify(errorEventToJson(e)) : formatErrorEvent(e));
    }
  } catch (e) {
    if (signal.aborted) return 0;
    throw e;
  } finally {
    clearInterval(poll);
    await watcher.close();
  }
  return 0;
}

class NeedsPrivilege extends Error {
  constructor(cause: unknown) {
    super(`needs CAP_SYS_ADMIN (run as root): ${oneLine(cause)}`);
  }
}

// ---------------------------------------------------------------------------
// fanotify probe

// The report's sections as the table shows them, in this order.
const PROBE_SECTIONS = ['classes', 'report', 'groupFlags', 'scopes', 'markFlags', 'events', 'records'] as const;

export function formatProbe(f: Features, width = 80): string[] {
  const lines: string[] = [];
  lines.push(`kernel ${f.kernel}: fanotify ${f.available ? 'available'
    : f.reason === 'EPERM' ? 'restricted (EPERM): without CAP_SYS_ADMIN only what says yes below; run as root for the full report'
      : `not available (${f.reason ?? 'unknown'})`}`);
  const sections: [string, Record<string, boolean>][] = PROBE_SECTIONS.map((s) => [s, f[s] as Record<string, boolean>]);
  sections.push(['other', { denyErrno: f.denyErrno }]);
  const labelWidth = Math.max(...sections.map(([s]) => s.length)) + 2;
  const cellWidth = Math.max(...sections.flatMap(([, v]) => Object.keys(v).map((k) => k.length))) + 6;
  const perLine = Math.max(1, Math.floor((width - labelWidth) / cellWidth));
  for (const [name, values] of sections) {
    const cells = Object.entries(values).map(([k, v]) => `${k} ${v ? 'yes' : 'no'}`.padEnd(cellWidth));
    for (let i = 0; i < cells.length; i += perLine) {
      const label = i === 0 ? name : '';
      lines.push((label.padEnd(labelWidth) + cells.slice(i, i + perLine).join('')).trimEnd());
    }
  }
  return lines;
}

async function runProbe(ctx: CommandContext): Promise<number> {
  const features = probe();
  if (ctx.args.options.json) ctx.out(JSON.stringify(features));
  else for (const line of formatProbe(features)) ctx.out(line);
  return 0;
}

// ---------------------------------------------------------------------------
// The table

export const COMMANDS: Command[] = [
  {
    name: 'errors',
    usage: '[PATH...] [--json] [--resolve-paths] [--verbose]',
    summary: 'filesystem health monitor (FAN_FS_ERROR): one line per error; no PATH: every filesystem, and later mounts',
    maxPositionals: Infinity,
    options: [
      JSON_OPTION,
      { name: 'resolve-paths', help: 'look up the path of the inode (open_by_handle_at; may add one error of its own on ext4)' },
      { ...VERBOSE_OPTION, help: 'also list the filesystems not watched, with the reason' },
    ],
    run: runErrors,
  },
  {
    name: 'probe',
    usage: '[--json]',
    summary: 'which fanotify classes, flags, marks, events and records this kernel supports',
    options: [JSON_OPTION],
    run: runProbe,
  },
];

// ---------------------------------------------------------------------------
// Main

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function usage(command?: Command): string[] {
  if (command) {
    const lines = [`usage: fanotify ${command.name} ${command.usage}`, '', command.summary, '', 'options:'];
    for (const o of [...command.options, HELP_OPTION]) {
      const names = `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.value ? ` ${o.value}` : ''}`;
      lines.push(`  ${names.padEnd(22)} ${o.help}`);
    }
    return lines;
  }
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'usage: fanotify <command> [options] [args]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)} ${c.summary}`),
    '',
    ...COMMANDS.map((c) => `  fanotify ${c.name} ${c.usage}`),
    '',
    '  fanotify help [command]    this help, or a command\'s',
    '  fanotify --version',
    '',
    'Output: human-readable lines on stdout, --json for one JSON object per line; messages on stderr.',
    'Exit: 0 ok (also on Ctrl-C/SIGTERM), 1 failure, 2 bad command line. Most commands need root (CAP_SYS_ADMIN).',
  ];
}

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const out = writeLine(process.stdout);
  const err = writeLine(process.stderr);
  const printUsage = (command?: Command): void => usage(command).forEach((l) => err(l));
  // A reader that went away (EPIPE) ends the command, quietly; so do
  // Ctrl-C and SIGTERM (below).
  const controller = new AbortController();
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') err(`fanotify: stdout: ${oneLine(e)}`);
    controller.abort();
  });
  process.stderr.on('error', () => undefined);  // nowhere left to report it
  const [first, ...rest] = argv;

  if (first === undefined) {
    printUsage();
    return 2;
  }
  if (first === '--help' || first === '-h') {
    printUsage();
    return 0;
  }
  if (first === 'help') {
    if (rest[0] === undefined) {
      printUsage();
      return 0;
    }
    const command = COMMANDS.find((c) => c.name === rest[0]);
    if (!command) {
      err(`fanotify: unknown command '${rest[0]}'`);
      printUsage();
      return 2;
    }
    printUsage(command);
    return 0;
  }
  if (first === '--version' || first === '-V') {
    out(version());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) {
    err(first.startsWith('-') ? `fanotify: unknown option '${first}'` : `fanotify: unknown command '${first}'`);
    printUsage();
    return 2;
  }

  let args: ParsedArgs;
  try {
    args = parseArgs(rest, command);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`fanotify ${command.name}: ${e.message}`);
    err(`usage: fanotify ${command.name} ${command.usage}  (fanotify help ${command.name})`);
    return 2;
  }
  if (args.options.help) {
    printUsage(command);
    return 0;
  }

  // Ctrl-C and SIGTERM abort the command, which ends cleanly with 0; a
  // second one exits at once.
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await command.run({ args, signal: controller.signal, out, err });
  } catch (e) {
    if (e instanceof UsageError) {
      err(`fanotify ${command.name}: ${e.message}`);
      return 2;
    }
    err(`fanotify ${command.name}: ${oneLine(e)}`);
    if (args.options.verbose && e instanceof Error && e.stack && !(e instanceof NeedsPrivilege)) err(e.stack);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Everything is closed by now; should anything still hold the event
      // loop, do not hang on it.
      setTimeout(() => process.exit(code), 2000).unref();
    },
    (e: unknown) => {
      process.stderr.write(`fanotify: ${oneLine(e)}\n`);
      process.exit(1);
    },
  );
}
