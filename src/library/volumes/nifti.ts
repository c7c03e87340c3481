/**
 * A series as NIfTI-1 (.nii.gz, gzip by fflate) in Hounsfield units with its affine in both the
 * qform and the sform (code 1, scanner anatomical), in RAS+ world coordinates as NIfTI requires
 * (DICOM patient coordinates are LPS: x and y change sign).
 *
 * Voxel (i, j, k): i runs along a stored row (DICOM column index), j down the stored rows, k
 * through the slices in the library's display order (axial: superior first). The affine maps
 * voxel centres to the ImagePositionPatient of their pixel.
 *
 * Refused, with a message saying why: series without orientation/position, planes of different
 * orientation or size, non-uniform slice spacing or gaps, and gantry tilt (sheared slices: a qform
 * cannot hold shear, and exporting them as if they were not sheared misplaces every slice).
 */
import { gzipSync } from 'fflate';
import { rename, writeFile } from 'node:fs/promises';
import { cross, dot, sliceNormal } from '../../core/dicom/geometry';
import type { Vec3 } from '../../core/dicom/header';
import type { Database } from '../db/sqlite';
import { readPlanes, seriesLayout } from './volume';

export interface NiftiExportOptions {
  /** HU written for padding pixels (default -1024, air). */
  paddingHU?: number;
  signal?: AbortSignal;
}

export interface NiftiExportResult {
  path: string;
  /** nx, ny, nz. */
  dims: [number, number, number];
  /** Voxel size in mm (i, j, k). */
  pixdim: [number, number, number];
  datatype: 'int16' | 'float32';
  /** The 4x4 voxel-to-RAS affine written as sform (and, up to rounding, as qform). */
  affine: number[][];
  qfac: 1 | -1;
  paddingCount: number;
  lossy: boolean;
  bytes: number;
  warnings: string[];
}

/** Thrown when a series cannot be represented as a NIfTI volume. */
export class NiftiExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NiftiExportError';
  }
}

const norm = (v: Vec3) => Math.hypot(v[0], v[1], v[2]);
const scale = (v: Vec3, s: number): Vec3 => [v[0] * s, v[1] * s, v[2] * s];

/** NIfTI quaternion (b, c, d) and qfac of a rotation with optional reflection (nifti_mat44_to_quatern). */
export function quaternionOf(cols: [Vec3, Vec3, Vec3]): { b: number; c: number; d: number; qfac: 1 | -1 } {
  const [u, v, w0] = cols.map((c) => scale(c, 1 / (norm(c) || 1))) as [Vec3, Vec3, Vec3];
  const det = dot(cross(u, v), w0);
  const qfac: 1 | -1 = det < 0 ? -1 : 1;
  const w = qfac < 0 ? scale(w0, -1) : w0;
  const [r11, r21, r31] = u;
  const [r12, r22, r32] = v;
  const [r13, r23, r33] = w;
  let a = r11 + r22 + r33 + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { b, c, d, qfac };
}

export interface NiftiHeaderInput {
  dims: [number, number, number];
  pixdim: [number, number, number];
  datatype: 'int16' | 'float32' | 'uint8';
  affine: number[][];
  description?: string;
}

const NIFTI_TYPES = { uint8: [2, 8], int16: [4, 16], float32: [16, 32] } as const;

