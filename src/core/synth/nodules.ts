/**
 * Lung nodules: lobulated, optionally spiculated ellipsoids of solid, part-solid or ground-glass
 * density, placed inside the lungs. The same implicit shape gives the rendered pixels, the true
 * mask (written to the DICOM SEG) and, with a per-reader perturbation, each simulated reader's
 * outline (written to the LIDC XML).
 */
import { T } from './labels';
import { type Canvas, mask } from './paint';
import type { Rng } from '../random';
import type { LevelCache, P3 } from './vessels';

export type NoduleType = 'solid' | 'part-solid' | 'ground-glass';

export interface Characteristics {
  subtlety: number;
  internalStructure: number;
  calcification: number;
  sphericity: number;
  margin: number;
  lobulation: number;
  spiculation: number;
  texture: number;
  malignancy: number;
}

export interface Nodule {
  /** 1-based, also the SEG segment number. */
  id: number;
  type: NoduleType;
  /** Centre, body-relative mm (X left, Y posterior, s below apex). */
  centre: P3;
  /** Equivalent diameter of the main body (without spicules), mm. */
  diameter: number;
  /** Semi-axes, mm. */
  axes: [number, number, number];
  /** Rows of the rotation from body to nodule frame. */
  rot: [P3, P3, P3];
  lobes: { d: P3; f: number; amp: number; ph: number }[];
  spicules: { d: P3; len: number; w: number }[];
  /** Attenuation of the solid part and of the ground-glass part, HU. */
  solidHu: number;
  glassHu: number;
  /** Part-solid: radius fraction of the solid core. */
  coreFrac: number;
  characteristics: Characteristics;
  /** Largest distance from the centre to any part, mm (bounding radius). */
  extent: number;
  /**
   * Scale of the difference between the nodule's attenuation and the tissue it replaces (absent:
   * 1, the nodule's own solidHu / glassHu): 0.5 paints a solid nodule halfway between the lung
   * behind it and its solidHu.
   */
  contrast?: number;
}

/** Diameter range of nodules, mm, when a cohort does not set one: 3-30 mm, log-uniform. */
export const DEFAULT_NODULE_SIZE: readonly [number, number] = [3, 30];

/** How a simulated reader's outline differs from the truth. */
export interface ReaderView {
  scale: number;
  dx: number;
  dy: number;
  spicules: boolean;
}

const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

function rotation(rng: Rng): [P3, P3, P3] {
  const a = rng.unit3();
  let b = rng.unit3();
  const d = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  b = [b[0] - d * a[0], b[1] - d * a[1], b[2] - d * a[2]];
  const lb = Math.hypot(b[0], b[1], b[2]) || 1;
  b = [b[0] / lb, b[1] / lb, b[2] / lb];
  const c: P3 = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  return [a, b, c];
}

/**
 * Draws a nodule's shape, density and LIDC characteristics (without its position); the diameter
 * is log-uniform in `size` (mm). The default range draws exactly what it always drew.
 */
export function drawNodule(rng: Rng, id: number, size: readonly [number, number] = DEFAULT_NODULE_SIZE): Omit<Nodule, 'centre'> {
  const diameter = Math.exp(rng.uniform(Math.log(size[0]), Math.log(size[1])));
  const type: NoduleType = (['solid', 'part-solid', 'ground-glass'] as const)[rng.weighted([0.62, 0.16, 0.22])];
  const e1 = rng.uniform(0.78, 1);
  const e2 = rng.uniform(0.78, 1);
  const k = Math.cbrt(1 / (e1 * e2));
  const r = diameter / 2;
  const axes: [number, number, number] = [r * k, r * k * e1, r * k * e2];
  const lobAmp = diameter > 6 && rng.chance(0.55) ? rng.uniform(0.04, 0.16) : rng.uniform(0, 0.03);
  const lobes = Array.from({ length: 3 }, () => ({ d: rng.unit3(), f: rng.uniform(2.5, 6), amp: lobAmp * rng.uniform(0.5, 1), ph: rng.uniform(0, 2 * Math.PI) }));
  const spiculated = type !== 'ground-glass' && diameter >= 8 && rng.chance(0.35);
  const spicules = spiculated
    ? Array.from({ length: rng.intBetween(4, 12) }, () => ({ d: rng.unit3(), len: rng.uniform(0.35, 1.0), w: rng.uniform(0.45, 0.8) }))
    : [];
  const solidHu = rng.uniform(10, 55);
  const glassHu = rng.uniform(-690, -520);
  const coreFrac = type === 'part-solid' ? rng.uniform(0.3, 0.6) : type === 'solid' ? 1 : 0;
  const ratio = Math.min(e1, e2);
  const spic = spicules.length === 0 ? 1 : clamp(1 + Math.round(spicules.length / 3), 2, 5);
  const texture = type === 'solid' ? 5 : type === 'part-solid' ? 3 : 1;
  const characteristics: Characteristics = {
    subtlety: clamp(Math.round(1 + diameter / 5 + (type === 'solid' ? 1 : -0.5)), 1, 5),
    internalStructure: 1,
    calcification: 6,
    sphericity: clamp(Math.round(5 * ratio), 2, 5),
    margin: type === 'ground-glass' ? 2 : spicules.length > 0 ? 3 : lobAmp > 0.08 ? 4 : 5,
    lobulation: clamp(1 + Math.round(lobAmp / 0.04), 1, 5),
    spiculation: spic,
    texture,
    malignancy: clamp(1 + (diameter > 6 ? 1 : 0) + (diameter > 12 ? 1 : 0) + (diameter > 20 ? 1 : 0) + (spicules.length ? 1 : 0) + (type === 'part-solid' ? 1 : 0) + (rng.chance(0.3) ? rng.pick([-1, 1]) : 0), 1, 5),
  };
  const maxAxis = Math.max(...axes) * (1 + lobAmp * 3);
  const extent = maxAxis * (1 + (spicules.length ? Math.max(...spicules.map((s) => s.len)) : 0)) + 1;
  return { id, type, diameter, axes, rot: rotation(rng), lobes, spicules, solidHu, glassHu, coreFrac, characteristics, extent };
}

