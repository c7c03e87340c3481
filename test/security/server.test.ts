/**
 * `ctssl serve` under hostile input: a real `ctssl serve` process gets 200+ malformed HTTP requests
 * (raw, over net.Socket) and malformed WebSocket frames, then must still answer an authorised API
 * call, be alive, and have logged no uncaught exception. Also: short or empty tokens refuse to
 * start, the bind address cannot be moved off loopback, and SIGTERM stops the server with exit 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { HEADERS_TIMEOUT_MS } from '../../src/server/serve';
import { decodeMessage, encodeMessage } from '../../src/shared/wire';
import { root, tempDir } from '../helpers';
import { mulberry32 } from '../../src/core/random';

const SECRET = 'TOP-SECRET-OUTSIDE-THE-RENDERER';

interface Served {
  proc: ChildProcess;
  port: number;
  token: string;
  url: string;
  openUrl: string;
  stderr(): string;
  exited: Promise<number | null>;
}

function spawnServe(dataDir: string, args: string[], env: Record<string, string | undefined> = {}) {
  const base: Record<string, string | undefined> = { ...process.env, CTSSL_DATA_DIR: dataDir };
  delete base.CTSSL_TOKEN;
  delete base.CTSSL_DB;
  const proc = spawn(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'serve', '--json', '--data-dir', dataDir, ...args], {
    cwd: root,
    env: { ...base, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  proc.stderr!.on('data', (d) => (stderr += String(d)));
  proc.stdout!.on('data', (d) => (stdout += String(d)));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, exited, stderr: () => stderr, stdout: () => stdout };
}

async function startServe(dataDir: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Served> {
  const s = spawnServe(dataDir, args, env);
  const rl = createInterface({ input: s.proc.stdout! });
  const first = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error('ctssl serve did not start in 90 s: ' + s.stderr())), 90_000);
    rl.once('line', (l) => {
      clearTimeout(timer);
      res(l);
    });
    void s.exited.then((code) => rej(new Error(`ctssl serve exited with ${code}: ${s.stderr()}`)));
  });
  const info = JSON.parse(first) as { url: string; openUrl: string; token: string; port: number };
  return { ...info, proc: s.proc, stderr: s.stderr, exited: s.exited };
}

/** A seeded RNG, so that a failing random case can be reproduced. */
const rng = mulberry32;

interface RawResult {
  /** HTTP status of the first response, or null when the server sent none. */
  status: number | null;
  text: string;
  /** Whether the server closed the connection within the wait. */
  closed: boolean;
}

/** Writes bytes on a fresh connection, then reads until the server closes it or `waitMs` passes. */
function raw(port: number, data: Buffer | string, opts: { waitMs?: number; end?: boolean } = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(text);
      resolve({ status: m ? Number(m[1]) : null, text, closed });
    };
    const timer = setTimeout(() => finish(false), opts.waitMs ?? 4000);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => undefined);
    sock.on('close', () => finish(true));
    sock.write(data, () => {
      if (opts.end) sock.end();
    });
  });
}

/** Runs tasks with at most `n` at a time. */
async function limited<T>(n: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]();
      }
    }),
  );
  return out;
}

// --- WebSocket frames, built by hand -------------------------------------------------------------

function wsFrame(o: { opcode: number; payload?: Buffer; fin?: boolean; rsv?: number; mask?: boolean; claimedLength?: bigint }): Buffer {
  const payload = o.payload ?? Buffer.alloc(0);
  const mask = o.mask ?? true;
  const len = o.claimedLength ?? BigInt(payload.length);
  const head = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | o.opcode];
  let ext = Buffer.alloc(0);
  if (len < 126n) head.push((mask ? 0x80 : 0) | Number(len));
  else if (len < 65536n) {
    head.push((mask ? 0x80 : 0) | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(Number(len));
  } else {
    head.push((mask ? 0x80 : 0) | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(len);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, payload]);
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), ext, key, masked]);
}

/** The wire format around a JSON text of our choosing (which encodeMessage would not produce). */
function wire(json: string, tail: Buffer = Buffer.alloc(0)): Buffer {
  const j = Buffer.from(json, 'utf8');
  const head = (4 + j.length + 7) & ~7;
  const out = Buffer.alloc(head + tail.length);
  out.writeUInt32LE(j.length, 0);
  j.copy(out, 4);
  tail.copy(out, head);
  return out;
}

interface WsResult {
  upgraded: boolean;
  closeCode: number | null;
  /** Binary messages the server sent, decoded. */
  replies: { id?: unknown; envelope?: { ok: boolean; value?: unknown; error?: { code: string; message: string } } }[];
}