/** The 352-byte NIfTI-1 single-file header (348 + 4-byte extension flag). */
export function niftiHeader(h: NiftiHeaderInput): Uint8Array {
  const buf = new ArrayBuffer(352);
  const dv = new DataView(buf);
  const u8 = new Uint8Array(buf);
  const le = true;
  dv.setInt32(0, 348, le);
  const dim = [3, h.dims[0], h.dims[1], h.dims[2], 1, 1, 1, 1];
  dim.forEach((v, i) => dv.setInt16(40 + 2 * i, v, le));
  dv.setInt16(70, NIFTI_TYPES[h.datatype][0], le);
  dv.setInt16(72, NIFTI_TYPES[h.datatype][1], le);
  const A = h.affine;
  const cols: [Vec3, Vec3, Vec3] = [0, 1, 2].map((j) => [A[0][j], A[1][j], A[2][j]]) as [Vec3, Vec3, Vec3];
  const q = quaternionOf(cols);
  const pixdim = [q.qfac, h.pixdim[0], h.pixdim[1], h.pixdim[2], 0, 0, 0, 0];
  pixdim.forEach((v, i) => dv.setFloat32(76 + 4 * i, v, le));
  dv.setFloat32(108, 352, le); // vox_offset
  dv.setFloat32(112, 1, le); // scl_slope: values are HU as stored
  dv.setFloat32(116, 0, le); // scl_inter
  u8[123] = 2 | 8; // xyzt_units: mm, s
  const descrip = new TextEncoder().encode((h.description ?? '').slice(0, 79));
  u8.set(descrip, 148);
  dv.setInt16(252, 1, le); // qform_code: scanner anatomical
  dv.setInt16(254, 1, le); // sform_code: scanner anatomical
  dv.setFloat32(256, q.b, le);
  dv.setFloat32(260, q.c, le);
  dv.setFloat32(264, q.d, le);
  dv.setFloat32(268, A[0][3], le);
  dv.setFloat32(272, A[1][3], le);
  dv.setFloat32(276, A[2][3], le);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) dv.setFloat32(280 + 16 * r + 4 * c, A[r][c], le);
  u8.set([0x6e, 0x2b, 0x31, 0x00], 344); // "n+1\0"
  return u8;
}

/** A series' stack checked for a single affine: its layout, the plane geometry and the step along the normal. */
export function niftiStack(db: Database, seriesId: number) {
  const layout = seriesLayout(db, seriesId);
  const { geometry, planes } = layout;
  const n = planes.length;
  const uid = (db.prepare('SELECT series_uid FROM series WHERE id = ?').pluck().get(seriesId) as string | undefined) ?? `#${seriesId}`;
  const fail = (why: string) => new NiftiExportError(`series ${uid} cannot be exported as NIfTI: ${why}`);
  const iop = geometry.planes[0]?.orientation ?? null;
  if (!iop || planes.some((p) => !p.position) || geometry.normal === null)
    throw fail('its planes lack ImageOrientationPatient/ImagePositionPatient, so no affine can be derived');
  if (geometry.warnings.some((w) => w.includes('different ImageOrientationPatient'))) throw fail('its planes have different ImageOrientationPatient (not one stack)');
  const normal = sliceNormal(iop);
  const row: Vec3 = [iop[0], iop[1], iop[2]];
  const col: Vec3 = [iop[3], iop[4], iop[5]];
  const p0 = planes[0].position!;
  const pN = planes[n - 1].position!;
  let step = 0;
  const warnings: string[] = [];
  if (n > 1) {
    const steps = planes.slice(1).map((p, i) => dot(p.position!, normal) - dot(planes[i].position!, normal));
    step = dot([pN[0] - p0[0], pN[1] - p0[1], pN[2] - p0[2]], normal) / (n - 1);
    const tol = 0.02 * Math.abs(step) + 0.01;
    const lo = Math.min(...steps.map(Math.abs));
    const hi = Math.max(...steps.map(Math.abs));
    const reasons: string[] = [];
    if (steps.some((s) => Math.abs(s) < 1e-4)) reasons.push('two or more slices share a position');
    else if (steps.some((s) => Math.abs(s - step) > tol))
      reasons.push(`its slice spacing is not uniform (steps from ${lo.toFixed(3)} to ${hi.toFixed(3)} mm) and an affine has one spacing`);
    // Gantry tilt: slice origins drift in-plane along the stack. A drift of more than a tenth of a
    // millimetre over the whole stack is refused.
    const d: Vec3 = [pN[0] - p0[0], pN[1] - p0[1], pN[2] - p0[2]];
    const along = dot(d, normal);
    const drift = norm([d[0] - along * normal[0], d[1] - along * normal[1], d[2] - along * normal[2]]);
    if (drift > 0.1)
      reasons.push(
        `it has a gantry tilt of ${geometry.gantryTilt.toFixed(2)} degrees: the slices are sheared (their origins drift ${drift.toFixed(2)} mm in-plane over the stack), which a NIfTI qform cannot represent`,
      );
    if (reasons.length) throw fail(reasons.join('; ') + '. Resample the series to a regular grid first (e.g. dcm2niix writes a tilt-corrected, equalized copy).');
  }

  return { layout, planes, n, uid, fail, normal, row, col, p0, step, warnings };
}

