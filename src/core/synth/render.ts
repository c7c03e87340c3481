/**
 * Renders one axial slice of a synthetic patient: tissue labels and Hounsfield units, then a
 * partial-volume blur and slightly correlated Gaussian noise, then stored int16 values
 * (HU + 1024, i.e. RescaleIntercept -1024, slope 1).
 */
import { type Anatomy, angleFactors, centralArteries, fastAtan2, type Level, level, PLEURA, rBody, SKIN, smoothstep, veinRoots } from './anatomy';
import { T } from './labels';
import { type Canvas, ANY, mask, paintCapsule, paintCircle, paintEllipse, paintTube } from './paint';
import type { NoiseField } from './noise';
import type { PatientModel } from './model';
import { paintNodules } from './nodules';
import { paintEmboli } from './embolus';

/** Per-patient lookup of every pixel's polar position around the body centre, and the angle factors of the outlines per angle bin. */
export interface PolarMap {
  bins: number;
  angle: Uint16Array;
  radius: Float32Array;
  factors: AngleTable;
}

export interface AngleTable {
  n: Float32Array;
  cn: Float32Array;
  sn: Float32Array;
  c2: Float32Array;
  s2: Float32Array;
  harm: Float32Array[];
  breast: Float32Array;
  fatShape: Float32Array;
  para: Float32Array;
  scap: Float32Array;
  pec: Float32Array;
}

function angleTable(an: Anatomy, bins: number): AngleTable {
  const f = () => new Float32Array(bins);
  const t: AngleTable = { n: f(), cn: f(), sn: f(), c2: f(), s2: f(), harm: an.harmonics.map(f), breast: f(), fatShape: f(), para: f(), scap: f(), pec: f() };
  for (let a = 0; a < bins; a++) {
    const v = angleFactors(an, theta(a, bins));
    t.n[a] = v.n;
    t.cn[a] = v.cn;
    t.sn[a] = v.sn;
    t.c2[a] = v.c2;
    t.s2[a] = v.s2;
    v.harm.forEach((h, i) => (t.harm[i][a] = h));
    t.breast[a] = v.breast;
    t.fatShape[a] = v.fatShape;
    t.para[a] = v.para;
    t.scap[a] = v.scap;
    t.pec[a] = v.pec;
  }
  return t;
}

export function polarMap(an: Anatomy, size: number, ps: number, x0: number, y0: number): PolarMap {
  const bins = Math.max(512, 4 * size);
  const angle = new Uint16Array(size * size);
  const radius = new Float32Array(size * size);
  for (let j = 0; j < size; j++) {
    const y = y0 + j * ps;
    for (let i = 0; i < size; i++) {
      const x = x0 + i * ps;
      const th = fastAtan2(y, x);
      angle[j * size + i] = Math.round(((th + Math.PI) / (2 * Math.PI)) * bins) % bins;
      radius[j * size + i] = Math.sqrt(x * x + y * y);
    }
  }
  return { bins, angle, radius, factors: angleTable(an, bins) };
}

const theta = (a: number, bins: number) => -Math.PI + (2 * Math.PI * a) / bins;

export interface SliceOutput {
  /** Stored values (HU + 1024), row-major. */
  stored: Int16Array;
  /** Tissue label per pixel (see labels.ts). */
  labels: Uint8Array;
  /** Noise-free HU before blur and quantisation (for tests and previews). */
  hu: Float32Array;
  /** Per nodule id: pixel indices of its true mask on this slice (coverage >= 0.5). */
  nodules: Map<number, number[]>;
  /** Ids of the emboli with at least one labelled pixel on this slice. */
  emboli: number[];
}

const CAVITY = mask(T.LUNG, T.MED_FAT, T.LIVER, T.SOFT);
const IN_MED = mask(T.LUNG, T.MED_FAT, T.LIVER, T.SOFT, T.MYOCARDIUM);

interface RadialTables {
  rb: Float32Array;
  rf: Float32Array;
  rc: Float32Array;
  ribR: Float32Array;
  ribH: Float32Array;
  ribCart: Uint8Array;
  scapR: Float32Array;
  gland: Float32Array;
  pecPlane: Float32Array;
}
let radialScratch: RadialTables | null = null;

