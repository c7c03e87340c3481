/**
 * NIfTI export (src/library/volumes/nifti.ts, `ctssl export-nifti`): read back with a small reader of our
 * own, and compared with Debian's dcm2niix through nibabel (nifti_compare.py beside this file): same voxel
 * values in HU and the same affine to 1e-3, on the committed LIDC slab and, when ../shared/data
 * exists, on the whole LIDC-IDRI-0001 series (133 slices). The tilted GE series is refused.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { listSeries } from '../../../src/library/db/catalog';
import { exportSeriesNifti, NiftiExportError } from '../../../src/library/volumes/nifti';
import { readFrameHU } from '../../../src/library/volumes/pixels';
import { seriesLayout } from '../../../src/library/volumes/volume';
import { fixtures, hasSharedData, root, sharedData, tempDir } from '../../helpers';

const PY = '/usr/bin/python3';
const hasDcm2niix = spawnSync('dcm2niix', ['-v']).status !== null && !spawnSync('dcm2niix', ['-v']).error;
const hasNibabel = existsSync(PY) && spawnSync(PY, ['-c', 'import nibabel, numpy']).status === 0;
if (!hasDcm2niix) console.warn('[nifti.test] dcm2niix not installed (apt-get install dcm2niix): comparisons with it are skipped');
if (!hasNibabel) console.warn('[nifti.test] /usr/bin/python3 with nibabel not found (apt-get install python3-nibabel): comparisons with dcm2niix are skipped');

/** A minimal NIfTI-1 reader: header fields we write, and the voxels. */
function readNifti(path: string) {
  const raw = gunzipSync(new Uint8Array(readFileSync(path)));
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const le = true;
  const f32 = (o: number) => dv.getFloat32(o, le);
  const dim = Array.from({ length: 8 }, (_, i) => dv.getInt16(40 + 2 * i, le));
  const datatype = dv.getInt16(70, le);
  const voxOffset = f32(108);
  const n = dim[1] * dim[2] * dim[3];
  const body = raw.slice(voxOffset, voxOffset + n * (datatype === 4 ? 2 : 4));
  const qb = f32(256);
  const qc = f32(260);
  const qd = f32(264);
  const qa = Math.sqrt(Math.max(0, 1 - qb * qb - qc * qc - qd * qd));
  const qfac = f32(76) < 0 ? -1 : 1;
  const pix = [f32(80), f32(84), f32(88)];
  // The qform matrix (NIfTI-1 method 2).
  const R = [
    [qa * qa + qb * qb - qc * qc - qd * qd, 2 * (qb * qc - qa * qd), 2 * (qb * qd + qa * qc)],
    [2 * (qb * qc + qa * qd), qa * qa + qc * qc - qb * qb - qd * qd, 2 * (qc * qd - qa * qb)],
    [2 * (qb * qd - qa * qc), 2 * (qc * qd + qa * qb), qa * qa + qd * qd - qc * qc - qb * qb],
  ];
  const qoff = [f32(268), f32(272), f32(276)];
  const qform = R.map((row, r) => [row[0] * pix[0], row[1] * pix[1], row[2] * pix[2] * qfac, qoff[r]]);
  const sform = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => f32(280 + 16 * r + 4 * c)));
  return {
    sizeofHdr: dv.getInt32(0, le),
    magic: new TextDecoder().decode(raw.subarray(344, 347)),
    dim,
    datatype,
    pixdim: [f32(76), ...pix],
    voxOffset,
    sclSlope: f32(112),
    sclInter: f32(116),
    qformCode: dv.getInt16(252, le),
    sformCode: dv.getInt16(254, le),
    qform,
    sform,
    data: datatype === 4 ? new Int16Array(body.buffer) : new Float32Array(body.buffer),
  };
}

const maxDiff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, r) => row.map((v, c) => Math.abs(v - b[r][c]))));

interface Compare {
  sameShape: boolean;
  shape: number[];
  maxAbsDiff: number;
  differing: number;
  voxels: number;
  affineMaxAbsDiff: number;
  qformMaxAbsDiff: number;
  ours: { qform_code: number; sform_code: number; scl_slope: number; scl_inter: number };
  reference: { qform_code: number; sform_code: number; scl_slope: number; scl_inter: number };
}

