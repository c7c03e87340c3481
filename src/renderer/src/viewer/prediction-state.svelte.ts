/**
 * A fine-tuned model's prediction on the open series (predict.run in a trainer process): the
 * fine-tuning runs to choose from, the request in progress with its progress and cancel, the kept
 * result (per-slice scores for the strip under the slider, the top slices), and a U-Net's mask of
 * the slice on screen as an overlay picture (drawn over the slice like the label masks, in its own
 * colour). Masks live in a plain cache; `version` ticks when the picture changed.
 */
import type { ApiClient } from '../../../shared/contract';
import type { PredictionSummary, PredictProgress } from '../../../shared/predict';
import type { RunSummary, SliceMasks } from '../../../shared/types';
import { toasts } from '../lib/toasts.svelte';
import { composeOverlay } from './label-overlay';

/** The prediction's colour (magenta: apart from the label palette's orange and blue). */
export const PREDICTION_COLOUR = '#ff3df0';
const CACHE = 48;

export class PredictionState {
  /** Fine-tuning runs with a finished training (the models that can predict). */
  runs = $state.raw<RunSummary[]>([]);
  runId = $state<number | null>(null);
  result = $state.raw<PredictionSummary | null>(null);
  status = $state<'idle' | 'running' | 'done' | 'error' | 'cancelled'>('idle');
  progress = $state.raw<{ done: number; total: number }>({ done: 0, total: 0 });
  error = $state<string | null>(null);
  visible = $state(true);
  /** Ticks when the mask picture of the slice on screen changed. */
  version = $state(0);

  private requestId: string | null = null;
  private cache = new Map<number, SliceMasks>();
  private inflight = new Set<number>();
  private slice = -1;
  private rgba: Uint8ClampedArray | null = null;
  private composed: { key: string; image: ImageData | null } | null = null;
  private disposed = false;
  private off: (() => void) | null = null;

  constructor(
    private readonly api: ApiClient,
    readonly seriesId: number,
    private readonly redraw: () => void,
  ) {
    this.off = api.on('predict.progress', (p: PredictProgress) => {
      if (p.requestId !== null && p.requestId === this.requestId) this.progress = { done: p.done, total: p.total };
    });
  }

  /** Lists the models and picks the newest, loading its kept prediction on this series if any. */
  async load(): Promise<void> {
    try {
      const all = await this.api.invoke('runs.list');
      if (this.disposed) return;
      this.runs = all.filter((r) => r.kind === 'finetune' && r.status === 'done').sort((a, b) => b.id - a.id);
      if (this.runId === null && this.runs.length) await this.choose(this.runs[0].id);
    } catch (e) {
      toasts.error('Models', e);
    }
  }

  /** Chooses the model; shows its kept prediction on this series, if there is one. */
  async choose(runId: number): Promise<void> {
    if (this.status === 'running') return;
    this.runId = runId;
    this.setResult(null);
    try {
      const kept = await this.api.invoke('predict.get', runId, this.seriesId);
      if (!this.disposed && this.runId === runId) this.setResult(kept);
    } catch (e) {
      toasts.error('Prediction', e);
    }
  }

  private setResult(r: PredictionSummary | null): void {
    this.result = r;
    this.topCursor = -1;
    this.status = r ? 'done' : 'idle';
    this.cache.clear();
    this.bump();
    if (this.slice >= 0) this.fetchMask(this.slice);
  }

  get running(): boolean {
    return this.status === 'running';
  }

