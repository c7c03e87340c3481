/**
 * The bias probe page: which encoders (finished pretraining or imported runs), which cohort,
 * attributes, folds and seed; the probe in progress ('probe.progress') and its result (scores,
 * warnings, the Figure 6 style bar chart). The last result stays while the app is open.
 *
 * 'probe.progress' events name the probe by an id the request only returns at the end, so while
 * this page's request is pending it takes progress events of any probe (one at a time from here).
 */
import type { ApiClient, Results } from '../../../shared/contract';
import { noFilters, toCohortFilter } from '../library/cohort';
import { describeError } from '../lib/errors';
import { CohortQuery } from '../runs/cohort-query.svelte';
import { probeProblems, readProbe, type ProbeAttribute, type ProbeProblems, type ProbeView } from './probe-table';

export type ProbeResponse = Results['probe.run'];

export class ProbeState {
  runIds = $state.raw<number[]>([]);
  attributes = $state.raw<ProbeAttribute[]>(['sex', 'ethnicGroup', 'ageGroup']);
  folds = $state(5);
  seed = $state(1);
  readonly cohort: CohortQuery;
  running = $state(false);
  startedAt = $state<number | null>(null);
  progress = $state.raw<{ done: number; total: number; what: string } | null>(null);
  response = $state.raw<ProbeResponse | null>(null);
  result = $state.raw<ProbeView | null>(null);
  error = $state<string | null>(null);
  private listening = false;

  constructor(private readonly api: ApiClient) {
    this.cohort = new CohortQuery(api, { ...noFilters(), ctOnly: true, axialOnly: true });
  }

  start(): void {
    if (this.listening) return;
    this.listening = true;
    this.api.on('probe.progress', (p) => {
      if (this.running) this.progress = { done: p.done, total: p.total, what: p.what };
    });
  }

  toggleRun(id: number, on: boolean): void {
    this.runIds = on ? [...new Set([...this.runIds, id])] : this.runIds.filter((x) => x !== id);
  }

  toggleAttribute(a: ProbeAttribute, on: boolean): void {
    this.attributes = on ? [...new Set([...this.attributes, a])] : this.attributes.filter((x) => x !== a);
  }

  get problems(): ProbeProblems {
    return probeProblems({ runIds: this.runIds, attributes: this.attributes, folds: this.folds, seed: this.seed });
  }

  /** Runs the probe (in a trainer process); the result replaces the previous one. */
  async run(): Promise<void> {
    if (this.running || Object.keys(this.problems).length > 0) return;
    this.running = true;
    this.error = null;
    this.progress = null;
    this.startedAt = Date.now();
    try {
      const res = await this.api.invoke('probe.run', {
        runIds: [...this.runIds],
        filter: toCohortFilter(this.cohort.form),
        attributes: [...this.attributes],
        folds: this.folds,
        seed: this.seed,
      });
      this.response = res;
      this.result = readProbe(res.result);
    } catch (e) {
      this.error = describeError(e).message;
    } finally {
      this.running = false;
      this.startedAt = null;
    }
  }
}
