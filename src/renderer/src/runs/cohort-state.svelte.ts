/**
 * A page's own cohort (pretrain, fine-tune, experiments, bias probe): the library's filter form
 * (starting from the paper's rule, or another starting form) and its counts, without touching the
 * library page's filters.
 */
import type { ApiClient } from '../../../shared/contract';
import type { CohortCounts } from '../../../shared/types';
import { noFilters, paperCohort, toCohortFilter, type CohortSource, type FilterForm } from '../library/cohort';
import { toasts } from '../lib/toasts.svelte';

export class CohortState implements CohortSource {
  form = $state<FilterForm>(paperCohort());
  counts = $state.raw<CohortCounts | null>(null);
  querying = $state(false);
  private seq = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private last = '';

  constructor(
    private readonly api: ApiClient,
    initial: FilterForm = paperCohort(),
  ) {
    this.form = initial;
  }

  /** Debounced count query after a change of the form. */
  schedule(): void {
    this.querying = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run(false);
    }, 150);
  }

  async run(force: boolean): Promise<void> {
    const filter = toCohortFilter(this.form);
    const key = JSON.stringify(filter);
    if (!force && key === this.last) {
      if (!this.timer) this.querying = false;
      return;
    }
    this.last = key;
    const seq = ++this.seq;
    this.querying = true;
    try {
      const c = await this.api.invoke('library.cohortCounts', filter);
      if (seq === this.seq) this.counts = c;
    } catch (e) {
      if (seq === this.seq) {
        this.last = '';
        toasts.error('Cohort', e);
      }
    } finally {
      if (seq === this.seq && !this.timer) this.querying = false;
    }
  }

  resetToPaperCohort(): void {
    this.form = paperCohort();
  }

  clearFilters(): void {
    this.form = noFilters();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
