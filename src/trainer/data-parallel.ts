/**
 * Data parallelism over two cores for the wasm backend, as PyTorch DistributedDataParallel does
 * it on two processes: each batch is split along N into two shards; this thread computes the
 * gradients of the first, a helper worker thread with its own wasm backend (single-threaded SIMD
 * build) those of the second, at the same time; the gradients are averaged (weighted by shard
 * size) and the optimizer applied here, once. The helper holds no state of its own: it gets the
 * current weights with every shard, so checkpoints, resumes and data-dependent initialisation
 * need nothing from it.
 *
 * Semantics, as DDP without SyncBatchNorm: BatchNorm normalises each shard by its own statistics
 * (the running statistics are updated with the whole batch's, merged from the shards); every other
 * term is the batch mean, as before. Without a helper the same shards are computed one after the
 * other in this thread ({@link ShardedStep} with `helper` null): the sequential reference, which
 * the parallel step equals bit for bit (test/trainer/data-parallel.test.ts), so a run's numbers do
 * not depend on whether its second core was there.
 *
 * The helper's entry is `grad-worker.ts` beside this module (`grad-worker.js` in the Electron
 * build, an entry of electron.vite.config.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { siblingModule, spawnWorker } from '../platform/ts-worker';
import type { Classifier, ClassifierConfig } from '../core/ml/classifier';
import type { BatchStats } from '../core/ml/layers';
import type { CompositeOptions, CompositeWeights } from '../core/ml/losses';
import type { AdamFamily } from '../core/ml/optim';
import { applyUpdate, classifierGradients, reconGradients, type ClassBatch, type GradientResult, type ReconBatch } from '../core/ml/train-step';
import type { Vqvae, VqvaeConfig } from '../core/ml/vqvae';
import { exportWeights, type WeightEntry } from '../core/ml/weights';
import type { BackendInfo } from './backend';

/** What the helper builds its replica from (its weights come with every shard). */
export type ShardModelSpec = { kind: 'vqvae'; config: VqvaeConfig } | { kind: 'classifier'; config: ClassifierConfig };

/** A shard's batch: a reconstruction batch or a labelled one. */
export type ShardBatch = ReconBatch | ClassBatch;

/** Loss options of the reconstruction tasks (the run's recipe). */
export interface ShardLossOptions {
  weights?: Partial<CompositeWeights>;
  options?: CompositeOptions;
}

/** BatchNorm batch statistics as plain data. */
export interface StatsData {
  name: string;
  mean: Float32Array;
  variance: Float32Array;
  count: number;
}

/** One shard's gradients (in the model's parameter order), BatchNorm statistics and losses. */
export interface ShardResult {
  grads: Float32Array[];
  stats: StatsData[];
  losses: Record<string, number>;
}

/**
 * Forward and backward of one shard, as plain arrays (the tensors are disposed): what this thread
 * and the helper both run.
 */
export function shardGradients(model: Vqvae | Classifier, batch: ShardBatch, loss: ShardLossOptions = {}): ShardResult {
  const r: GradientResult<object> = model.kind === 'vqvae'
    ? reconGradients(model, batch as ReconBatch, loss.weights, loss.options)
    : classifierGradients(model, batch as ClassBatch);
  try {
    const grads = [...model.params.entries()].map(([name, p]) => {
      const g = r.grads.get(name);
      return g == null ? new Float32Array(p.size) : Float32Array.from(g.dataSync() as Float32Array);
    });
    const stats: StatsData[] = [];
    for (const [name, s] of r.stats) {
      stats.push({ name, mean: Float32Array.from(s.mean.dataSync() as Float32Array), variance: Float32Array.from(s.variance.dataSync() as Float32Array), count: s.count });
    }
    return { grads, stats, losses: { ...(r.losses as Record<string, number>) } };
  } finally {
    for (const g of r.grads.values()) g.dispose();
    for (const s of r.stats.values()) tf.dispose([s.mean, s.variance]);
  }
}

/** Splits n into `parts` contiguous counts as equal as possible (larger first). */
export function splitCounts(n: number, parts: number): number[] {
  const base = Math.floor(n / parts);
  const extra = n % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0)).filter((k) => k > 0);
}

/** The batch's images `start` .. `start + k` (copies). */
export function sliceBatch<B extends ShardBatch>(batch: B, start: number, k: number): B {
  const [, h, w, c] = batch.shape;
  const per = h * w * c;
  const part = (a: Float32Array) => a.slice(start * per, (start + k) * per);
  const shape: [number, number, number, number] = [k, h, w, c];
  if ('labels' in batch) return { shape, input: part(batch.input), labels: batch.labels.slice(start, start + k) } as B;
  const rb = batch as ReconBatch;
  return { shape, input: part(rb.input), target: part(rb.target), ...(rb.mask ? { mask: part(rb.mask) } : {}) } as B;
}

