/**
 * A parametric chest: per-patient anatomy parameters, and the geometry of one axial level.
 *
 * Coordinates are millimetres relative to the body centre in the patient's LPS frame: X grows to
 * the patient's left, Y grows posterior. Depth `s` is millimetres below the lung apex (positive
 * going towards the feet) and `u = s / lungHeight` is the normalised level: 0 at the apex, about
 * 0.4 at the hila, 0.8-0.9 at the diaphragm domes, 1 at the lowest posterior lung recess.
 * Angles are atan2(Y, X): 0 = left lateral, pi/2 = posterior midline, -pi/2 = anterior midline.
 *
 * Everything here is a smooth function of (s, angle) with per-patient coefficients, so anatomy
 * varies smoothly along z and between patients, and the lung test used to grow vessel trees and
 * place nodules agrees with the painted slices.
 */
import type { Rng } from '../random';

export type Sex = 'M' | 'F';

/** A visual trait tied to a label for the bias probe: thicker subcutaneous fat and a wider body. */
export interface TraitEffect {
  /** Multiplies subcutaneous fat thickness. */
  fatScale: number;
  /** Multiplies the body width (depth unchanged): a different aspect ratio. */
  widthScale: number;
}

export interface Anatomy {
  sex: Sex;
  age: number;
  /** Body width and depth at mid-chest, mm. */
  width: number;
  depth: number;
  /** Fraction of the depth behind the body centre. */
  postFrac: number;
  harmonics: { k: number; amp: number; phase: number; zAmp: number; zFreq: number; zPhase: number }[];
  fat: number;
  fatLateral: number;
  fatAnterior: number;
  muscle: number;
  lungHeight: number;
  medScale: number;
  heartScale: number;
  heartAngle: number;
  vesselScale: number;
  spineScale: number;
  /** Bone mineral density factor (falls with age). */
  boneDensity: number;
  /** Calcification of costal cartilage, 0..1 (rises with age). */
  cartilageCalc: number;
  /** Depths (mm below apex) of the posterior ends of ribs 1..12 and the rib drop towards the front. */
  ribS: number[];
  ribDrop: number[];
  vertebraHeight: number;
  vertebraPhase: number;
  domeRight: number;
  domeLeft: number;
  carina: number;
  bifurcation: number;
  /** Contrast enhancement factor of this scan (bolus timing and dose). */
  contrast: number;
  /** Arm the contrast was injected into: that side's brachiocephalic vein is bright. */
  injectionRight: boolean;
  breast: { height: number; sigma: number; angle: number } | null;
  hu: { fat: number; muscle: number; lung: number; lungGradient: number; skin: number; liver: number; spleen: number };
  /** Pixel noise standard deviation, HU. */
  noise: number;
  /** Right ventricle enlargement (1 = normal), set for PE with RV strain. */
  rvScale: number;
}

export interface AnatomyInput {
  sex: Sex;
  age: number;
  trait: TraitEffect | null;
}

