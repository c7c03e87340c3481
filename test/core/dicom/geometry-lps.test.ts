/**
 * Patient coordinates of displayed voxels (src/core/dicom/patient-geometry.ts), on real series as
 * the viewer gets them (indexed, then `viewer.open`'s VolumeInfo.frame), compared with pydicom's
 * ImagePositionPatient/ImageOrientationPatient arithmetic run by /usr/bin/python3
 * (geometry_lps_reference.py beside this file): for sample voxels of the first, middle and last
 * slices, the file and stored (column, row) the display voxel comes from, and its LPS position, to
 * 1e-3 mm. Also: the slice position readout is ImagePositionPatient's z for axial series (not its
 * negative), display order is superior first, and patientToVoxel inverts voxelToPatient.
 * Series: the committed LIDC slab, the tilted GE head, the coronal/sagittal COVID slices, the
 * TotalSegmentator JPEG 2000 series, copies of a LIDC slice that pydicom rewrites with the geometry
 * the real data lacks (anisotropic pixels, swapped and reversed row/column directions, 4-slice
 * coronal and sagittal stacks); plus the whole LIDC-IDRI-0001 series from ../shared/data.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { displayToStored, patientToVoxel, slicePosition, voxelToPatient } from '../../../src/core/dicom/patient-geometry';
import { listSeries, seriesPlanes } from '../../../src/library/db/catalog';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { openVolumeInfo } from '../../../src/library/volumes/slice-blocks';
import { fixtures, hasSharedData, sharedData, tempDir } from '../../helpers';

const PY = '/usr/bin/python3';
const hasPydicom = existsSync(PY) && spawnSync(PY, ['-c', 'import pydicom, numpy']).status === 0;
if (!hasPydicom) console.warn('[geometry-lps.test] /usr/bin/python3 with pydicom and numpy not found (apt-get install python3-pydicom python3-numpy): the comparison is skipped');

const folders = [
  join(fixtures, 'lidc-0001'),
  join(fixtures, 'ge-tilt'),
  join(fixtures, 'covid-slices'),
  join(fixtures, 'totalseg'),
  ...(hasSharedData ? [join(sharedData, 'lidc-c2c-full')] : []),
];

/** The first .dcm file under a folder (sorted), the source of the geometry variants. */
function firstFile(dir: string): string {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const f = firstFile(p);
      if (f) return f;
    } else if (e.name.endsWith('.dcm')) return p;
  }
  return '';
}

interface Sample {
  series: string;
  k: number;
  x: number;
  y: number;
  path: string;
  frame: number;
  i: number;
  j: number;
  lps: [number, number, number];
}

let db: ReturnType<typeof openLibrary>;
const tmp = tempDir('ctssl-geometry-lps-');
const samples: Sample[] = [];
const seriesSeen: { uid: string; orientation: string; slices: number; transpose: boolean; flipped: boolean; anisotropic: boolean }[] = [];

beforeAll(async () => {
  db = openLibrary(join(tmp.dir, 'lib.sqlite'));
  if (hasPydicom) {
    const made = join(tmp.dir, 'variants');
    execFileSync(PY, [join(__dirname, 'geometry_lps_reference.py'), 'make', firstFile(join(fixtures, 'lidc-0001')), made]);
    folders.push(made);
  }
  await indexFolders(db, folders);
  for (const s of listSeries(db)) {
    if (s.modality !== 'CT' || !s.slices) continue;
    const info = openVolumeInfo(db, s.id);
    if (!info.frame) continue;
    const { planes } = seriesPlanes(db, s.id);
    const [w, h, n] = info.dims;
    const st = info.frame.stored;
    seriesSeen.push({
      uid: s.seriesInstanceUid,
      orientation: info.orientation,
      slices: n,
      transpose: st.transpose,
      flipped: st.flipX || st.flipY,
      anisotropic: Math.abs(Math.hypot(...info.frame.xStep) - Math.hypot(...info.frame.yStep)) > 0.05,
    });
    for (const k of [...new Set([0, Math.floor(n / 2), n - 1])]) {
      for (const [x, y] of [
        [0, 0],
        [w - 1, 0],
        [0, h - 1],
        [w - 1, h - 1],
        [Math.floor(w / 3), Math.floor((2 * h) / 3)],
      ]) {
        const { i, j } = displayToStored(info.frame.stored, x, y);
        samples.push({ series: s.seriesInstanceUid, k, x, y, path: planes[k].path, frame: planes[k].frame, i, j, lps: voxelToPatient(info.frame, x, y, k) });
      }
    }
  }
}, 300_000);

