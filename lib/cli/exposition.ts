// The Prometheus text exposition format (version 0.0.4), which Prometheus
// scrapes and node_exporter's textfile collector reads: metric families of
// counters and gauges with labels. Small enough to write here rather than
// depend on a client library for it; checked by promtool, Prometheus and
// node_exporter in test/monitoring.test.ts.

/** The Content-Type of a /metrics response in this format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  /** [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total, info series in _info. */
  name: string;
  help: string;
  /** Info series are gauges of value 1 in this format. */
  type: 'counter' | 'gauge';
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value between double quotes: backslash, double quote and newline escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** HELP text: backslash and newline escaped (a double quote stays). */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** A sample value as Go's ParseFloat reads it: NaN, +Inf, -Inf, or the number. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function formatLabels(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return '';
  for (const [k] of entries) if (!LABEL_NAME.test(k) || k.startsWith('__')) throw new Error(`invalid label name '${k}'`);
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/**
 * The families as one exposition: HELP and TYPE, then the samples of each
 * family. Families without samples are left out (TYPE with no sample says
 * nothing). Ends with a newline, as the format requires.
 */
export function formatExposition(families: readonly MetricFamily[]): string {
  let out = '';
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new Error(`invalid metric name '${f.name}'`);
    if (f.samples.length === 0) continue;
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) out += `${f.name}${formatLabels(s.labels)} ${formatValue(s.value)}\n`;
  }
  return out;
}