/** Opens an API socket by hand, sends raw frames, collects what comes back until a close or a reply. */
function rawWs(port: number, token: string, frames: Buffer[], opts: { waitMs?: number; untilReplies?: number } = {}): Promise<WsResult> {
  return new Promise((resolve) => {
    const sock: Socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let closeCode: number | null = null;
    const replies: WsResult['replies'] = [];
    let fragments: Buffer[] = [];
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ upgraded, closeCode, replies });
    };
    const timer = setTimeout(finish, opts.waitMs ?? 5000);
    sock.on('error', () => undefined);
    sock.on('close', finish);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!/^HTTP\/1\.1 101 /.test(buf.toString('latin1'))) return finish();
        upgraded = true;
        buf = buf.subarray(end + 4);
        for (const f of frames) sock.write(f);
      }
      for (;;) {
        if (buf.length < 2) return;
        const fin = (buf[0] & 0x80) !== 0;
        const opcode = buf[0] & 0x0f;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (opcode === 0x8) {
          closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
          return finish();
        }
        if (opcode === 0x2 || opcode === 0x0) {
          fragments.push(Buffer.from(payload));
          if (fin) {
            const whole = Buffer.concat(fragments);
            fragments = [];
            try {
              replies.push(decodeMessage(whole));
            } catch {
              replies.push({});
            }
            if (opts.untilReplies && replies.length >= opts.untilReplies) return finish();
          }
        }
      }
    });
    sock.write(
      `GET /api?token=${token} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
  });
}

function call(ws: WebSocket, id: number, channel: string, args: unknown[]): Promise<{ ok: boolean; value?: unknown; error?: { message: string } }> {
  return new Promise((resolve) => {
    const onMsg = (data: Buffer) => {
      const m = decodeMessage<{ id?: number; envelope?: never }>(data);
      if (m.id === id) {
        ws.off('message', onMsg);
        resolve(m.envelope!);
      }
    };
    ws.on('message', onMsg);
    ws.send(encodeMessage({ id, channel, args }));
  });
}

async function openApi(port: number, token: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api?token=${token}`);
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  return ws;
}

/** Signs in stderr of an uncaught exception, an unhandled rejection, or a stack trace. */
const CRASH = /uncaught|unhandled|triggerUncaughtException|\n\s+at .+:\d+:\d+|URIError|TypeError|RangeError/i;

