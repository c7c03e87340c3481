/**
 * One synthetic study of one patient, ready to render: anatomy, scan geometry (field of view,
 * pixel spacing, slice positions), vessel trees with airways, nodules and emboli, and the per-slice
 * noise offsets. Built deterministically from the cohort seed and the patient and study numbers.
 */
import { type Anatomy, hilumArtery, type Level, level, makeAnatomy, type Sex, type TraitEffect, veinRoots } from './anatomy';
import { drawEmboli, type Embolus } from './embolus';
import { drawNodule, type Nodule, placeNodule } from './nodules';
import { polarMap, type PolarMap } from './render';
import { Rng } from '../random';
import { bucketSegments, growTree, LevelCache, type P3, sampleLung, type TreeSegment } from './vessels';

export interface ScanOptions {
  slices: number;
  size: number;
  /** Slice thickness = spacing between slices, mm. */
  thickness: number;
  /** Pixel spacing in mm, or 'auto' to fit the field of view to the body. */
  pixelSpacing: number | 'auto';
}

export interface ScanGeometry {
  size: number;
  /** Pixel spacing, mm (square pixels). */
  ps: number;
  slices: number;
  thickness: number;
  /** Body-relative X, Y of the centre of pixel (0, 0). */
  x0: number;
  y0: number;
  /** Depth below the lung apex of slice 0 (slice k is at s0 + k * thickness). */
  s0: number;
  /** Body centre in patient coordinates (LPS, mm). */
  bx: number;
  by: number;
  /** Patient z of slice 0; slice k is at zTop - k * thickness (instance 1 is the most superior). */
  zTop: number;
}

export interface PeInput {
  present: boolean;
  /** Chronic thrombus (eccentric, wall-adherent). */
  chronic: boolean;
  /** Right ventricle enlarged (RV/LV >= 1). */
  rvStrain: boolean;
}

export interface ModelInput {
  seed: number;
  /** 1-based patient and study numbers. */
  patient: number;
  study: number;
  sex: Sex;
  age: number;
  trait: TraitEffect | null;
  scan: ScanOptions;
  nodules: number;
  /** Nodule diameter range, mm (absent: 3-30). */
  noduleSize?: [number, number];
  /** Nodule contrast against the tissue it replaces (absent: 1, see Nodule.contrast). */
  noduleContrast?: number;
  pe: PeInput;
}

export interface PatientModel {
  input: ModelInput;
  anatomy: Anatomy;
  scan: ScanGeometry;
  polar: PolarMap;
  tableLevel: Level;
  segments: TreeSegment[];
  buckets: number[][];
  hu: { artery: number; vein: number };
  nodules: Nodule[];
  emboli: Embolus[];
  noiseOffsets: [number, number][];
}

/** Patient coordinates (LPS mm) of a body-relative point. */
export function toPatient(m: PatientModel, p: readonly number[]): [number, number, number] {
  const g = m.scan;
  return [g.bx + p[0], g.by + p[1], g.zTop - (p[2] - g.s0)];
}

/** Depth s of slice k. */
export function sliceDepth(m: PatientModel, k: number): number {
  return m.scan.s0 + k * m.scan.thickness;
}

/** ImagePositionPatient of slice k. */
export function slicePosition(m: PatientModel, k: number): [number, number, number] {
  const g = m.scan;
  return [g.bx + g.x0, g.by + g.y0, g.zTop - k * g.thickness];
}

const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;