/** Per-angle tables of one slice, reused between slices (the optional ones cleared). */
function radial(B: number): RadialTables {
  if (!radialScratch || radialScratch.rb.length !== B) {
    const f = () => new Float32Array(B);
    radialScratch = { rb: f(), rf: f(), rc: f(), ribR: f(), ribH: f(), ribCart: new Uint8Array(B), scapR: f(), gland: f(), pecPlane: f() };
  }
  const t = radialScratch;
  t.ribR.fill(0);
  t.ribH.fill(0);
  t.ribCart.fill(0);
  t.scapR.fill(0);
  t.gland.fill(0);
  t.pecPlane.fill(0);
  return t;
}

/** Body wall: skin, fat, breast, muscle with ribs, scapulae; cavity as lung or abdomen. */
function paintBody(c: Canvas, an: Anatomy, L: Level, pm: PolarMap): void {
  const B = pm.bins;
  const at = pm.factors;
  const sc = radial(B);
  const { rb, rf, rc, ribR, ribH, ribCart, scapR, gland, pecPlane } = sc;
  {
    const aA = Math.pow(L.a, -2.3);
    const bA = Math.pow(L.bAnt, -2.3);
    const aP = Math.pow(L.a, -3.4);
    const bP = Math.pow(L.bPost, -3.4);
    const cA = Math.pow(L.cageA, -2.2);
    const cAn = Math.pow(L.cageBAnt, -2.2);
    const cP = Math.pow(L.cageBPost, -2.2);
    const amps = L.harm.map((h) => h.amp);
    for (let a = 0; a < B; a++) {
      const post = at.n[a] > 3;
      const n = at.n[a];
      const r0 = Math.pow(at.cn[a] * (post ? aP : aA) + at.sn[a] * (post ? bP : bA), -1 / n);
      let h = 1;
      for (let i = 0; i < amps.length; i++) h += amps[i] * at.harm[i][a];
      const mound = L.breastH * at.breast[a];
      rb[a] = r0 * h + mound;
      rf[a] = rb[a] - SKIN - L.fat * at.fatShape[a] - mound;
      const cage = Math.pow(at.c2[a] * cA + at.s2[a] * (post ? cP : cAn), -1 / 2.2);
      rc[a] = Math.max(5, Math.min(cage, rf[a] - (L.lateral + L.para * at.para[a] + L.scap * at.scap[a] + L.pec * at.pec[a])));
    }
  }
  // Breast: fibroglandular cone behind the nipple, within the mound.
  if (L.breastH > 6 && an.breast) {
    for (let a = 0; a < B; a++) {
      const th = theta(a, B);
      const d1 = Math.abs(th - (-Math.PI / 2 - 0.72));
      const d2 = Math.abs(th - (-Math.PI / 2 + 0.72));
      const d = Math.min(d1, d2);
      if (d < 0.34) gland[a] = rf[a] + L.breastH * 0.55 * (1 - d / 0.34);
    }
  }
  // Fat plane between pectoralis major and minor.
  if (L.pec > 6) {
    for (let a = 0; a < B; a++) {
      const th = theta(a, B);
      for (const ctr of [-Math.PI / 2 - 0.75, -Math.PI / 2 + 0.75]) {
        const d = Math.abs(th - ctr);
        if (d < 0.45) pecPlane[a] = rf[a] - L.pec * 0.55 * Math.exp(-(d * d) / (2 * 0.2 * 0.2));
      }
    }
  }
  // Ribs: each descends from its posterior end towards the front; cut where it crosses this level.
  for (let i = 0; i < 12; i++) {
    const s0 = an.ribS[i];
    const drop = an.ribDrop[i];
    const half = 4.5;
    const end = i >= 10 ? 0.55 : i === 0 ? 0.75 : 1;
    const lo = (L.s - half - s0) / drop;
    const hi = (L.s + half - s0) / drop;
    if (hi < 0 || lo > end) continue;
    const f0 = Math.pow(Math.max(0, lo), 1 / 1.6);
    const f1 = Math.min(end, Math.pow(Math.max(0, hi), 1 / 1.6));
    for (const side of [1, -1]) {
      for (let k = 0; k <= 40; k++) {
        const f = f0 + ((f1 - f0) * k) / 40;
        const thL = 1.2 - f * (1.2 + 1.33); // from 69 degrees posterior to -76 degrees anterior
        const th = side > 0 ? thL : Math.PI - thL;
        let a = Math.round(((th + Math.PI) / (2 * Math.PI)) * B) % B;
        if (a < 0) a += B;
        const spread = 2;
        for (let q = -spread; q <= spread; q++) {
          const aa = (a + q + B) % B;
          ribR[aa] = rc[aa] + 4.5 + 1.5 * (1 - f);
          ribH[aa] = f < 0.15 ? 4.8 : 3.6;
          ribCart[aa] = f > 0.8 ? 1 : 0;
        }
      }
    }
  }
  // Scapulae: posterolateral bony plates in the upper chest.
  if (L.scap > 4 && L.u < 0.5) {
    const w = 0.42 * (1 - smoothstep(0.1, 0.5, L.u)) + 0.1;
    for (const ctr of [Math.PI / 2 - 0.78, Math.PI / 2 + 0.78]) {
      for (let a = 0; a < B; a++) {
        let d = theta(a, B) - ctr;
        d -= 2 * Math.PI * Math.round(d / (2 * Math.PI));
        if (Math.abs(d) < w) scapR[a] = rc[a] + 20 + 0.6 * L.scap * (1 - Math.abs(d) / w);
      }
    }
  }

  const { angle, radius } = pm;
  const { lab, hu, size } = c;
  const fatHU = an.hu.fat;
  const musHU = an.hu.muscle;
  const skinHU = an.hu.skin;
  const cortex = 780 * an.boneDensity;
  const marrow = 240 * an.boneDensity;
  const cart = 110 + 250 * an.cartilageCalc;
  const lungA = an.hu.lung - an.hu.lungGradient * 0.5;
  const lungB = an.hu.lungGradient / Math.max(50, L.dm + 60);
  const yMid = (L.yAnt + L.yPost) / 2;
  const liver = an.hu.liver;
  let maxR = 0;
  for (let a = 0; a < B; a++) if (rb[a] > maxR) maxR = rb[a];
  const i0 = Math.max(0, Math.floor((-maxR - c.x0) / c.ps));
  const i1 = Math.min(size - 1, Math.ceil((maxR - c.x0) / c.ps));
  const j0 = Math.max(0, Math.floor((-maxR - c.y0) / c.ps));
  const j1 = Math.min(size - 1, Math.ceil((maxR - c.y0) / c.ps));
  // Imported bindings are getters under some loaders: read them once, outside the pixel loop.
  const SKIN_L = T.SKIN;
  const FAT_L = T.FAT;
  const MUSCLE_L = T.MUSCLE;
  const LUNG_L = T.LUNG;
  const BREAST_L = T.BREAST;
  const CART_L = T.CARTILAGE;
  const CORTEX_L = T.BONE_CORTEX;
  const MARROW_L = T.BONE_MARROW;
  const LIVER_L = T.LIVER;
  const SOFT_L = T.SOFT;
  const skinMm = SKIN;
  const pleura = PLEURA;
  const noLungs = L.noLungs;
  const abdomen = L.abdomen;
  const softHU = musHU - 20;
  for (let j = j0; j <= j1; j++) {
    const lungHU = lungA + lungB * (c.y0 + j * c.ps - yMid + (L.dm + 60) / 2);
    for (let p = j * size + i0, pe = j * size + i1; p <= pe; p++) {
      const a = angle[p];
      const r = radius[p];
      const b = rb[a];
      if (r > b) continue;
      if (r > b - skinMm) {
        lab[p] = SKIN_L;
        hu[p] = skinHU;
      } else if (r > rf[a]) {
        if (r < gland[a]) {
          lab[p] = BREAST_L;
          hu[p] = 20;
        } else {
          lab[p] = FAT_L;
          hu[p] = fatHU;
        }
      } else if (r > rc[a]) {
        const rr = ribR[a];
        const dr = r > rr ? r - rr : rr - r;
        if (rr > 0 && dr < ribH[a]) {
          if (ribCart[a]) {
            lab[p] = CART_L;
            hu[p] = cart;
          } else if (dr > ribH[a] - 1.3) {
            lab[p] = CORTEX_L;
            hu[p] = cortex;
          } else {
            lab[p] = MARROW_L;
            hu[p] = marrow;
          }
        } else if (scapR[a] > 0 && Math.abs(r - scapR[a]) < 2.2) {
          lab[p] = CORTEX_L;
          hu[p] = cortex * 0.9;
        } else if (pecPlane[a] > 0 && Math.abs(r - pecPlane[a]) < 1.2) {
          lab[p] = FAT_L;
          hu[p] = fatHU;
        } else {
          lab[p] = MUSCLE_L;
          hu[p] = musHU;
        }
      } else if (abdomen) {
        lab[p] = LIVER_L;
        hu[p] = liver;
      } else if (r > rc[a] - pleura) {
        lab[p] = MUSCLE_L;
        hu[p] = musHU - 10;
      } else if (noLungs) {
        lab[p] = SOFT_L;
        hu[p] = softHU;
      } else {
        lab[p] = LUNG_L;
        hu[p] = lungHU;
      }
    }
  }
  // Near the apex the lungs are two small domes; the rest of the cavity is neck soft tissue.
  if (L.apexR && L.apexL) {
    const LUNG_A = T.LUNG;
    const SOFT_A = T.SOFT;
    for (let j = 0; j < size; j++) {
      const y = c.y0 + j * c.ps;
      for (let i = 0; i < size; i++) {
        const p = j * size + i;
        if (lab[p] !== LUNG_A) continue;
        const x = c.x0 + i * c.ps;
        const d = x < 0 ? L.apexR : L.apexL;
        if ((x - d.x) ** 2 + (y - d.y) ** 2 > d.r * d.r) {
          lab[p] = SOFT_A;
          hu[p] = musHU - 20;
        }
      }
    }
  }
}

