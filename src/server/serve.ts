/**
 * `ctssl serve`: the same renderer and services as the desktop app, over HTTP and a WebSocket on
 * the loopback interface. For headless GPU servers (reach it through an SSH tunnel) and for the
 * end-to-end tests, which drive the real UI in Chromium.
 *
 * Security: binds to 127.0.0.1 only; every API connection must present the random token printed at
 * start; the Host and Origin headers must name this server (DNS-rebinding and cross-site sockets
 * are refused); static files are served from the built renderer folder only, with a strict CSP.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { dispatch, type EventName, type Events } from '../shared/contract';
import { decodeMessage, encodeMessage } from '../shared/wire';
import { createServices, type Services } from '../core/node/services';
import { CSP } from '../shared/csp';

export interface ServeOptions {
  port?: number;
  dataDir: string;
  dbPath: string;
  /** Folder of the built renderer (index.html and assets). */
  rendererDir: string;
  /** Fixed token (tests); random when absent. */
  token?: string;
}

export interface RunningServer {
  url: string;
  /** URL to open in a browser: carries the token in the fragment, which browsers never send to servers. */
  openUrl: string;
  token: string;
  port: number;
  services: Services;
  close(): Promise<void>;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const rendererDir = resolve(opts.rendererDir);
  if (!existsSync(join(rendererDir, 'index.html'))) {
    throw new Error(`the renderer is not built (no ${join(rendererDir, 'index.html')}): run "npm run build" first`);
  }
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const sockets = new Set<WebSocket>();
  const emit = <E extends EventName>(event: E, payload: Events[E]) => {
    const frame = encodeMessage({ event, payload });
    for (const ws of sockets) if (ws.readyState === ws.OPEN) ws.send(frame);
  };
  const services = createServices({ mode: 'server', dataDir: opts.dataDir, dbPath: opts.dbPath, emit });
  let port = 0;
  const allowedHosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`]);

  const sendStatic = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    let rel = decodeURIComponent(url.pathname);
    if (rel === '/' || rel === '') rel = '/index.html';
    const file = normalize(join(rendererDir, rel));
    if (!file.startsWith(rendererDir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': MIME[extname(file)] ?? 'application/octet-stream',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cache-control': 'no-cache',
    });
    createReadStream(file).pipe(res);
  };

  const server = createServer((req, res) => {
    if (!allowedHosts().has(req.headers.host ?? '')) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('wrong host');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    sendStatic(req, res);
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const origin = req.headers.origin;
    const okHost = allowedHosts().has(req.headers.host ?? '');
    const okOrigin = !origin || origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`;
    const okToken = sameToken(url.searchParams.get('token') ?? '', token);
    if (url.pathname !== '/api' || !okHost || !okOrigin || !okToken) {
      socket.write('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('message', async (data, isBinary) => {
        let id: unknown = null;
        try {
          if (!isBinary) throw new Error('binary frames only');
          const msg = decodeMessage<{ id: unknown; channel: unknown; args: unknown }>(data as Buffer);
          id = msg.id;
          const envelope = await dispatch(services.handlers, msg.channel, msg.args);
          ws.send(encodeMessage({ id, envelope }));
        } catch (err) {
          ws.send(encodeMessage({ id, envelope: { ok: false, error: { code: 'invalid-argument', message: (err as Error).message } } }));
        }
      });
    });
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolveListen());
  });
  port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}/`;
  return {
    url,
    openUrl: `${url}#token=${token}`,
    token,
    port,
    services,
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
      await services.close();
    },
  };
}
