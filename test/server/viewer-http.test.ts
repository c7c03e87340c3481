/**
 * The viewer's blocks over HTTP (`GET /files/series/ID/packed`, what the volume worker fetches in
 * a browser) from a real `ctssl serve` in process on the real LIDC slab: the same `viewer.packed`
 * call as over the socket, so the body decodes to exactly the voxels loadSeriesVolume reads; the
 * token is required, the call's schema checks the query, and every other form of the address is
 * refused.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server/serve';
import { decodeMessage } from '../../src/shared/wire';
import type { Envelope } from '../../src/shared/envelope';
import type { PackedSlices } from '../../src/shared/types';
import { unpackSlices } from '../../src/renderer/src/viewer/packed-slices';
import { loadSeriesVolume } from '../../src/library/volumes/volume';
import { indexFolders } from '../../src/library/indexing/indexer';
import { fixtures, tempDir } from '../helpers';

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('viewer blocks over HTTP', () => {
  const tmp = tempDir('ctssl-viewer-http-');
  let server: RunningServer;
  let seriesId = 0;
  const auth = () => ({ authorization: `Bearer ${server.token}` });
  const envelope = (body: Buffer) => decodeMessage<{ envelope: Envelope<PackedSlices> }>(new Uint8Array(body)).envelope;

  beforeAll(async () => {
    const renderer = join(tmp.dir, 'renderer');
    mkdirSync(renderer);
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
    cpSync(join(fixtures, 'lidc-0001'), join(tmp.dir, 'lidc'), { recursive: true });
    server = await startServer({ dataDir: join(tmp.dir, 'data'), dbPath: join(tmp.dir, 'lib.sqlite'), rendererDir: renderer });
    await indexFolders(server.services.db, [join(tmp.dir, 'lidc')]);
    seriesId = (await server.services.handlers['library.series']({}))[0].id;
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('answers a block, raw, deflated or as byte differences, with the voxels loadSeriesVolume reads', async () => {
    const reference = await loadSeriesVolume(server.services.db, seriesId, { start: 3, count: 9 });
    for (const encoding of ['int16', 'deflate', 'delta8'] as const) {
      const r = await get(server.port, `/files/series/${seriesId}/packed?start=3&count=9&encoding=${encoding}`, auth());
      expect(r.status).toBe(200);
      const e = envelope(r.body);
      expect(e.ok, JSON.stringify(e)).toBe(true);
      const p = (e as { ok: true; value: PackedSlices }).value;
      expect([p.start, p.count, p.width, p.height, p.encoding]).toEqual([3, 9, 512, 512, encoding]);
      const data = await unpackSlices(p, async (b) => new Uint8Array(inflateRawSync(b)));
      expect(Buffer.from(data.buffer).equals(Buffer.from(reference.data.buffer)), encoding).toBe(true);
    }
  });

  it('needs the token, and the query passes the call schema', async () => {
    const path = `/files/series/${seriesId}/packed?start=0&count=2&encoding=int16`;
    expect((await get(server.port, path)).status).toBe(403);
    expect((await get(server.port, path, { authorization: 'Bearer wrong' })).status).toBe(403);
    expect((await get(server.port, path, { ...auth(), origin: 'http://evil.example' })).status).toBe(403);
    for (const q of ['start=0&count=1000&encoding=int16', 'start=0&count=2&encoding=png', 'start=-1&count=2&encoding=int16', 'count=2&encoding=int16', 'start=99&count=2&encoding=int16']) {
      const r = await get(server.port, `/files/series/${seriesId}/packed?${q}`, auth());
      expect(r.status, q).toBe(200);
      const e = envelope(r.body);
      expect(e.ok, q).toBe(false);
    }
    const missing = envelope((await get(server.port, `/files/series/999999/packed?start=0&count=1&encoding=int16`, auth())).body);
    expect(missing.ok).toBe(false);
    expect((await get(server.port, `/files/series/abc/packed?start=0&count=1&encoding=int16`, auth())).status).toBe(400);
    expect((await get(server.port, `/files/series/${seriesId}/packed/../../exports?start=0`, auth())).status).toBe(400);
    expect((await get(server.port, path, auth(), 'POST')).status).toBe(405);
  });
});
