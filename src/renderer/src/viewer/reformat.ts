/**
 * Reformats of the loaded volume, resliced directly from the Int16 voxels the viewer already holds
 * (no copy of the volume, no vtk.js reslice): besides the acquired plane (slice k), the plane of one
 * display row y across the stack (coronal for an axial series) and the plane of one display column
 * x (sagittal for an axial series). Pure (no DOM); unit-tested in test/renderer/reformat.test.ts.
 *
 * Volume indices are display ones: x (column, screen right), y (row, screen down), k (slice, in
 * display order: superior first for axial). A reformat's picture has the stack running downwards
 * (k = 0 at the top: superior up for axial, as OHIF and Slicer show coronal and sagittal views):
 *   'row' plane (y fixed):    u = x, v = k, pixel size spacing[0] x spacing[2];
 *   'column' plane (x fixed): u = y, v = k, pixel size spacing[1] x spacing[2].
 */
import { directionLabel } from '../../../core/dicom/geometry';
import type { Vec3 } from '../../../core/dicom/header';
import type { VolumeInfo } from '../../../shared/types';
import type { SliceLayout } from './slice-geometry';

export type ReformatPlane = 'row' | 'column';

export interface VolumePoint {
  x: number;
  y: number;
  k: number;
}

/** Size and pixel spacing of a reformat picture. */
export function reformatLayout(dims: [number, number, number], spacing: [number, number, number], plane: ReformatPlane): SliceLayout {
  const [w, h, n] = dims;
  const sz = spacing[2] > 0 ? spacing[2] : 1;
  return plane === 'row' ? { columns: w, rows: n, sx: spacing[0], sy: sz } : { columns: h, rows: n, sx: spacing[1], sy: sz };
}

/**
 * Fills `out` (layout columns x rows) with the plane through `index` (the fixed y or x); slices not
 * loaded yet are `padding`. `voxels` holds the volume slice after slice, row after row.
 */
export function extractReformat(
  voxels: Int16Array,
  dims: [number, number, number],
  isLoaded: (k: number) => boolean,
  plane: ReformatPlane,
  index: number,
  padding: number,
  out: Int16Array,
): void {
  const [w, h, n] = dims;
  const plen = w * h;
  if (plane === 'row') {
    const y = Math.min(h - 1, Math.max(0, index));
    for (let k = 0; k < n; k++) {
      const row = out.subarray(k * w, (k + 1) * w);
      if (!isLoaded(k)) row.fill(padding);
      else row.set(voxels.subarray(k * plen + y * w, k * plen + y * w + w));
    }
  } else {
    const x = Math.min(w - 1, Math.max(0, index));
    for (let k = 0; k < n; k++) {
      const o = k * h;
      if (!isLoaded(k)) {
        out.fill(padding, o, o + h);
        continue;
      }
      let src = k * plen + x;
      for (let y = 0; y < h; y++, src += w) out[o + y] = voxels[src];
    }
  }
}

/** The volume point under reformat pixel (u, v) of the plane through `index`. */
export function reformatToVolume(plane: ReformatPlane, index: number, u: number, v: number): VolumePoint {
  return plane === 'row' ? { x: u, y: index, k: v } : { x: index, y: u, k: v };
}

/** Where a volume point lies in a reformat picture (u, v), and the plane's fixed index. */
export function volumeToReformat(plane: ReformatPlane, p: VolumePoint): { u: number; v: number; index: number } {
  return plane === 'row' ? { u: p.x, v: p.k, index: p.y } : { u: p.y, v: p.k, index: p.x };
}

const unit = (v: Vec3): Vec3 => {
  const l = Math.hypot(v[0], v[1], v[2]) || 1;
  return [v[0] / l, v[1] / l, v[2] / l];
};
const neg = (v: Vec3): Vec3 => [-v[0], -v[1], -v[2]];

/** Patient directions of a reformat's screen right and down (LPS unit vectors), or null without geometry. */
export function reformatDirections(info: VolumeInfo, plane: ReformatPlane): { right: Vec3; down: Vec3 } | null {
  const f = info.frame;
  if (!f) return null;
  const n = f.origins.length;
  const stack: Vec3 =
    n > 1
      ? unit([f.origins[n - 1][0] - f.origins[0][0], f.origins[n - 1][1] - f.origins[0][1], f.origins[n - 1][2] - f.origins[0][2]])
      : unit([
          f.xStep[1] * f.yStep[2] - f.xStep[2] * f.yStep[1],
          f.xStep[2] * f.yStep[0] - f.xStep[0] * f.yStep[2],
          f.xStep[0] * f.yStep[1] - f.xStep[1] * f.yStep[0],
        ]);
  return { right: unit(plane === 'row' ? f.xStep : f.yStep), down: stack };
}

/** Patient-direction letters at a reformat's four edges (as the acquired view's `labels`). */
export function reformatEdgeLabels(info: VolumeInfo, plane: ReformatPlane): { left: string; right: string; top: string; bottom: string } {
  const d = reformatDirections(info, plane);
  if (!d) return { left: '', right: '', top: '', bottom: '' };
  return { left: directionLabel(neg(d.right)), right: directionLabel(d.right), top: directionLabel(neg(d.down)), bottom: directionLabel(d.down) };
}

/** The name a radiologist gives a plane from its normal: axial, coronal, sagittal (or oblique). */
export function planeName(right: Vec3, down: Vec3): 'axial' | 'coronal' | 'sagittal' | 'oblique' {
  const n = unit([right[1] * down[2] - right[2] * down[1], right[2] * down[0] - right[0] * down[2], right[0] * down[1] - right[1] * down[0]]).map(Math.abs);
  const m = Math.max(...n);
  if (m < 0.866) return 'oblique';
  return n[2] === m ? 'axial' : n[1] === m ? 'coronal' : 'sagittal';
}

/** Names of the three views of a series: the acquired plane, the row plane, the column plane. */
export function viewNames(info: VolumeInfo): [string, string, string] {
  const acquired = info.orientation === 'unknown' ? 'acquired' : info.orientation;
  const name = (p: ReformatPlane) => {
    const d = reformatDirections(info, p);
    return d ? planeName(d.right, d.down) : p === 'row' ? 'rows' : 'columns';
  };
  return [acquired, name('row'), name('column')];
}
