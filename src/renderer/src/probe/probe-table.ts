/**
 * The bias probe's result as a table: one row per attribute and feature set (raw slices, then
 * each encoder) with AUROC and its 95% interval, whether it is above chance, and the classes.
 * Pure; unit-tested.
 */
import type { BiasProbeResult, ProbeAttribute } from '../../../shared/results';
import type { RunSummary } from '../../../shared/types';
import { NONE } from '../lib/format';
import { canInitFrom } from '../runs/run-form';
import { withCi } from '../lib/stats-format';

export const PROBE_ATTRIBUTES: readonly { id: ProbeAttribute; label: string; hint: string }[] = [
  { id: 'sex', label: 'sex', hint: 'Patient’s Sex (0010,0040) or an imported attributes CSV' },
  { id: 'ethnicGroup', label: 'ethnic group', hint: 'Ethnic Group (0010,2160) or an imported attributes CSV; one-vs-rest macro AUROC' },
  { id: 'ageGroup', label: 'age group', hint: 'Patient’s Age in 10-year bins; one-vs-rest macro AUROC' },
];

export function attributeLabel(a: string): string {
  return PROBE_ATTRIBUTES.find((x) => x.id === a)?.label ?? a;
}

export interface ProbeRow {
  attribute: string;
  features: string;
  /** The raw-slice baseline (no pretraining). */
  baseline: boolean;
  auroc: string;
  /** Whether the interval excludes chance (0.5): the attribute is predictable from these features. */
  aboveChance: boolean | null;
  n: number;
  classes: string;
}

/** Rows grouped by attribute (in the order of PROBE_ATTRIBUTES), the raw-slice baseline first in each. */
export function probeRows(v: Pick<BiasProbeResult, 'scores'>): ProbeRow[] {
  const order = (a: string) => {
    const i = PROBE_ATTRIBUTES.findIndex((x) => x.id === a);
    return i < 0 ? 99 : i;
  };
  const isBase = (f: string) => f.startsWith('raw slice');
  return [...v.scores]
    .map((s, i) => ({ s, i }))
    .sort((a, b) => order(a.s.attribute) - order(b.s.attribute) || Number(isBase(b.s.features)) - Number(isBase(a.s.features)) || a.i - b.i)
    .map(({ s }) => ({
      attribute: attributeLabel(s.attribute),
      features: s.features,
      baseline: isBase(s.features),
      auroc: Number.isFinite(s.auroc) ? withCi(s.auroc, s.ci95?.[0], s.ci95?.[1]) : NONE,
      aboveChance: s.ci95 ? s.ci95[0] > 0.5 : null,
      n: s.n,
      classes: s.classes.join(', '),
    }));
}

export interface ProbeProblems {
  attributes?: string;
  folds?: string;
  seed?: string;
  runIds?: string;
}

/** Problems with the probe's settings (pure; unit-tested). */
export function probeProblems(o: { runIds: readonly number[]; attributes: readonly string[]; folds: number; seed: number }): ProbeProblems {
  const p: ProbeProblems = {};
  if (o.attributes.length === 0) p.attributes = 'tick at least one attribute';
  if (!(Number.isInteger(o.folds) && o.folds >= 2 && o.folds <= 20)) p.folds = 'from 2 to 20 folds';
  if (!(Number.isInteger(o.seed) && o.seed >= 0)) p.seed = 'a whole number ≥ 0';
  if (o.runIds.length > 16) p.runIds = 'at most 16 encoders';
  return p;
}

/** Encoders the probe can read: finished (or checkpointed) pretraining and imported runs. */
export function probeEncoders(runs: readonly RunSummary[]): RunSummary[] {
  return runs.filter(canInitFrom);
}