export function buildModel(input: ModelInput): PatientModel {
  const key = `p${input.patient}`;
  const skey = `${key}/s${input.study}`;
  const anatomy = makeAnatomy(Rng.keyed(input.seed, `${key}/anatomy`), { sex: input.sex, age: input.age, trait: input.trait });
  const studyRng = Rng.keyed(input.seed, `${skey}/scan`);
  if (input.study > 1) {
    anatomy.contrast *= studyRng.uniform(0.9, 1.1);
    anatomy.noise = studyRng.uniform(11, 18);
  }
  if (input.pe.present && input.pe.rvStrain) anatomy.rvScale = 1.35;
  const o = input.scan;
  // Scan range: the whole chest when the stack is long enough, else centred a little below the hila.
  const scanRng = Rng.keyed(input.seed, `${key}/range`);
  const extent = o.slices * o.thickness;
  const Lh = anatomy.lungHeight;
  const s0 = extent >= Lh + 40 ? -25 + scanRng.uniform(-5, 5) : 0.56 * Lh + scanRng.uniform(-8, 8) - extent / 2 + o.thickness / 2;
  const fov = o.pixelSpacing === 'auto' ? Math.min(500, Math.max(300, Math.ceil((anatomy.width * 1.12 + 36) / 10) * 10)) : o.pixelSpacing * o.size;
  const ps = o.pixelSpacing === 'auto' ? round(fov / o.size, 6) : o.pixelSpacing;
  const xc = studyRng.uniform(-8, 8);
  const yc = anatomy.depth * 0.1 + 12 + studyRng.uniform(-4, 4);
  const x0 = xc - (ps * o.size) / 2 + ps / 2;
  const y0 = yc - (ps * o.size) / 2 + ps / 2;
  const scan: ScanGeometry = {
    size: o.size,
    ps,
    slices: o.slices,
    thickness: o.thickness,
    x0,
    y0,
    s0,
    bx: round(-xc, 3),
    by: round(-yc + studyRng.uniform(-20, 20), 3),
    zTop: Math.round(studyRng.uniform(-60, 40) * 2) / 2,
  };
  const levels = new LevelCache(anatomy);
  // Vessel trees: arteries from the hila at the bifurcation level, veins towards the left atrium.
  const treeRng = Rng.keyed(input.seed, `${key}/vessels`);
  const segments: TreeSegment[] = [];
  const vs = anatomy.vesselScale;
  for (const side of [-1, 1] as const) {
    const sa = (anatomy.bifurcation + (side < 0 ? 0.025 : -0.005)) * Lh;
    const La = levels.at(sa);
    const [ax, ay] = hilumArtery(La, side);
    const targets = sampleLung(treeRng, levels, anatomy, side, side < 0 ? 700 : 620);
    segments.push(...growTree(treeRng, { kind: 'artery', side, root: [ax, ay, sa], rootRadius: 7.5 * vs, targets, airwaysFrom: 1.4 }));
    const sv = 0.56 * Lh;
    const Lv = levels.at(sv);
    const vr = veinRoots(Lv)[side < 0 ? 0 : 1];
    const vt = sampleLung(treeRng, levels, anatomy, side, side < 0 ? 560 : 500);
    segments.push(...growTree(treeRng, { kind: 'vein', side, root: [vr[0], vr[1], sv], rootRadius: 6.5 * vs, targets: vt, airwaysFrom: 0 }));
  }
  const sLo = s0 - o.thickness / 2;
  const sHi = s0 + (o.slices - 0.5) * o.thickness;
  // Nodules, the same in every study of the patient (a follow-up sees them grown a little).
  const nodRng = Rng.keyed(input.seed, `${key}/nodules`);
  const candidates = [...sampleLung(nodRng, levels, anatomy, -1, 150, 3), ...sampleLung(nodRng, levels, anatomy, 1, 150, 3)].filter(
    (p) => p[2] > sLo + 2 && p[2] < sHi - 2,
  );
  const nodules: Nodule[] = [];
  for (let i = 0; i < input.nodules; i++) {
    const shape = drawNodule(nodRng, nodules.length + 1, input.noduleSize);
    if (input.noduleContrast !== undefined && input.noduleContrast !== 1) shape.contrast = input.noduleContrast;
    const placed = placeNodule(nodRng, levels, shape, candidates, nodules, sLo + 1, sHi - 1);
    if (placed) nodules.push(placed);
  }
  if (input.study > 1) {
    const g = Rng.keyed(input.seed, `${skey}/growth`);
    for (const n of nodules) {
      const f = g.uniform(0.95, 1.3);
      n.axes = [n.axes[0] * f, n.axes[1] * f, n.axes[2] * f];
      n.diameter *= f;
      n.extent *= f;
    }
  }
  const peRng = Rng.keyed(input.seed, `${skey}/pe`);
  const emboli = input.pe.present ? drawEmboli(peRng, anatomy, levels, segments, sLo, sHi, input.pe.chronic) : [];
  const noiseRng = Rng.keyed(input.seed, `${skey}/noise`);
  const noiseOffsets: [number, number][] = Array.from({ length: o.slices }, () => [noiseRng.intBetween(0, 4095), noiseRng.intBetween(0, 4095)]);
  return {
    input,
    anatomy,
    scan,
    polar: polarMap(anatomy, o.size, ps, x0, y0),
    tableLevel: level(anatomy, 0.6 * Lh),
    segments,
    buckets: bucketSegments(segments, o.slices, s0, o.thickness),
    hu: { artery: 330 * anatomy.contrast, vein: 170 * anatomy.contrast },
    nodules,
    emboli,
    noiseOffsets,
  };
}

export type { P3 };
