/**
 * Pulmonary emboli: low-attenuation (about 20-45 HU) elongated filling defects inside the
 * contrast-filled pulmonary arteries, centrally (trunk, main branches) or in lobar and segmental
 * branches of the lung artery trees. Painted only over contrast-filled arterial lumen, so a slice
 * is PE-positive exactly when some pixel of a defect shows.
 */
import { type Anatomy, centralArteries, level } from './anatomy';
import { T } from './labels';
import { type Canvas, mask } from './paint';
import type { Rng } from '../random';
import type { LevelCache, P3, TreeSegment } from './vessels';

export type EmbolusSite = 'trunk' | 'right-main' | 'left-main' | 'lobar' | 'segmental';

export interface Embolus {
  id: number;
  site: EmbolusSite;
  side: 'left' | 'right' | 'central';
  centre: P3;
  /** Unit direction of the long axis. */
  dir: P3;
  halfLength: number;
  radius: number;
  hu: number;
  chronic: boolean;
}

const ARTERIAL = mask(T.PA_TREE, T.BLOOD_RIGHT, T.EMBOLUS);

function unit(v: P3): P3 {
  const l = Math.hypot(v[0], v[1], v[2]) || 1;
  return [v[0] / l, v[1] / l, v[2] / l];
}

/**
 * Draws 1-4 emboli for a PE-positive study, each inside [sLo, sHi]. `central` asks for at least
 * one in the trunk or a main branch when that level is scanned.
 */
export function drawEmboli(rng: Rng, an: Anatomy, levels: LevelCache, segments: TreeSegment[], sLo: number, sHi: number, chronic: boolean): Embolus[] {
  const out: Embolus[] = [];
  const count = rng.weighted([0.35, 0.35, 0.2, 0.1]) + 1;
  const hu = () => rng.uniform(18, 45);
  const add = (e: Omit<Embolus, 'id' | 'hu' | 'chronic'>, isChronic: boolean) => {
    let centre = e.centre;
    let radius = e.radius;
    if (isChronic) {
      // Chronic thrombus: eccentric, wall-adherent, thinner.
      const perp = unit([e.dir[1], -e.dir[0], 0.3]);
      centre = [centre[0] + perp[0] * radius * 0.5, centre[1] + perp[1] * radius * 0.5, centre[2] + perp[2] * radius * 0.5];
      radius *= 0.7;
    }
    out.push({ ...e, centre, radius, id: out.length + 1, hu: hu(), chronic: isChronic });
  };
  // Central: trunk bifurcation or a main branch, when scanned.
  const sb = an.bifurcation * an.lungHeight;
  if (rng.chance(0.4) && sb > sLo + 6 && sb < sHi - 6) {
    const site = rng.pick(['trunk', 'right-main', 'left-main'] as const);
    const L = level(an, site === 'right-main' ? sb + 0.02 * an.lungHeight : site === 'left-main' ? sb - 0.012 * an.lungHeight : sb + 0.01 * an.lungHeight);
    const caps = centralArteries(an, L);
    const cap = site === 'trunk' || caps.length === 0 ? null : site === 'left-main' ? caps[0] : caps[caps.length - 1];
    if (site === 'trunk' || !cap) {
      const c: P3 = [16, L.yAnt + 0.36 * L.dm, L.s + 3];
      add({ site: 'trunk', side: 'central', centre: c, dir: unit([0.2, 0.3, 1]), halfLength: rng.uniform(6, 10), radius: rng.uniform(4, 7) }, false);
    } else {
      const t = rng.uniform(0.35, 0.7);
      const c: P3 = [cap[0] + t * (cap[2] - cap[0]), cap[1] + t * (cap[3] - cap[1]), L.s];
      add(
        { site, side: 'central', centre: c, dir: unit([cap[2] - cap[0], cap[3] - cap[1], 0]), halfLength: rng.uniform(8, 16), radius: cap[4] * rng.uniform(0.5, 0.75) },
        chronic && rng.chance(0.5),
      );
    }
  }
  // Peripheral: lobar (r >= 3.5 mm) and segmental (2.2-3.5 mm) arteries inside the scanned range.
  const candidates = segments.filter((t) => {
    if (t.kind !== 'artery' || t.r < 2.2 || t.depth < 1) return false;
    const m: P3 = [(t.a[0] + t.b[0]) / 2, (t.a[1] + t.b[1]) / 2, (t.a[2] + t.b[2]) / 2];
    const len = Math.hypot(t.b[0] - t.a[0], t.b[1] - t.a[1], t.b[2] - t.a[2]);
    return len > 6 && m[2] > sLo + 8 && m[2] < sHi - 8 && levels.inLung(m, t.r + 1);
  });
  let guard = 0;
  while (out.length < count && candidates.length > 0 && guard++ < 50) {
    const t = candidates[rng.intBetween(0, candidates.length - 1)];
    if (out.some((e) => Math.hypot(e.centre[0] - t.a[0], e.centre[1] - t.a[1], e.centre[2] - t.a[2]) < 15)) continue;
    const f = rng.uniform(0.35, 0.65);
    const c: P3 = [t.a[0] + f * (t.b[0] - t.a[0]), t.a[1] + f * (t.b[1] - t.a[1]), t.a[2] + f * (t.b[2] - t.a[2])];
    const len = Math.hypot(t.b[0] - t.a[0], t.b[1] - t.a[1], t.b[2] - t.a[2]);
    add(
      {
        site: t.r >= 3.5 ? 'lobar' : 'segmental',
        side: t.side > 0 ? 'left' : 'right',
        centre: c,
        dir: unit([t.b[0] - t.a[0], t.b[1] - t.a[1], t.b[2] - t.a[2]]),
        halfLength: Math.min(len * 0.45 + 3, rng.uniform(6, 14)),
        radius: t.r * rng.uniform(0.6, 0.8),
      },
      chronic && rng.chance(0.6),
    );
  }
  return out;
}

