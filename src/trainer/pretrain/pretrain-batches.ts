/**
 * Model-ready slices from a manifest: decode -> HU -> radiological display orientation ->
 * window -> square resize, in the trainer process. An optional on-disk cache keeps preprocessed
 * slices (16-bit, keyed by file identity and the preprocessing spec) to speed up later epochs.
 * Batches are produced by a bounded prefetch queue, so memory does not grow with the cohort.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PreprocessSpec } from '../../core/ssl/preprocess';
import { Rng } from '../../core/random';
import { isReconstructionTask, makeExample, pairedSliceOffset, reconBatch, stackClass, type ClassExample, type TaskOptions } from '../../core/ssl/tasks';
import type { Manifest, SliceRef, Split } from '../../library/runs/manifest';
import { sliceRefs } from '../../library/runs/manifest';
import { readModelSlice } from '../../library/volumes/model-slice';

export class SliceSource {
  private cacheDir: string | null;
  private specKey: string;
  hits = 0;
  misses = 0;

  constructor(
    readonly manifest: Manifest,
    readonly spec: PreprocessSpec,
    cacheDir?: string | null,
  ) {
    this.specKey = createHash('sha1').update(JSON.stringify(spec)).digest('hex').slice(0, 12);
    this.cacheDir = cacheDir ? join(cacheDir, this.specKey) : null;
  }

  private cachePath(path: string, frame: number): string | null {
    if (!this.cacheDir) return null;
    let st;
    try {
      st = statSync(path);
    } catch {
      return null;
    }
    const key = createHash('sha1').update(`${path}|${frame}|${st.size}|${st.mtimeMs}`).digest('hex');
    return join(this.cacheDir, key.slice(0, 2), key + '.u16');
  }

  /** One slice as a size x size Float32Array in [0, 1]; written into `into` (and returned) when given. */
  async load(ref: SliceRef, into?: Float32Array): Promise<Float32Array> {
    const s = this.manifest.series[ref.series];
    const sl = s.slices[ref.slice];
    const size = this.spec.size;
    const cp = this.cachePath(sl.path, sl.frame);
    if (cp) {
      try {
        const bytes = readFileSync(cp);
        if (bytes.length === 2 * size * size) {
          this.hits++;
          const u16 = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, size * size) : new Uint16Array(new Uint8Array(bytes).buffer);
          const out = into ?? new Float32Array(u16.length);
          for (let i = 0; i < u16.length; i++) out[i] = u16[i] / 65535;
          return out;
        }
      } catch {
        /* not cached yet */
      }
    }
    this.misses++;
    const out = await readModelSlice(sl.path, sl.frame, s.transform, this.spec, into);
    if (cp) {
      const u16 = new Uint16Array(out.length);
      for (let i = 0; i < out.length; i++) u16[i] = Math.round(Math.min(1, Math.max(0, out[i])) * 65535);
      mkdirSync(join(cp, '..'), { recursive: true });
      const tmp = cp + '.' + process.pid + '.tmp';
      writeFileSync(tmp, new Uint8Array(u16.buffer));
      renameSync(tmp, cp);
      // Same values whether or not the cache was used: quantise the fresh slice too.
      for (let i = 0; i < out.length; i++) out[i] = u16[i] / 65535;
    }
    return out;
  }
}

export type PretrainBatch =
  | { kind: 'recon'; shape: [number, number, number, number]; input: Float32Array; target: Float32Array; mask?: Float32Array; refs: SliceRef[] }
  | { kind: 'class'; shape: [number, number, number, number]; input: Float32Array; labels: Int32Array; refs: SliceRef[] };

/** Mixes integers into a 32-bit seed. */
export function mixSeed(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193);
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  }
  return h >>> 0;
}

/**
 * The batch at a position (epoch, index), with the next `depth` positions already being built in
 * the background: a bounded queue, so memory does not grow with the cohort.
 */
export class PrefetchQueue<T> {
  private queue: { key: string; promise: Promise<T> }[] = [];

  constructor(
    private build: (epoch: number, index: number) => Promise<T>,
    private batchesPerEpoch: () => number,
    private depth = 2,
  ) {}

