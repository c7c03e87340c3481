/**
 * Deterministic batches for fine-tuning: slices with their 0/1 labels (classification) or masks
 * (segmentation), a seeded stratified subset of the training split (the paper's training-set
 * fractions), the same (epoch, index) -> batch property as pretraining so runs resume exactly.
 */
import { toDisplay } from '../../core/dicom/geometry';
import { resizeSquare } from '../../core/ssl/preprocess';
import { Rng } from '../../core/random';
import { readMask, type FinetuneManifest } from '../../library/runs/finetune-manifest';
import type { Manifest, SliceRef, Split } from '../../library/runs/manifest';
import { mixSeed, PrefetchQueue, SliceSource } from '../pretrain/pretrain-batches';

export type FinetuneBatch =
  | { kind: 'class'; shape: [number, number, number, number]; input: Float32Array; labels: Int32Array; refs: SliceRef[] }
  | { kind: 'seg'; shape: [number, number, number, number]; input: Float32Array; mask: Float32Array; refs: SliceRef[] };

/** Training refs: a stratified fraction of the split's slices, chosen by the seed. */
export function finetuneSliceRefs(m: FinetuneManifest, split: Split, fraction: number, seed: number): SliceRef[] {
  const pos: SliceRef[] = [];
  const neg: SliceRef[] = [];
  m.series.forEach((s, si) => {
    if (s.split !== split) return;
    s.slices.forEach((sl, i) => (sl.label === 1 ? pos : neg).push({ series: si, slice: i }));
  });
  if (fraction >= 1) return [...pos, ...neg];
  const rng = new Rng(mixSeed(seed, 0xf7ac));
  const take = (xs: SliceRef[]) => rng.shuffle([...xs]).slice(0, Math.max(xs.length ? 1 : 0, Math.round(xs.length * fraction)));
  return [...take(pos), ...take(neg)];
}

export class FinetuneBatchStream {
  readonly refs: SliceRef[];
  private source: SliceSource;
  private orders = new Map<number, SliceRef[]>();
  private prefetcher: PrefetchQueue<FinetuneBatch>;

  constructor(
    private manifest: FinetuneManifest,
    private masks: Uint8Array,
    source: SliceSource,
    split: Split,
    readonly batchSize: number,
    private seed: number,
    fraction = 1,
    private shuffle = true,
    private prefetch = 2,
  ) {
    this.source = source;
    this.refs = finetuneSliceRefs(manifest, split, fraction, seed);
    if (this.refs.length === 0) throw new Error(`no labelled ${split} slices in the manifest`);
    this.prefetcher = new PrefetchQueue((e, i) => this.build(e, i, this.manifest.task), () => this.batchesPerEpoch, prefetch);
  }

  get batchesPerEpoch(): number {
    return Math.ceil(this.refs.length / this.batchSize);
  }

  /** Label counts of the stream's slices: [negatives, positives]. */
  classCounts(): [number, number] {
    let p = 0;
    for (const r of this.refs) p += this.manifest.series[r.series].slices[r.slice].label;
    return [this.refs.length - p, p];
  }

  /** Loss weights of the classes: inverse frequency ('balanced', when both occur), else [1, 1]. */
  classWeights(mode: 'balanced' | 'none'): number[] {
    const [neg, pos] = this.classCounts();
    return mode === 'balanced' && neg > 0 && pos > 0 ? [(neg + pos) / (2 * neg), (neg + pos) / (2 * pos)] : [1, 1];
  }

  /**
   * The fixed batches BatchNorm running statistics are re-estimated from before an evaluation
   * (like PyTorch's update_bn): the first `n` of epoch 0.
   */
  async calibrationBatches(n = 4): Promise<FinetuneBatch[]> {
    const out: FinetuneBatch[] = [];
    for (let i = 0; i < Math.min(n, this.batchesPerEpoch); i++) out.push(await this.get(0, i));
    return out;
  }

  private order(epoch: number): SliceRef[] {
    let o = this.orders.get(epoch);
    if (!o) {
      o = this.shuffle ? new Rng(mixSeed(this.seed, epoch, 0x5eed)).shuffle([...this.refs]) : [...this.refs];
      this.orders.clear();
      this.orders.set(epoch, o);
    }
    return o;
  }

  private maskOf(ref: SliceRef, size: number): Float32Array {
    const s = this.manifest.series[ref.series];
    const sl = s.slices[ref.slice];
    if (!sl.mask) return new Float32Array(size * size);
    const stored = readMask(this.masks, sl.mask, s.rows, s.columns);
    const disp = new Uint8Array(stored.length);
    const { width, height } = toDisplay(stored, s.rows, s.columns, s.transform, disp);
    const r = resizeSquare(Float32Array.from(disp), width, height, size, 0);
    for (let i = 0; i < r.length; i++) r[i] = r[i] >= 0.5 ? 1 : 0;
    return r;
  }

  private async build(epoch: number, index: number, task: 'classification' | 'segmentation'): Promise<FinetuneBatch> {
    const refs = this.order(epoch).slice(index * this.batchSize, (index + 1) * this.batchSize);
    const size = this.source.spec.size;
    const imgs = await Promise.all(refs.map((r) => this.source.load(r)));
    const n = refs.length;
    const input = new Float32Array(n * size * size);
    imgs.forEach((im, i) => input.set(im, i * size * size));
    const shape: [number, number, number, number] = [n, size, size, 1];
    if (task === 'classification') {
      return { kind: 'class', shape, input, labels: Int32Array.from(refs.map((r) => this.manifest.series[r.series].slices[r.slice].label)), refs };
    }
    const mask = new Float32Array(n * size * size);
    refs.forEach((r, i) => mask.set(this.maskOf(r, size), i * size * size));
    return { kind: 'seg', shape, input, mask, refs };
  }

  get(epoch: number, index: number): Promise<FinetuneBatch> {
    return this.prefetcher.get(epoch, index);
  }

}

/** A slice source over a fine-tuning manifest (same slice layout as pretraining manifests). */
export function finetuneSliceSource(m: FinetuneManifest, spec: SliceSource['spec'], cacheDir: string | null): SliceSource {
  return new SliceSource(m as unknown as Manifest, spec, cacheDir);
}