afterAll(() => {
  db?.close();
  tmp.cleanup();
});

describe('patient coordinates of displayed voxels', () => {
  it('covers axial, coronal, sagittal and tilted real series', () => {
    const kinds = new Set(seriesSeen.map((s) => s.orientation));
    expect(kinds).toContain('axial');
    expect(kinds).toContain('coronal');
    expect(kinds).toContain('sagittal');
    expect(samples.length).toBeGreaterThan(40);
    if (hasPydicom) {
      expect(seriesSeen.some((s) => s.transpose)).toBe(true);
      expect(seriesSeen.some((s) => s.flipped)).toBe(true);
      expect(seriesSeen.some((s) => s.anisotropic)).toBe(true);
      expect(seriesSeen.some((s) => s.orientation === 'sagittal' && s.slices > 1)).toBe(true);
    }
  });

  it.skipIf(!hasPydicom)('agree with pydicom: IPP + column * PixelSpacing[1] * row direction + row * PixelSpacing[0] * column direction', () => {
    const input = join(tmp.dir, 'samples.json');
    writeFileSync(input, JSON.stringify(samples.map((s) => ({ path: s.path, frame: s.frame, i: s.i, j: s.j }))));
    const out = execFileSync(PY, [join(__dirname, 'geometry_lps_reference.py'), input], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const ref = JSON.parse(out) as { lps: [number, number, number]; ipp: [number, number, number]; iop: number[] }[];
    expect(ref).toHaveLength(samples.length);
    let worst = 0;
    samples.forEach((s, n) => {
      for (let a = 0; a < 3; a++) worst = Math.max(worst, Math.abs(s.lps[a] - ref[n].lps[a]));
    });
    expect(worst, 'largest difference from pydicom, mm').toBeLessThan(1e-3);
    // The stored pixel (0, 0) of each sampled slice is its ImagePositionPatient (as pydicom reads it).
    let origins = 0;
    samples.forEach((s, n) => {
      if (s.i === 0 && s.j === 0) {
        origins++;
        for (let a = 0; a < 3; a++) expect(s.lps[a]).toBeCloseTo(ref[n].ipp[a], 3);
      }
    });
    expect(origins, 'samples at the stored pixel (0, 0)').toBeGreaterThan(0);
  });
});

describe('readouts and the inverse', () => {
  it('the slice position of an axial series is ImagePositionPatient z (superior first), not its negative', () => {
    let checked = 0;
    for (const s of listSeries(db)) {
      const info = openVolumeInfo(db, s.id);
      if (info.orientation !== 'axial' || !info.frame || info.dims[2] < 2) continue;
      checked++;
      const { planes } = seriesPlanes(db, s.id);
      const first = slicePosition(info.frame, 0);
      const last = slicePosition(info.frame, info.dims[2] - 1);
      expect(first.axis).toBe('z');
      expect(first.mm).toBeCloseTo(planes[0].position![2], 6);
      expect(last.mm).toBeCloseTo(planes[planes.length - 1].position![2], 6);
      expect(first.mm).toBeGreaterThan(last.mm);
      // Display +x runs toward the patient's left, +y posterior (radiological convention).
      expect(info.frame.xStep[0]).toBeGreaterThan(0);
      expect(info.frame.yStep[1]).toBeGreaterThan(0);
    }
    expect(checked, 'axial series of more than one slice').toBeGreaterThan(0);
  });

  it('patientToVoxel inverts voxelToPatient on every sample', async () => {
    let checked = 0;
    for (const s of listSeries(db)) {
      const info = openVolumeInfo(db, s.id);
      if (!info.frame) continue;
      for (const smp of samples.filter((x) => x.series === s.seriesInstanceUid)) {
        checked++;
        const v = patientToVoxel(info.frame, smp.lps);
        expect(v.k).toBe(smp.k);
        expect(v.x).toBeCloseTo(smp.x, 6);
        expect(v.y).toBeCloseTo(smp.y, 6);
      }
    }
    expect(checked).toBe(samples.length);
  });
});
