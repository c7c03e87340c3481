/** Findings of a series grouped by lesion, as the masks name them. Pure; unit-tested. */
import type { LabelFinding } from '../../../shared/types';

export interface LabelGroup {
  key: string;
  kind: LabelFinding['kind'];
  sourceKind: string;
  readers: string[];
  /** A short name: "N1", "Segment 2", … */
  name: string;
  malignancy: number | null;
}

/** Groups of findings as the masks name them ("sourceId:group", or "sourceId:F<id>" without a group). */
export function groupFindings(findings: readonly LabelFinding[]): LabelGroup[] {
  const out = new Map<string, LabelGroup & { mal: number[] }>();
  for (const f of findings) {
    if (f.kind !== 'nodule' && f.kind !== 'segment') continue;
    const key = `${f.sourceId}:${f.group || 'F' + f.id}`;
    const g = out.get(key) ?? { key, kind: f.kind, sourceKind: f.sourceKind, readers: [], name: f.group || f.key, malignancy: null, mal: [] };
    if (f.reader && !g.readers.includes(f.reader)) g.readers.push(f.reader);
    const m = Number(f.attributes.malignancy);
    if (Number.isFinite(m) && m > 0) g.mal.push(m);
    out.set(key, g);
  }
  return [...out.values()].map(({ mal, ...g }) => ({ ...g, readers: g.readers.sort(), malignancy: mal.length ? mal.reduce((a, b) => a + b, 0) / mal.length : null }));
}

