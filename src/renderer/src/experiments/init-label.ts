/** Names of experiment initialisations (random, cnn, or a run folder) for the page. Pure; unit-tested. */
import type { RunSummary } from '../../../shared/types';
import { runLabel } from '../runs/run-form';

export function initName(init: string | null | undefined, runs: readonly RunSummary[]): string {
  if (!init) return '—';
  if (init === 'random') return 'random init';
  if (init === 'cnn') return 'supervised CNN';
  const r = runs.find((x) => x.dir === init);
  if (r) return `#${r.id} ${runLabel(r)}`;
  return init.split(/[\\/]/).filter(Boolean).pop() ?? init;
}