/** Draws a patient's anatomy. Size follows sex (men larger on average); density and calcification follow age. */
export function makeAnatomy(rng: Rng, input: AnatomyInput): Anatomy {
  const male = input.sex === 'M';
  const size = rng.gauss(1, 0.06);
  const bmi = rng.gauss(0, 1);
  let width = (male ? 335 : 305) * size * (1 + 0.05 * bmi);
  const depth = (male ? 225 : 205) * size * (1 + 0.06 * bmi) * rng.gauss(1, 0.04);
  let fat = Math.max(4, (male ? 12 : 15) * (1 + 0.4 * bmi) * rng.gauss(1, 0.1));
  if (input.trait) {
    fat *= input.trait.fatScale;
    width *= input.trait.widthScale;
  }
  const harmonics = [2, 3, 4, 5].map((k) => ({
    k,
    amp: rng.uniform(0, 0.018 / (k - 1)),
    phase: rng.uniform(0, 2 * Math.PI),
    zAmp: rng.uniform(0, 0.01),
    zFreq: rng.uniform(0.5, 2),
    zPhase: rng.uniform(0, 2 * Math.PI),
  }));
  const lungHeight = (male ? 255 : 232) * size * rng.gauss(1, 0.04);
  const vertebraHeight = lungHeight / 10.2;
  const ribS: number[] = [];
  const ribDrop: number[] = [];
  const rib1 = rng.gauss(-4, 3);
  for (let i = 0; i < 12; i++) {
    ribS.push(rib1 + i * vertebraHeight * 0.98);
    ribDrop.push((88 + 6 * Math.min(i, 7)) * size);
  }
  const age = input.age;
  return {
    sex: input.sex,
    age,
    width,
    depth,
    postFrac: rng.gauss(0.47, 0.015),
    harmonics,
    fat,
    fatLateral: rng.uniform(0.3, 0.8),
    fatAnterior: rng.uniform(-0.1, 0.3),
    muscle: (male ? 1.15 : 0.9) * rng.gauss(1, 0.08) * (1 - Math.max(0, age - 50) * 0.004),
    lungHeight,
    medScale: rng.gauss(1, 0.06),
    heartScale: rng.gauss(1, 0.06) * (male ? 1.05 : 0.95),
    heartAngle: rng.gauss(-0.68, 0.06),
    vesselScale: rng.gauss(1, 0.06) * (1 + Math.max(0, age - 40) * 0.003),
    spineScale: size * rng.gauss(1, 0.04),
    boneDensity: Math.max(0.55, 1.05 - Math.max(0, age - 35) * 0.008 * (male ? 0.8 : 1.2) + rng.gauss(0, 0.05)),
    cartilageCalc: Math.max(0, Math.min(1, (age - 35) / 50 + rng.gauss(0, 0.1))),
    ribS,
    ribDrop,
    vertebraHeight,
    vertebraPhase: rng.uniform(0, 1),
    domeRight: rng.gauss(0.8, 0.02),
    domeLeft: rng.gauss(0.86, 0.02),
    carina: rng.gauss(0.36, 0.015),
    bifurcation: rng.gauss(0.41, 0.015),
    contrast: rng.uniform(0.85, 1.25),
    injectionRight: rng.chance(0.85),
    breast: male ? null : { height: Math.max(10, rng.gauss(30, 8) * (1 + 0.3 * bmi)), sigma: rng.uniform(0.32, 0.42), angle: rng.uniform(0.45, 0.62) },
    hu: {
      fat: rng.gauss(-100, 6),
      muscle: rng.gauss(46, 4),
      lung: rng.gauss(-882, 12),
      lungGradient: rng.uniform(40, 70),
      skin: rng.gauss(30, 5),
      liver: rng.gauss(70, 6),
      spleen: rng.gauss(90, 8),
    },
    noise: rng.uniform(11, 18),
    rvScale: 1,
  };
}

/** Cosine interpolation through (u, value) knots; constant outside. */
export function knots(points: readonly (readonly [number, number])[], u: number): number {
  if (u <= points[0][0]) return points[0][1];
  for (let i = 1; i < points.length; i++) {
    const [u1, v1] = points[i];
    if (u <= u1) {
      const [u0, v0] = points[i - 1];
      const t = (u - u0) / (u1 - u0);
      const w = (1 - Math.cos(Math.PI * t)) / 2;
      return v0 + (v1 - v0) * w;
    }
  }
  return points[points.length - 1][1];
}

export function smoothstep(a: number, b: number, x: number): number {
  const t = Math.max(0, Math.min(1, (x - a) / (b - a)));
  return t * t * (3 - 2 * t);
}

/** Gaussian bump of angular distance (wrapped to [-pi, pi]). */
function bump(theta: number, centre: number, sigma: number): number {
  let d = theta - centre;
  d -= 2 * Math.PI * Math.round(d / (2 * Math.PI));
  return Math.exp(-(d * d) / (2 * sigma * sigma));
}

