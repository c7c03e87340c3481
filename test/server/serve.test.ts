import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import WebSocket from 'ws';
import { checkToken, startServer, type RunningServer } from '../../src/server/serve';
import { decodeMessage, encodeMessage } from '../../src/shared/wire';
import { fixtures, tempDir } from '../helpers';

function get(port: number, path: string, host = `127.0.0.1:${port}`): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
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

describe('ctssl serve', () => {
  const tmp = tempDir();
  let server: RunningServer;
  beforeAll(async () => {
    const renderer = join(tmp.dir, 'renderer');
    mkdirSync(renderer);
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(tmp.dir, 'secret.txt'), 'outside the renderer folder');
    server = await startServer({ dataDir: tmp.dir, dbPath: join(tmp.dir, 'lib.sqlite'), rendererDir: renderer });
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('binds to the loopback interface only', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(server.token.length).toBeGreaterThanOrEqual(32);
  });

  it('serves the renderer with a strict CSP, and nothing outside it', async () => {
    const res = await get(server.port, '/');
    expect(res.status).toBe(200);
    expect(String(res.headers['content-security-policy'])).toMatch(/default-src 'none'/);
    expect((await get(server.port, '/../secret.txt')).status).toBe(404);
    expect((await get(server.port, '/%2e%2e/secret.txt')).status).toBe(404);
  });

  it('answers malformed paths with 400 and keeps serving', async () => {
    const bad = await get(server.port, '/%FF');
    expect(bad.status).toBe(400);
    expect(bad.body).toBe('bad request path\n');
    expect(bad.headers['cache-control']).toBe('no-store');
    expect((await get(server.port, '/..%5csecret.txt')).status).toBe(400);
    expect((await get(server.port, '/index.html%00')).status).toBe(400);
    expect((await get(server.port, '/')).status).toBe(200);
  });

  it('forbids framing and sniffing', async () => {
    const res = await get(server.port, '/');
    expect(String(res.headers['content-security-policy'])).toMatch(/frame-ancestors 'none'/);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    // Cross-origin isolated (the viewer's worker shares the volume with the page).
    expect(res.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(res.headers['cross-origin-embedder-policy']).toBe('require-corp');
  });

  it('refuses requests for another host name (DNS rebinding)', async () => {
    expect((await get(server.port, '/', 'evil.example:80')).status).toBe(421);
  });

  it('refuses API sockets without the token or from another origin', async () => {
    const refused = (url: string, headers: Record<string, string> = {}) =>
      new Promise<boolean>((resolve) => {
        const ws = new WebSocket(url, { headers });
        ws.on('open', () => {
          ws.close();
          resolve(false);
        });
        ws.on('error', () => resolve(true));
      });
    const base = `ws://127.0.0.1:${server.port}/api`;
    expect(await refused(base)).toBe(true);
    expect(await refused(`${base}?token=wrong`)).toBe(true);
    expect(await refused(`${base}?token=${server.token}`, { origin: 'http://evil.example' })).toBe(true);
  });

  it('answers API calls with the token, validates arguments, and pushes events', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api?token=${server.token}`);
    await new Promise((r) => ws.on('open', r));
    const events: string[] = [];
    ws.on('message', (d: Buffer) => {
      const m = decodeMessage<{ event?: string; payload?: { phase: string } }>(d);
      if (m.event) events.push(m.payload!.phase);
    });
    const info = await call(ws, 1, 'app.info', []);
    expect(info).toMatchObject({ ok: true, value: { mode: 'server' } });
    const bad = await call(ws, 2, 'library.addFolder', ['/definitely/not/here']);
    expect(bad.ok).toBe(false);
    expect(bad.error!.message).toMatch(/folder not found: \/definitely\/not\/here/);
    const job = await call(ws, 3, 'library.addFolder', [join(fixtures, 'lidc-0001')]);
    expect(job.ok).toBe(true);
    for (let i = 0; i < 200 && !events.includes('done'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(events).toContain('done');
    const series = await call(ws, 4, 'library.series', [{ modality: 'CT' }]);
    expect((series.value as { slices: number }[])[0].slices).toBe(17);
    ws.close();
  });
});

describe('ctssl serve tokens', () => {
  it('refuses a token shorter than 32 characters, empty included, before serving anything', async () => {
    const tmp = tempDir();
    try {
      const renderer = join(tmp.dir, 'renderer');
      mkdirSync(renderer);
      writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
      const start = (token: string) => startServer({ dataDir: tmp.dir, dbPath: join(tmp.dir, 'lib.sqlite'), rendererDir: renderer, token });
      await expect(start('')).rejects.toThrow(/the token is empty: a token must have at least 32 characters/);
      await expect(start('0123456789')).rejects.toThrow(/too short \(10 characters\)/);
      await expect(start('a'.repeat(31))).rejects.toThrow(/too short \(31 characters\)/);
      await expect(start('a'.repeat(32) + ' ')).rejects.toThrow(/may hold only/);
      expect(checkToken('a'.repeat(32))).toBe('a'.repeat(32));
      expect(() => checkToken('', 'CTSSL_TOKEN')).toThrow(/^CTSSL_TOKEN is empty/);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('viewer requests through the services', () => {
  it('opens a series and reads HU slice blocks in display orientation', async () => {
    const { createServices } = await import('../../src/host/services');
    const { indexFolders } = await import('../../src/library/indexing/indexer');
    const tmp = tempDir();
    const services = createServices({ mode: 'server', dataDir: tmp.dir, dbPath: join(tmp.dir, 'lib.sqlite'), emit: () => {} });
    try {
      await indexFolders(services.db, [join(fixtures, 'lidc-0001')]);
      const [s] = await services.handlers['library.series']({});
      const info = await services.handlers['viewer.open'](s.id);
      expect(info.dims).toEqual([512, 512, 17]);
      expect(info.labels).toEqual({ left: 'R', right: 'L', top: 'A', bottom: 'P' });
      expect(info.spacing[2]).toBeCloseTo(2.5);
      const block = await services.handlers['viewer.slices'](s.id, 8, 4);
      expect(block.count).toBe(4);
      expect(block.data.length).toBe(4 * 512 * 512);
      // air outside the body near -1000 HU, and tissue above 0 somewhere
      let air = 0;
      let tissue = 0;
      for (const v of block.data) {
        if (v < -900 && v > -1100) air++;
        if (v > 0 && v < 100) tissue++;
      }
      expect(air).toBeGreaterThan(10000);
      expect(tissue).toBeGreaterThan(10000);
      const tail = await services.handlers['viewer.slices'](s.id, 15, 10);
      expect(tail.count).toBe(2);
      await expect(services.handlers['viewer.slices'](s.id, 17, 1)).rejects.toThrow(/outside the series/);
    } finally {
      await services.close();
      tmp.cleanup();
    }
  });
});
