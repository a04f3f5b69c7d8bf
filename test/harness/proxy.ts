import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProxyMode = { kind: 'pass' } | { kind: 'down' } | { kind: 'slow'; delayMs: number; match?: (method: string, path: string) => boolean };

export interface Proxy {
  url: string;
  set(mode: ProxyMode): void;
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of a real server, for faults the server itself will not produce: `down` drops every
 * connection (a PACS that is off), `slow` holds matching requests before passing them on.
 */
export async function startProxy(target: string): Promise<Proxy> {
  const to = new URL(target);
  let mode: ProxyMode = { kind: 'pass' };
  const server: Server = createServer((req, res) => {
    const current = mode;
    if (current.kind === 'down') {
      req.socket.destroy();
      return;
    }
    const forward = () => {
      const upstream = request(
        { hostname: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, host: to.host } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    if (current.kind === 'slow' && (current.match?.(req.method ?? 'GET', req.url ?? '') ?? true)) setTimeout(forward, current.delayMs);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${to.pathname.replace(/\/$/, '')}`,
    set: (m) => void (mode = m),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