export interface Ellipse {
  cx: number;
  cy: number;
  ax: number;
  ay: number;
  /** Rotation of the ax axis from +X, radians. */
  rot: number;
}

export interface Circle {
  x: number;
  y: number;
  r: number;
}

/** The geometry of one axial level (scalar parameters; radial tables are built by the renderer). */
export interface Level {
  an: Anatomy;
  s: number;
  u: number;
  a: number;
  bAnt: number;
  bPost: number;
  /** Semi-axes of the rib cage's rounded outline. */
  cageA: number;
  cageBAnt: number;
  cageBPost: number;
  harm: { k: number; amp: number; phase: number }[];
  breastH: number;
  fat: number;
  fatLateral: number;
  fatAnterior: number;
  /** Paraspinal, scapular and pectoral muscle bulk at this level, mm. */
  para: number;
  scap: number;
  pec: number;
  lateral: number;
  /** Anterior cavity wall (Y), front of the vertebral body (Y), mediastinal depth. */
  yAnt: number;
  yPost: number;
  dm: number;
  /** Lateral extent of the cavity on each side (X of the right wall < 0 < X of the left wall). */
  xRight: number;
  xLeft: number;
  vertebra: Circle;
  /** Phase within the vertebral level, 0..1; near 0 or 1 the level cuts a disc. */
  vPhase: number;
  med: Ellipse;
  heart: Ellipse | null;
  /** Abdominal content under each dome: a disc in the cavity (null above the dome). */
  domeR: Circle | null;
  domeL: Circle | null;
  /** Below the lungs: the whole cavity is abdomen. */
  abdomen: boolean;
  /** Near the apex the lungs are confined to these discs. */
  apexR: Circle | null;
  apexL: Circle | null;
  noLungs: boolean;
  /** Lazily built cavity radius table (see cavAt). */
  cavTable?: Float32Array;
}

