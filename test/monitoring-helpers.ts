// Shared by the fleet monitoring tests (monitoring.test.ts, monitoring-services.test.ts):
// the metrics as samples, free ports, bounded waits, and the programs the
// service tests need (Debian's prometheus, prometheus-node-exporter, systemd).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { bound, describeRoot, privileged, sleep } from './helpers';

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition (what Prometheus would read), unescaping label values. */
export function parseSamples(text: string): ParsedSample[] {
  const out: ParsedSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples named `name` whose labels include `labels`. */
export function samplesOf(samples: ParsedSample[], name: string, labels: Record<string, string> = {}): ParsedSample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** A TCP port on 127.0.0.1 that nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** GET url: the body of a 200 response, else an error. */
export async function fetchText(url: string, ms = 5000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(bound(ms)) });
  const body = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${body}`);
  return body;
}

/** Waits until probe() resolves to something other than undefined (errors count as not yet); fails after ms (scaled). */
export async function waitUntil<T>(probe: () => Promise<T | undefined> | T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + bound(ms);
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${bound(ms)} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

/** Where a program is: on PATH, in the sbin directories, or at an absolute path; null when missing. */
export function findProgram(name: string): string | null {
  const dirs = name.startsWith('/') ? [''] : [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = d === '' ? name : path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

export interface Program {
  name: string;
  /** The Debian package that has it (what .ci/run installs). */
  pkg: string;
}

/**
 * describeRoot() for tests of real services: Debian's programs, installed by
 * .ci/run. Where one is missing the suite skips with a line saying what to
 * install, except on the CI host (CI=true), where a missing one is a failure.
 * (The kernel matrix does not run them: see jest.config.js.)
 */
export function describeServices(programs: Program[], name: string, fn: () => void): void {
  const missing = programs.filter((p) => findProgram(p.name) === null);
  if (missing.length === 0 || !privileged) {
    describeRoot(name, fn);
    return;
  }
  const install = `apt-get install ${[...new Set(missing.map((p) => p.pkg))].join(' ')}`;
  if (process.env.CI === 'true') {
    describe(name, () => test(`needs ${missing.map((p) => p.name).join(', ')}`, () => {
      throw new Error(`${missing.map((p) => p.name).join(', ')} missing: .ci/run installs them (${install})`);
    }));
    return;
  }
  console.log(`${name}: skipped, needs ${missing.map((p) => p.name).join(', ')} (${install}); CI=true makes it fail instead`);
  describe.skip(name, fn);
}
