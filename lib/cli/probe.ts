// fanotify probe: the kernel feature report.
import { Command, CommandContext, JSON_OPTION } from './command';
import { Features, probe } from '../index';

// The report's sections as the table shows them, in this order.
const PROBE_SECTIONS = ['classes', 'report', 'groupFlags', 'scopes', 'markFlags', 'events', 'records'] as const;

export function formatProbe(f: Features, width = 80): string[] {
  const lines: string[] = [];
  lines.push(`kernel ${f.kernel}: fanotify ${f.available ? 'available'
    : f.reason === 'EPERM' ? 'restricted (EPERM): without CAP_SYS_ADMIN only what says yes below; run as root for the full report'
      : `not available (${f.reason ?? 'unknown'})`}`);
  const sections: [string, Record<string, boolean>][] = PROBE_SECTIONS.map((s) => [s, f[s] as Record<string, boolean>]);
  sections.push(['other', { denyErrno: f.denyErrno, auditRule: f.auditRule }]);
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
  lines.push(`${'mounts'.padEnd(labelWidth)}followed through ${f.mounts.mechanism === 'fanotify' ? "the kernel's mount events" : '/proc/self/mountinfo'}, ${f.mounts.mountIds} mount ids`);
  return lines;
}

async function run(ctx: CommandContext): Promise<number> {
  const features = probe(ctx.args.positionals[0] !== undefined ? { path: ctx.args.positionals[0] } : {});
  if (ctx.args.options.json) ctx.out(JSON.stringify(features));
  else {
    for (const line of formatProbe(features)) ctx.out(line);
    const fsf = features.filesystem;
    if (fsf) {
      ctx.out(`filesystem ${fsf.fsType} at ${fsf.path}:`);
      for (const key of ['fid', 'filesystemMark', 'fsError', 'preContent'] as const)
        ctx.out(`  ${key.padEnd(15)} ${fsf[key] ? 'yes' : `no (${fsf.reasons[key]})`}`);
    }
  }
  return 0;
}


export const probeCommand: Command = {
    name: 'probe',
    usage: '[PATH] [--json]',
    maxPositionals: 1,
    summary: 'which fanotify classes, flags, marks, events and records this kernel supports (with PATH: and the filesystem there)',
    options: [JSON_OPTION],
    run,
  };