/** Abdomen under the domes: liver on the right, stomach and spleen on the left. */
function paintAbdomen(c: Canvas, an: Anatomy, L: Level): void {
  const cav = mask(T.LUNG, T.LIVER, T.SOFT);
  if (L.domeR) paintCircle(c, L.domeR, T.LIVER, an.hu.liver, cav);
  if (L.domeL) {
    // Left: the left lobe of the liver medially, the stomach anteriorly, the spleen posterolaterally.
    paintCircle(c, L.domeL, T.LIVER, an.hu.liver, cav);
  }
  const cavW = L.xLeft - L.xRight;
  const left = L.abdomen ? { x: 0.24 * cavW, y: L.yAnt + 0.42 * (L.yPost - L.yAnt + 30), r: 0.62 * cavW } : L.domeL;
  if (!left) return;
  const liverLike = mask(T.LIVER);
  const k = Math.min(1.4, left.r / 60);
  // Left upper quadrant lateral to the left lobe of the liver: fat and bowel, then spleen and stomach.
  paintEllipse(c, { cx: left.x + 0.4 * left.r, cy: left.y + 0.05 * left.r, ax: 0.7 * left.r, ay: 0.95 * left.r, rot: 0 }, T.SOFT, an.hu.fat + 55, liverLike);
  const soft = mask(T.SOFT, T.LIVER);
  paintEllipse(c, { cx: left.x + 0.5 * left.r, cy: left.y + 0.45 * left.r, ax: 42 * k, ay: 20 * k, rot: -1.0 }, T.SPLEEN, an.hu.spleen, soft);
  const st = { cx: left.x + 0.05 * left.r, cy: left.y - 0.2 * left.r, ax: 46 * k, ay: 32 * k, rot: 0.5 };
  paintEllipse(c, st, T.STOMACH, 40, soft, 3);
  paintEllipse(c, st, T.STOMACH, 12, mask(T.STOMACH));
  // Gas cap anteriorly (the patient is supine).
  paintEllipse(c, { ...st, cy: st.cy - st.ay * 0.55, ax: st.ax * 0.8, ay: st.ay * 0.45 }, T.AIRWAY, -990, mask(T.STOMACH));
}

