/**
 * Branching pulmonary vessel trees (arteries, veins) and the bronchi that run beside the arteries.
 *
 * Each tree fills one lung by recursive territory splitting: the lung is sampled with target
 * points, a branch runs from its start towards the centroid of the targets it supplies, the
 * targets are split in two along their principal axis, and each half grows a child branch, until
 * one target is left. Radii follow a Murray-like law, r = r_root * (targets / all)^0.4, so the
 * vessels taper from about 8 mm at the hilum to sub-millimetre twigs at the pleura.
 */
import { type Anatomy, inLung, type Level, level } from './anatomy';
import type { Rng } from '../random';

/** A point in body-relative millimetres: X (left), Y (posterior), s (below the lung apex). */
export type P3 = [number, number, number];

export interface TreeSegment {
  kind: 'artery' | 'vein' | 'airway';
  a: P3;
  b: P3;
  r: number;
  /** Airway wall thickness (airways only). */
  wall: number;
  /** 1 = left lung, -1 = right lung. */
  side: 1 | -1;
  /** Generation from the hilum (0 = first segment). */
  depth: number;
}

/** Memoised levels at 2 mm steps, for point-in-lung tests while growing trees and placing lesions. */
export class LevelCache {
  private cache = new Map<number, Level>();
  constructor(private an: Anatomy) {}
  at(s: number): Level {
    const k = 2 * Math.round(s / 2);
    let L = this.cache.get(k);
    if (!L) {
      L = level(this.an, k);
      this.cache.set(k, L);
    }
    return L;
  }
  inLung(p: readonly number[], margin = 0): boolean {
    return inLung(this.at(p[2]), p[0], p[1], margin);
  }
}

/** Uniform random points inside one lung (rejection sampling). */
export function sampleLung(rng: Rng, levels: LevelCache, an: Anatomy, side: 1 | -1, count: number, margin = 1): P3[] {
  const mid = levels.at(0.6 * an.lungHeight);
  const xMax = side > 0 ? mid.xLeft : -mid.xRight;
  const yLo = mid.yAnt - 10;
  const yHi = mid.vertebra.y + 40;
  const out: P3[] = [];
  let tries = 0;
  while (out.length < count && tries < count * 200) {
    tries++;
    const p: P3 = [side * rng.uniform(5, xMax), rng.uniform(yLo, yHi), rng.uniform(0, 1.06 * an.lungHeight)];
    if (levels.inLung(p, margin)) out.push(p);
  }
  return out;
}

/** Principal axis (power iteration on the covariance) of the points idx[lo..hi). */
function principalAxis(pts: P3[], idx: Int32Array, lo: number, hi: number): P3 {
  let mx = 0;
  let my = 0;
  let mz = 0;
  for (let i = lo; i < hi; i++) {
    const p = pts[idx[i]];
    mx += p[0];
    my += p[1];
    mz += p[2];
  }
  const n = hi - lo;
  mx /= n;
  my /= n;
  mz /= n;
  let xx = 0;
  let xy = 0;
  let xz = 0;
  let yy = 0;
  let yz = 0;
  let zz = 0;
  for (let i = lo; i < hi; i++) {
    const p = pts[idx[i]];
    const x = p[0] - mx;
    const y = p[1] - my;
    const z = p[2] - mz;
    xx += x * x;
    xy += x * y;
    xz += x * z;
    yy += y * y;
    yz += y * z;
    zz += z * z;
  }
  let v: P3 = [0.3, 0.5, 0.8];
  for (let it = 0; it < 10; it++) {
    const w: P3 = [xx * v[0] + xy * v[1] + xz * v[2], xy * v[0] + yy * v[1] + yz * v[2], xz * v[0] + yz * v[1] + zz * v[2]];
    const l = Math.hypot(w[0], w[1], w[2]) || 1;
    v = [w[0] / l, w[1] / l, w[2] / l];
  }
  return v;
}