/** The RAS affine of a checked stack whose stored pixels are [dRow, dCol] mm apart. */
export function niftiAffine(st: ReturnType<typeof niftiStack>, ps: [number, number]): number[][] {
  const [dRow, dCol] = ps;
  const ci = scale(st.row, dCol);
  const cj = scale(st.col, dRow);
  const ck = scale(st.normal, st.n > 1 ? st.step : 1);
  // LPS -> RAS: negate x and y.
  const flip = [-1, -1, 1];
  const affine = [0, 1, 2].map((r) => [ci[r] * flip[r], cj[r] * flip[r], ck[r] * flip[r], st.p0[r] * flip[r]]);
  affine.push([0, 0, 0, 1]);
  return affine;
}

/** Exports a series of the library to `outPath` (.nii.gz). */
export async function exportSeriesNifti(db: Database, seriesId: number, outPath: string, options: NiftiExportOptions = {}): Promise<NiftiExportResult> {
  const st = niftiStack(db, seriesId);
  const { layout, n, fail, step, warnings } = st;
  const paddingHU = options.paddingHU ?? -1024;
  let rows = 0;
  let columns = 0;
  let ps: [number, number] | null = null;
  let integral = true;
  let lossy = false;
  let paddingCount = 0;
  let volume: Float32Array | null = null;
  await readPlanes(layout, { transpose: false, flipX: false, flipY: false }, { signal: options.signal }, (p) => {
    if (!volume) {
      rows = p.height;
      columns = p.width;
      ps = p.frame.header.pixelSpacing;
      volume = new Float32Array(rows * columns * n);
    }
    const h = p.frame;
    if (!Number.isInteger(h.rescaleSlope) || !Number.isInteger(h.rescaleIntercept)) integral = false;
    lossy ||= h.lossy;
    const out = volume.subarray(p.slot * rows * columns, (p.slot + 1) * rows * columns);
    for (let i = 0; i < p.hu.length; i++) {
      const v = p.hu[i];
      if (v !== v) {
        out[i] = paddingHU;
        paddingCount++;
      } else out[i] = v;
    }
  });
  if (!ps) throw fail('its first slice has no PixelSpacing');
  const [dRow, dCol] = ps as [number, number]; // between rows, between columns
  if (n === 1) warnings.push('a single slice: slice spacing set to 1 mm');
  const affine = niftiAffine(st, ps as [number, number]);

  const vol = volume as unknown as Float32Array;
  let datatype: 'int16' | 'float32' = 'int16';
  if (!integral || !Number.isInteger(paddingHU)) datatype = 'float32';
  else for (let i = 0; i < vol.length; i++) if (vol[i] < -32768 || vol[i] > 32767) { datatype = 'float32'; break; }
  const voxels = datatype === 'int16' ? Int16Array.from(vol) : vol;
  const pixdim: [number, number, number] = [dCol, dRow, n > 1 ? Math.abs(step) : 1];
  const header = niftiHeader({
    dims: [columns, rows, n],
    pixdim,
    datatype,
    affine,
    description: `ctssl HU${lossy ? ' (lossy source)' : ''}`,
  });
  const raw = new Uint8Array(header.length + voxels.byteLength);
  raw.set(header, 0);
  raw.set(new Uint8Array(voxels.buffer, voxels.byteOffset, voxels.byteLength), header.length);
  const gz = gzipSync(raw, { level: 6 });
  const tmp = `${outPath}.${process.pid}.tmp`;
  await writeFile(tmp, gz);
  await rename(tmp, outPath);
  if (lossy) warnings.push('some slices are lossy-compressed');
  if (paddingCount > 0) warnings.push(`${paddingCount} padding voxels written as ${paddingHU} HU`);
  return {
    path: outPath,
    dims: [columns, rows, n],
    pixdim,
    datatype,
    affine,
    qfac: quaternionOf([0, 1, 2].map((j) => [affine[0][j], affine[1][j], affine[2][j]]) as [Vec3, Vec3, Vec3]).qfac,
    paddingCount,
    lossy,
    bytes: gz.length,
    warnings,
  };
}
