/**
 * `ctssl serve`: the same renderer and services as the desktop app, over HTTP and a WebSocket on
 * the loopback interface. For headless GPU servers (reach it through an SSH tunnel) and for the
 * end-to-end tests, which drive the real UI in Chromium.
 *
 * Security (any local process, and any web page the user has open, can reach a loopback port):
 * - binds to 127.0.0.1 only; every API connection must present the token printed at start (random,
 *   or given in CTSSL_TOKEN: at least 32 characters), compared in constant time;
 * - the Host and Origin headers must name this server (DNS rebinding and cross-site sockets are
 *   refused);
 * - static files are served from the built renderer folder only (no `..`, encoded or not, no
 *   backslashes, NUL or hidden files, no symlinks leading out), with a strict CSP and headers that
 *   forbid framing and sniffing;
 * - the process survives any request: malformed HTTP is answered with 4xx, a handler that throws
 *   with a generic 500 (logged, never a stack or path to the client); slow or half-sent requests
 *   time out; every socket has an error listener; a WebSocket message over MAX_MESSAGE_BYTES closes
 *   that socket with 1009; undecodable or invalid messages get an error envelope; a client that
 *   does not read its replies is paused, then dropped, instead of being buffered for without bound.
 * - files between the browser and the server (server mode as a full client) go through /files/
 *   only, with the token (a query parameter for downloads, which a link cannot send as a header;
 *   `Authorization: Bearer` for uploads) and this server's Origin when one is sent:
 *   `GET /files/exports/NAME` streams a finished export package from <data>/exports (a plain file
 *   name, resolved inside that folder, symlinks leading out refused) as an attachment;
 *   `POST /files/packages?name=NAME` streams a package of a declared Content-Length (at most 2 GiB,
 *   two at a time, never more bytes than declared) to a fresh folder under <data>/uploads and
 *   imports it through the packages.import handler, the app's own hardened import, then deletes it.
 *   `GET /files/jobs/<jobId>.tar` streams a cluster job folder written by jobs.export as one tar,
 *   made while it is sent from the files the job's home record names (src/host/cluster-job/job-archive.ts).
 *   `GET /files/series/ID/packed?start=&count=&encoding=` answers the `viewer.packed` call (the
 *   viewer's worker fetches slice blocks there) with the reply a socket would carry.
 *   Every other request with a body is refused.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, realpath, rm, stat } from 'node:fs/promises';
import { pipeline, Transform } from 'node:stream';
import type { Duplex } from 'node:stream';
import { dirname, extname, join, resolve, sep } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { dispatch, type Envelope, type EventName, type Events } from '../shared/contract';
import { decodeMessage, encodeMessage } from '../shared/wire';
import { createServices, type Services } from '../host/services';
import { FIRST_SERIES_PAGE } from '../shared/presets';
import { CSP } from '../shared/csp';
import { MAX_PACKAGE_BYTES } from '../host/user-paths';
import { jobArchive, packJobArchive, type JobArchive } from '../host/cluster-job/job-archive';

export interface ServeOptions {
  port?: number;
  dataDir: string;
  dbPath: string;
  /** Folder of the built renderer (index.html and assets). */
  rendererDir: string;
  /** Fixed token (tests, a restart on the same URL): at least MIN_TOKEN_LENGTH URL-safe characters; random when absent. */
  token?: string;
  /** Where server-side problems are reported, one line each (default: stderr). */
  log?: (line: string) => void;
}

export interface RunningServer {
  url: string;
  /** URL to open in a browser: carries the token in the fragment, which browsers never send to servers. */
  openUrl: string;
  token: string;
  port: number;
  services: Services;
  /**
   * What the start read of the Library page's first request before the address was known: the
   * library rows read, whether all of them, whether the request was then answered, and the time.
   */
  warmed: { rowsRead: number; complete: boolean; pageAnswered: boolean; ms: number };
  close(): Promise<void>;
}

/**
 * How long the start may spend reading the pages of the Library page's first request before it
 * listens: a fresh server otherwise read them from the disk while the page waited (at a million
 * instances about 2-3 MB, under 100 ms on a quiet machine); a larger library starts with part of them.
 */
export const WARM_BUDGET_MS = 1000;

