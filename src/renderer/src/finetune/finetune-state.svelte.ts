/**
 * What the fine-tune page keeps across page switches: the form, its cohort (CT series with labels),
 * whether runs made by experiment grids are listed too, and the kinds of label files imported
 * (to choose the cohort's labels filter for segmentation).
 */
import type { ApiClient } from '../../../shared/contract';
import { noFilters } from '../library/cohort';
import { CohortQuery } from '../runs/cohort-query.svelte';
import { applyTask, defaultFinetuneForm, labelsFilterFor, type DownstreamTask, type FinetuneForm } from './finetune-form';

export class FinetuneState {
  form = $state<FinetuneForm>(defaultFinetuneForm());
  readonly cohort: CohortQuery;
  showExperimentRuns = $state(false);
  sourceKinds = $state.raw<string[]>([]);

  constructor(private readonly api: ApiClient) {
    this.cohort = new CohortQuery(api, { ...noFilters(), ctOnly: true, labels: labelsFilterFor('classification') });
  }

  /** Changes the task, and the cohort's labels filter with it (nodules for segmentation). */
  setTask(task: DownstreamTask): void {
    if (task === this.form.task) return;
    this.form = applyTask(this.form, task);
    if (this.cohort.form.labels !== 'off') this.cohort.form.labels = labelsFilterFor(task, this.sourceKinds);
  }

  /** Reads which kinds of label files are imported (the page calls this when it opens). */
  async refreshSources(): Promise<void> {
    try {
      const kinds = [...new Set((await this.api.invoke('labels.sources')).map((s) => s.kind))];
      this.sourceKinds = kinds;
      const want = labelsFilterFor(this.form.task, kinds);
      if (this.form.task === 'segmentation' && this.cohort.form.labels !== 'off' && this.cohort.form.labels !== want) this.cohort.form.labels = want;
    } catch {
      /* the filter keeps its value */
    }
  }
}