/** Reorders idx[lo..hi) so that the k-th smallest key is at k, smaller keys before it (Hoare quickselect). */
function select(idx: Int32Array, key: Float64Array, lo: number, hi: number, k: number): void {
  let l = lo;
  let r = hi - 1;
  while (l < r) {
    const pivot = key[idx[(l + r) >> 1]];
    let i = l;
    let j = r;
    while (i <= j) {
      while (key[idx[i]] < pivot) i++;
      while (key[idx[j]] > pivot) j--;
      if (i <= j) {
        const t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) r = j;
    else if (k >= i) l = i;
    else return;
  }
}

export interface GrowOptions {
  kind: 'artery' | 'vein';
  side: 1 | -1;
  root: P3;
  rootRadius: number;
  targets: P3[];
  /** Add bronchi beside artery branches at least this thick (mm); 0 for none. */
  airwaysFrom: number;
}

/** Grows one tree; returns its segments (with paired airway segments for arteries). */
export function growTree(rng: Rng, o: GrowOptions): TreeSegment[] {
  const out: TreeSegment[] = [];
  const N = o.targets.length;
  const radius = (m: number) => o.rootRadius * Math.pow(m / N, 0.36);
  const emit = (a: P3, b: P3, r: number, depth: number) => {
    // A bend at the midpoint so that branches are not ruler-straight.
    const d: P3 = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    const len = Math.hypot(d[0], d[1], d[2]);
    if (len < 1e-6) return;
    const j = 0.07 * len;
    const m: P3 = [(a[0] + b[0]) / 2 + rng.gauss(0, j), (a[1] + b[1]) / 2 + rng.gauss(0, j), (a[2] + b[2]) / 2 + rng.gauss(0, j)];
    for (const [p, q] of [
      [a, m],
      [m, b],
    ] as [P3, P3][]) {
      out.push({ kind: o.kind, a: p, b: q, r, wall: 0, side: o.side, depth });
      if (o.kind === 'artery' && o.airwaysFrom > 0 && r >= o.airwaysFrom) {
        const rb = 0.8 * r;
        const off = perpendicular(d, r + rb + 0.8);
        out.push({ kind: 'airway', a: [p[0] + off[0], p[1] + off[1], p[2] + off[2]], b: [q[0] + off[0], q[1] + off[1], q[2] + off[2]], r: rb, wall: Math.max(0.6, 0.2 * rb), side: o.side, depth });
      }
    }
  };
  const pts = o.targets;
  const idx = new Int32Array(N);
  for (let i = 0; i < N; i++) idx[i] = i;
  const key = new Float64Array(N);
  const grow = (p: P3, lo: number, hi: number, depth: number) => {
    const m = hi - lo;
    if (m === 1) {
      emit(p, pts[idx[lo]], radius(1), depth);
      return;
    }
    let cx = 0;
    let cy = 0;
    let cz = 0;
    for (let i = lo; i < hi; i++) {
      const q = pts[idx[i]];
      cx += q[0];
      cy += q[1];
      cz += q[2];
    }
    cx /= m;
    cy /= m;
    cz /= m;
    const lam = depth === 0 ? 0.3 : rng.uniform(0.3, 0.55);
    const b: P3 = [p[0] + lam * (cx - p[0]), p[1] + lam * (cy - p[1]), p[2] + lam * (cz - p[2])];
    emit(p, b, radius(m), depth);
    const ax = principalAxis(pts, idx, lo, hi);
    for (let i = lo; i < hi; i++) {
      const q = pts[idx[i]];
      key[idx[i]] = q[0] * ax[0] + q[1] * ax[1] + q[2] * ax[2];
    }
    const cut = lo + Math.max(1, Math.min(m - 1, Math.round(m * rng.uniform(0.32, 0.68))));
    select(idx, key, lo, hi, cut);
    grow(b, lo, cut, depth + 1);
    grow(b, cut, hi, depth + 1);
  };
  grow(o.root, 0, N, 0);
  return out;
}

/** A horizontal vector perpendicular to d (posterior-pointing when possible) of length k. */
function perpendicular(d: P3, k: number): P3 {
  let nx = d[1];
  let ny = -d[0];
  let l = Math.hypot(nx, ny);
  if (l < 1e-6) {
    nx = 1;
    ny = 0;
    l = 1;
  }
  if (ny < 0) {
    nx = -nx;
    ny = -ny;
  }
  return [(nx / l) * k, (ny / l) * k, 0];
}

/** Indices of the segments that reach each slice (slice k at depth s0 + k * thickness). */
export function bucketSegments(segments: TreeSegment[], slices: number, s0: number, thickness: number): number[][] {
  const buckets: number[][] = Array.from({ length: slices }, () => []);
  segments.forEach((t, i) => {
    const lo = Math.min(t.a[2], t.b[2]) - t.r;
    const hi = Math.max(t.a[2], t.b[2]) + t.r;
    const k0 = Math.max(0, Math.ceil((lo - s0) / thickness));
    const k1 = Math.min(slices - 1, Math.floor((hi - s0) / thickness));
    for (let k = k0; k <= k1; k++) buckets[k].push(i);
  });
  return buckets;
}

export { type Level };
