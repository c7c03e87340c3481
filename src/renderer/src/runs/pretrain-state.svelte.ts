/** What the pretrain page keeps across page switches: the new-run form, its cohort, the runs ticked for comparison, the cluster job export. */
import type { ApiClient } from '../../../shared/contract';
import { CohortState } from './cohort-state.svelte';
import { JobExportState } from './cluster-job-state.svelte';
import { defaultRunForm, type RunForm } from './run-form';

export class PretrainState {
  form = $state<RunForm>(defaultRunForm());
  readonly cohort: CohortState;
  compare = $state.raw<number[]>([]);
  /** "Export as cluster job" of the form's configuration. */
  readonly job: JobExportState;

  constructor(api: ApiClient) {
    this.cohort = new CohortState(api);
    this.job = new JobExportState(api);
  }

  toggleCompare(id: number, on: boolean): void {
    this.compare = on ? [...new Set([...this.compare, id])] : this.compare.filter((x) => x !== id);
  }
}