/** Mediastinum, heart and great vessels, airways, oesophagus. */
function paintMediastinum(c: Canvas, an: Anatomy, L: Level): void {
  const u = L.u;
  const Dm = L.dm;
  const ya = L.yAnt;
  const v = L.vertebra;
  const vs = an.vesselScale;
  const cf = an.contrast;
  const fat = an.hu.fat + 8;
  const right = 330 * cf;
  const left = 200 * cf;
  if (!L.noLungs || L.u < 0) paintEllipse(c, L.med, T.MED_FAT, fat, mask(T.LUNG, T.SOFT));
  else paintEllipse(c, L.med, T.MED_FAT, fat, mask(T.LUNG, T.SOFT));
  // Heart: pericardial fat, myocardium, then the four chambers (in the heart's own frame).
  const h = L.heart;
  if (h) {
    paintEllipse(c, h, T.MED_FAT, fat, IN_MED, 5);
    paintEllipse(c, h, T.MYOCARDIUM, an.hu.muscle + 5, IN_MED | mask(T.MED_FAT));
    const co = Math.cos(h.rot);
    const si = Math.sin(h.rot);
    const at = (p: number, q: number) => ({ x: h.cx + p * h.ax * co - q * h.ay * si, y: h.cy + p * h.ax * si + q * h.ay * co });
    const chamber = (p: number, q: number, sa: number, sb: number, lo: number, hi: number, label: number, value: number, scale = 1) => {
      const f = Math.max(0, 1 - ((u - (lo + hi) / 2) / ((hi - lo) / 2)) ** 2);
      if (f <= 0) return;
      const k = Math.sqrt(f) * scale;
      const o = at(p, q);
      paintEllipse(c, { cx: o.x, cy: o.y, ax: sa * h.ax * k, ay: sb * h.ay * k, rot: h.rot }, label, value, mask(T.MYOCARDIUM));
    };
    // p: along the long axis towards the apex (left, anterior); q: towards the left-posterior side.
    chamber(0.18, 0.3, 0.47, 0.3, 0.5, 0.95, T.BLOOD_LEFT, left); // LV
    chamber(0.06, -0.44, 0.56, 0.3, 0.5, 0.95, T.BLOOD_RIGHT, right, an.rvScale); // RV
    chamber(-0.55, -0.22, 0.34, 0.42, 0.5, 0.88, T.BLOOD_RIGHT, right); // RA
    chamber(-0.5, 0.45, 0.37, 0.34, 0.44, 0.66, T.BLOOD_LEFT, left); // LA
  }
  // Descending aorta beside the spine.
  const dAo = { x: v.x + 0.7 * v.r + 12 * vs, y: v.y - 0.95 * v.r, r: 11 * vs };
  const aAo = { x: -14, y: ya + 0.33 * Dm, r: 15 * vs };
  if (u > 0.27) paintCircle(c, dAo, T.BLOOD_LEFT, left, IN_MED | mask(T.MED_FAT, T.MUSCLE));
  if (u > 0.28 && u < 0.56) paintCircle(c, aAo, T.BLOOD_LEFT, left, IN_MED | mask(T.MED_FAT));
  if (u > 0.215 && u <= 0.28) paintCapsule(c, aAo.x, aAo.y, dAo.x, dAo.y, 13 * vs, T.BLOOD_LEFT, left, IN_MED | mask(T.MED_FAT));
  if (u <= 0.215 && u > -0.3) {
    paintCircle(c, { x: -9, y: ya + 0.36 * Dm, r: 6.5 * vs }, T.BLOOD_LEFT, left, ANY & ~mask(T.BONE_CORTEX, T.BONE_MARROW));
    paintCircle(c, { x: 6, y: ya + 0.42 * Dm, r: 4.5 * vs }, T.BLOOD_LEFT, left, ANY & ~mask(T.BONE_CORTEX, T.BONE_MARROW));
    paintCircle(c, { x: 17, y: ya + 0.55 * Dm, r: 5 * vs }, T.BLOOD_LEFT, left, ANY & ~mask(T.BONE_CORTEX, T.BONE_MARROW));
  }
  // Systemic veins: SVC, brachiocephalic veins (bright on the injected side).
  const venous = 700 * cf;
  const injR = an.injectionRight;
  const svc = { x: -31, y: ya + 0.36 * Dm, r: 9.5 * vs };
  if (u > 0.17 && u < 0.55) paintCircle(c, svc, injR ? T.VEIN_CONTRAST : T.SOFT, injR ? venous : 120, IN_MED | mask(T.MED_FAT));
  if (u <= 0.17 && u > -0.3) paintCircle(c, { x: -31, y: ya + 0.3 * Dm, r: 8 * vs }, injR ? T.VEIN_CONTRAST : T.SOFT, injR ? venous : 45, IN_MED | mask(T.MED_FAT, T.MUSCLE));
  if (u > 0.12 && u <= 0.18)
    paintCapsule(c, 36, ya + 0.2 * Dm, -28, ya + 0.3 * Dm, 5.5 * vs, injR ? T.SOFT : T.VEIN_CONTRAST, injR ? 45 : venous, IN_MED | mask(T.MED_FAT, T.MUSCLE));
  if (u <= 0.12 && u > -0.3) paintCircle(c, { x: 36, y: ya + 0.2 * Dm, r: 6 * vs }, injR ? T.SOFT : T.VEIN_CONTRAST, injR ? 45 : venous, IN_MED | mask(T.MED_FAT, T.MUSCLE));
  // Pulmonary trunk from the right ventricular outflow up to the bifurcation, then the main branches.
  const ub = an.bifurcation;
  if (u >= ub && u < 0.54) {
    const t = (u - ub) / (0.54 - ub);
    paintCircle(c, { x: 16 - 6 * t, y: ya + (0.36 - 0.14 * t) * Dm, r: 13 * vs }, T.BLOOD_RIGHT, right, IN_MED | mask(T.MED_FAT));
  }
  const pa = centralArteries(an, L);
  for (const seg of pa) paintCapsule(c, seg[0], seg[1], seg[2], seg[3], seg[4], T.BLOOD_RIGHT, right, IN_MED | mask(T.MED_FAT, T.BLOOD_LEFT));
  // Pulmonary veins into the left atrium.
  if (u > 0.52 && u < 0.6 && h) {
    const la = { x: h.cx - 0.5 * h.ax * Math.cos(h.rot) - 0.5 * h.ay * Math.sin(h.rot), y: h.cy - 0.5 * h.ax * Math.sin(h.rot) + 0.5 * h.ay * Math.cos(h.rot) };
    for (const root of veinRoots(L)) paintCapsule(c, la.x, la.y, root[0], root[1], 6 * vs, T.BLOOD_LEFT, 170 * cf, IN_MED | mask(T.MED_FAT));
  }
  // Trachea and main bronchi; oesophagus.
  const tr = { x: -3, y: L.yPost - 20, r: (an.sex === 'M' ? 9.5 : 8.2) * vs };
  if (u < an.carina) {
    paintCircle(c, tr, T.AIRWAY_WALL, 30, ANY & ~mask(T.BONE_CORTEX, T.BONE_MARROW), 2);
    paintCircle(c, tr, T.AIRWAY, -990, mask(T.AIRWAY_WALL));
  } else {
    for (const [x1, y1, len, r] of [
      [-40, tr.y + 8, 0.07, 7],
      [42, tr.y + 10, 0.1, 6],
    ]) {
      const t = (u - an.carina) / len;
      if (t > 1) continue;
      const x = tr.x + (x1 - tr.x) * t;
      const y = tr.y + (y1 - tr.y) * t;
      paintCircle(c, { x, y, r: r * vs }, T.AIRWAY_WALL, 30, IN_MED | mask(T.MED_FAT, T.BLOOD_RIGHT), 1.8);
      paintCircle(c, { x, y, r: r * vs }, T.AIRWAY, -990, mask(T.AIRWAY_WALL));
    }
  }
  const es = { x: 9, y: L.yPost - 5, r: 7 };
  paintCircle(c, es, T.ESOPHAGUS, an.hu.muscle, ANY & ~mask(T.BONE_CORTEX, T.BONE_MARROW, T.BLOOD_LEFT));
  paintCircle(c, { x: es.x + 1, y: es.y - 1, r: 1.8 }, T.AIRWAY, -900, mask(T.ESOPHAGUS));
  // Azygos vein, right of the spine.
  if (u > 0.3) paintCircle(c, { x: v.x - v.r * 0.75, y: v.y - 0.55 * v.r, r: 4 }, T.SOFT, 110, IN_MED | mask(T.MED_FAT, T.MUSCLE));
}