/** Scalar geometry of the level `s` mm below the lung apex. */
export function level(an: Anatomy, s: number): Level {
  const u = s / an.lungHeight;
  const wz = knots([[-0.2, 0.8], [0.05, 0.88], [0.45, 1], [0.9, 1], [1.3, 0.96]], u);
  const dz = knots([[-0.2, 0.72], [0.05, 0.84], [0.6, 1], [0.9, 1.02], [1.3, 1.06]], u);
  const a = (an.width / 2) * wz;
  const bAnt = an.depth * (1 - an.postFrac) * dz;
  const bPost = an.depth * an.postFrac * dz;
  const harm = an.harmonics.map((h) => ({ k: h.k, amp: h.amp + h.zAmp * Math.sin(h.zFreq * 2 * Math.PI * u + h.zPhase), phase: h.phase }));
  const breastH = an.breast ? an.breast.height * Math.max(0, 1 - ((u - 0.62) / 0.3) ** 2) : 0;
  const fatZ = 1 + 0.5 * smoothstep(0.7, 1.2, u);
  const upper = 1 - smoothstep(0.35, 0.7, u);
  const L: Level = {
    an,
    s,
    u,
    a,
    bAnt,
    bPost,
    cageA: 1e4,
    cageBAnt: 1e4,
    cageBPost: 1e4,
    harm,
    breastH,
    fat: an.fat * fatZ,
    fatLateral: an.fatLateral,
    fatAnterior: an.fatAnterior,
    para: 46 * an.muscle * knots([[0, 0.9], [0.5, 1], [1.1, 1.1]], u),
    scap: 26 * an.muscle * upper,
    pec: 15 * an.muscle * (1 - smoothstep(0.45, 0.75, u)) * smoothstep(-0.2, 0.1, u),
    lateral: 8 * an.muscle,
    yAnt: 0,
    yPost: 0,
    dm: 0,
    xRight: 0,
    xLeft: 0,
    vertebra: { x: 0, y: 0, r: 0 },
    vPhase: 0,
    med: { cx: 0, cy: 0, ax: 1, ay: 1, rot: 0 },
    heart: null,
    domeR: null,
    domeL: null,
    abdomen: u > 1.06,
    apexR: null,
    apexL: null,
    noLungs: u < 0.005 || u > 1.06,
  };
  // Cage: as wide and as deep as the muscle-bounded cavity laterally and anteriorly, posteriorly
  // limited to the depth reached just beside the spine.
  L.cageA = rCav(L, 0);
  L.cageBAnt = rCav(L, -Math.PI / 2) + 4;
  L.cageBPost = rCav(L, Math.PI / 2 - 0.5) * 1.13;
  const yCavPost = rCav(L, Math.PI / 2);
  const yCavAnt = -rCav(L, -Math.PI / 2);
  L.xLeft = rCav(L, 0);
  L.xRight = -rCav(L, Math.PI);
  const vr = (14 + 5 * smoothstep(0, 1.2, u)) * an.spineScale;
  L.vertebra = { x: 0, y: yCavPost - 0.55 * vr, r: vr };
  L.vPhase = (((s / an.vertebraHeight + an.vertebraPhase) % 1) + 1) % 1;
  L.yAnt = yCavAnt;
  L.yPost = L.vertebra.y - vr;
  L.dm = L.yPost - L.yAnt;
  const medW = an.medScale * knots([[0, 26], [0.18, 24], [0.26, 36], [0.34, 34], [0.46, 30], [0.6, 22], [1.0, 22], [1.2, 20]], u);
  L.med = { cx: 3, cy: (L.yAnt + L.yPost) / 2, ax: medW, ay: L.dm / 2 + 10, rot: 0 };
  const hp = 1 - ((u - 0.69) / 0.23) ** 2;
  if (hp > 0) {
    const p = Math.sqrt(hp);
    const hs = an.heartScale;
    L.heart = {
      cx: (24 + 40 * (u - 0.5)) * hs,
      cy: L.yAnt + 0.44 * L.dm,
      ax: 70 * hs * p,
      ay: 54 * hs * p,
      rot: an.heartAngle,
    };
  }
  const cavW = L.xLeft - L.xRight;
  const depthCav = yCavPost - yCavAnt;
  const dome = (top: number, sign: number): Circle | null => {
    if (u <= top) return null;
    const f = Math.sqrt(Math.min(1, (u - top) / (1.06 - top)));
    return { x: sign * 0.24 * cavW, y: yCavAnt + 0.42 * depthCav, r: 0.62 * cavW * f };
  };
  L.domeR = dome(an.domeRight, -1);
  L.domeL = dome(an.domeLeft, 1);
  if (u < 0.16) {
    const f = Math.sqrt(Math.max(0, u / 0.16));
    const r = 0.3 * cavW * f;
    L.apexR = { x: -0.22 * cavW, y: yCavAnt + 0.58 * depthCav, r };
    L.apexL = { x: 0.22 * cavW, y: yCavAnt + 0.58 * depthCav, r };
  }
  return L;
}

/** Angle-only factors of the radial functions (per patient), so slices can tabulate them once. */
export interface AngleFactors {
  /** Superellipse exponent and |cos|^n, |sin|^n. */
  n: number;
  cn: number;
  sn: number;
  /** |cos|^2.2, |sin|^2.2 (the rib cage's rounder outline). */
  c2: number;
  s2: number;
  /** cos(k * theta + phase) of each body harmonic. */
  harm: number[];
  /** Sum of the two breast-mound bumps. */
  breast: number;
  /** Fat thickness shape (lateral and anterior excess). */
  fatShape: number;
  para: number;
  scap: number;
  pec: number;
}

