/**
 * A run's patient split in words, for the split panel (run pages, experiment report) and the
 * next-stage confirmation: counts per split, what its parent runs imply. Pure (types only from shared).
 */
import type { RunSplit } from '../../../shared/types';
import { plural } from '../lib/format';

export const SPLITS = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];
export const SPLIT_TITLES: Record<SplitName, string> = { train: 'Training', val: 'Validation', test: 'Held-out' };


/** "8 patients · 8 series · 64 slices", with positives when the slices are labelled. */
export function splitCounts(split: RunSplit, name: SplitName): string {
  const g = split.splits[name];
  const base = `${plural(g.patients, 'patient')} · ${plural(g.series, 'series', 'series')} · ${plural(g.slices, 'slice')}`;
  return g.positivePatients === null ? base : `${base} · ${plural(g.positivePatients, 'positive patient')} (${plural(g.positives ?? 0, 'positive slice')})`;
}

/** "training 10, validation 1, held-out 1 patients": the short form (the next-stage confirmation). */
export function splitShort(split: RunSplit): string {
  return `${SPLITS.map((s) => `${SPLIT_TITLES[s].toLowerCase()} ${split.splits[s].patients}`).join(', ')} patients`;
}

/** What the split owes to the runs it descends from, in sentences (empty without parents). */
export function lineageLines(split: RunSplit): string[] {
  const l = split.lineage;
  if (!l) return [];
  const out: string[] = [];
  if (l.inheritedFrom) out.push(`The data and patient split of the run it continues (${l.inheritedFrom.split(/[\\/]/).pop()}).`);
  for (const p of l.parents)
    out.push(p.trainPatients === null ? `${p.name}: ${p.note}.` : `${p.name} (${p.kind}) trained on ${plural(p.trainPatients, 'patient')} of this cohort.`);
  if (l.keptInTrain.length) out.push(`${plural(l.keptInTrain.length, 'patient')} kept in training because a parent run trained on them: never in validation or held-out.`);
  if (l.overlap.length) out.push(`${plural(l.overlap.length, 'patient')} a parent run trained on ${l.overlap.length === 1 ? 'is' : 'are'} in validation or held-out (overlap allowed).`);
  if (l.stratified) out.push('Stratified: patients with a positive slice and those without were split apart.');
  return out;
}