/** Vertebra (body or disc, canal, posterior elements) and sternum. */
function paintSkeleton(c: Canvas, an: Anatomy, L: Level): void {
  const v = L.vertebra;
  const bd = an.boneDensity;
  const cortex = 950 * bd;
  const marrow = 260 * bd;
  const notBone = ANY & ~mask(T.BONE_CORTEX, T.BONE_MARROW);
  const disc = L.vPhase < 0.1 || L.vPhase > 0.95;
  // Paravertebral soft tissue, then the body.
  paintCircle(c, v, T.MUSCLE, an.hu.muscle, mask(T.LUNG, T.MED_FAT, T.SOFT, T.LIVER), 6);
  if (disc) paintCircle(c, v, T.DISC, 85, ANY);
  else {
    paintCircle(c, v, T.BONE_CORTEX, cortex, ANY);
    paintCircle(c, v, T.BONE_MARROW, marrow, mask(T.BONE_CORTEX), -2.2);
  }
  const canal = { x: v.x, y: v.y + v.r + 7.5, r: 7.5 };
  // Pedicles and laminae around the canal, spinous and transverse processes at part of the level.
  const ph = L.vPhase;
  const bone = (x0: number, y0: number, x1: number, y1: number, r: number) => {
    paintCapsule(c, x0, y0, x1, y1, r, T.BONE_CORTEX, cortex, notBone);
    paintCapsule(c, x0, y0, x1, y1, r - 1.5, T.BONE_MARROW, marrow, mask(T.BONE_CORTEX));
  };
  if (ph > 0.15 && ph < 0.85) {
    bone(v.x - 8, v.y + v.r - 2, v.x - 9, canal.y + 9, 3.6);
    bone(v.x + 8, v.y + v.r - 2, v.x + 9, canal.y + 9, 3.6);
    bone(v.x - 9, canal.y + 9, v.x + 9, canal.y + 9, 3.2);
  }
  if (ph > 0.35 && ph < 0.95) bone(v.x, canal.y + 9, v.x, canal.y + 30, 4);
  if (ph > 0.2 && ph < 0.6) {
    bone(v.x - 9, canal.y, v.x - 27, canal.y + 13, 4.2);
    bone(v.x + 9, canal.y, v.x + 27, canal.y + 13, 4.2);
  }
  paintCircle(c, canal, T.CSF, 15, ANY);
  paintCircle(c, { x: canal.x, y: canal.y - 0.5, r: 4.2 }, T.CSF, 35, mask(T.CSF));
  // Sternum: manubrium (wide), body, xiphoid.
  if (L.u > 0.06 && L.u < 0.95) {
    const w = L.u < 0.24 ? 24 : L.u < 0.85 ? 15 : 8;
    const st = { cx: 0, cy: L.yAnt - 7, ax: w, ay: 6.5, rot: 0 };
    paintEllipse(c, st, T.BONE_CORTEX, cortex * 0.9, ANY);
    paintEllipse(c, st, T.BONE_MARROW, marrow, mask(T.BONE_CORTEX), -1.5);
  }
}

