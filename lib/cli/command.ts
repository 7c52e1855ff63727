// What every command of the `fanotify` command line shares: the command
// shape, argument parsing, whole-line output and the errors that end a command.
import * as fs from 'node:fs';
import { MARK_EVENT_NAMES, MarkEventName } from '../core/options';

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
  /** Lines for its help after the options: examples, the event names. */
  help?: string[];
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

export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', help: 'show this help' };
export const VERBOSE_OPTION: OptionSpec = { name: 'verbose', short: 'v', help: 'say more (on stderr)' };
export const JSON_OPTION: OptionSpec = { name: 'json', help: 'one JSON object per line' };

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

/** Help lines listing what --events takes (add()'s names), wrapped. */
export function eventNamesHelp(): string[] {
  const lines = ['event names for --events:'];
  let line = ' ';
  for (const n of MARK_EVENT_NAMES) {
    if (line.length + n.length + 1 > 78) {
      lines.push(line);
      line = ' ';
    }
    line += ` ${n}`;
  }
  return [...lines, line];
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

/**
 * The value of --events, checked here so that a typo is a usage error (exit
 * 2) naming it, not a kernel error later; `fallback` when it is not given.
 */
export function parseEventList(value: string | boolean | undefined, fallback: MarkEventName[]): MarkEventName[];
export function parseEventList(value: string | boolean | undefined, fallback?: undefined): MarkEventName[] | undefined;
export function parseEventList(value: string | boolean | undefined, fallback?: MarkEventName[]): MarkEventName[] | undefined {
  if (typeof value !== 'string') return fallback;
  const names = value.split(',').map((n) => n.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--events needs at least one event name');
  for (const n of names) {
    if ((MARK_EVENT_NAMES as readonly string[]).includes(n)) continue;
    const near = MARK_EVENT_NAMES.filter((m) => distance(n, m) <= 2);
    throw new UsageError(`unknown event name '${n}' in --events${near.length ? ` (did you mean ${near.map((m) => `'${m}'`).join(' or ')}?)` : ''}; ` +
      `the names: ${MARK_EVENT_NAMES.join(' ')}`);
  }
  return names as MarkEventName[];
}

const SAME_SIGNAL_MS = 1000;

/**
 * The SIGINT/SIGTERM handler: the first one stops the command (`stop`), a
 * second one exits at once (130 or 143). Under npx one Ctrl-C comes twice,
 * from the terminal to the process group and from npm passing it on: a
 * repeat within a second is the same Ctrl-C.
 */
export function stopSignalHandler(stop: () => void, exit: (code: number) => void, now: () => number = Date.now): (sig: NodeJS.Signals) => void {
  let first: number | null = null;
  return (sig) => {
    if (first === null) {
      first = now();
      stop();
    } else if (now() - first >= SAME_SIGNAL_MS) {
      exit(sig === 'SIGINT' ? 130 : 143);
    }
  };
}

export const writeLine = (stream: NodeJS.WriteStream) => (line: string): void => {
  // One write per line: readers of a pipe never see half a line.
  stream.write(`${line}\n`);
};

/** An error as one line: no stack, no embedded newlines. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n').map((s) => s.trim()).filter(Boolean).join(' ');
}

export function isPermissionError(err: unknown): boolean {
  const e = err as { code?: unknown; syscall?: unknown };
  return e?.code === 'EPERM' && (e.syscall === 'fanotify_init' || e.syscall === 'fanotify_mark');
}

/** Missing privilege: one line that says so, exit 1. */
export class NeedsPrivilege extends Error {
  constructor(cause: unknown) {
    super(`needs CAP_SYS_ADMIN (run as root): ${oneLine(cause)}`);
  }
}

/** Runs `open`, turning a privilege error into NeedsPrivilege. */
export function privileged<T>(open: () => T): T {
  try {
    return open();
  } catch (e) {
    if (isPermissionError(e)) throw new NeedsPrivilege(e);
    throw e;
  }
}

/** The line (after the time) for an event that says the kernel's queue overflowed. */
export const OVERFLOW_TEXT = "OVERFLOW the kernel's event queue overflowed: events were lost";

/** For stderr: how a watcher learns of new mounts on this kernel. */
export function describeMountMechanism(mechanism: 'fanotify' | 'mountinfo'): string {
  return mechanism === 'fanotify'
    ? 'following mounts through the kernel\'s mount events'
    : 'following mounts through /proc/self/mountinfo (this kernel has no fanotify mount events, Linux 6.15)';
}

/** JSON with bigints as decimal strings and Buffers as hex. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data))
      return Buffer.from((v as { data: number[] }).data).toString('hex');
    return v;
  });
}

/** The command name of a process, or '?' once it is gone. */
export function commOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}
