/**
 * Where a displayed voxel lies in the patient, as DICOM says (PS3.3 C.7.6.2.1.1) and as OHIF and
 * 3D Slicer show it: LPS millimetres (+x toward the patient's left, +y posterior, +z superior).
 * Pure; the viewer's readouts and reformats use it, and test/core/dicom/geometry-lps.test.ts
 * checks it against pydicom's ImagePositionPatient/ImageOrientationPatient arithmetic on real series.
 *
 * Stored pixel (column c, row r) of a plane lies at
 *   P = ImagePositionPatient + c * PixelSpacing[1] * rowDir + r * PixelSpacing[0] * colDir
 * where rowDir and colDir are the first and last three values of ImageOrientationPatient and
 * PixelSpacing is [between rows, between columns]. The viewer shows planes moved by a
 * DisplayTransform (transpose, flips) in display order (computeGeometry); a VolumeFrame carries
 * the same formula in display indices: voxel (x, y) of display slice k lies at
 *   P = origins[k] + x * xStep + y * yStep.
 */
import type { VolumeFrame } from '../../shared/types';
import type { Vec3 } from './header';
import type { DisplayTransform } from './geometry';

export type { VolumeFrame };

const add = (a: Vec3, b: Vec3, s = 1): Vec3 => [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]];
const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: Vec3, b: Vec3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a: Vec3, b: Vec3): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];

/** Stored (column i, row j) of display pixel (x, y) of a plane of `rows` x `columns`. */
export function displayToStored(s: VolumeFrame['stored'], x: number, y: number): { i: number; j: number } {
  const width = s.transpose ? s.rows : s.columns;
  const height = s.transpose ? s.columns : s.rows;
  const sx = s.flipX ? width - 1 - x : x;
  const sy = s.flipY ? height - 1 - y : y;
  // As toDisplay: display (sx, sy) is stored (row, column) = transpose ? (sx, sy) : (sy, sx).
  return s.transpose ? { i: sy, j: sx } : { i: sx, j: sy };
}

/**
 * The frame of a displayed stack. `positions`: ImagePositionPatient of each plane in display order;
 * `iop`: ImageOrientationPatient; `pixelSpacing`: DICOM order [between rows, between columns]
 * (1 mm assumed when absent, as the viewer says). Null when a plane has no position or the series
 * has no orientation: then there are no patient coordinates to show.
 */
export function volumeFrame(
  positions: (Vec3 | null)[],
  iop: number[] | null,
  pixelSpacing: [number, number] | null,
  rows: number,
  columns: number,
  t: Pick<DisplayTransform, 'transpose' | 'flipX' | 'flipY'>,
): VolumeFrame | null {
  if (!iop || iop.length < 6 || iop.some((v) => !Number.isFinite(v)) || positions.length === 0) return null;
  if (positions.some((p) => !p || p.some((v) => !Number.isFinite(v)))) return null;
  const rowDir: Vec3 = [iop[0], iop[1], iop[2]];
  const colDir: Vec3 = [iop[3], iop[4], iop[5]];
  const [dr, dc] = pixelSpacing ?? [1, 1];
  const stored = { rows, columns, transpose: t.transpose, flipX: t.flipX, flipY: t.flipY };
  // Offset from ImagePositionPatient of stored pixel (i, j): linear in (i, j).
  const at = (i: number, j: number): Vec3 => add(add([0, 0, 0], rowDir, i * dc), colDir, j * dr);
  const s00 = displayToStored(stored, 0, 0);
  const s10 = displayToStored(stored, 1, 0);
  const s01 = displayToStored(stored, 0, 1);
  const o = at(s00.i, s00.j);
  const xStep = sub(at(s10.i, s10.j), o);
  const yStep = sub(at(s01.i, s01.j), o);
  return { origins: positions.map((p) => add(p as Vec3, o)), xStep, yStep, stored };
}

/** LPS mm of display voxel (x, y) of slice k (fractional x, y, k interpolate between slices). */
export function voxelToPatient(f: VolumeFrame, x: number, y: number, k: number): Vec3 {
  const n = f.origins.length;
  const kc = Math.min(n - 1, Math.max(0, k));
  const k0 = Math.floor(kc);
  const k1 = Math.min(n - 1, k0 + 1);
  const w = kc - k0;
  const origin = w === 0 ? f.origins[k0] : add(f.origins[k0], sub(f.origins[k1], f.origins[k0]), w);
  return add(add(origin, f.xStep, x), f.yStep, y);
}

/** Unit normal of the displayed planes (xStep x yStep). */
export function frameNormal(f: VolumeFrame): Vec3 {
  const n = cross(f.xStep, f.yStep);
  const l = Math.hypot(n[0], n[1], n[2]) || 1;
  return [n[0] / l, n[1] / l, n[2] / l];
}

/**
 * Display voxel indices (fractional) of an LPS point: the nearest slice along the normal, then the
 * in-plane position on that slice. Inverse of voxelToPatient for points on a slice.
 */
export function patientToVoxel(f: VolumeFrame, p: Vec3): { x: number; y: number; k: number } {
  const n = frameNormal(f);
  let best = 0;
  let bestD = Infinity;
  f.origins.forEach((o, k) => {
    const d = Math.abs(dot(sub(p, o), n));
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  });
  const d = sub(p, f.origins[best]);
  // xStep and yStep are orthogonal (IOP's row and column directions are).
  return { x: dot(d, f.xStep) / dot(f.xStep, f.xStep), y: dot(d, f.yStep) / dot(f.yStep, f.yStep), k: best };
}

export type PatientAxis = 'x' | 'y' | 'z';

/**
 * The slice position as OHIF and Slicer give it: the LPS coordinate along the axis closest to the
 * slice normal (z for axial, y for coronal, x for sagittal) of the slice's first voxel, in mm
 * (ImagePositionPatient's z for an axial series).
 */
export function slicePosition(f: VolumeFrame, k: number): { axis: PatientAxis; mm: number } {
  const n = frameNormal(f).map(Math.abs);
  const a = n[2] >= n[0] && n[2] >= n[1] ? 2 : n[1] >= n[0] ? 1 : 0;
  const o = f.origins[Math.min(f.origins.length - 1, Math.max(0, Math.round(k)))];
  return { axis: (['x', 'y', 'z'] as const)[a], mm: o[a] };
}

/** A coordinate in mm with a fixed number of decimals, "-0.0" shown as "0.0". */
export function signedMm(v: number, digits = 1): string {
  return (Math.abs(v) < 0.5 * 10 ** -digits ? 0 : v).toFixed(digits);
}

/** An LPS point as the cursor readout shows it: "12.3, -45.0, -405.8" (x, y, z in mm). */
export function formatLps(p: Vec3, digits = 1): string {
  return p.map((v) => signedMm(v, digits)).join(', ');
}