/** The scanner table: a curved carbon-fibre cradle with a foam core, under the body. */
const tables = new WeakMap<PatientModel, { idx: Int32Array; hu: Float32Array }>();

/** The table is the same on every slice: its pixels are computed once per model. */
function paintTable(c: Canvas, model: PatientModel): void {
  let t = tables.get(model);
  if (!t) {
    const top = rBody(model.tableLevel, Math.PI / 2) + 1;
    const idx: number[] = [];
    const val: number[] = [];
    for (let j = 0; j < c.size; j++) {
      const y = c.y0 + j * c.ps;
      if (y < top - 40) continue;
      for (let i = 0; i < c.size; i++) {
        const x = c.x0 + i * c.ps;
        if (Math.abs(x) > 225) continue;
        const d = y - (top - 0.0007 * x * x);
        if ((d >= 0 && d < 2.2) || (d >= 48 && d < 50.5)) {
          idx.push(j * c.size + i);
          val.push(220);
        } else if (d >= 2.2 && d < 48) {
          idx.push(j * c.size + i);
          val.push(-930);
        }
      }
    }
    t = { idx: Int32Array.from(idx), hu: Float32Array.from(val) };
    tables.set(model, t);
  }
  const TABLE = T.TABLE;
  for (let k = 0; k < t.idx.length; k++) {
    c.lab[t.idx[k]] = TABLE;
    c.hu[t.idx[k]] = t.hu[k];
  }
}