/**
 * Places a nodule in the lungs inside the scanned range [sLo, sHi], away from other nodules.
 * Returns null when no place was found.
 */
export function placeNodule(rng: Rng, levels: LevelCache, shape: Omit<Nodule, 'centre'>, candidates: P3[], others: Nodule[], sLo: number, sHi: number): Nodule | null {
  const R = Math.max(...shape.axes);
  for (let attempt = 0; attempt < 60 && candidates.length > 0; attempt++) {
    const c = candidates[rng.intBetween(0, candidates.length - 1)];
    if (c[2] - shape.extent < sLo || c[2] + shape.extent > sHi) continue;
    if (!levels.inLung(c, Math.min(R, 6) + 1)) continue;
    if (others.some((o) => Math.hypot(o.centre[0] - c[0], o.centre[1] - c[1], o.centre[2] - c[2]) < o.extent + shape.extent + 3)) continue;
    // Most of the nodule's surface inside the lung (juxtapleural nodules allowed, not through the wall).
    let inside = 0;
    const dirs = 14;
    for (let i = 0; i < dirs; i++) {
      const d = rng.unit3();
      if (levels.inLung([c[0] + d[0] * R, c[1] + d[1] * R, c[2] + d[2] * R])) inside++;
    }
    if (inside < dirs * 0.85) continue;
    return { ...shape, centre: [c[0], c[1], c[2]] };
  }
  return null;
}

/**
 * Shape value at a point: returns (surface - rho) in units of the smallest semi-axis, in mm
 * (positive inside), for the main body, and the best spicule coverage in mm (positive inside).
 */
function bodyDistance(n: Nodule, dx: number, dy: number, dz: number, scale: number): number {
  const [r0, r1, r2] = n.rot;
  const q0 = (dx * r0[0] + dy * r0[1] + dz * r0[2]) / (n.axes[0] * scale);
  const q1 = (dx * r1[0] + dy * r1[1] + dz * r1[2]) / (n.axes[1] * scale);
  const q2 = (dx * r2[0] + dy * r2[1] + dz * r2[2]) / (n.axes[2] * scale);
  const rho = Math.sqrt(q0 * q0 + q1 * q1 + q2 * q2);
  let surf = 1;
  if (rho > 1e-9) {
    const ux = dx / (rho || 1);
    const uy = dy / (rho || 1);
    const uz = dz / (rho || 1);
    const l = Math.hypot(ux, uy, uz) || 1;
    for (const lb of n.lobes) surf += lb.amp * Math.cos(lb.f * ((ux * lb.d[0] + uy * lb.d[1] + uz * lb.d[2]) / l) + lb.ph);
  }
  return (surf - rho) * Math.min(n.axes[0], n.axes[1], n.axes[2]) * scale;
}

function spiculeDistance(n: Nodule, dx: number, dy: number, dz: number, minWidth: number): number {
  let best = -Infinity;
  const R = Math.min(...n.axes) * 0.8;
  const Rmax = Math.max(...n.axes);
  for (const sp of n.spicules) {
    const a0 = R;
    const a1 = Rmax * (1 + sp.len);
    const t = dx * sp.d[0] + dy * sp.d[1] + dz * sp.d[2];
    if (t < a0 || t > a1) continue;
    const ex = dx - t * sp.d[0];
    const ey = dy - t * sp.d[1];
    const ez = dz - t * sp.d[2];
    const d = Math.sqrt(ex * ex + ey * ey + ez * ez);
    const w = Math.max(minWidth, sp.w * (1 - (0.7 * (t - a0)) / (a1 - a0)));
    best = Math.max(best, w - d);
  }
  return best;
}

