/**
 * The viewer's block path through the services (src/host/viewer-blocks.ts), on the real LIDC slab:
 * `viewer.packed` in both wire forms decodes to exactly the voxels of `viewer.slices` and of
 * loadSeriesVolume (the path exports and training read); the warm-up fills the cache after
 * `viewer.open`; a file changed on disk and re-indexed is read again, not served from the cache;
 * ranges outside the series are refused.
 */
import { cpSync, utimesSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../src/host/services';
import { indexFolders } from '../../src/library/indexing/indexer';
import { loadSeriesVolume } from '../../src/library/volumes/volume';
import { seriesPlanes } from '../../src/library/db/catalog';
import { unpackSlices } from '../../src/renderer/src/viewer/packed-slices';
import { fixtures, tempDir } from '../helpers';

const inflate = async (b: Uint8Array) => new Uint8Array(inflateRawSync(b));
const tmp = tempDir('ctssl-viewer-blocks-');
let services: Services;
let seriesId = 0;
const copy = join(tmp.dir, 'lidc');

beforeAll(async () => {
  cpSync(join(fixtures, 'lidc-0001'), copy, { recursive: true });
  services = createServices({ mode: 'server', dataDir: tmp.dir, dbPath: join(tmp.dir, 'lib.sqlite'), emit: () => {} });
  await indexFolders(services.db, [copy]);
  const [s] = await services.handlers['library.series']({});
  seriesId = s.id;
});

afterAll(async () => {
  await services.close();
  tmp.cleanup();
});

describe('viewer blocks', () => {
  it('packed blocks, raw and deflated, decode to the voxels of viewer.slices and loadSeriesVolume', async () => {
    const info = await services.handlers['viewer.open'](seriesId);
    expect(info.dims).toEqual([512, 512, 17]);
    const reference = await loadSeriesVolume(services.db, seriesId, { start: 3, count: 9 });
    const slices = await services.handlers['viewer.slices'](seriesId, 3, 9);
    expect(Buffer.from(slices.data.buffer).equals(Buffer.from(reference.data.buffer))).toBe(true);
    for (const encoding of ['int16', 'deflate'] as const) {
      const p = await services.handlers['viewer.packed'](seriesId, 3, 9, encoding);
      expect([p.start, p.count, p.width, p.height, p.encoding]).toEqual([3, 9, 512, 512, encoding]);
      const data = await unpackSlices(p, inflate);
      expect(Buffer.from(data.buffer).equals(Buffer.from(reference.data.buffer)), encoding).toBe(true);
      if (encoding === 'deflate') expect(p.bytes.length).toBeLessThan(0.7 * 9 * 512 * 512 * 2);
    }
  });

  it('serves a changed file anew once it is re-indexed', async () => {
    const before = await services.handlers['viewer.packed'](seriesId, 0, 17, 'int16');
    const { planes } = seriesPlanes(services.db, seriesId);
    // Rewrite the first slice's file with its last pixel byte changed (same size, new mtime).
    const path = planes[0].path;
    const bytes = readFileSync(path);
    bytes[bytes.length - 2] ^= 0x01;
    writeFileSync(path, bytes);
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    await indexFolders(services.db, [copy]);
    const after = await services.handlers['viewer.packed'](seriesId, 0, 1, 'int16');
    const a = new Int16Array(after.bytes.buffer.slice(after.bytes.byteOffset, after.bytes.byteOffset + after.bytes.length));
    const b = new Int16Array(before.bytes.buffer.slice(before.bytes.byteOffset, before.bytes.byteOffset + 512 * 512 * 2));
    let changed = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) changed++;
    expect(changed).toBe(1);
  });

  it('refuses slices outside the series and unknown series', async () => {
    await expect(services.handlers['viewer.packed'](seriesId, 17, 1, 'deflate')).rejects.toThrow(/outside the series \(17 slices\)/);
    await expect(services.handlers['viewer.packed'](99999, 0, 1, 'int16')).rejects.toThrow(/no series with id 99999/);
    const tail = await services.handlers['viewer.packed'](seriesId, 15, 10, 'deflate');
    expect(tail.count).toBe(2);
  });
});
