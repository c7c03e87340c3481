/**
 * Data-parallel training over a pool of worker threads, each with its own tfjs backend.
 *
 * Why: the wasm backend runs single-threaded in Node (its threaded build needs a browser-style
 * worker setup), so one process uses one core. The pool splits each batch along N into one part
 * per worker; each worker computes the gradients of its part; the pool averages them (weighted by
 * part size) and every worker applies the same averaged update with the same optimizer, so the
 * replicas stay identical without sending weights around.
 *
 * Semantics versus one process on the whole batch: identical except BatchNorm, whose batch
 * statistics in the forward pass are those of each worker's part ("ghost batch norm", as in
 * PyTorch DistributedDataParallel without SyncBatchNorm). The running statistics are updated
 * with the exact whole-batch mean and variance, merged from the parts.
 *
 * The worker entry is `ml-worker.ts` beside this file (or `ml-worker.js` once built); pass
 * `workerUrl` when a bundler puts it elsewhere.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../../platform/ts-worker';
import type { ClassBatch, ClassLosses, ReconBatch, ReconLosses } from '../../core/ml/train-step';
import type { OptimizerState } from '../../core/ml/optim';
import type { WeightEntry } from '../../core/ml/weights';
import type { StatsData, WorkerInit, WorkerReply, WorkerRequest } from './ml-worker';

export interface TrainPoolOptions extends WorkerInit {
  /** Number of worker threads (default: available cores). */
  workers?: number;
  /** URL of the worker entry (default: ml-worker.ts/.js beside this module). */
  workerUrl?: URL;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Pending {
  resolve: (r: WorkerReply) => void;
  reject: (e: Error) => void;
}

class WorkerHandle {
  readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | null = null;
  readonly ready: Promise<{ backend: string; paramNames: string[] }>;

  constructor(url: URL, init: WorkerInit) {
    this.worker = spawnWorker(url, init);
    this.ready = new Promise((resolve, reject) => {
      const onMessage = (m: WorkerReply) => {
        if (m.type === 'ready') resolve({ backend: m.backend, paramNames: m.paramNames });
        else if (m.type === 'error' && m.id === -1) reject(new Error(m.message));
      };
      this.worker.on('message', onMessage);
      this.worker.once('error', reject);
    });
    this.worker.on('message', (m: WorkerReply) => {
      if (m.type === 'ready') return;
      const id = 'id' in m ? m.id : -1;
      if (m.type === 'error' && id === -1) {
        this.fail(new Error(m.message));
        return;
      }
      const p = this.pending.get(id);
      if (p == null) return;
      this.pending.delete(id);
      if (m.type === 'error') p.reject(new Error(m.message));
      else p.resolve(m);
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`training worker exited with code ${code}`)));
  }

  private fail(e: Error): void {
    if (this.failure == null) this.failure = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  request(msg: DistributiveOmit<Extract<WorkerRequest, { id: number }>, 'id'>, transfer: ArrayBuffer[] = []): Promise<WorkerReply> {
    if (this.failure != null) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  post(msg: WorkerRequest, transfer: ArrayBuffer[] = []): void {
    if (this.failure != null) throw this.failure;
    this.worker.postMessage(msg, transfer);
  }
}

function defaultWorkerUrl(): URL {
  const here = new URL(import.meta.url);
  return new URL(here.pathname.endsWith('.ts') ? './ml-worker.ts' : './ml-worker.js', here);
}

/** Splits n into `parts` contiguous counts as equal as possible (larger first). */
export function splitCounts(n: number, parts: number): number[] {
  const base = Math.floor(n / parts);
  const extra = n % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0));
}