  get(epoch: number, index: number): Promise<T> {
    const key = `${epoch}:${index}`;
    let hit = this.queue.findIndex((q) => q.key === key);
    if (hit < 0) {
      this.queue = [{ key, promise: this.build(epoch, index) }];
      hit = 0;
    }
    const [entry] = this.queue.splice(0, hit + 1).slice(-1);
    let [e, i] = [epoch, index];
    while (this.queue.length < this.depth) {
      i++;
      if (i >= this.batchesPerEpoch()) {
        e++;
        i = 0;
      }
      const k = `${e}:${i}`;
      if (!this.queue.some((q) => q.key === k)) {
        const p = this.build(e, i);
        p.catch(() => undefined); // surfaced when awaited
        this.queue.push({ key: k, promise: p });
      }
    }
    return entry.promise;
  }
}

/**
 * Deterministic batches: epoch e's order is a shuffle seeded by (seed, e), and batch b's task
 * randomness by (seed, e, b). So a position (epoch, batch) is all a checkpoint needs to resume
 * with exactly the same data.
 */
export class PretrainBatchStream {
  readonly refs: SliceRef[];
  /** Buffers the slices of a batch are read into, reused by later batches (nothing in them outlives build). */
  private scratch: Float32Array[] = [];
  private order: SliceRef[] = [];
  private orderEpoch = -1;
  private prefetcher: PrefetchQueue<PretrainBatch>;
  /** Distance to the second slice each example needs (next slice: the gap), 0 for none. */
  private paired: number;

  constructor(
    private source: SliceSource,
    private split: Split,
    private task: TaskOptions,
    readonly batchSize: number,
    private seed: number,
    private prefetch = 2,
    private shuffle = true,
  ) {
    this.paired = pairedSliceOffset(task);
    this.refs = sliceRefs(source.manifest, split, this.paired);
    if (this.refs.length === 0) throw new Error(`no ${split} slices in the manifest for task ${task.task}`);
    this.prefetcher = new PrefetchQueue((e, i) => this.build(e, i), () => this.batchesPerEpoch, prefetch);
  }

  get batchesPerEpoch(): number {
    return Math.ceil(this.refs.length / this.batchSize);
  }

  private epochOrder(epoch: number): SliceRef[] {
    if (this.orderEpoch !== epoch) {
      this.order = this.shuffle ? new Rng(mixSeed(this.seed, epoch, 0x5eed)).shuffle([...this.refs]) : [...this.refs];
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  private async build(epoch: number, index: number): Promise<PretrainBatch> {
    const order = this.epochOrder(epoch);
    const refs = order.slice(index * this.batchSize, (index + 1) * this.batchSize);
    const rng = new Rng(mixSeed(this.seed, epoch, index));
    const size = this.source.spec.size;
    const px = size * size;
    // The slices go into a reused buffer: a fresh one per slice costs more (allocation, page
    // faults, garbage collection) than reading and preprocessing it (bench/pipeline.ts). The
    // examples are stacked into new batch arrays, so nothing returned refers to the buffer.
    const need = refs.length * (this.paired > 0 ? 2 : 1) * px;
    const at = this.scratch.findIndex((b) => b.length >= need);
    const buf = at >= 0 ? this.scratch.splice(at, 1)[0] : new Float32Array(need);
    let done = false;
    try {
      const slot = (i: number) => buf.subarray(i * px, (i + 1) * px);
      const imgs = await Promise.all(refs.map((r, i) => this.source.load(r, slot(i))));
      const nexts = this.paired > 0 ? await Promise.all(refs.map((r, i) => this.source.load({ series: r.series, slice: r.slice + this.paired }, slot(refs.length + i)))) : [];
      done = true;
      if (isReconstructionTask(this.task.task)) return { kind: 'recon', ...reconBatch(this.task, imgs, size, rng, nexts), refs };
      const examples = imgs.map((img, i) => makeExample(this.task, img, size, rng, nexts[i]));
      return { kind: 'class', ...stackClass(examples as ClassExample[], size), refs };
    } finally {
      // After a failed read other reads of the batch may still be writing: that buffer is dropped.
      if (done && this.scratch.length < this.prefetch + 2) this.scratch.push(buf);
    }
  }

  /** The batch at (epoch, index), with the next `prefetch` batches started in the background. */
  get(epoch: number, index: number): Promise<PretrainBatch> {
    return this.prefetcher.get(epoch, index);
  }

}

/** The name test/golden.test.ts imports (that test does not change); use PretrainBatchStream. */
export { PretrainBatchStream as BatchStream };