/** Shortest token accepted (the generated one is 43 characters: 32 random bytes in base64url). */
export const MIN_TOKEN_LENGTH = 32;
const MAX_TOKEN_LENGTH = 512;
/** Largest WebSocket message; the renderer's package drop checks the same bound (MAX_SOCKET_BYTES). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Request line and headers together (Node's parser answers 431 above). */
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_URL_LENGTH = 4096;
/** Time for a client to send its request headers. */
export const HEADERS_TIMEOUT_MS = 10_000;
/**
 * Time for a whole request: only uploads have bodies, and a 2 GiB package over a slow tunnel takes
 * a while; a stalled one is dropped sooner by the idle timeout (server.timeout).
 */
const REQUEST_TIMEOUT_MS = 2 * 60 * 60_000;
/** Uploads received at once. */
const MAX_UPLOADS = 2;
/** A file name in /files/ URLs: a plain name, no separators, not hidden. */
const FILE_NAME_RE = /^[\w][\w.+-]{0,199}$/;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const MAX_CONNECTIONS = 256;
const MAX_API_SOCKETS = 64;
/** Requests one socket may have in progress before the server stops reading from it. */
const MAX_IN_FLIGHT = 32;
/** Unsent bytes on a socket above which the server stops reading its requests... */
const SEND_HIGH_WATER = 32 * 1024 * 1024;
/** ...and above which a socket that still does not read is dropped (the renderer reconnects). */
const SEND_LIMIT = 256 * 1024 * 1024;

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

/** Sent with every HTTP response. frame-ancestors only works as a header, so it is added here, not in CSP. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': `${CSP}; frame-ancestors 'none'`,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // With COOP, makes the page cross-origin isolated: the viewer's worker may then write slices into
  // a SharedArrayBuffer the page reads (src/renderer/src/viewer/volume-fetcher.ts). Every resource is this origin's.
  'cross-origin-embedder-policy': 'require-corp',
};

/**
 * Checks a token given from outside (CTSSL_TOKEN, tests); throws a message naming `from` when it is
 * too short or holds characters that do not survive a URL unescaped.
 */
export function checkToken(token: string, from = 'the token'): string {
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new Error(
      `${from} is ${token.length === 0 ? 'empty' : `too short (${token.length} characters)`}: ` +
        `a token must have at least ${MIN_TOKEN_LENGTH} characters, or leave it unset for a random one`,
    );
  }
  if (token.length > MAX_TOKEN_LENGTH) throw new Error(`${from} is too long (${token.length} characters; at most ${MAX_TOKEN_LENGTH})`);
  if (!/^[A-Za-z0-9._~-]+$/.test(token)) throw new Error(`${from} may hold only the characters A-Z a-z 0-9 . _ ~ -`);
  return token;
}

/** Constant-time comparison: the digests have equal length whatever the lengths of the inputs. */
function sameToken(given: string, token: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(token));
}

/** Printable and short: what a client sent must not write control sequences to the operator's terminal. */
const forLog = (s: string): string => (s.length > 200 ? s.slice(0, 200) + '…' : s).replace(/[^\x20-\x7e]/g, '?');

const HOST_RE = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$/i;

/** 'bad' for a missing, repeated or malformed Host header; 'other' for another host; else 'ok'. */
function hostVerdict(req: IncomingMessage, port: number): 'ok' | 'bad' | 'other' {
  let count = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i].toLowerCase() === 'host') count++;
  const host = req.headers.host;
  if (count !== 1 || !host || !HOST_RE.test(host)) return 'bad';
  const h = host.toLowerCase();
  return h === `127.0.0.1:${port}` || h === `localhost:${port}` ? 'ok' : 'other';
}