/** Runs dcm2niix on a folder holding one series and compares its output with ours. */
function compareWithDcm2niix(dicomFolder: string, ours: string, outDir: string): Compare {
  execFileSync('dcm2niix', ['-z', 'y', '-b', 'n', '-f', 'd2n', '-o', outDir, dicomFolder], { stdio: 'pipe' });
  const ref = readdirSync(outDir).filter((f) => f.startsWith('d2n') && f.endsWith('.nii.gz'));
  expect(ref, 'dcm2niix writes one volume').toHaveLength(1);
  const out = execFileSync(PY, [join(root, 'test', 'library', 'volumes', 'nifti_compare.py'), ours, join(outDir, ref[0])], { encoding: 'utf8' });
  const c = JSON.parse(out) as Compare;
  console.log(
    `[nifti.test] vs dcm2niix (${dicomFolder.split('/').slice(-1)[0]}): shape ${c.shape.join('x')}, ${c.differing}/${c.voxels} voxels differ (max |diff| ${c.maxAbsDiff} HU), ` +
      `affine max |diff| ${c.affineMaxAbsDiff}, our qform vs sform ${c.qformMaxAbsDiff}; dcm2niix scl_slope ${c.reference.scl_slope} scl_inter ${c.reference.scl_inter}`,
  );
  return c;
}

const tmp = tempDir();
let db: ReturnType<typeof openLibrary>;
const lidcSlab = join(fixtures, 'lidc-0001');

beforeAll(async () => {
  db = openLibrary(join(tmp.dir, 'lib.sqlite'));
  await indexFolders(db, [lidcSlab, join(fixtures, 'ge-tilt')]);
});
afterAll(() => {
  db?.close();
  tmp.cleanup();
});

const lidcSeries = () => listSeries(db).find((s) => s.slices === 17)!;

