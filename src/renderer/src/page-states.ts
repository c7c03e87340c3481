/**
 * The state of every page but the Library, made and started together. Loaded by the app shell
 * (App.svelte) as a chunk of its own, after the Library's first rows (or at once when the app
 * opens on another page), so that the first chunk holds what the Library page needs and nothing
 * asks the services anything before the series rows.
 */
import type { ApiClient } from '../../shared/contract';
import { PretrainState } from './runs/pretrain-state.svelte';
import { RunsState } from './runs/runs-state.svelte';
import { EvaluateState } from './evaluate/evaluate-state.svelte';
import { ShareState } from './share/share-state.svelte';
import { FinetuneState } from './finetune/finetune-state.svelte';
import { ExperimentsState } from './experiments/experiments-state.svelte';
import { ProbeState } from './probe/probe-state.svelte';

export interface PageStates {
  runs: RunsState;
  pretrain: PretrainState;
  evaluation: EvaluateState;
  share: ShareState;
  finetune: FinetuneState;
  experiments: ExperimentsState;
  probe: ProbeState;
}

export function createPageStates(api: ApiClient): PageStates {
  const runs = new RunsState(api);
  runs.start();
  const experiments = new ExperimentsState(api, runs);
  experiments.start();
  const probe = new ProbeState(api);
  probe.start();
  return {
    runs,
    pretrain: new PretrainState(api),
    evaluation: new EvaluateState(api, runs),
    share: new ShareState(api, runs),
    finetune: new FinetuneState(api),
    experiments,
    probe,
  };
}
