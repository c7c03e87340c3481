/**
 * What the fine-tune page keeps across page switches: the form, its cohort (CT series with labels),
 * and whether runs made by experiment grids are listed too.
 */
import type { ApiClient } from '../../../shared/contract';
import { noFilters } from '../library/cohort';
import { CohortState } from '../runs/cohort-state.svelte';
import { applyTask, defaultFinetuneForm, labelsFilterFor, type DownstreamTask, type FinetuneForm } from './finetune-form';

export class FinetuneState {
  form = $state<FinetuneForm>(defaultFinetuneForm());
  readonly cohort: CohortState;
  showExperimentRuns = $state(false);

  constructor(api: ApiClient) {
    this.cohort = new CohortState(api, { ...noFilters(), ctOnly: true, labels: labelsFilterFor('classification') });
  }

  /** Changes the task, and the cohort's labels filter with it (nodules for segmentation). */
  setTask(task: DownstreamTask): void {
    if (task === this.form.task) return;
    this.form = applyTask(this.form, task);
    if (this.cohort.form.labels !== 'off') this.cohort.form.labels = labelsFilterFor(task);
  }
}