  /** Runs the chosen model on the series (a trainer process); progress until it answers. */
  async predict(threshold?: number): Promise<void> {
    if (this.runId === null || this.running) return;
    const runId = this.runId;
    const requestId = `predict-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
    this.requestId = requestId;
    this.status = 'running';
    this.error = null;
    this.progress = { done: 0, total: 0 };
    try {
      const r = await this.api.invoke('predict.run', { runId, seriesId: this.seriesId, requestId, ...(threshold !== undefined && { threshold }) });
      if (this.disposed || this.requestId !== requestId) return;
      this.setResult(r);
    } catch (e) {
      if (this.disposed || this.requestId !== requestId) return;
      const code = (e as { code?: string }).code;
      if (code === 'cancelled') {
        this.status = this.result ? 'done' : 'cancelled';
      } else {
        this.status = 'error';
        this.error = (e as Error).message;
        toasts.error('Prediction', e);
      }
    } finally {
      if (this.requestId === requestId) this.requestId = null;
    }
  }

  /** Writes the prediction into the data folder's exports (server mode: then downloaded by the browser). */
  async exportAs(format: 'json' | 'csv' | 'nifti' | 'seg'): Promise<string | null> {
    if (this.runId === null || !this.result) return null;
    try {
      const r = await this.api.invoke('predict.export', this.runId, this.seriesId, format);
      return r.file;
    } catch (e) {
      toasts.error('Export prediction', e);
      return null;
    }
  }

  async cancel(): Promise<void> {
    if (!this.requestId) return;
    try {
      await this.api.invoke('predict.cancel', this.requestId);
    } catch (e) {
      toasts.error('Cancel prediction', e);
    }
  }

  /** Display indices of the highest-scoring slices, best first. */
  get top(): number[] {
    return this.result?.top ?? [];
  }

  private topCursor = -1;

  /**
   * The T shortcut: the best-scoring slice first; pressed again on the slice it went to, the next
   * best (Shift: the one before), cycling. From any other slice it starts again at the best.
   */
  nextTop(current: number, dir: 1 | -1 = 1): number | null {
    const t = this.top;
    if (t.length === 0) return null;
    const k = this.topCursor >= 0 && this.topCursor < t.length && t[this.topCursor] === current ? (this.topCursor + dir + t.length) % t.length : 0;
    this.topCursor = k;
    return t[k];
  }

  /**
   * Loads the mask of `index` when the prediction has one there (a U-Net's) and it is not cached;
   * redraws when it arrives. Nothing to redraw before: image() is asked during the draw.
   */
  private fetchMask(index: number): void {
    const r = this.result;
    if (!r || r.task !== 'segmentation' || this.runId === null || !r.maskSlices.includes(index)) return;
    if (this.cache.has(index) || this.inflight.has(index)) return;
    this.inflight.add(index);
    const runId = this.runId;
    this.api.invoke('predict.mask', runId, this.seriesId, index).then(
      (m) => {
        this.inflight.delete(index);
        if (this.disposed || this.runId !== runId) return;
        this.cache.set(index, m);
        while (this.cache.size > CACHE) this.cache.delete(this.cache.keys().next().value!);
        if (this.slice === index) this.bump();
      },
      (e) => {
        this.inflight.delete(index);
        if (!this.disposed) toasts.error('Predicted mask', e);
      },
    );
  }

  setVisible(v: boolean): void {
    this.visible = v;
    this.bump();
  }

  private bump(): void {
    this.composed = null;
    this.version++;
    this.redraw();
  }

  /**
   * The predicted mask of `slice` as an ImageData (one pixel per voxel), or null; asked by the
   * viewer's draw, so a new slice only starts loading its mask (the composed picture is keyed by slice).
   */
  image(slice: number): ImageData | null {
    if (slice !== this.slice) {
      this.slice = slice;
      this.fetchMask(slice);
    }
    const m = this.visible ? this.cache.get(slice) : undefined;
    const key = `${slice}/${this.version}`;
    if (this.composed?.key === key) return this.composed.image;
    let image: ImageData | null = null;
    if (m) {
      const n = m.width * m.height * 4;
      if (!this.rgba || this.rgba.length !== n) this.rgba = new Uint8ClampedArray(n);
      const box = composeOverlay([{ key: 'prediction', mask: m.groups[0].mask }], m.width, m.height, { opacity: 0.3, outline: true, colours: { prediction: PREDICTION_COLOUR }, hidden: {} }, this.rgba);
      if (box) image = new ImageData(this.rgba as Uint8ClampedArray<ArrayBuffer>, m.width, m.height);
    }
    this.composed = { key, image };
    return image;
  }

  dispose(): void {
    this.disposed = true;
    this.off?.();
    // A prediction still running goes on: it is kept with the run and shown when the series is opened again.
    this.cache.clear();
  }
}