/** Renders slice k of the model with the cohort's correlated noise field. */
export function renderSlice(model: PatientModel, k: number, noise: NoiseField, out?: SliceOutput): SliceOutput {
  const g = model.scan;
  const size = g.size;
  const n = size * size;
  const o = out ?? { stored: new Int16Array(n), labels: new Uint8Array(n), hu: new Float32Array(n), nodules: new Map(), emboli: [] };
  o.nodules = new Map();
  const c: Canvas = { size, ps: g.ps, x0: g.x0, y0: g.y0, hu: o.hu, lab: o.labels };
  o.hu.fill(-1000);
  o.labels.fill(T.AIR);
  const an = model.anatomy;
  const s = g.s0 + k * g.thickness;
  const L = level(an, s);
  paintTable(c, model);
  paintBody(c, an, L, model.polar);
  paintAbdomen(c, an, L);
  paintMediastinum(c, an, L);
  paintSkeleton(c, an, L);
  // Lung vessel trees and airways, only over lung parenchyma.
  const lungOnly = mask(T.LUNG, T.PA_TREE, T.VEIN_TREE);
  for (const seg of model.buckets[k]) {
    const t = model.segments[seg];
    if (t.kind === 'airway') {
      paintTube(c, s, t.a, t.b, t.r, T.AIRWAY_WALL, 20, mask(T.LUNG), false);
      paintTube(c, s, t.a, t.b, t.r - t.wall, T.AIRWAY, -980, mask(T.AIRWAY_WALL), true);
    } else if (t.kind === 'artery') paintTube(c, s, t.a, t.b, t.r, T.PA_TREE, model.hu.artery, lungOnly);
    else paintTube(c, s, t.a, t.b, t.r, T.VEIN_TREE, model.hu.vein, lungOnly);
  }
  o.emboli = paintEmboli(c, model, s);
  paintNodules(c, model, s, o.nodules);
  finish(o, c, noise, model, k);
  return o;
}

