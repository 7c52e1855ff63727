// `--listen HOST:PORT`: the metrics over HTTP, at /metrics, for Prometheus to scrape.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import { UsageError } from './command';
import { EXPOSITION_CONTENT_TYPE } from './exposition';

export interface ListenAddress {
  /** '' for every interface. */
  host: string;
  /** 0: a free port, chosen by the kernel. */
  port: number;
}

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every interface); a usage error (exit 2) otherwise. */
export function parseListen(value: string | boolean | undefined): ListenAddress | undefined {
  if (value === undefined) return undefined;
  const bad = (why: string): never => {
    throw new UsageError(`--listen '${value}': ${why} (HOST:PORT, [IPv6]:PORT or :PORT for every interface, e.g. --listen 127.0.0.1:9942)`);
  };
  if (typeof value !== 'string' || value === '') return bad('needs an address');
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):([^:]*)$/.exec(value);
  if (!m) return bad(value.split(':').length > 2 ? 'an IPv6 address goes in brackets' : 'no port');
  const host = m[1] ?? m[2];
  const port = m[3];
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return bad(`the port must be a number from 0 to 65535, not '${port}'`);
  return { host, port: Number(port) };
}

/** What to do about a failed listen, by errno. */
const LISTEN_ADVICE: Record<string, string> = {
  EADDRINUSE: 'another process listens there (ss -ltnp shows which): stop it or choose another port',
  EADDRNOTAVAIL: 'no interface of this machine has that address',
  EACCES: 'ports below 1024 need CAP_NET_BIND_SERVICE: choose a higher port',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve (yet)',
};

export interface MetricsServer {
  /** http://HOST:PORT/metrics, with the port actually bound. */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves render() at /metrics on the address; rejects with an error that names --listen and says what to do. */
export function serveMetrics(address: ListenAddress, render: () => string): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
    } else if (url === '/metrics') {
      res.writeHead(200, { 'Content-Type': EXPOSITION_CONTENT_TYPE }).end(req.method === 'HEAD' ? undefined : render());
    } else if (url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('fanotify errors: the metrics are at /metrics\n');
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: the metrics are at /metrics\n');
    }
  });
  const shown = `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? 'EIO';
      const advice = LISTEN_ADVICE[code];
      reject(new Error(`--listen ${shown}: ${code}: ${advice ?? err.message}`));
    });
    const listening = (): void => {
      const a = server.address() as AddressInfo;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({
        url: `http://${host}:${a.port}/metrics`,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();  // a scraper's keep-alive connection must not hold the exit
        }),
      });
    };
    if (address.host === '') server.listen(address.port, listening);
    else server.listen(address.port, address.host, listening);
  });
}