export function angleFactors(an: Anatomy, theta: number): AngleFactors {
  const c = Math.cos(theta);
  const sn = Math.sin(theta);
  const post = sn > 0;
  const n = post ? 3.4 : 2.3;
  const P = Math.PI;
  return {
    n,
    cn: Math.pow(Math.abs(c), n),
    sn: Math.pow(Math.abs(sn), n),
    c2: Math.pow(Math.abs(c), 2.2),
    s2: Math.pow(Math.abs(sn), 2.2),
    harm: an.harmonics.map((h) => Math.cos(h.k * theta + h.phase)),
    breast: bump(theta, -P / 2 - 0.72, 0.42) + bump(theta, -P / 2 + 0.72, 0.42),
    fatShape: (1 + an.fatLateral * c * c) * (sn < 0 ? 1 + an.fatAnterior * -sn : 1 - 0.3 * sn),
    para: bump(theta, P / 2, 0.27),
    scap: bump(theta, P / 2 - 0.75, 0.3) + bump(theta, P / 2 + 0.75, 0.3),
    pec: bump(theta, -P / 2 - 0.75, 0.32) + bump(theta, -P / 2 + 0.75, 0.32),
  };
}

/** Skin thickness, mm. */
export const SKIN = 1.8;

export interface Radii {
  /** Body outline. */
  body: number;
  /** Inner boundary of the subcutaneous fat (outer boundary of the muscle). */
  fatIn: number;
  /** Thoracic cavity (inner chest wall). */
  cav: number;
}

/** The three nested outlines at one angle of a level. */
export function radii(L: Level, f: AngleFactors, out: Radii = { body: 0, fatIn: 0, cav: 0 }): Radii {
  const b = f.n > 3 ? L.bPost : L.bAnt;
  const r0 = Math.pow(f.cn * Math.pow(L.a, -f.n) + f.sn * Math.pow(b, -f.n), -1 / f.n);
  let h = 1;
  for (let i = 0; i < f.harm.length; i++) h += L.harm[i].amp * f.harm[i];
  const mound = L.breastH * f.breast;
  out.body = r0 * h + mound;
  out.fatIn = out.body - SKIN - L.fat * f.fatShape - mound;
  // The rib cage is rounder than the body surface (which flattens on the table): the cavity is
  // also bounded by a rounded superellipse, the difference being back muscle.
  const rc = Math.pow(f.c2 * Math.pow(L.cageA, -2.2) + f.s2 * Math.pow(f.n > 3 ? L.cageBPost : L.cageBAnt, -2.2), -1 / 2.2);
  out.cav = Math.max(5, Math.min(rc, out.fatIn - (L.lateral + L.para * f.para + L.scap * f.scap + L.pec * f.pec)));
  return out;
}

const scratch: Radii = { body: 0, fatIn: 0, cav: 0 };
/** Body outline radius at angle theta. */
export function rBody(L: Level, theta: number): number {
  return radii(L, angleFactors(L.an, theta), scratch).body;
}
/** Inner boundary of the subcutaneous fat at theta. */
export function rFatIn(L: Level, theta: number): number {
  return radii(L, angleFactors(L.an, theta), scratch).fatIn;
}
/** Thoracic cavity radius at theta. */
export function rCav(L: Level, theta: number): number {
  return radii(L, angleFactors(L.an, theta), scratch).cav;
}

function inEllipse(e: Ellipse, x: number, y: number, grow = 0): boolean {
  const dx = x - e.cx;
  const dy = y - e.cy;
  const c = Math.cos(e.rot);
  const s = Math.sin(e.rot);
  const p = (dx * c + dy * s) / (e.ax + grow);
  const q = (-dx * s + dy * c) / (e.ay + grow);
  return p * p + q * q <= 1;
}

function inCircle(c: Circle | null, x: number, y: number, grow = 0): boolean {
  if (!c) return false;
  const dx = x - c.x;
  const dy = y - c.y;
  return dx * dx + dy * dy <= (c.r + grow) * (c.r + grow);
}

/** atan2 approximation (max error about 0.0015 rad), much faster than Math.atan2. */
export function fastAtan2(y: number, x: number): number {
  const ax = Math.abs(x);
  const ay = Math.abs(y);
  if (ax === 0 && ay === 0) return 0;
  const swap = ay > ax;
  const z = swap ? ax / ay : ay / ax;
  const z2 = z * z;
  let t = z * (0.99997726 + z2 * (-0.33262347 + z2 * (0.19354346 + z2 * (-0.11643287 + z2 * (0.05265332 - 0.0117212 * z2)))));
  if (swap) t = Math.PI / 2 - t;
  if (x < 0) t = Math.PI - t;
  return y < 0 ? -t : t;
}