let scratchBlur = new Float32Array(0);

/** 3x3 binomial blur (partial volume), noise, quantisation to stored int16. */
function finish(o: SliceOutput, c: Canvas, noise: NoiseField, model: PatientModel, k: number): void {
  const size = c.size;
  const src = o.hu;
  if (scratchBlur.length !== size * size) scratchBlur = new Float32Array(size * size);
  const tmp = scratchBlur;
  for (let j = 0; j < size; j++) {
    const row = j * size;
    tmp[row] = (3 * src[row] + src[row + 1]) * 0.25;
    for (let i = 1; i < size - 1; i++) tmp[row + i] = (src[row + i - 1] + 2 * src[row + i] + src[row + i + 1]) * 0.25;
    tmp[row + size - 1] = (src[row + size - 2] + 3 * src[row + size - 1]) * 0.25;
  }
  const sd = model.anatomy.noise;
  const field = noise.data;
  const M = noise.size;
  if (M < size) throw new Error(`noise field (${M}) smaller than the image (${size})`);
  const mm = M - 1;
  const off = model.noiseOffsets[k];
  const ox = off[0] & mm;
  const oy = off[1];
  const out = o.stored;
  for (let j = 0; j < size; j++) {
    const up = (j > 0 ? j - 1 : 0) * size;
    const row = j * size;
    const dn = (j < size - 1 ? j + 1 : j) * size;
    const nrow = ((j + oy) & mm) * M;
    // Within one row the field index wraps at most once.
    const split = Math.min(size, M - ox);
    for (let i = 0; i < size; i++) {
      const f = i < split ? field[nrow + ox + i] : field[nrow + ox + i - M];
      // HU + 1024 + 0.5, truncated: rounds to nearest for every value that matters (>= -1024).
      let q = ((tmp[up + i] + 2 * tmp[row + i] + tmp[dn + i]) * 0.25 + sd * f + 1024.5) | 0;
      if (q < 0) q = 0;
      else if (q > 4095) q = 4095;
      out[row + i] = q;
    }
  }
}