describe('NIfTI export', () => {
  it('writes a NIfTI-1 file whose header, affine and voxels read back as written', async () => {
    const s = lidcSeries();
    const out = join(tmp.dir, 'slab.nii.gz');
    const r = await exportSeriesNifti(db, s.id, out);
    expect(r.dims).toEqual([512, 512, 17]);
    expect(r.datatype).toBe('int16');
    const n = readNifti(out);
    expect(n.sizeofHdr).toBe(348);
    expect(n.magic).toBe('n+1');
    expect(n.dim.slice(0, 4)).toEqual([3, 512, 512, 17]);
    expect(n.voxOffset).toBe(352);
    expect([n.sclSlope, n.sclInter]).toEqual([1, 0]);
    expect([n.qformCode, n.sformCode]).toEqual([1, 1]);
    expect(n.pixdim.slice(1)).toEqual([0.703125, 0.703125, 2.5]);
    // sform as returned, and the qform describes the same affine.
    expect(maxDiff(n.sform, r.affine.slice(0, 3))).toBeLessThan(1e-4);
    expect(maxDiff(n.qform, n.sform)).toBeLessThan(1e-4);
    // RAS: x = -(LPS x). LIDC-IDRI-0001 has IOP 1,0,0,0,1,0 and the superior slice (z -95) first.
    expect(r.affine[0][0]).toBeCloseTo(-0.703125, 6);
    expect(r.affine[1][1]).toBeCloseTo(-0.703125, 6);
    expect(r.affine[2][2]).toBeCloseTo(-2.5, 6);
    expect(r.affine[2][3]).toBeCloseTo(-95, 6);
    // Voxels are the HU of the slices, in the order of the library.
    const layout = seriesLayout(db, s.id);
    for (const k of [0, 9, 16]) {
      const h = await readFrameHU(layout.planes[k].path, 0);
      const plane = n.data.subarray(k * 512 * 512, (k + 1) * 512 * 512);
      expect(Array.from(plane).every((v, i) => v === h.hu[i]), `slice ${k}`).toBe(true);
    }
  });

  it.skipIf(!hasDcm2niix || !hasNibabel)('matches dcm2niix on the committed LIDC slab: same HU, same affine to 1e-3', async () => {
    const out = join(tmp.dir, 'slab-cmp.nii.gz');
    await exportSeriesNifti(db, lidcSeries().id, out);
    const d = join(tmp.dir, 'd2n-slab');
    execFileSync('mkdir', ['-p', d]);
    const c = compareWithDcm2niix(lidcSlab, out, d);
    expect(c.sameShape).toBe(true);
    expect(c.voxels).toBe(512 * 512 * 17);
    expect(c.maxAbsDiff).toBe(0);
    expect(c.affineMaxAbsDiff).toBeLessThan(1e-3);
    expect(c.qformMaxAbsDiff).toBeLessThan(1e-3);
    // dcm2niix stores raw values and the rescale; we store HU.
    expect([c.reference.scl_slope, c.reference.scl_inter]).toEqual([1, -1024]);
    expect([c.ours.scl_slope, c.ours.scl_inter]).toEqual([1, 0]);
  }, 120_000);

  it('refuses the tilted GE head series with the reasons', async () => {
    const s = listSeries(db).find((x) => x.gantryTilt > 1)!;
    expect(s).toBeDefined();
    const err = (await exportSeriesNifti(db, s.id, join(tmp.dir, 'tilt.nii.gz')).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(NiftiExportError);
    expect(err.message).toContain(s.seriesInstanceUid);
    expect(err.message).toMatch(/slice spacing is not uniform \(steps from 1\.\d+ to 6\.\d+ mm\)/);
    expect(err.message).toMatch(/gantry tilt of 18\.50 degrees: the slices are sheared/);
    expect(existsSync(join(tmp.dir, 'tilt.nii.gz'))).toBe(false);
  });

  it('runs as `ctssl export-nifti --json`, and names what is wrong', () => {
    const out = join(tmp.dir, 'cli.nii.gz');
    const dbPath = join(tmp.dir, 'lib.sqlite');
    const uid = lidcSeries().seriesInstanceUid;
    const ok = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'export-nifti', '--db', dbPath, '--series', uid, '--out', out, '--json'], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    const j = JSON.parse(ok.stdout) as { seriesInstanceUid: string; dims: number[]; path: string };
    expect(j.seriesInstanceUid).toBe(uid);
    expect(j.dims).toEqual([512, 512, 17]);
    expect(existsSync(out)).toBe(true);
    const missing = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'export-nifti', '--db', dbPath, '--series', '1.2.3.4', '--out', out], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no series with SeriesInstanceUID 1\.2\.3\.4/);
    const ext = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'export-nifti', '--db', dbPath, '--series', uid, '--out', join(tmp.dir, 'x.nii')], { encoding: 'utf8' });
    expect(ext.status).toBe(1);
    expect(ext.stderr).toMatch(/--out must end in \.nii\.gz/);
  }, 120_000);
});

const fullLidc = join(sharedData, 'lidc-c2c-full', 'tests', 'assets', 'LIDC-IDRI-0001');
describe.skipIf(!hasSharedData || !existsSync(fullLidc) || !hasDcm2niix || !hasNibabel)(
  `NIfTI export of the whole LIDC-IDRI-0001 series (skipped without ../shared/data, dcm2niix or nibabel)`,
  () => {
    it('matches dcm2niix on 133 slices: same HU, same affine to 1e-3', async () => {
      const t = tempDir();
      const fdb = openLibrary(join(t.dir, 'full.sqlite'));
      try {
        await indexFolders(fdb, [fullLidc]);
        const s = listSeries(fdb).find((x) => x.slices === 133)!;
        expect(s).toBeDefined();
        const out = join(t.dir, 'lidc.nii.gz');
        const r = await exportSeriesNifti(fdb, s.id, out);
        expect(r.dims).toEqual([512, 512, 133]);
        const series = readdirSync(fullLidc, { recursive: true, withFileTypes: true }).find((e) => e.isFile() && e.name.endsWith('.dcm'))!;
        const d = join(t.dir, 'd2n');
        execFileSync('mkdir', ['-p', d]);
        const c = compareWithDcm2niix(series.parentPath, out, d);
        expect(c.sameShape).toBe(true);
        expect(c.voxels).toBe(512 * 512 * 133);
        expect(c.maxAbsDiff).toBe(0);
        expect(c.affineMaxAbsDiff).toBeLessThan(1e-3);
        expect(c.qformMaxAbsDiff).toBeLessThan(1e-3);
      } finally {
        fdb.close();
        t.cleanup();
      }
    }, 240_000);
  },
);