const NODULE_ALLOW = mask(T.LUNG, T.PA_TREE, T.VEIN_TREE, T.AIRWAY, T.AIRWAY_WALL, T.NODULE);

/**
 * Paints the nodules crossing depth s; records, per nodule, the pixel indices of its true mask on
 * this slice (coverage >= 0.5) in `masks` when given.
 */
export function paintNodules(c: Canvas, model: { nodules: Nodule[] }, s: number, masks?: Map<number, number[]>): void {
  const inv = 1 / c.ps;
  const NODULE_L = T.NODULE;
  for (const n of model.nodules) {
    const k = n.contrast ?? 1;
    const dz = s - n.centre[2];
    if (Math.abs(dz) > n.extent) continue;
    const ext = Math.sqrt(Math.max(0, n.extent * n.extent - dz * dz)) + c.ps;
    const i0 = Math.max(0, Math.ceil((n.centre[0] - ext - c.x0) * inv));
    const i1 = Math.min(c.size - 1, Math.floor((n.centre[0] + ext - c.x0) * inv));
    const j0 = Math.max(0, Math.ceil((n.centre[1] - ext - c.y0) * inv));
    const j1 = Math.min(c.size - 1, Math.floor((n.centre[1] + ext - c.y0) * inv));
    const list: number[] = [];
    for (let j = j0; j <= j1; j++) {
      const dy = c.y0 + j * c.ps - n.centre[1];
      for (let i = i0; i <= i1; i++) {
        const p = j * c.size + i;
        if (!((NODULE_ALLOW >>> c.lab[p]) & 1)) continue;
        const dx = c.x0 + i * c.ps - n.centre[0];
        const db = bodyDistance(n, dx, dy, dz, 1);
        const dsp = n.spicules.length ? spiculeDistance(n, dx, dy, dz, 0) : -Infinity;
        const d = Math.max(db, dsp);
        let al = d * inv + 0.5;
        if (al <= 0) continue;
        if (al > 1) al = 1;
        const h = c.hu[p];
        // Contrast 1 (the default) paints exactly the nodule's own attenuation.
        const solidHu = k === 1 ? n.solidHu : h + k * (n.solidHu - h);
        const glassHu = k === 1 ? n.glassHu : h + k * (n.glassHu - h);
        let v: number;
        if (n.type === 'ground-glass') v = Math.max(h, h + (glassHu - h) * al);
        else if (n.type === 'solid') v = h + (solidHu - h) * al;
        else {
          const core = bodyDistance(n, dx, dy, dz, n.coreFrac);
          const ac = Math.max(0, Math.min(1, Math.max(core, dsp) * inv + 0.5));
          const g = Math.max(h, h + (glassHu - h) * al);
          v = g + (solidHu - g) * ac;
        }
        c.hu[p] = v;
        if (al >= 0.5) {
          c.lab[p] = NODULE_L;
          list.push(p);
        }
      }
    }
    if (masks && list.length) masks.set(n.id, list);
  }
}

/**
 * A reader's mask of a nodule on the slice at depth s (pixel centres, no partial volume), as a
 * full-size Uint8Array, or null when empty.
 */
export function readerMask(n: Nodule, view: ReaderView, s: number, size: number, ps: number, x0: number, y0: number): Uint8Array | null {
  const dz = s - n.centre[2];
  if (Math.abs(dz) > n.extent * Math.max(1, view.scale)) return null;
  const ext = n.extent * Math.max(1, view.scale) + ps;
  const cx = n.centre[0] + view.dx;
  const cy = n.centre[1] + view.dy;
  const i0 = Math.max(0, Math.ceil((cx - ext - x0) / ps));
  const i1 = Math.min(size - 1, Math.floor((cx + ext - x0) / ps));
  const j0 = Math.max(0, Math.ceil((cy - ext - y0) / ps));
  const j1 = Math.min(size - 1, Math.floor((cy + ext - y0) / ps));
  let out: Uint8Array | null = null;
  for (let j = j0; j <= j1; j++) {
    const dy = y0 + j * ps - cy;
    for (let i = i0; i <= i1; i++) {
      const dx = x0 + i * ps - cx;
      let inside = bodyDistance(n, dx, dy, dz, view.scale) >= 0;
      if (!inside && view.spicules && n.spicules.length) inside = spiculeDistance(n, dx, dy, dz, 0.5 * ps) >= 0;
      if (inside) {
        out ??= new Uint8Array(size * size);
        out[j * size + i] = 1;
      }
    }
  }
  return out;
}