/** Paints the emboli crossing depth s; returns the ids of those with at least one labelled pixel. */
export function paintEmboli(c: Canvas, model: { emboli: Embolus[] }, s: number): number[] {
  const seen: number[] = [];
  const inv = 1 / c.ps;
  const EMBOLUS_L = T.EMBOLUS;
  for (const e of model.emboli) {
    const reach = Math.max(e.halfLength, e.radius);
    const dz = s - e.centre[2];
    if (Math.abs(dz) > reach) continue;
    const i0 = Math.max(0, Math.ceil((e.centre[0] - reach - c.x0) * inv));
    const i1 = Math.min(c.size - 1, Math.floor((e.centre[0] + reach - c.x0) * inv));
    const j0 = Math.max(0, Math.ceil((e.centre[1] - reach - c.y0) * inv));
    const j1 = Math.min(c.size - 1, Math.floor((e.centre[1] + reach - c.y0) * inv));
    let n = 0;
    for (let j = j0; j <= j1; j++) {
      const dy = c.y0 + j * c.ps - e.centre[1];
      for (let i = i0; i <= i1; i++) {
        const p = j * c.size + i;
        if (!((ARTERIAL >>> c.lab[p]) & 1)) continue;
        const dx = c.x0 + i * c.ps - e.centre[0];
        const along = dx * e.dir[0] + dy * e.dir[1] + dz * e.dir[2];
        const px = dx - along * e.dir[0];
        const py = dy - along * e.dir[1];
        const pz = dz - along * e.dir[2];
        const q = Math.sqrt((along / e.halfLength) ** 2 + (px * px + py * py + pz * pz) / (e.radius * e.radius));
        let al = (1 - q) * e.radius * inv + 0.5;
        if (al <= 0) continue;
        if (al > 1) al = 1;
        const v = c.hu[p] + (e.hu - c.hu[p]) * al;
        if (v < c.hu[p]) c.hu[p] = v;
        if (al >= 0.5) {
          c.lab[p] = EMBOLUS_L;
          n++;
        }
      }
    }
    if (n > 0) seen.push(e.id);
  }
  return seen;
}