/** Answers with a short plain-text body; closes the connection on errors (an unread body may follow). */
function reply(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = text + '\n';
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    ...(status >= 400 ? { connection: 'close' } : {}),
    ...extra,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** A raw HTTP answer on a socket the HTTP layer no longer manages (parse errors, refused upgrades). */
function refuseSocket(socket: Duplex, status: number): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\nCache-Control: no-store\r\n\r\n`);
  // A client that never closes its side must not keep the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`ctssl serve: ${line}\n`));
  const token = opts.token !== undefined ? checkToken(opts.token) : randomBytes(32).toString('base64url');
  const rendererDir = resolve(opts.rendererDir);
  if (!existsSync(join(rendererDir, 'index.html'))) {
    throw new Error(`the renderer is not built (no ${join(rendererDir, 'index.html')}): run "npm run build" first`);
  }
  const realRendererDir = await realpath(rendererDir);
  const sockets = new Set<WebSocket>();

  const emit = <E extends EventName>(event: E, payload: Events[E]) => {
    let frame: Uint8Array;
    try {
      frame = encodeMessage({ event, payload });
    } catch (err) {
      log(`could not encode the ${event} event: ${forLog((err as Error).message)}`);
      return;
    }
    for (const ws of sockets) {
      if (ws.readyState !== ws.OPEN) continue;
      if (ws.bufferedAmount > SEND_LIMIT) {
        log('dropped an API connection that does not read its messages');
        ws.terminate();
        continue;
      }
      ws.send(frame, () => undefined);
    }
  };
  const services = createServices({ mode: 'server', dataDir: opts.dataDir, dbPath: opts.dbPath, emit });
  let port = 0;

  /** Maps the URL path to a file inside the renderer folder, or says why not. */
  const staticFile = async (rawUrl: string): Promise<string | 400 | 404 | 414> => {
    if (rawUrl.length > MAX_URL_LENGTH) return 414;
    // origin-form only: "/path?query"; not absolute URLs, not "//host", not "*"
    if (!rawUrl.startsWith('/') || rawUrl.startsWith('//')) return 400;
    const rawPath = rawUrl.split(/[?#]/, 1)[0];
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      return 400; // bad percent-encoding (%FF, %zz, a lone %)
    }
    if (/[\x00-\x1f\x7f\\]/.test(path)) return 400; // NUL, control characters, backslashes
    const segments = path === '/' ? ['index.html'] : path.slice(1).split('/');
    // no '', '.', '..' or hidden names: a path means one file, spelled one way
    if (segments.some((s) => s === '' || s.startsWith('.'))) return 404;
    const file = join(rendererDir, ...segments);
    if (!file.startsWith(rendererDir + sep)) return 404;
    const real = await realpath(file).catch(() => null);
    if (!real || !real.startsWith(realRendererDir + sep)) return 404; // missing, or a symlink leading out
    return real;
  };

  const handleRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const host = hostVerdict(req, port);
    if (host === 'bad') return reply(res, 400, 'bad Host header');
    if (host === 'other') return reply(res, 421, 'wrong host: use 127.0.0.1 or localhost with this port');
    if (req.httpVersionMajor !== 1) return reply(res, 505, 'HTTP/1.x only');
    if ((req.url ?? '').startsWith('/files/')) return handleFiles(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
    const length = req.headers['content-length'];
    if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
      return reply(res, 413, 'request bodies are not accepted');
    }
    const found = await staticFile(req.url ?? '');
    if (found === 400) return reply(res, 400, 'bad request path');
    if (found === 404) return reply(res, 404, 'not found');
    if (found === 414) return reply(res, 414, 'URL too long');
    // not a FIFO or device (opening one for reading could block); O_NONBLOCK for the same reason
    if (!(await stat(found).catch(() => null))?.isFile()) return reply(res, 404, 'not found');
    return sendFile(req, res, found, 'not found', (size) => ({
      'content-type': MIME[extname(found)] ?? 'application/octet-stream',
      'content-length': String(size),
      'cache-control': 'no-cache',
    }));
  };

  /**
   * Streams a regular file with the headers made from its size (HEAD: the headers only). Opened
   * O_NONBLOCK, then checked on the handle: a FIFO, device or folder is answered 404 `notFound`.
   */
  const sendFile = async (req: IncomingMessage, res: ServerResponse, path: string, notFound: string, headers: (size: number) => OutgoingHttpHeaders): Promise<void> => {
    const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => null);
    if (!handle) return reply(res, 404, notFound);
    try {
      const info = await handle.stat();
      if (!info.isFile()) {
        await handle.close();
        return reply(res, 404, notFound);
      }
      res.writeHead(200, { ...SECURITY_HEADERS, ...headers(info.size) });
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    if (req.method === 'HEAD') {
      await handle.close();
      res.end();
      return;
    }
    pipeline(handle.createReadStream(), res, (err) => {
      if (err && !res.destroyed) res.destroy();
    });
  };

  /** The token of a /files/ request: `Authorization: Bearer` or the `token` query parameter. */
  const filesAuthorised = (req: IncomingMessage, query: URLSearchParams): boolean => {
    const auth = req.headers.authorization;
    const given = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : (query.get('token') ?? '');
    const origin = req.headers.origin;
    const okOrigin = origin === undefined || origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`;
    return okOrigin && sameToken(given, token);
  };

  const exportsDir = join(resolve(opts.dataDir), 'exports');
  const uploadsDir = join(resolve(opts.dataDir), 'uploads');
  let uploads = 0;

  /** GET /files/exports/NAME and /files/jobs/ID.tar (downloads), GET /files/series/ID/packed (viewer blocks), POST /files/packages?name=NAME (upload and import). */
  const handleFiles = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawUrl = req.url ?? '';
    if (rawUrl.length > MAX_URL_LENGTH) return reply(res, 414, 'URL too long');
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    if (!filesAuthorised(req, query)) return reply(res, 403, 'forbidden: the token is missing or wrong (open the address ctssl serve printed)');
    if (path.startsWith('/files/exports/')) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
      if (hasBody) return reply(res, 413, 'request bodies are not accepted here');
      let name: string;
      try {
        name = decodeURIComponent(path.slice('/files/exports/'.length));
      } catch {
        return reply(res, 400, 'bad file name');
      }
      if (!FILE_NAME_RE.test(name) || name.includes('..')) return reply(res, 400, 'bad file name: a package name such as run-3-masked.ctssl.zip');
      return downloadExport(req, res, name);
    }
    if (path.startsWith('/files/jobs/')) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
      if (hasBody) return reply(res, 413, 'request bodies are not accepted here');
      const m = /^\/files\/jobs\/([0-9a-f-]{36})\.tar$/.exec(path);
      if (!m) return reply(res, 400, 'bad job name: /files/jobs/<job id>.tar');
      return downloadJob(req, res, m[1]);
    }
    if (path.startsWith('/files/series/')) {
      if (req.method !== 'GET') return reply(res, 405, 'method not allowed', { allow: 'GET' });
      if (hasBody) return reply(res, 413, 'request bodies are not accepted here');
      const m = /^\/files\/series\/(\d{1,15})\/packed$/.exec(path);
      if (!m) return reply(res, 400, 'bad address: /files/series/<series id>/packed?start=&count=&encoding=');
      return sendPacked(res, Number(m[1]), query);
    }
    if (path === '/files/packages') {
      if (req.method !== 'POST') return reply(res, 405, 'method not allowed', { allow: 'POST' });
      return uploadPackage(req, res, query.get('name') ?? '');
    }
    return reply(res, 404, 'not found');
  };

  /**
   * GET /files/series/ID/packed?start=&count=&encoding=: a block of the viewer's slices, the same
   * `viewer.packed` call as over the socket (arguments checked by its schema), its reply envelope
   * encoded as a socket reply's is. The viewer's worker fetches blocks here: a browser receives large
   * binary bodies faster over HTTP than as WebSocket messages.
   */
  const sendPacked = async (res: ServerResponse, seriesId: number, query: URLSearchParams): Promise<void> => {
    const num = (k: string) => (/^\d{1,9}$/.test(query.get(k) ?? '') ? Number(query.get(k)) : NaN);
    const t0 = performance.now();
    const envelope = await dispatch(services.handlers, 'viewer.packed', [seriesId, num('start'), num('count'), query.get('encoding') ?? '']);
    const body = encodeMessage({ id: null, envelope });
    if (res.destroyed) return;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      // The server's time for the block (the worker reports it beside its own timings).
      'server-timing': `block;dur=${(performance.now() - t0).toFixed(1)}`,
      'content-type': 'application/octet-stream',
      'content-length': String(body.byteLength),
      'cache-control': 'no-store',
    });
    res.end(body);
  };

  /** Streams <data>/exports/NAME as an attachment named NAME. */
  const downloadExport = async (req: IncomingMessage, res: ServerResponse, name: string): Promise<void> => {
    const realDir = await realpath(exportsDir).catch(() => null);
    const real = realDir ? await realpath(join(exportsDir, name)).catch(() => null) : null;
    if (!realDir || !real || dirname(real) !== realDir) return reply(res, 404, `no export package named ${name}: export the run first`);
    return sendFile(req, res, real, `no export package named ${name}`, (size) => ({
      'content-type': 'application/zip',
      'content-length': String(size),
      'content-disposition': `attachment; filename="${name}"; filename*=UTF-8''${encodeURIComponent(name)}`,
      'cache-control': 'no-store',
    }));
  };

  /** Streams a cluster job folder as <folder name>.tar (its length known before the first byte). */
  const downloadJob = async (req: IncomingMessage, res: ServerResponse, jobId: string): Promise<void> => {
    let archive: JobArchive;
    try {
      archive = jobArchive(opts.dataDir, jobId);
    } catch (err) {
      return reply(res, 404, `cluster job ${jobId}: ${(err as Error).message}`);
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'application/x-tar',
      'content-length': String(archive.bytes),
      'content-disposition': `attachment; filename="${archive.fileName}"; filename*=UTF-8''${encodeURIComponent(archive.fileName)}`,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    pipeline(packJobArchive(archive), res, (err) => {
      if (err) {
        if (!res.destroyed) res.destroy();
        log(`cluster job ${jobId}: the download stopped: ${forLog(err.message)}`);
      }
    });
  };

  /** Receives a package (bounded by its declared length) into a fresh folder, imports it as packages.import does, deletes it. */
  const uploadPackage = async (req: IncomingMessage, res: ServerResponse, rawName: string): Promise<void> => {
    const name = rawName.replace(/[^\w.+-]+/g, '_').replace(/^[._]+/, '').slice(0, 200);
    if (!name || !FILE_NAME_RE.test(name)) return reply(res, 400, 'name: the package file name is missing (?name=encoder.ctssl.zip)');
    if (req.headers['transfer-encoding'] !== undefined) return reply(res, 411, 'send the package with a Content-Length (no chunked encoding)');
    const lengthHeader = req.headers['content-length'];
    if (lengthHeader === undefined || !/^\d{1,15}$/.test(lengthHeader)) return reply(res, 411, 'send the package with a Content-Length');
    const length = Number(lengthHeader);
    if (length === 0) return reply(res, 400, `${name} is empty`);
    if (length > MAX_PACKAGE_BYTES) return reply(res, 413, `${name} is ${(length / 2 ** 30).toFixed(2)} GiB: a package may have at most ${MAX_PACKAGE_BYTES / 2 ** 30} GiB`);
    if (uploads >= MAX_UPLOADS) return reply(res, 503, `${MAX_UPLOADS} uploads are in progress: try again when one has finished`, { 'retry-after': '10' });
    uploads++;
    const folder = join(uploadsDir, randomBytes(12).toString('hex'));
    const file = join(folder, name);
    try {
      await mkdir(folder, { recursive: true, mode: 0o700 });
      let received = 0;
      const bounded = new Transform({
        transform(chunk: Buffer, _enc, done) {
          received += chunk.length;
          done(received > length ? new Error(`more bytes than the declared ${length}`) : null, chunk);
        },
      });
      const ok = await new Promise<boolean>((resolveWrite) => {
        pipeline(req, bounded, createWriteStream(file, { flags: 'wx', mode: 0o600 }), (err) => resolveWrite(!err));
      });
      if (!ok || received !== length) return reply(res, 400, `${name}: the upload was cut off (${received} of ${length} bytes received)`);
      const envelope = await dispatch(services.handlers, 'packages.import', [file]);
      const body = JSON.stringify(envelope.ok ? envelope : { ok: false, error: { ...envelope.error, message: envelope.error.message.split(file).join(name).split(folder).join('the upload') } });
      // Imported (copied into <data>/imported) or refused: the upload is not kept either way.
      await rm(folder, { recursive: true, force: true }).catch(() => undefined);
      res.writeHead(envelope.ok ? 200 : 400, {
        ...SECURITY_HEADERS,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'cache-control': 'no-store',
      });
      res.end(body);
    } finally {
      uploads--;
      await rm(folder, { recursive: true, force: true }).catch(() => undefined);
    }
  };

  const internalError = (req: IncomingMessage, res: ServerResponse, err: unknown) => {
    log(`internal error answering ${forLog(String(req.method))} ${forLog(String(req.url))}: ${forLog(err instanceof Error ? err.message : String(err))}`);
    try {
      reply(res, 500, 'internal server error');
    } catch {
      res.destroy();
    }
  };

  // Node's headersTimeout only runs once a request has begun: a connection that sends nothing must
  // deliver its first request headers in the same time.
  const firstRequestTimers = new WeakMap<object, NodeJS.Timeout>();
  const requestArrived = (socket: object) => clearTimeout(firstRequestTimers.get(socket));

  const server = createServer(
    { maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: true, connectionsCheckingInterval: 1000 },
    (req, res) => {
      requestArrived(req.socket);
      try {
        handleRequest(req, res).catch((err: unknown) => internalError(req, res, err));
      } catch (err) {
        internalError(req, res, err);
      }
    },
  );
  server.on('connection', (socket: Socket) => {
    const timer = setTimeout(() => socket.destroy(), HEADERS_TIMEOUT_MS);
    timer.unref();
    firstRequestTimers.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  });
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.timeout = 30_000; // idle sockets (API sockets are exempt: ws clears this after the upgrade)
  server.maxConnections = MAX_CONNECTIONS;
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => {
    const inResponse = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || inResponse) {
      socket.destroy();
      return;
    }
    let status = 400;
    if (err.code === 'HPE_HEADER_OVERFLOW') status = 431;
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') status = 408;
    else if (err.code === 'HPE_URI_TOO_LONG') status = 414;
    // a well-formed request line with a method Node's parser does not know
    else if (err.code === 'HPE_INVALID_METHOD' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32} \/\S* HTTP\/1\.[01]\r?\n/.test(err.rawPacket?.toString('latin1') ?? '')) status = 405;
    refuseSocket(socket, status);
  });
  // CONNECT (proxy tunnels): nothing to tunnel to
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    requestArrived(req.socket);
    socket.on('error', () => socket.destroy());
    refuseSocket(socket, 405);
  });
  server.on('error', (err) => log(`server error: ${forLog(err.message)}`));

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, clientTracking: false, perMessageDeflate: false });
  wss.on('error', (err) => log(`WebSocket server error: ${forLog(err.message)}`));
  wss.on('headers', (headers) => headers.push('Cache-Control: no-store'));

  const onApiSocket = (ws: WebSocket) => {
    sockets.add(ws);
    let inFlight = 0;
    let paused = false;
    // Backpressure: stop reading requests while many are in progress or replies pile up unsent.
    const flow = () => {
      const busy = inFlight >= MAX_IN_FLIGHT || ws.bufferedAmount >= SEND_HIGH_WATER;
      if (busy && !paused) {
        paused = true;
        ws.pause();
      } else if (!busy && paused) {
        paused = false;
        ws.resume();
      }
    };
    const send = (message: unknown) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > SEND_LIMIT) {
        log('dropped an API connection that does not read its replies');
        ws.terminate();
        return;
      }
      ws.send(encodeMessage(message), () => flow());
    };
    ws.on('error', (err) => log(`closed an API connection: ${forLog(err.message)}`));
    ws.on('close', () => sockets.delete(ws));
    ws.on('message', (data, isBinary) => {
      inFlight++;
      flow();
      answer(data, isBinary, send)
        .catch((err: unknown) => log(`could not answer an API request: ${forLog((err as Error)?.message ?? String(err))}`))
        .finally(() => {
          inFlight--;
          flow();
        });
    });
  };

  const answer = async (data: RawData, isBinary: boolean, send: (message: unknown) => void): Promise<void> => {
    let id: number | string | null = null;
    let envelope: Envelope<unknown>;
    try {
      if (!isBinary) throw new Error('binary frames only');
      const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
      const msg = decodeMessage<unknown>(bytes);
      if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('a request is an object {id, channel, args}');
      const m = msg as { id?: unknown; channel?: unknown; args?: unknown };
      if ((typeof m.id === 'number' && Number.isSafeInteger(m.id)) || (typeof m.id === 'string' && m.id.length <= 64)) id = m.id;
      else throw new Error('a request needs an id: an integer or a string of at most 64 characters');
      if (typeof m.channel === 'string' && m.channel.length > 100) throw new Error('unknown channel');
      envelope = await dispatch(services.handlers, m.channel, m.args);
    } catch (err) {
      envelope = { ok: false, error: { code: 'invalid-argument', message: `bad request: ${(err as Error)?.message ?? String(err)}` } };
    }
    try {
      send({ id, envelope });
    } catch (err) {
      // a result that cannot be encoded: the client still gets an answer
      log(`could not encode a reply: ${forLog((err as Error)?.message ?? String(err))}`);
      send({ id, envelope: { ok: false, error: { code: 'internal', message: 'the reply could not be encoded' } } });
    }
  };

  const handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const host = hostVerdict(req, port);
    if (host !== 'ok') return refuseSocket(socket, host === 'bad' ? 400 : 403);
    const rawUrl = req.url ?? '';
    if (rawUrl.length > MAX_URL_LENGTH) return refuseSocket(socket, 414);
    const q = rawUrl.indexOf('?');
    if ((q < 0 ? rawUrl : rawUrl.slice(0, q)) !== '/api') return refuseSocket(socket, 404);
    const origin = req.headers.origin;
    const okOrigin = origin === undefined || origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`;
    const given = q < 0 ? '' : (new URLSearchParams(rawUrl.slice(q + 1)).get('token') ?? '');
    if (!okOrigin || !sameToken(given, token)) return refuseSocket(socket, 403);
    if (sockets.size >= MAX_API_SOCKETS) return refuseSocket(socket, 503);
    wss.handleUpgrade(req, socket, head, onApiSocket);
  };

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    requestArrived(req.socket);
    socket.on('error', () => socket.destroy());
    try {
      handleUpgrade(req, socket, head);
    } catch (err) {
      log(`internal error on a WebSocket upgrade: ${forLog((err as Error)?.message ?? String(err))}`);
      refuseSocket(socket, 500);
    }
  });

  // The Library page's first request, read ahead before the address is known: its library pages
  // (within WARM_BUDGET_MS), then, when they are all in, the request itself as a socket's message
  // (decoded, checked, answered, the reply encoded and dropped), so that the first real one finds
  // its pages in memory and this path's code compiled (a fresh server at a million instances spent
  // 110-270 ms, on a loaded machine ~300 ms more, on the first reply: bench/index-scale.ts).
  const warmStart = performance.now();
  let warmed: RunningServer['warmed'] = { rowsRead: 0, complete: false, pageAnswered: false, ms: 0 };
  try {
    const read = services.warmSeriesPage(WARM_BUDGET_MS);
    let pageAnswered = false;
    if (read.pageReady) {
      await answer(Buffer.from(encodeMessage({ id: 0, channel: 'library.seriesPage', args: [FIRST_SERIES_PAGE] })), true, (reply) => {
        encodeMessage(reply);
        pageAnswered = (reply as { envelope?: { ok?: boolean } }).envelope?.ok === true;
      });
    }
    warmed = { rowsRead: read.rowsRead, complete: read.complete, pageAnswered, ms: performance.now() - warmStart };
  } catch (err) {
    // Only a head start: a library that cannot be read answers the first request with its error.
    log(`could not read the library ahead of the first request: ${forLog((err as Error)?.message ?? String(err))}`);
  }

  try {
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolveListen();
      });
    });
  } catch (err) {
    await services.close();
    throw new Error(`cannot listen on 127.0.0.1:${opts.port ?? 0}: ${(err as Error).message}`);
  }
  const address = server.address() as AddressInfo;
  if (address.address !== '127.0.0.1') {
    // never expected; refuse rather than serve the library to the network
    server.close();
    await services.close();
    throw new Error(`bound to ${address.address} instead of the loopback interface: refusing to serve`);
  }
  port = address.port;
  const url = `http://127.0.0.1:${port}/`;
  return {
    url,
    openUrl: `${url}#token=${token}`,
    token,
    port,
    services,
    warmed,
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
      await services.close();
    },
  };
}