/** Merges per-shard BatchNorm statistics into the whole batch's mean and biased variance. */
export function mergeStats(parts: StatsData[][]): StatsData[] {
  if (parts.length === 1) return parts[0];
  return parts[0].map((first, li) => {
    const c = first.mean.length;
    const mean = new Float64Array(c);
    const sq = new Float64Array(c);
    let total = 0;
    for (const p of parts) {
      const s = p[li];
      if (s.name !== first.name) throw new Error(`shards disagree on BatchNorm layer ${li}: ${first.name} vs ${s.name}`);
      total += s.count;
      for (let j = 0; j < c; j++) {
        mean[j] += s.mean[j] * s.count;
        sq[j] += (s.variance[j] + s.mean[j] * s.mean[j]) * s.count;
      }
    }
    const m = new Float32Array(c);
    const v = new Float32Array(c);
    for (let j = 0; j < c; j++) {
      const mu = mean[j] / total;
      m[j] = mu;
      v[j] = Math.max(0, sq[j] / total - mu * mu);
    }
    return { name: first.name, mean: m, variance: v, count: total };
  });
}

/** Averages shard results weighted by their image counts, in shard order. */
export function combineShards(parts: ShardResult[], counts: number[]): ShardResult {
  if (parts.length === 1) return parts[0];
  const n = counts.reduce((a, b) => a + b, 0);
  const grads = parts[0].grads.map((g) => new Float32Array(g.length));
  const losses: Record<string, number> = {};
  parts.forEach((r, i) => {
    const wgt = counts[i] / n;
    r.grads.forEach((g, j) => {
      const acc = grads[j];
      for (let t = 0; t < g.length; t++) acc[t] += g[t] * wgt;
    });
    for (const [k, v] of Object.entries(r.losses)) losses[k] = (losses[k] ?? 0) + v * wgt;
  });
  return { grads, stats: mergeStats(parts.map((r) => r.stats)), losses };
}

/** Applies combined gradients with the optimizer and updates the running statistics. */
export function applyShards(model: Vqvae | Classifier, optimizer: AdamFamily, r: ShardResult): void {
  const grads = new Map<string, tf.Tensor>();
  const stats = new Map<string, BatchStats>();
  [...model.params.entries()].forEach(([name, p], i) => grads.set(name, tf.tensor(r.grads[i], p.shape, 'float32')));
  for (const s of r.stats) stats.set(s.name, { mean: tf.tensor1d(s.mean), variance: tf.tensor1d(s.variance), count: s.count });
  applyUpdate(model, optimizer, grads, stats);
}

/** Whether pretraining on wasm is data-parallel unless CTSSL_WASM_THREADS says otherwise (see {@link wasmDataParallel}). */
export const DEFAULT_WASM_DATA_PARALLEL = true;

/**
 * Presets pretrained on wasm with the whole batch in one thread even by default: their steps are
 * too short for the helper thread to pay (the weights sent with each shard, the gradients sent
 * back, the thread hand-offs). Measured by `npm run bench:train` on a quiet machine
 * (docs/benchmarks.md, Training throughput): tiny 343 images/s in one thread against 286
 * data-parallel; small 13.6 against 22.7 (standard's steps are longer still).
 */
export const WHOLE_BATCH_PRESETS: readonly string[] = ['tiny'];

/**
 * How pretraining on this backend splits its batches: on wasm with CTSSL_WASM_THREADS unset and
 * a preset not in {@link WHOLE_BATCH_PRESETS}, 2 shards, the second in a helper thread where there
 * are 2 cores or more ('parallel'), else both in this thread ('sequential': the same numbers, so a
 * run does not depend on the machine's cores); with CTSSL_WASM_THREADS set (1: one thread, N: the
 * threaded build), for the presets of {@link WHOLE_BATCH_PRESETS} and on other backends, the
 * whole batch at once (undefined). Why: docs/benchmarks.md, Training throughput.
 */
export function wasmDataParallel(backend: Pick<BackendInfo, 'name'>, preset: string, wasmThreadsEnv = process.env.CTSSL_WASM_THREADS, cores = availableParallelism()): 'parallel' | 'sequential' | undefined {
  if (!DEFAULT_WASM_DATA_PARALLEL || backend.name !== 'wasm' || (wasmThreadsEnv != null && wasmThreadsEnv !== '')) return undefined;
  if (WHOLE_BATCH_PRESETS.includes(preset)) return undefined;
  return cores >= 2 ? 'parallel' : 'sequential';
}

// --- the helper thread -------------------------------------------------------------------------

export type HelperRequest = { type: 'grad'; id: number; weights: WeightEntry[]; batch: ShardBatch; loss: ShardLossOptions };
export type HelperReply =
  | { type: 'ready'; backend: string; threadCount: number }
  | { type: 'grad'; id: number; result: ShardResult }
  | { type: 'error'; id: number; message: string };

/** What the helper gets as workerData. */
export interface HelperInit {
  model: ShardModelSpec;
}

/** The helper's entry: `grad-worker.ts` beside this file, or `grad-worker.js` beside or above the bundle chunk. */
export function helperEntry(): URL {
  const url = siblingModule(import.meta.url, 'grad-worker');
  if (url.pathname.endsWith('.ts')) return url;
  const up = new URL('../grad-worker.js', import.meta.url);
  return existsSync(fileURLToPath(url)) || !existsSync(fileURLToPath(up)) ? url : up;
}

