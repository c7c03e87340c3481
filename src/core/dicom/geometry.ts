/**
 * Series geometry, pure: slice order along the slice normal (never by file name or
 * InstanceNumber), spacing and its uniformity, gaps, gantry tilt, orientation class, and the
 * in-plane transform to radiological display orientation with its edge labels.
 *
 * Coordinates are DICOM patient coordinates (LPS): +x toward the patient's left, +y posterior,
 * +z superior.
 */
import type { SliceOrientation } from '../../shared/types';
import type { Vec3 } from './header';

export interface Plane {
  /** Caller's key (e.g. instance row id) and frame index within that instance. */
  key: number;
  frame: number;
  position: Vec3 | null;
  orientation: number[] | null;
  instanceNumber: number | null;
}

export interface OrderedPlane extends Plane {
  /** Signed distance along the display stack direction, mm. */
  distance: number;
}

export interface SeriesGeometry {
  orientation: SliceOrientation;
  /** Unit normal of the planes (row x column). */
  normal: Vec3 | null;
  /** Planes in display order (axial: superior first; coronal: anterior first; sagittal: right first). */
  planes: OrderedPlane[];
  spacing: number | null;
  uniform: boolean;
  gaps: number;
  /** Angle between the stacking direction and the plane normal, degrees. */
  gantryTilt: number;
  warnings: string[];
}

export const dot = (a: Vec3, b: Vec3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const cross = (a: Vec3, b: Vec3): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const norm = (a: Vec3) => Math.hypot(a[0], a[1], a[2]);
const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];

export function rowCol(iop: number[]): { row: Vec3; col: Vec3 } {
  return { row: [iop[0], iop[1], iop[2]], col: [iop[3], iop[4], iop[5]] };
}

export function sliceNormal(iop: number[]): Vec3 {
  const { row, col } = rowCol(iop);
  const n = cross(row, col);
  const l = norm(n) || 1;
  return [n[0] / l, n[1] / l, n[2] / l];
}

/** Classifies a plane by its normal: within about 30 degrees of an axis, otherwise oblique. */
export function classifyOrientation(iop: number[] | null): SliceOrientation {
  if (!iop || iop.length < 6) return 'unknown';
  const n = sliceNormal(iop);
  const a = n.map(Math.abs);
  const max = Math.max(...a);
  if (max < 0.866) return 'oblique';
  if (a[2] === max) return 'axial';
  if (a[1] === max) return 'coronal';
  return 'sagittal';
}

