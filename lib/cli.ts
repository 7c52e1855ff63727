#!/usr/bin/env node
// The `fanotify` command line: `fanotify <command> [options] [args]`.
//
// Commands live in one table (COMMANDS below), one file each (lib/cli/*.ts):
// a name, a usage line, a summary, the options it accepts and a run function.
// To add one, write its file and add it to the table; parsing, help, signals
// and error reporting are shared (lib/cli/command.ts). Human-readable lines
// by default, `--json` for one JSON object per line; results and asked-for
// help go to stdout, diagnostics to stderr, each as whole lines.
//
// Exit codes: 0 success (and Ctrl-C / SIGTERM, or the parent process dying),
// 1 failure, 2 usage error.
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  Command, HELP_OPTION, NeedsPrivilege, oneLine, ParsedArgs, parseArgs, stopSignalHandler, UsageError, writeLine,
} from './cli/command';
import { errorsCommand } from './cli/errors';
import { whenParentDies } from './cli/parent';
import { mountsCommand } from './cli/mounts';
import { probeCommand } from './cli/probe';
import { traceCommand } from './cli/trace';
import { watchCommand } from './cli/watch';

export const COMMANDS: Command[] = [errorsCommand, watchCommand, traceCommand, mountsCommand, probeCommand];

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
    if (command.help) lines.push('', ...command.help);
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
    'examples:',
    '  fanotify errors                 every filesystem\'s errors, and those mounted later',
    '  fanotify errors --json /data    one filesystem, as JSON lines',
    '  fanotify errors --listen :9942  the same for Prometheus (also --textfile, --journal)',
    '  fanotify watch /srv             a change feed with full paths',
    '  fanotify probe                  what this kernel can do',
    '',
    'Output: human-readable lines on stdout, --json for one JSON object per line; messages on stderr.',
    'Exit: 0 ok (also on Ctrl-C/SIGTERM), 1 failure, 2 bad command line. Most commands need root (CAP_SYS_ADMIN).',
  ];
}

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const out = writeLine(process.stdout);
  const err = writeLine(process.stderr);
  // Help that was asked for goes to stdout (so `--help | less` works);
  // usage after a mistake goes to stderr.
  const printHelp = (command?: Command): void => usage(command).forEach((l) => out(l));
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
    printHelp();
    return 0;
  }
  if (first === 'help') {
    if (rest[0] === undefined) {
      printHelp();
      return 0;
    }
    const command = COMMANDS.find((c) => c.name === rest[0]);
    if (!command) {
      err(`fanotify: unknown command '${rest[0]}'`);
      printUsage();
      return 2;
    }
    printHelp(command);
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
    printHelp(command);
    return 0;
  }

  // Ctrl-C and SIGTERM abort the command, which ends cleanly with 0.
  const onSignal = stopSignalHandler(() => controller.abort(), (code) => process.exit(code));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // So does the death of the program that started us (npx, a shell).
  const stopWatchingParent = whenParentDies(() => {
    err(`fanotify ${command.name}: the parent process is gone; stopping`);
    controller.abort();
  });
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
    stopWatchingParent();
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
