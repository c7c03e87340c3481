/** Series volumes in display orientation (src/library/volumes/volume.ts) over indexed real fixtures. */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toDisplay } from '../../../src/core/dicom/geometry';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { listSeries } from '../../../src/library/db/catalog';
import { readFrameHU } from '../../../src/library/volumes/pixels';
import { loadSeriesVolume, PADDING_SENTINEL, seriesLayout } from '../../../src/library/volumes/volume';
import { fixtures, tempDir } from '../../helpers';

const tmp = tempDir();
let db: ReturnType<typeof openLibrary>;

beforeAll(async () => {
  // LIDC slab, the covid single slices (axial/coronal/sagittal), a padded J2K slice and a 2-frame enhanced CT.
  const extra = join(tmp.dir, 'extra');
  mkdirSync(extra);
  for (const f of ['CT1_J2KR', 'CT0012.fragmented_no_bot_jpeg_baseline.51.dcm']) copyFileSync(join(fixtures, 'cornerstone', f), join(extra, f));
  db = openLibrary(join(tmp.dir, 'lib.sqlite'));
  await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'covid-slices'), extra]);
});
afterAll(() => {
  db?.close();
  tmp.cleanup();
});

const seriesWhere = (pred: (s: ReturnType<typeof listSeries>[number]) => boolean) => {
  const s = listSeries(db).find(pred);
  if (!s) throw new Error('series not found');
  return s;
};

describe('loadSeriesVolume', () => {
  it('returns the LIDC slab as Int16 HU, superior slice first, equal to the decoded files', async () => {
    const s = seriesWhere((r) => r.slices === 17);
    const layout = seriesLayout(db, s.id);
    const v = await loadSeriesVolume(db, s.id);
    expect([v.width, v.height, v.count, v.totalSlices, v.start]).toEqual([512, 512, 17, 17, 0]);
    expect(v.data).toBeInstanceOf(Int16Array);
    expect(v.orientation).toBe('axial');
    expect(v.labels).toEqual({ left: 'R', right: 'L', top: 'A', bottom: 'P' });
    expect(v.pixelSpacing).toEqual([0.703125, 0.703125]);
    expect(v.sliceSpacing).toBeCloseTo(2.5, 6);
    // Superior first: z decreases along the block.
    const z = v.positions.map((p) => p![2]);
    expect(z[0]).toBe(-95);
    expect(z[16]).toBe(-135);
    for (let k = 0; k < 17; k += 8) {
      const h = await readFrameHU(layout.planes[k].path, 0);
      const plane = v.data.subarray(k * 512 * 512, (k + 1) * 512 * 512);
      expect(Array.from(plane).every((x, i) => x === h.hu[i]), `slice ${k}`).toBe(true);
    }
  });

  it('reads a block of slices', async () => {
    const s = seriesWhere((r) => r.slices === 17);
    const all = await loadSeriesVolume(db, s.id);
    const b = await loadSeriesVolume(db, s.id, { start: 5, count: 3 });
    expect([b.start, b.count, b.totalSlices]).toEqual([5, 3, 17]);
    expect(b.data.length).toBe(3 * 512 * 512);
    expect(Buffer.from(b.data.buffer).equals(Buffer.from(all.data.buffer, 5 * 512 * 512 * 2, 3 * 512 * 512 * 2))).toBe(true);
    await expect(loadSeriesVolume(db, s.id, { start: 17 })).rejects.toThrow(/start must be an integer in 0\.\.16/);
    await expect(loadSeriesVolume(db, s.id, { start: 10, count: 8 })).rejects.toThrow(/count must be an integer in 1\.\.7/);
  });

  it('moves coronal and sagittal slices to radiological display orientation', async () => {
    for (const orientation of ['coronal', 'sagittal'] as const) {
      const s = seriesWhere((r) => r.orientation === orientation);
      const v = await loadSeriesVolume(db, s.id);
      // Patient's head up; coronal: patient's right on the screen's left; sagittal: anterior on the left.
      expect(v.labels.top).toMatch(/^S/);
      expect(v.labels.bottom).toMatch(/^I/);
      expect(v.labels.left).toMatch(orientation === 'coronal' ? /^R/ : /^A/);
      const layout = seriesLayout(db, s.id);
      const h = await readFrameHU(layout.planes[0].path, 0);
      const expected = new Float32Array(h.hu.length);
      toDisplay(h.hu, h.rows, h.columns, layout.transform, expected);
      expect(Array.from(v.data.subarray(0, v.width * v.height)).every((x, i) => x === Math.round(expected[i]))).toBe(true);
    }
  });

  it('writes padding as the sentinel', async () => {
    const s = seriesWhere((r) => r.manufacturer.startsWith('GE') && r.rows === 512 && r.slices === 1 && r.description === '');
    const v = await loadSeriesVolume(db, s.id);
    expect(v.paddingCount).toBe(55772);
    expect(v.data.filter((x) => x === PADDING_SENTINEL).length).toBe(55772);
  });

  it('reads both frames of a multi-frame object from one file, in position order', async () => {
    const s = seriesWhere((r) => r.multiFrame);
    const v = await loadSeriesVolume(db, s.id);
    expect(v.count).toBe(2);
    expect(v.lossy).toBe(true);
    expect(v.warnings).toContain('some slices are lossy-compressed');
    // Superior first: the frame at z = -149 before the one at z = -159.
    expect(v.positions.map((p) => p![2])).toEqual([-149, -159]);
  });
});