describe('ctssl serve survives hostile requests (a real process)', () => {
  const tmp = tempDir('ctssl-serve-sec-');
  let s: Served;
  let H: string;

  beforeAll(async () => {
    const renderer = join(tmp.dir, 'renderer');
    mkdirSync(join(renderer, 'assets'), { recursive: true });
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(renderer, 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(join(renderer, '.hidden'), SECRET);
    const outside = join(tmp.dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.txt'), SECRET);
    writeFileSync(join(tmp.dir, 'secret.txt'), SECRET);
    symlinkSync(outside, join(renderer, 'link-out'));
    symlinkSync(join(outside, 'secret.txt'), join(renderer, 'assets', 'leak.js'));
    // HOST=0.0.0.0 in the environment must not move the bind address off loopback
    s = await startServe(join(tmp.dir, 'data'), ['--renderer', renderer], { HOST: '0.0.0.0' });
    H = `127.0.0.1:${s.port}`;
  });
  afterAll(async () => {
    if (s?.proc.exitCode === null) {
      s.proc.kill('SIGKILL');
      await s.exited;
    }
    tmp.cleanup();
  });

  it('binds to loopback with a random token of at least 32 characters', () => {
    expect(s.url).toBe(`http://127.0.0.1:${s.port}/`);
    expect(s.token).toMatch(/^[A-Za-z0-9_-]{32,}$/);
  });

  it('answers 200 malformed HTTP requests with 4xx, serves nothing outside the renderer, and keeps serving', async () => {
    const R = rng(20240611);
    type Want = number[] | '4xx-or-closed';
    const cases: { name: string; data: Buffer | string; want: Want; end?: boolean }[] = [];
    const add = (name: string, data: Buffer | string, want: Want, end?: boolean) => cases.push({ name, data, want, end });
    const get = (path: string, headers = '') => `GET ${path} HTTP/1.1\r\nHost: ${H}\r\n${headers}Connection: close\r\n\r\n`;

    // Slowloris: headers trickle in one line a second; the server must time this out on its own
    // while answering everyone else.
    const slow = connect(s.port, '127.0.0.1');
    slow.on('error', () => undefined);
    const slowStart = Date.now();
    let slowClosedAt = 0;
    slow.on('close', () => (slowClosedAt = Date.now()));
    slow.write(`GET / HTTP/1.1\r\nHost: ${H}\r\n`);
    const drip = setInterval(() => slow.writable && slow.write(`X-Drip-${Date.now()}: 1\r\n`), 1000);
    // and a connection that says nothing at all
    const idle = connect(s.port, '127.0.0.1');
    idle.on('error', () => undefined);
    let idleClosedAt = 0;
    idle.on('close', () => (idleClosedAt = Date.now()));

    // bad percent-encodings
    for (const p of ['/%FF', '/%', '/%zz', '/%E0%A4', '/%C0%AF', '/%ED%A0%80', '/assets/%', '/%%', '/%u002e', '/%F0%9F', '/index.html%', '/%G0', '/%%32%65', '/assets/%FFapp.js', '/%C3%28', '/%FE%FF']) {
      add(`percent ${p}`, get(p), [400]);
    }
    // traversal and odd spellings of paths: never a file outside, never a hidden file
    for (const p of [
      '/../secret.txt',
      '/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2E%2E/%2E%2E/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/..%2fsecret.txt',
      '/assets/../../secret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/./index.html',
      '/assets/./app.js',
      '/.hidden',
      '/%2ehidden',
      '/link-out/secret.txt',
      '/assets/leak.js',
      '/assets//app.js',
      '/assets/',
      '/nope.html',
      '/index.html/',
      '/.%2e/secret.txt',
      '/%2e./secret.txt',
    ]) {
      add(`traversal ${p}`, get(p), [404]);
    }
    for (const p of ['/..%5csecret.txt', '/%5c..%5csecret.txt', '/assets%5c..%5c..%5csecret.txt', '/index.html%00', '/index.html%00.png', '/%00', '/%0d%0aSet-Cookie:x', '/%1b[31m', '/%7f']) {
      add(`encoded backslash/control ${p}`, get(p), [400]);
    }
    for (const p of ['//etc/passwd', '//secret.txt', 'http://evil.example/secret.txt', `http://${H}/index.html`, 'index.html', '*', '\\..\\secret.txt', '/..\\secret.txt']) {
      add(`request target ${p}`, get(p), [400]);
    }
    // oversized
    add('header 20 KB', get('/', `X-Big: ${'a'.repeat(20_000)}\r\n`), [431]);
    add('3000 headers', get('/', Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('')), [431]);
    add('URL 20 KB', get('/' + 'a'.repeat(20_000)), [431]);
    add('URL 5 KB', get('/' + 'a'.repeat(5_000)), [414]);
    add('URL 5 KB of %FF', get('/' + '%FF'.repeat(1_700)), [414]);
    add('header name 20 KB', get('/', `${'X'.repeat(20_000)}: v\r\n`), [431]);
    // bad request lines and framing
    add('HTTP/0.9', 'GET /\r\n', '4xx-or-closed', true);
    add('HTTP/0.9 + blank', 'GET /\r\n\r\n', [400]);
    add('empty line only', '\r\n\r\n', '4xx-or-closed', true);
    add('no version', `GET / \r\nHost: ${H}\r\n\r\n`, [400]);
    add('HTTP/9.9', `GET / HTTP/9.9\r\nHost: ${H}\r\n\r\n`, [400, 505]);
    add('HTTP/2.0', `GET / HTTP/2.0\r\nHost: ${H}\r\nConnection: close\r\n\r\n`, [400, 505]);
    add('HTTP/1.12', `GET / HTTP/1.12\r\nHost: ${H}\r\n\r\n`, [400]);
    add('HTTP/ 1.1', `GET / HTTP/ 1.1\r\nHost: ${H}\r\n\r\n`, [400]);
    add('extra token', `GET / HTTP/1.1 x\r\nHost: ${H}\r\n\r\n`, [400]);
    add('leading space', ` GET / HTTP/1.1\r\nHost: ${H}\r\n\r\n`, [400]);
    add('tab separator', `GET\t/\tHTTP/1.1\r\nHost: ${H}\r\n\r\n`, [400]);
    add('bare LF', `GET / HTTP/1.1\nHost: ${H}\n\n`, [400]);
    add('bare CR', `GET / HTTP/1.1\rHost: ${H}\r\r`, '4xx-or-closed', true);
    add('header without colon', `GET / HTTP/1.1\r\nHost: ${H}\r\nfoo\r\n\r\n`, [400]);
    add('space before colon', `GET / HTTP/1.1\r\nHost : ${H}\r\n\r\n`, [400]);
    add('obs-fold', `GET / HTTP/1.1\r\nHost: ${H}\r\nX: a\r\n b\r\n\r\n`, [400]);
    add('NUL in header', `GET / HTTP/1.1\r\nHost: ${H}\r\nX: a\0b\r\n\r\n`, [400]);
    add('NUL in target', `GET /\0 HTTP/1.1\r\nHost: ${H}\r\n\r\n`, [400]);
    add('raw 0xFF in target', Buffer.concat([Buffer.from('GET /'), Buffer.from([0xff, 0xfe]), Buffer.from(` HTTP/1.1\r\nHost: ${H}\r\n\r\n`)]), [400]);
    add('CL and TE', `GET / HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, [400]);
    add('CL -1', `GET / HTTP/1.1\r\nHost: ${H}\r\nContent-Length: -1\r\n\r\n`, [400]);
    add('CL twice', `GET / HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`, [400]);
    add('CL huge', `GET / HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 99999999999999999999999\r\n\r\n`, [400]);
    add('GET with body', `GET / HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 5\r\n\r\nhello`, [413]);
    add('GET chunked body', `GET / HTTP/1.1\r\nHost: ${H}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, [413]);
    add('bad chunk size', `GET / HTTP/1.1\r\nHost: ${H}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`, [400, 413]);
    add('TE gzip', `GET / HTTP/1.1\r\nHost: ${H}\r\nTransfer-Encoding: gzip\r\n\r\n`, [400, 413]);
    // methods
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'LOCK', 'M-SEARCH', 'PURGE', 'LINK', 'SEARCH']) {
      add(`method ${m}`, `${m} / HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 0\r\n\r\n`, [405]);
    }
    for (const m of ['BREW', 'FOO', 'get', 'G3T', 'XYZZY', 'DEBUG', 'TRACK']) {
      add(`unknown method ${m}`, `${m} / HTTP/1.1\r\nHost: ${H}\r\n\r\n`, [405]);
    }
    add('POST with body', `POST /api HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 11\r\n\r\nhello world`, [405]);
    add('POST 1 GB claimed', `POST / HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 1000000000\r\n\r\nabc`, [405]);
    add('OPTIONS *', `OPTIONS * HTTP/1.1\r\nHost: ${H}\r\n\r\n`, [405]);
    add('CONNECT', `CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n`, [400, 405]);
    add('method with NUL', `GE\0T / HTTP/1.1\r\nHost: ${H}\r\n\r\n`, [400]);
    // Host header
    add('no Host (1.1)', 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n', [400]);
    add('no Host (1.0)', 'GET / HTTP/1.0\r\n\r\n', [400]);
    add('empty Host', 'GET / HTTP/1.1\r\nHost: \r\n\r\n', [400]);
    add('two Hosts', `GET / HTTP/1.1\r\nHost: ${H}\r\nHost: ${H}\r\n\r\n`, [400]);
    add('Host with space', `GET / HTTP/1.1\r\nHost: 127.0.0.1:${s.port} x\r\n\r\n`, [400]);
    add('Host with slash', `GET / HTTP/1.1\r\nHost: 127.0.0.1:${s.port}/x\r\n\r\n`, [400]);
    add('Host with userinfo', `GET / HTTP/1.1\r\nHost: evil@127.0.0.1:${s.port}\r\n\r\n`, [400]);
    add('Host %', `GET / HTTP/1.1\r\nHost: %FF:${s.port}\r\n\r\n`, [400]);
    add('Host [::1', `GET / HTTP/1.1\r\nHost: [::1\r\n\r\n`, [400]);
    add('Host 8-bit', Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: '), Buffer.from([0xc3, 0xa9]), Buffer.from(`:${s.port}\r\n\r\n`)]), [400]);
    for (const h of ['evil.example', `evil.example:${s.port}`, '127.0.0.1', `127.0.0.2:${s.port}`, '127.0.0.1:1', `localhost.evil.example:${s.port}`, `[::1]:${s.port}`, `0.0.0.0:${s.port}`, `2130706433:${s.port}`, `127.1:${s.port}`]) {
      add(`other Host ${h}`, `GET / HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`, [421]);
    }
    // API upgrades: missing, wrong and short tokens; bad Host and Origin
    const upgrade = (target: string, headers = `Host: ${H}\r\n`) =>
      `GET ${target} HTTP/1.1\r\n${headers}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    const t = s.token;
    for (const [name, target] of [
      ['no token', '/api'],
      ['empty token', '/api?token='],
      ['short token', '/api?token=abc'],
      ['token prefix', `/api?token=${t.slice(0, -1)}`],
      ['token + 1', `/api?token=${t}x`],
      ['token other case', `/api?token=${t.toUpperCase() === t ? t.toLowerCase() : t.toUpperCase()}`],
      ['token %FF', '/api?token=%FF'],
      ['token lone %', `/api?token=%${t}`],
      ['wrong param', `/api?tok=${t}`],
      ['wrong first', `/api?token=wrong&token=${t}`],
      ['token 4 KB', `/api?token=${'a'.repeat(4000)}`],
      ['token NUL', `/api?token=${t}%00`],
    ] as const) {
      add(`upgrade ${name}`, upgrade(target), [403]);
    }
    add('upgrade other path', upgrade(`/apix?token=${t}`), [404]);
    add('upgrade traversal path', upgrade(`/x/../api?token=${t}`), [404]);
    add('upgrade encoded path', upgrade(`/%61pi?token=${t}`), [404]);
    add('upgrade %FF path', upgrade(`/%FF?token=${t}`), [404]);
    add('upgrade huge URL', upgrade(`/api?token=${t}&x=${'a'.repeat(5000)}`), [414]);
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${s.port}.evil.example`, `https://127.0.0.1:${s.port}`, `http://127.0.0.1:${s.port + 1}`, `http://localhost`, 'file://']) {
      add(`upgrade Origin ${origin}`, upgrade(`/api?token=${t}`, `Host: ${H}\r\nOrigin: ${origin}\r\n`), [403]);
    }
    add('upgrade other Host', upgrade(`/api?token=${t}`, 'Host: evil.example\r\n'), [403]);
    add('upgrade bad Host', upgrade(`/api?token=${t}`, 'Host: a b\r\n'), [400]);
    add('upgrade no Host', upgrade(`/api?token=${t}`, ''), [400]);
    add(
      'upgrade without key',
      `GET /api?token=${t} HTTP/1.1\r\nHost: ${H}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      [400],
    );
    add(
      'upgrade version 7',
      `GET /api?token=${t} HTTP/1.1\r\nHost: ${H}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 7\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      [400, 426],
    );
    add('upgrade h2c', `GET / HTTP/1.1\r\nHost: ${H}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n`, [404]);
    // random bytes, and valid requests with random bytes changed
    const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(R() * 256)));
    const valid = Buffer.from(get('/assets/app.js', 'Accept: */*\r\n'));
    while (cases.length < 240) {
      if (R() < 0.5) {
        add(`random ${cases.length}`, randomBytes(1 + Math.floor(R() * 3000)), '4xx-or-closed', true);
      } else {
        const b = Buffer.from(valid);
        const flips = 1 + Math.floor(R() * 4);
        for (let i = 0; i < flips; i++) b[Math.floor(R() * b.length)] = Math.floor(R() * 256);
        add(`mutated ${cases.length}`, b, '4xx-or-closed', true);
      }
    }
    expect(cases.length).toBeGreaterThanOrEqual(200);

    const results = await limited(16, cases.map((c) => () => raw(s.port, c.data, { end: c.end })));
    const bad: string[] = [];
    results.forEach((r, i) => {
      const c = cases[i];
      if (r.text.includes(SECRET)) bad.push(`${c.name}: served a file outside the renderer`);
      if (c.want === '4xx-or-closed') {
        // a mutated request may still be a valid one (200) or name a missing file (404)
        if (r.status !== null && (r.status >= 500 || r.status < 200)) bad.push(`${c.name}: status ${r.status}`);
        if (r.status === null && !r.closed) bad.push(`${c.name}: neither answered nor closed`);
      } else if (r.status === null || !c.want.includes(r.status)) {
        bad.push(`${c.name}: status ${r.status} (want ${c.want.join('/')}): ${JSON.stringify(r.text.slice(0, 80))}`);
      }
    });
    expect(bad).toEqual([]);

    // others were served while the slow requests hung
    const t0 = Date.now();
    expect((await raw(s.port, get('/'))).status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(2000);
    // ...and the slow ones are cut off by the server's headers timeout
    for (let i = 0; i < 200 && !(slowClosedAt && idleClosedAt); i++) await new Promise((r) => setTimeout(r, 100));
    clearInterval(drip);
    expect(slowClosedAt, 'slowloris connection closed by the server').toBeGreaterThan(0);
    expect(slowClosedAt - slowStart).toBeLessThan(HEADERS_TIMEOUT_MS + 5000);
    expect(idleClosedAt, 'idle connection closed by the server').toBeGreaterThan(0);
    expect(s.proc.exitCode).toBeNull();
  }, 120_000);

  it('sends security headers with pages and errors', async () => {
    const page = await raw(s.port, `GET / HTTP/1.1\r\nHost: ${H}\r\nConnection: close\r\n\r\n`);
    expect(page.status).toBe(200);
    const head = page.text.split('\r\n\r\n')[0].toLowerCase();
    expect(head).toMatch(/content-security-policy: default-src 'none'.*frame-ancestors 'none'/);
    expect(head).toContain('x-content-type-options: nosniff');
    expect(head).toContain('referrer-policy: no-referrer');
    expect(head).toContain('x-frame-options: deny');
    const error = await raw(s.port, `GET /%FF HTTP/1.1\r\nHost: ${H}\r\n\r\n`);
    expect(error.status).toBe(400);
    const errHead = error.text.split('\r\n\r\n')[0].toLowerCase();
    expect(errHead).toContain('cache-control: no-store');
    expect(errHead).toContain('x-content-type-options: nosniff');
    // a generic body: no stack, no path
    expect(error.text.split('\r\n\r\n')[1]).toBe('bad request path\n');
    const localhost = await raw(s.port, `HEAD /assets/app.js HTTP/1.1\r\nHost: LOCALHOST:${s.port}\r\nConnection: close\r\n\r\n`);
    expect(localhost.status).toBe(200);
    expect(localhost.text).toMatch(/content-type: text\/javascript/i);
  });

  it('survives malformed WebSocket frames and messages: protocol errors close that socket, bad messages get an error envelope', async () => {
    const t = s.token;
    const bin = (payload: Buffer) => wsFrame({ opcode: 2, payload });
    const closes: [string, Buffer[], number][] = [
      ...[3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf].map((op) => [`opcode ${op}`, [wsFrame({ opcode: op, payload: Buffer.from('x') })], 1002] as [string, Buffer[], number]),
      ['unmasked client frame', [wsFrame({ opcode: 2, payload: Buffer.from('abcd'), mask: false })], 1002],
      ['RSV1 without extension', [wsFrame({ opcode: 2, rsv: 4, payload: Buffer.from('abcd') })], 1002],
      ['RSV2', [wsFrame({ opcode: 2, rsv: 2, payload: Buffer.from('abcd') })], 1002],
      ['RSV3', [wsFrame({ opcode: 1, rsv: 1, payload: Buffer.from('abcd') })], 1002],
      ['frame over maxPayload (claimed 17 MiB)', [wsFrame({ opcode: 2, claimedLength: 17n * 1024n * 1024n, payload: Buffer.alloc(16) })], 1009],
      ['frame claiming 2^63 bytes', [wsFrame({ opcode: 2, claimedLength: 2n ** 63n, payload: Buffer.alloc(16) })], 1009],
      ['fragments adding up over maxPayload', [wsFrame({ opcode: 2, fin: false, payload: Buffer.alloc(9 * 1024 * 1024) }), wsFrame({ opcode: 0, payload: Buffer.alloc(9 * 1024 * 1024) })], 1009],
      ['invalid UTF-8 text', [wsFrame({ opcode: 1, payload: Buffer.from([0x68, 0xc3, 0x28, 0xff]) })], 1007],
      ['fragmented ping', [wsFrame({ opcode: 9, fin: false, payload: Buffer.from('x') })], 1002],
      ['ping over 125 bytes', [wsFrame({ opcode: 9, payload: Buffer.alloc(200) })], 1002],
      ['continuation without a start', [wsFrame({ opcode: 0, payload: Buffer.from('x') })], 1002],
      ['new message inside a fragmented one', [wsFrame({ opcode: 2, fin: false, payload: Buffer.from('a') }), wsFrame({ opcode: 2, payload: Buffer.from('b') })], 1002],
      ['close with 1-byte payload', [wsFrame({ opcode: 8, payload: Buffer.from([3]) })], 1002],
      ['close with code 999', [wsFrame({ opcode: 8, payload: Buffer.from([0x03, 0xe7]) })], 1002],
      ['close with invalid UTF-8 reason', [wsFrame({ opcode: 8, payload: Buffer.from([0x03, 0xe8, 0xff]) })], 1007],
    ];
    const huge = 'a'.repeat(15 * 1024 * 1024);
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    const envelopes: [string, Buffer[]][] = [
      ['text frame', [wsFrame({ opcode: 1, payload: Buffer.from('{"id":1,"channel":"app.info","args":[]}') })]],
      ['empty binary', [bin(Buffer.alloc(0))]],
      ['3 bytes', [bin(Buffer.from([1, 2, 3]))]],
      ['JSON length beyond the message', [bin(Buffer.from([0xff, 0xff, 0xff, 0x7f, 0x7b, 0x7d]))]],
      ['bad JSON', [bin(wire('{"id":1,"channel":'))]],
      ['JSON with invalid UTF-8', [bin(Buffer.concat([Buffer.from([6, 0, 0, 0]), Buffer.from([0x22, 0xff, 0xfe, 0x22, 0x20, 0x20])]))]],
      ['JSON number', [bin(wire('42'))]],
      ['JSON null', [bin(wire('null'))]],
      ['JSON array', [bin(wire('[1,2,3]'))]],
      ['no id', [bin(wire('{"channel":"app.info","args":[]}'))]],
      ['object id', [bin(wire('{"id":{"a":1},"channel":"app.info","args":[]}'))]],
      ['unknown channel', [bin(wire('{"id":1,"channel":"no.such.channel","args":[]}'))]],
      ['channel __proto__', [bin(wire('{"id":1,"channel":"__proto__","args":[]}'))]],
      ['channel constructor', [bin(wire('{"id":1,"channel":"constructor","args":[]}'))]],
      ['channel toString', [bin(wire('{"id":1,"channel":"toString","args":[]}'))]],
      ['channel as array', [bin(wire('{"id":1,"channel":["app.info"],"args":[]}'))]],
      ['long channel', [bin(wire(`{"id":1,"channel":"${'x'.repeat(100_000)}","args":[]}`))]],
      ['args not an array', [bin(wire('{"id":1,"channel":"library.addFolder","args":"x"}'))]],
      ['wrong argument type', [bin(wire('{"id":1,"channel":"library.addFolder","args":[123]}'))]],
      ['too many arguments', [bin(wire('{"id":1,"channel":"viewer.open","args":[1,2,3,4,5]}'))]],
      ['huge argument (15 MiB string)', [bin(wire(`{"id":1,"channel":"library.addFolder","args":["${huge}"]}`))]],
      ['deeply nested JSON', [bin(wire(`{"id":1,"channel":"app.info","args":${deep}}`))]],
      ['$bin of type __proto__', [bin(wire('{"id":1,"channel":"viewer.open","args":[{"$bin":0,"type":"__proto__","offset":0,"length":1}]}', Buffer.alloc(8)))]],
      ['$bin of type constructor', [bin(wire('{"id":1,"channel":"viewer.open","args":[{"$bin":0,"type":"constructor","offset":0,"length":1}]}', Buffer.alloc(8)))]],
      ['$bin past the end', [bin(wire('{"id":1,"channel":"labels.importBytes","args":["x.xml",{"$bin":0,"type":"Uint8Array","offset":0,"length":100000}]}'))]],
      ['$bin negative length', [bin(wire('{"id":1,"channel":"labels.importBytes","args":["x.xml",{"$bin":0,"type":"Float64Array","offset":-8,"length":-1}]}', Buffer.alloc(8)))]],
      ['$bin odd offset', [bin(wire('{"id":1,"channel":"labels.importBytes","args":["x.xml",{"$bin":0,"type":"Float64Array","offset":3,"length":1}]}', Buffer.alloc(16)))]],
      ['label bytes that are no label file', [bin(wire('{"id":1,"channel":"labels.importBytes","args":["x.xml",{"$bin":0,"type":"Uint8Array","offset":0,"length":8}]}', Buffer.alloc(8, 0x41)))]],
    ];
    const closeResults = await limited(4, closes.map(([, frames]) => () => rawWs(s.port, t, frames)));
    const envResults = await limited(4, envelopes.map(([, frames]) => () => rawWs(s.port, t, frames, { untilReplies: 1, waitMs: 20_000 })));
    const bad: string[] = [];
    closeResults.forEach((r, i) => {
      const [name, , code] = closes[i];
      if (!r.upgraded) bad.push(`${name}: not upgraded`);
      else if (r.closeCode !== code) bad.push(`${name}: close code ${r.closeCode} (want ${code})`);
    });
    envResults.forEach((r, i) => {
      const [name] = envelopes[i];
      const env = r.replies[0]?.envelope;
      if (!r.upgraded) bad.push(`${name}: not upgraded`);
      else if (!env) bad.push(`${name}: no reply (close code ${r.closeCode})`);
      else if (env.ok !== false || typeof env.error?.message !== 'string') bad.push(`${name}: reply ${JSON.stringify(env).slice(0, 200)}`);
      else if (/\n\s+at |node_modules/.test(env.error.message)) bad.push(`${name}: the error shows a stack or path: ${env.error.message.slice(0, 200)}`);
    });
    expect(bad).toEqual([]);
    expect(s.proc.exitCode).toBeNull();
  }, 120_000);

  it('answers a flood of requests on one socket (reads are paused, not buffered without bound)', async () => {
    const ws = await openApi(s.port, s.token);
    const n = 1000;
    const seen = new Set<number>();
    const done = new Promise<void>((res) => {
      ws.on('message', (d: Buffer) => {
        const m = decodeMessage<{ id?: number; envelope?: { ok: boolean } }>(d);
        if (typeof m.id === 'number' && m.envelope?.ok) seen.add(m.id);
        if (seen.size === n) res();
      });
    });
    for (let i = 0; i < n; i++) ws.send(encodeMessage({ id: i, channel: 'app.info', args: [] }));
    await done;
    expect(seen.size).toBe(n);
    ws.close();
  }, 60_000);

  it('afterwards still answers an authorised API call, is alive, and logged no uncaught exception', async () => {
    const ws = await openApi(s.port, s.token);
    const info = await call(ws, 1, 'app.info', []);
    expect(info).toMatchObject({ ok: true, value: { mode: 'server' } });
    ws.close();
    expect((await raw(s.port, `GET /assets/app.js HTTP/1.1\r\nHost: ${H}\r\nConnection: close\r\n\r\n`)).text).toMatch(/console\.log\(1\)$/);
    expect(s.proc.exitCode).toBeNull();
    expect(s.stderr()).not.toMatch(CRASH);
  });

  it('stops on SIGTERM with exit code 0, also with an API socket and a half-sent request open', async () => {
    const ws = await openApi(s.port, s.token);
    const wsClosed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('error', () => undefined);
    const half = connect(s.port, '127.0.0.1');
    half.on('error', () => undefined);
    half.write(`GET / HTTP/1.1\r\nHost: ${H}\r\n`);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    const code = await Promise.race([s.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    await wsClosed;
    half.destroy();
    expect(s.stderr()).toMatch(/SIGTERM: stopping/);
    expect(s.stderr()).toMatch(/stopped/);
    expect(s.stderr()).not.toMatch(CRASH);
  }, 30_000);
});

describe('ctssl serve refuses to start without a proper token or off loopback', () => {
  it('refuses an empty, short or URL-unsafe CTSSL_TOKEN, and a --host option, with exit code ≠ 0 and a clear message', async () => {
    const tmp = tempDir('ctssl-serve-tok-');
    try {
      const runs = [
        { env: { CTSSL_TOKEN: '' }, args: [], want: /CTSSL_TOKEN is empty: a token must have at least 32 characters/ },
        { env: { CTSSL_TOKEN: 'abcdefghij' }, args: [], want: /CTSSL_TOKEN is too short \(10 characters\): a token must have at least 32 characters/ },
        { env: { CTSSL_TOKEN: 'a'.repeat(31) }, args: [], want: /CTSSL_TOKEN is too short \(31 characters\)/ },
        { env: { CTSSL_TOKEN: 'a'.repeat(40) + '&x=1' }, args: [], want: /CTSSL_TOKEN may hold only the characters/ },
        { env: {}, args: ['--host', '0.0.0.0'], want: /unknown option '--host'/ },
      ].map((r, i) => {
        const p = spawnServe(join(tmp.dir, `d${i}`), r.args, r.env);
        return p.exited.then((code) => ({ code, stderr: p.stderr(), stdout: p.stdout(), want: r.want }));
      });
      for (const r of await Promise.all(runs)) {
        expect(r.code).not.toBe(0);
        expect(r.code).not.toBeNull();
        expect(r.stderr).toMatch(r.want);
        expect(r.stdout).not.toMatch(/token/); // no URL was printed: nothing was served
        expect(r.stderr).not.toMatch(CRASH);
      }
    } finally {
      tmp.cleanup();
    }
  }, 120_000);

  it('accepts a 32-character CTSSL_TOKEN and uses it', async () => {
    const tmp = tempDir('ctssl-serve-tok-');
    const token = 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6';
    try {
      const s = await startServe(join(tmp.dir, 'd'), [], { CTSSL_TOKEN: token });
      expect(s.token).toBe(token);
      expect(s.openUrl).toBe(`http://127.0.0.1:${s.port}/#token=${token}`);
      const ws = await openApi(s.port, token);
      expect(await call(ws, 1, 'app.info', [])).toMatchObject({ ok: true });
      ws.close();
      s.proc.kill('SIGTERM');
      expect(await s.exited).toBe(0);
    } finally {
      tmp.cleanup();
    }
  }, 120_000);
});
