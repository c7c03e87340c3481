/**
 * Simulated LIDC readers: 1-4 radiologists per series, each marking most nodules (small ones are
 * missed more often, every nodule is marked by at least one reader), with an outline that differs
 * slightly from the truth (scale, shift, whether spicules are included) and characteristics within
 * one point of the truth. Nodules whose outline would be empty are marked the LIDC way for
 * nodules < 3 mm: one point, no characteristics.
 */
import type { Characteristics, Nodule, ReaderView } from './nodules';
import { readerMask } from './nodules';
import type { LidcNoduleOut, LidcReaderOut, LidcRoiOut } from './lidc-xml';
import { traceContours } from './lidc-xml';
import type { PatientModel } from './model';
import { Rng } from '../random';

export interface SliceRef {
  sopUid: string;
  z: number;
}

/** Which reader marked which nodule, under which reader-local id (for the manifest). */
export interface ReaderMark {
  reader: number;
  radiologistId: string;
  noduleId: string;
  rois: number;
  small: boolean;
}

export interface ReadersResult {
  readers: LidcReaderOut[];
  /** Per nodule id (1-based), the readers that marked it. */
  marks: Map<number, ReaderMark[]>;
}

const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

function jitter(rng: Rng, c: Characteristics): Characteristics {
  const j = (v: number, lo: number, hi: number) => clamp(v + (rng.chance(0.35) ? rng.pick([-1, 1]) : 0), lo, hi);
  return {
    subtlety: j(c.subtlety, 1, 5),
    internalStructure: c.internalStructure,
    calcification: c.calcification,
    sphericity: j(c.sphericity, 1, 5),
    margin: j(c.margin, 1, 5),
    lobulation: j(c.lobulation, 1, 5),
    spiculation: j(c.spiculation, 1, 5),
    texture: j(c.texture, 1, 5),
    malignancy: j(c.malignancy, 1, 5),
  };
}

export function simulateReaders(model: PatientModel, slices: SliceRef[], readers: number, seed: number, key: string): ReadersResult {
  const rng = Rng.keyed(seed, `${key}/readers`);
  const g = model.scan;
  const marks = new Map<number, ReaderMark[]>();
  // Who marks what: detection falls for small nodules; at least one reader per nodule.
  const detected: boolean[][] = model.nodules.map((n) => {
    const p = Math.min(1, 0.55 + (0.45 * (n.diameter - 3)) / 7);
    const row = Array.from({ length: readers }, () => rng.chance(p));
    if (!row.some(Boolean)) row[rng.intBetween(0, readers - 1)] = true;
    return row;
  });
  const out: LidcReaderOut[] = [];
  for (let r = 0; r < readers; r++) {
    const radiologistId = String(rng.intBetween(-2147483647, 2147483647));
    const order = rng.shuffle(model.nodules.filter((_, i) => detected[i][r]));
    const nodules: LidcNoduleOut[] = [];
    order.forEach((n: Nodule, k: number) => {
      const glass = n.type !== 'solid';
      const view: ReaderView = {
        scale: 1 + rng.gauss(0, glass ? 0.08 : 0.05),
        dx: rng.gauss(0, 0.3 * g.ps),
        dy: rng.gauss(0, 0.3 * g.ps),
        spicules: rng.chance(0.5),
      };
      const id = `Nodule ${String(k + 1).padStart(3, '0')}`;
      const rois: LidcRoiOut[] = [];
      for (let s = 0; s < g.slices; s++) {
        const depth = g.s0 + s * g.thickness;
        const m = readerMask(n, view, depth, g.size, g.ps, g.x0, g.y0);
        if (!m) continue;
        for (const pts of traceContours(m, g.size, g.size)) {
          // Readers skip specks of one or two pixels at the ends of a nodule now and then.
          if (pts.length <= 3 && rng.chance(0.5)) continue;
          rois.push({ z: slices[s].z, sopUid: slices[s].sopUid, inclusion: true, points: pts });
        }
      }
      let small = false;
      if (rois.length === 0) {
        // Too small to outline: one point at the centre, on the nearest slice.
        small = true;
        const s = Math.max(0, Math.min(g.slices - 1, Math.round((n.centre[2] - g.s0) / g.thickness)));
        const x = Math.round((n.centre[0] - g.x0) / g.ps);
        const y = Math.round((n.centre[1] - g.y0) / g.ps);
        rois.push({ z: slices[s].z, sopUid: slices[s].sopUid, inclusion: true, points: [[x, y]] });
      }
      nodules.push({ id, characteristics: small ? undefined : jitter(rng, n.characteristics), rois });
      const list = marks.get(n.id) ?? [];
      list.push({ reader: r + 1, radiologistId, noduleId: id, rois: rois.length, small });
      marks.set(n.id, list);
    });
    out.push({ radiologistId, nodules });
  }
  return { readers: out, marks };
}