/** A worker thread computing the gradients of one shard at a time. */
export class GradientHelper {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: ShardResult) => void; reject: (e: Error) => void }>();
  private failure: Error | null = null;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: HelperReply) => {
      if (m.type === 'ready') return;
      if (m.id === -1) return this.fail(new Error(`the training helper thread failed: ${m.type === 'error' ? m.message : 'unexpected reply'}`));
      const p = this.pending.get(m.id);
      if (p == null) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.type === 'error') p.reject(new Error(`the training helper thread failed: ${m.message}`));
      else p.resolve(m.result);
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`the training helper thread exited with code ${code}`)));
  }

  /** Starts the helper and waits until its backend and replica are ready (or throws why not). */
  static async start(init: HelperInit, entry: URL = helperEntry(), timeoutMs = 120_000): Promise<GradientHelper> {
    const worker = spawnWorker(entry, init);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`did not start within ${timeoutMs / 1000} s`)), timeoutMs);
        worker.on('message', (m: HelperReply) => {
          if (m.type === 'ready') {
            if (m.backend !== 'wasm' || m.threadCount !== 1) reject(new Error(`it runs ${m.backend} with ${m.threadCount} thread(s), not single-threaded wasm`));
            else resolve();
          } else if (m.type === 'error' && m.id === -1) reject(new Error(m.message.split('\n')[0]));
        });
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`exited with code ${code}`)));
      });
    } catch (e) {
      await worker.terminate();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    worker.unref();
    return new GradientHelper(worker);
  }

  private fail(e: Error): void {
    if (this.failure == null) this.failure = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.worker.unref();
  }

  /** The gradients of `batch` at `weights`. */
  gradients(weights: WeightEntry[], batch: ShardBatch, loss: ShardLossOptions): Promise<ShardResult> {
    if (this.failure != null) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // the thread keeps the process alive only while a shard is out (an idle helper does not)
      this.worker.ref();
      const msg: HelperRequest = { type: 'grad', id, weights, batch, loss };
      const transfer = [...weights.map((w) => w.data.buffer), batch.input.buffer, ...('target' in batch ? [batch.target.buffer] : []), ...('mask' in batch && batch.mask ? [batch.mask.buffer] : [])];
      this.worker.postMessage(msg, transfer as ArrayBuffer[]);
    });
  }

  async close(): Promise<void> {
    this.fail(new Error('the training helper thread was closed'));
    await this.worker.terminate();
  }
}

// --- the step ----------------------------------------------------------------------------------

/**
 * One optimisation step on `shards` shards of each batch: the first computed here, the others
 * by `helper` when there is one (two shards), else one after the other here. Same numbers either way.
 */
export class ShardedStep {
  private helper: GradientHelper | null = null;
  private starting: (() => Promise<GradientHelper>) | null;
  private why: string | null = null;

  /**
   * `helper`: a started helper, a function starting one at the first step (when it cannot start,
   * the shards are computed here and {@link fallback} says why), or null (sequential).
   */
  constructor(
    readonly shards: number,
    helper: GradientHelper | (() => Promise<GradientHelper>) | null,
  ) {
    if (!Number.isInteger(shards) || shards < 1) throw new Error(`shards must be a whole number >= 1 (got ${shards})`);
    if (helper != null && shards !== 2) throw new Error(`a helper thread computes the second of 2 shards (got ${shards} shards)`);
    if (helper instanceof GradientHelper) this.helper = helper;
    this.starting = typeof helper === 'function' ? helper : null;
  }

  /** True when a helper thread computes a shard. */
  get parallel(): boolean {
    return this.helper != null;
  }

  /** Why the helper thread asked for did not start (the shards then run here, same numbers), or null. */
  get fallback(): string | null {
    return this.why;
  }

  async step(model: Vqvae | Classifier, optimizer: AdamFamily, batch: ShardBatch, loss: ShardLossOptions = {}): Promise<Record<string, number>> {
    if (this.starting != null) {
      const start = this.starting;
      this.starting = null;
      try {
        this.helper = await start();
      } catch (e) {
        this.why = `the data-parallel helper thread did not start, both shards run in one thread: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
      }
    }
    const counts = splitCounts(batch.shape[0], this.shards);
    const starts = counts.map((_, i) => counts.slice(0, i).reduce((a, b) => a + b, 0));
    const parts = counts.map((k, i) => (counts.length === 1 ? batch : sliceBatch(batch, starts[i], k)));
    const remote = this.helper != null && parts.length > 1 ? this.helper.gradients(exportWeights(model), parts[1], loss) : null;
    // a rejection of the helper's promise before it is awaited must not go unhandled
    remote?.catch(() => undefined);
    const results: ShardResult[] = [shardGradients(model, parts[0], loss)];
    for (let i = 1; i < parts.length; i++) results.push(i === 1 && remote != null ? await remote : shardGradients(model, parts[i], loss));
    const combined = combineShards(results, counts);
    applyShards(model, optimizer, combined);
    return combined.losses;
  }

  async close(): Promise<void> {
    this.starting = null;
    await this.helper?.close();
    this.helper = null;
  }
}
