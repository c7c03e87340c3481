/**
 * The Evaluate page's held-out browser: the chosen run's held-out patients (runs.heldOutList) and,
 * for the chosen series, every slice's input / output / target / difference as PNG bytes
 * (runs.heldOut), shown as blob: URLs (never server paths), revoked when replaced.
 */
import type { ApiClient } from '../../../shared/contract';
import type { HeldOutList, HeldOutSeriesImages } from '../../../shared/types';
import { describeError } from '../lib/errors';

export type HeldOutImageKind = 'input' | 'output' | 'target' | 'diff';

export class HeldOutState {
  runId = $state<number | null>(null);
  list = $state.raw<HeldOutList | null>(null);
  /** Index into list.patients. */
  patient = $state(0);
  /** The manifest index of the series shown. */
  series = $state<number | null>(null);
  images = $state.raw<HeldOutSeriesImages | null>(null);
  /** Position in images.slices. */
  slice = $state(0);
  loading = $state(false);
  error = $state<string | null>(null);
  /** blob: URLs of the shown series, per slice position and kind. */
  urls = $state.raw<Record<HeldOutImageKind, string | null>[]>([]);
  private ticket = 0;

  constructor(private readonly api: ApiClient) {}

  /** Shows a run (its first held-out patient); null clears. */
  async open(runId: number | null): Promise<void> {
    if (runId === this.runId) return;
    this.runId = runId;
    this.list = null;
    this.clearImages();
    this.error = null;
    if (runId === null) return;
    const t = ++this.ticket;
    try {
      const list = await this.api.invoke('runs.heldOutList', runId);
      if (t !== this.ticket) return;
      this.list = list;
      this.patient = 0;
      const first = list.patients[0]?.series[0];
      if (first) await this.showSeries(first.index);
    } catch (err) {
      if (t === this.ticket) this.error = describeError(err).message;
    }
  }

  async choosePatient(i: number): Promise<void> {
    if (!this.list || i < 0 || i >= this.list.patients.length) return;
    this.patient = i;
    await this.showSeries(this.list.patients[i].series[0].index);
  }

  async showSeries(series: number): Promise<void> {
    if (this.runId === null) return;
    const t = ++this.ticket;
    this.series = series;
    this.loading = true;
    this.error = null;
    try {
      const images = await this.api.invoke('runs.heldOut', this.runId, series);
      if (t !== this.ticket) return;
      this.clearImages();
      this.images = images;
      this.urls = images.slices.map((s) => ({ input: url(s.input), output: url(s.output), target: url(s.target), diff: url(s.diff) }));
      this.slice = Math.min(this.slice, Math.max(0, images.slices.length - 1));
    } catch (err) {
      if (t === this.ticket) this.error = describeError(err).message;
    } finally {
      if (t === this.ticket) this.loading = false;
    }
  }

  step(d: number): void {
    const n = this.images?.slices.length ?? 0;
    if (n > 0) this.slice = Math.min(n - 1, Math.max(0, this.slice + d));
  }

  private clearImages(): void {
    for (const u of this.urls) for (const v of Object.values(u)) if (v) URL.revokeObjectURL(v);
    this.urls = [];
    this.images = null;
  }

  dispose(): void {
    this.ticket++;
    this.clearImages();
  }
}

function url(bytes: Uint8Array | null): string | null {
  return bytes ? URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'image/png' })) : null;
}