/** Merges per-part BatchNorm statistics into whole-batch mean and biased variance. */
export function mergeStats(parts: StatsData[][]): StatsData[] {
  if (parts.length === 1) return parts[0];
  return parts[0].map((first, li) => {
    const c = first.mean.length;
    const mean = new Float64Array(c);
    const sq = new Float64Array(c);
    let total = 0;
    for (const p of parts) {
      const s = p[li];
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

export class TrainPool {
  private constructor(
    private readonly handles: WorkerHandle[],
    /** Backend each worker runs. */
    readonly backend: string,
    /** Parameter names in gradient order. */
    readonly paramNames: string[],
  ) {}

  /** Starts the workers and waits until each has built its replica. */
  static async create(opts: TrainPoolOptions): Promise<TrainPool> {
    const n = opts.workers ?? Math.max(1, availableParallelism());
    if (!Number.isInteger(n) || n < 1) throw new Error(`TrainPool workers must be a positive integer (got ${n})`);
    const { workers: _w, workerUrl, ...init } = opts;
    void _w;
    const url = workerUrl ?? defaultWorkerUrl();
    const handles = Array.from({ length: n }, () => new WorkerHandle(url, init));
    try {
      const ready = await Promise.all(handles.map((h) => h.ready));
      return new TrainPool(handles, ready[0].backend, ready[0].paramNames);
    } catch (e) {
      await Promise.all(handles.map((h) => h.worker.terminate()));
      throw e;
    }
  }

  get size(): number {
    return this.handles.length;
  }

  /**
   * One optimisation step on the whole batch (NHWC Float32Array, see train-step.ts): the batch is
   * split along N over the workers. Returns the loss terms averaged over the parts (weighted by
   * part size).
   */
  async step<B extends ReconBatch | ClassBatch>(batch: B): Promise<B extends ClassBatch ? ClassLosses : ReconLosses> {
    const [n, h, w, c] = batch.shape;
    const per = h * w * c;
    const counts = splitCounts(n, this.handles.length);
    const jobs: Promise<WorkerReply>[] = [];
    const used: number[] = [];
    let start = 0;
    counts.forEach((k, i) => {
      if (k === 0) return;
      const part = (a: Float32Array | undefined) => (a == null ? undefined : a.slice(start * per, (start + k) * per));
      let sub: ReconBatch | ClassBatch;
      if ('labels' in batch) {
        sub = { shape: [k, h, w, c], input: part(batch.input)!, labels: batch.labels.slice(start, start + k) };
      } else {
        const rb = batch as ReconBatch;
        sub = { shape: [k, h, w, c], input: part(rb.input)!, target: part(rb.target)!, mask: part(rb.mask) };
      }
      const transfer = [sub.input.buffer, ...('target' in sub ? [sub.target.buffer] : []), ...('mask' in sub && sub.mask ? [sub.mask.buffer] : [])] as ArrayBuffer[];
      jobs.push(this.handles[i].request({ type: 'grad', batch: sub }, transfer));
      used.push(k);
      start += k;
    });
    const replies = (await Promise.all(jobs)) as Extract<WorkerReply, { type: 'grad' }>[];
    // weighted average of gradients and losses
    const grads = replies[0].grads.map((g) => new Float32Array(g.length));
    const losses: Record<string, number> = {};
    replies.forEach((r, i) => {
      const wgt = used[i] / n;
      r.grads.forEach((g, j) => {
        const acc = grads[j];
        for (let t = 0; t < g.length; t++) acc[t] += g[t] * wgt;
      });
      for (const [k, v] of Object.entries(r.losses)) losses[k] = (losses[k] ?? 0) + v * wgt;
    });
    const stats = mergeStats(replies.map((r) => r.stats));
    for (const hd of this.handles) hd.post({ type: 'apply', grads, stats });
    return losses as unknown as B extends ClassBatch ? ClassLosses : ReconLosses;
  }

  /** Weights of the (identical) replicas, from the first worker. */
  async getWeights(): Promise<WeightEntry[]> {
    const r = await this.handles[0].request({ type: 'getWeights' });
    return (r as Extract<WorkerReply, { type: 'weights' }>).entries;
  }

  async setWeights(entries: WeightEntry[]): Promise<void> {
    await Promise.all(this.handles.map((h) => h.request({ type: 'setWeights', entries })));
  }

  async getOptimizerState(): Promise<OptimizerState> {
    const r = await this.handles[0].request({ type: 'getOptimizer' });
    return (r as Extract<WorkerReply, { type: 'optimizer' }>).state;
  }

  async setOptimizerState(state: OptimizerState): Promise<void> {
    await Promise.all(this.handles.map((h) => h.request({ type: 'setOptimizer', state })));
  }

  /** tf.memory().numTensors of each worker (leak checks). */
  async numTensors(): Promise<number[]> {
    const rs = await Promise.all(this.handles.map((h) => h.request({ type: 'memory' })));
    return rs.map((r) => (r as Extract<WorkerReply, { type: 'memory' }>).numTensors);
  }

  async close(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.worker.terminate()));
  }
}