const CAV_BINS = 96;
const factorTables = new WeakMap<Anatomy, AngleFactors[]>();
/** Cavity radius at theta from a per-level table (linear interpolation), for fast lung tests. */
export function cavAt(L: Level, theta: number): number {
  let t = L.cavTable;
  if (!t) {
    let f = factorTables.get(L.an);
    if (!f) {
      f = Array.from({ length: CAV_BINS + 1 }, (_, i) => angleFactors(L.an, -Math.PI + (2 * Math.PI * i) / CAV_BINS));
      factorTables.set(L.an, f);
    }
    t = new Float32Array(CAV_BINS + 1);
    for (let i = 0; i <= CAV_BINS; i++) t[i] = radii(L, f[i], scratch).cav;
    L.cavTable = t;
  }
  const f = ((theta + Math.PI) / (2 * Math.PI)) * CAV_BINS;
  const i = Math.min(CAV_BINS - 1, Math.max(0, Math.floor(f)));
  const w = f - i;
  return t[i] * (1 - w) + t[i + 1] * w;
}

/** Margin of non-lung tissue kept between the lungs and the mediastinum, heart and spine, mm. */
export const PLEURA = 2;

/**
 * Whether (X, Y) at this level is lung parenchyma. The renderer paints the same regions, so
 * points that pass are lung in the slices. `margin` asks for a point at least that far inside.
 */
export function inLung(L: Level, x: number, y: number, margin = 0): boolean {
  if (L.noLungs) return false;
  const r = Math.sqrt(x * x + y * y);
  if (r > cavAt(L, fastAtan2(y, x)) - PLEURA - margin) return false;
  if (L.apexR && !inCircle(x < 0 ? L.apexR : L.apexL, x, y, -margin)) return false;
  if (inEllipse(L.med, x, y, PLEURA + margin)) return false;
  if (L.heart && inEllipse(L.heart, x, y, 4 + PLEURA + margin)) return false;
  if (inCircle(L.vertebra, x, y, 6 + PLEURA + margin)) return false;
  if (x < 0 ? inCircle(L.domeR, x, y, PLEURA + margin) : inCircle(L.domeL, x, y, PLEURA + margin)) return false;
  return true;
}

/** Central pulmonary arteries at this level as 2D capsules [x0, y0, x1, y1, r]. */
export function centralArteries(an: Anatomy, L: Level): [number, number, number, number, number][] {
  const u = L.u;
  const ub = an.bifurcation;
  const ya = L.yAnt;
  const Dm = L.dm;
  const vs = an.vesselScale;
  const out: [number, number, number, number, number][] = [];
  const [lx, ly] = hilumArtery(L, 1);
  const [rx, ry] = hilumArtery(L, -1);
  if (u > ub - 0.035 && u < ub + 0.015) out.push([16, ya + 0.36 * Dm, lx, ly, 10.5 * vs]);
  if (u > ub - 0.005 && u < ub + 0.045) {
    out.push([12, ya + 0.38 * Dm, -2, ya + 0.56 * Dm, 10 * vs]);
    out.push([-2, ya + 0.56 * Dm, rx, ry, 10 * vs]);
  }
  return out;
}

/** Where the lung artery tree of one side starts (X, Y at this level's mediastinum). */
export function hilumArtery(L: Level, side: 1 | -1): [number, number] {
  return [side * (L.med.ax + 14), L.yAnt + 0.56 * L.dm];
}

/** Where the pulmonary veins of each side leave the lung, at the level of the left atrium. */
export function veinRoots(L: Level): [number, number][] {
  return [
    [-(L.med.ax + 10), L.yAnt + 0.66 * L.dm],
    [L.med.ax + 12, L.yAnt + 0.66 * L.dm],
  ];
}

