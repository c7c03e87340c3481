import { describe, expect, it } from 'vitest';
import {
  classifyOrientation,
  computeGeometry,
  directionLabel,
  displayTransform,
  edgeLabels,
  toDisplay,
  type Plane,
} from '../../../src/core/dicom/geometry';
import type { Vec3 } from '../../../src/core/dicom/header';

const AXIAL = [1, 0, 0, 0, 1, 0];
const CORONAL = [1, 0, 0, 0, 0, -1];
const SAGITTAL = [0, 1, 0, 0, 0, -1];

const stack = (zs: number[], iop = AXIAL, shift: (z: number) => Vec3 = (z) => [0, 0, z]): Plane[] =>
  zs.map((z, i) => ({ key: i, frame: 0, position: shift(z), orientation: iop, instanceNumber: 100 - i }));

describe('orientation', () => {
  it('classifies planes by their normal', () => {
    expect(classifyOrientation(AXIAL)).toBe('axial');
    expect(classifyOrientation(CORONAL)).toBe('coronal');
    expect(classifyOrientation(SAGITTAL)).toBe('sagittal');
    const c = Math.cos(Math.PI / 4);
    expect(classifyOrientation([1, 0, 0, 0, c, c])).toBe('oblique');
    expect(classifyOrientation(null)).toBe('unknown');
  });

  it('labels directions in LPS letters, strongest first', () => {
    expect(directionLabel([1, 0, 0])).toBe('L');
    expect(directionLabel([-1, 0, 0])).toBe('R');
    expect(directionLabel([0, -0.3, 0.9])).toBe('SA');
  });
});

describe('slice order and spacing', () => {
  it('orders by position along the normal, not by instance number or input order, superior first', () => {
    const g = computeGeometry(stack([-10, 0, -5, -2.5, -7.5]));
    expect(g.planes.map((p) => p.position![2])).toEqual([0, -2.5, -5, -7.5, -10]);
    expect(g.spacing).toBeCloseTo(2.5, 6);
    expect(g.uniform).toBe(true);
    expect(g.gaps).toBe(0);
    expect(g.gantryTilt).toBe(0);
  });

  it('is independent of the sign of the normal', () => {
    const flipped = [-1, 0, 0, 0, 1, 0]; // normal (0,0,-1)
    const g = computeGeometry(stack([1, 3, 2], flipped));
    expect(g.planes.map((p) => p.position![2])).toEqual([3, 2, 1]);
    expect(g.spacing).toBeCloseTo(1, 6);
  });

  it('reports non-uniform spacing and gaps', () => {
    const g = computeGeometry(stack([0, 1, 2, 3, 6, 7]));
    expect(g.uniform).toBe(false);
    expect(g.gaps).toBe(1);
    expect(g.spacing).toBe(1);
    expect(g.warnings.join(' ')).toMatch(/gap/);
  });

  it('measures gantry tilt from positions sheared along the column direction', () => {
    const tilt = (20 * Math.PI) / 180;
    // planes stay axial but each step also moves posteriorly by tan(tilt) per mm in z
    const g = computeGeometry(stack([0, 5, 10, 15], AXIAL, (z) => [0, z * Math.tan(tilt), z]));
    expect(g.gantryTilt).toBeCloseTo(20, 3);
    expect(g.warnings.join(' ')).toMatch(/tilt/);
  });

  it('falls back to InstanceNumber, with a warning, when positions are missing', () => {
    const planes: Plane[] = [3, 1, 2].map((n, i) => ({ key: i, frame: 0, position: null, orientation: null, instanceNumber: n }));
    const g = computeGeometry(planes);
    expect(g.planes.map((p) => p.instanceNumber)).toEqual([1, 2, 3]);
    expect(g.warnings[0]).toMatch(/InstanceNumber/);
  });
});

describe('display orientation', () => {
  it('keeps a standard axial slice as stored (patient left on screen right, anterior up)', () => {
    const t = displayTransform(AXIAL, 'axial');
    expect([t.transpose, t.flipX, t.flipY]).toEqual([false, false, false]);
    expect(edgeLabels(t)).toEqual({ left: 'R', right: 'L', top: 'A', bottom: 'P' });
  });

  it('flips a slice stored left-right mirrored and up-down', () => {
    const t = displayTransform([-1, 0, 0, 0, -1, 0], 'axial');
    expect([t.transpose, t.flipX, t.flipY]).toEqual([false, true, true]);
    expect(edgeLabels(t)).toEqual({ left: 'R', right: 'L', top: 'A', bottom: 'P' });
  });

  it('transposes a slice stored with rows along the patient y axis', () => {
    const t = displayTransform([0, 1, 0, 1, 0, 0], 'axial');
    expect(t.transpose).toBe(true);
    expect(edgeLabels(t)).toEqual({ left: 'R', right: 'L', top: 'A', bottom: 'P' });
  });

  it('shows coronal with feet down and sagittal with anterior on the left', () => {
    expect(edgeLabels(displayTransform(CORONAL, 'coronal'))).toEqual({ left: 'R', right: 'L', top: 'S', bottom: 'I' });
    expect(edgeLabels(displayTransform(SAGITTAL, 'sagittal'))).toEqual({ left: 'A', right: 'P', top: 'S', bottom: 'I' });
  });

  it('moves pixels as the transform says', () => {
    // 2 rows x 3 columns
    const src = Int16Array.from([1, 2, 3, 4, 5, 6]);
    const out = new Int16Array(6);
    expect(toDisplay(src, 2, 3, { transpose: false, flipX: true, flipY: false }, out)).toEqual({ width: 3, height: 2 });
    expect([...out]).toEqual([3, 2, 1, 6, 5, 4]);
    expect(toDisplay(src, 2, 3, { transpose: true, flipX: false, flipY: false }, out)).toEqual({ width: 2, height: 3 });
    expect([...out]).toEqual([1, 4, 2, 5, 3, 6]);
    toDisplay(src, 2, 3, { transpose: false, flipX: false, flipY: true }, out);
    expect([...out]).toEqual([4, 5, 6, 1, 2, 3]);
  });
});