/** The patient direction the display stack should run toward first, per orientation. */
function stackReference(orientation: SliceOrientation, normal: Vec3): Vec3 {
  switch (orientation) {
    case 'axial':
      return [0, 0, 1]; // superior first
    case 'coronal':
      return [0, -1, 0]; // anterior first
    case 'sagittal':
      return [-1, 0, 0]; // right first
    default: {
      const a = normal.map(Math.abs);
      const i = a.indexOf(Math.max(...a));
      const ref: Vec3 = [0, 0, 0];
      ref[i] = i === 2 ? 1 : -1;
      return ref;
    }
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export function computeGeometry(planes: Plane[]): SeriesGeometry {
  const warnings: string[] = [];
  const withGeom = planes.filter((p) => p.position && p.orientation && p.orientation.length >= 6);
  const iop = withGeom[0]?.orientation ?? planes.find((p) => p.orientation)?.orientation ?? null;
  const orientation = classifyOrientation(iop);
  if (!iop || withGeom.length < planes.length) {
    if (planes.length > 1) warnings.push('some planes lack ImagePositionPatient/ImageOrientationPatient: ordered by InstanceNumber');
    const ordered = [...planes]
      .sort((a, b) => (a.instanceNumber ?? 0) - (b.instanceNumber ?? 0) || a.frame - b.frame)
      .map((p, i) => ({ ...p, distance: i }));
    return { orientation, normal: iop ? sliceNormal(iop) : null, planes: ordered, spacing: null, uniform: false, gaps: 0, gantryTilt: 0, warnings };
  }
  const normal = sliceNormal(iop);
  const differing = withGeom.some((p) => p.orientation!.some((v, i) => Math.abs(v - iop[i]) > 1e-3));
  if (differing) warnings.push('planes have different ImageOrientationPatient: the series is not one stack');

  const ref = stackReference(orientation, normal);
  // Stack direction: the normal, signed to point toward the reference direction first.
  const sign = dot(normal, ref) >= 0 ? -1 : 1; // distances increase away from the reference side
  const ordered = withGeom
    .map((p) => ({ ...p, distance: sign * dot(p.position!, normal) }))
    .sort((a, b) => a.distance - b.distance || a.frame - b.frame);

  const steps: number[] = [];
  for (let i = 1; i < ordered.length; i++) steps.push(ordered[i].distance - ordered[i - 1].distance);
  let spacing: number | null = null;
  let uniform = ordered.length <= 2;
  let gaps = 0;
  if (steps.length > 0) {
    spacing = median(steps);
    const tol = 0.02 * Math.abs(spacing) + 0.01;
    uniform = steps.every((s) => Math.abs(s - spacing!) <= tol);
    gaps = steps.filter((s) => s > 1.5 * spacing!).length;
    const dup = steps.filter((s) => Math.abs(s) < 1e-4).length;
    if (dup > 0) warnings.push(`${dup} planes share a position with another plane`);
    if (!uniform) warnings.push(`non-uniform spacing: steps from ${Math.min(...steps).toFixed(3)} to ${Math.max(...steps).toFixed(3)} mm`);
    if (gaps > 0) warnings.push(`${gaps} gap(s) larger than 1.5x the median spacing`);
  }

  let gantryTilt = 0;
  if (ordered.length >= 2) {
    const d = sub(ordered[ordered.length - 1].position!, ordered[0].position!);
    const l = norm(d);
    if (l > 1e-6) {
      const c = Math.min(1, Math.abs(dot(d, normal)) / l);
      gantryTilt = (Math.acos(c) * 180) / Math.PI;
      if (gantryTilt < 0.01) gantryTilt = 0;
      if (gantryTilt > 0.5) warnings.push(`gantry tilt ${gantryTilt.toFixed(2)} degrees: slices are sheared`);
    }
  }
  return { orientation, normal, planes: ordered, spacing, uniform, gaps, gantryTilt, warnings };
}

/** How to move stored pixels to display: optional transpose, then flips of display axes. */
export interface DisplayTransform {
  /** When true, display x runs along the stored column index direction (i.e. transpose). */
  transpose: boolean;
  flipX: boolean;
  flipY: boolean;
  /** Patient direction vectors of display +x (to the right) and +y (downward). */
  right: Vec3;
  down: Vec3;
}

/** Target screen directions in radiological convention for each orientation (LPS). */
function screenTargets(orientation: SliceOrientation, normal: Vec3): { right: Vec3; down: Vec3 } {
  switch (orientation) {
    case 'coronal':
      return { right: [1, 0, 0], down: [0, 0, -1] }; // patient's left on screen right, feet down
    case 'sagittal':
      return { right: [0, 1, 0], down: [0, 0, -1] }; // anterior on the left, feet down
    case 'axial':
      return { right: [1, 0, 0], down: [0, 1, 0] }; // patient's left on screen right, posterior down
    default: {
      // Oblique: use the nearest orthogonal class.
      const a = normal.map(Math.abs);
      const i = a.indexOf(Math.max(...a));
      return screenTargets(i === 2 ? 'axial' : i === 1 ? 'coronal' : 'sagittal', normal);
    }
  }
}

/**
 * Chooses the transform (of the 8 axis-aligned ones) that brings stored rows/columns closest to
 * radiological display orientation. Stored pixel (r, c) sits at position + c*rowDir + r*colDir.
 */
export function displayTransform(iop: number[] | null, orientation: SliceOrientation): DisplayTransform {
  if (!iop || iop.length < 6) return { transpose: false, flipX: false, flipY: false, right: [1, 0, 0], down: [0, 1, 0] };
  const { row, col } = rowCol(iop);
  const normal = sliceNormal(iop);
  const target = screenTargets(orientation, normal);
  let best: DisplayTransform | null = null;
  let bestScore = -Infinity;
  for (const transpose of [false, true]) {
    for (const flipX of [false, true]) {
      for (const flipY of [false, true]) {
        const xDir = transpose ? col : row;
        const yDir = transpose ? row : col;
        const right: Vec3 = flipX ? [-xDir[0], -xDir[1], -xDir[2]] : xDir;
        const down: Vec3 = flipY ? [-yDir[0], -yDir[1], -yDir[2]] : yDir;
        const score = dot(right, target.right) + dot(down, target.down);
        if (score > bestScore + 1e-9) {
          bestScore = score;
          best = { transpose, flipX, flipY, right, down };
        }
      }
    }
  }
  return best!;
}

/** The patient-direction letters a vector points to, strongest first (e.g. "LP"). */
export function directionLabel(v: Vec3): string {
  const letters: [number, string][] = [
    [v[0], v[0] > 0 ? 'L' : 'R'],
    [v[1], v[1] > 0 ? 'P' : 'A'],
    [v[2], v[2] > 0 ? 'S' : 'I'],
  ];
  return letters
    .filter(([c]) => Math.abs(c) > 0.25)
    .sort((a, b) => Math.abs(b[0]) - Math.abs(a[0]))
    .map(([, l]) => l)
    .join('');
}

const neg = (v: Vec3): Vec3 => [-v[0], -v[1], -v[2]];

export function edgeLabels(t: DisplayTransform): { left: string; right: string; top: string; bottom: string } {
  return {
    left: directionLabel(neg(t.right)),
    right: directionLabel(t.right),
    top: directionLabel(neg(t.down)),
    bottom: directionLabel(t.down),
  };
}

/**
 * Applies a display transform to one plane of `rows` x `cols` values. Returns the output and its
 * width/height (swapped when transposed).
 */
export function toDisplay<T extends { length: number; [i: number]: number }>(
  src: T,
  rows: number,
  cols: number,
  t: Pick<DisplayTransform, 'transpose' | 'flipX' | 'flipY'>,
  out: T,
): { width: number; height: number } {
  const width = t.transpose ? rows : cols;
  const height = t.transpose ? cols : rows;
  for (let y = 0; y < height; y++) {
    const sy = t.flipY ? height - 1 - y : y;
    for (let x = 0; x < width; x++) {
      const sx = t.flipX ? width - 1 - x : x;
      // Display (sx, sy) maps to stored (r, c) = transpose ? (sx, sy) : (sy, sx).
      const idx = t.transpose ? sx * cols + sy : sy * cols + sx;
      out[y * width + x] = src[idx];
    }
  }
  return { width, height };
}
