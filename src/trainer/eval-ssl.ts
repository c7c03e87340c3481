/**
 * Evaluation of a pretext task on held-out scans, as the paper's Table II: MSE, SSIM and
 * masked-region MSE (mean and standard deviation) for the reconstruction tasks; cross-entropy and
 * one-vs-rest AUROC for the classification tasks (rotation, flip). Statistics are given per volume
 * (each scan's mean over its slices, then mean and sd across scans: the paper's unit) and per
 * image. Sample images (input / output / target / difference) are written as PNG for the Table II
 * figure. Fewer than 10 held-out patients give a warning: the numbers then describe those patients.
 * Masked MSE and cross-entropy are also given in the paper's definitions (batch-summed,
 * double-softmax: src/shared/paper-table2.ts), and the Markdown table puts the paper's published
 * row beside them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AurocMetric, MeanMetric, ReconstructionMetric } from '../core/metrics/accumulators';
import { heldOutWarnings } from '../core/metrics/cluster';
import { taskClasses, taskOption, taskOptionsOf, taskTableName } from '../shared/pretext-tasks';
import { greyPng, reconstructionPngs } from './sample-png';
import { initBackend, type BackendChoice } from './backend';
import { latestCheckpointDir, readCheckpoint, writeJsonAtomic } from '../library/runs/checkpoint';
import { createPretrainEngine } from './pretrain/pretrain-engine';
import type { Split } from '../library/runs/manifest';
import { PretrainBatchStream, SliceSource } from './pretrain/pretrain-batches';
import { runPreprocessSpec } from '../core/ssl/preprocess';
import { readPretrainRun } from './pretrain/pretrain-loop';
import type { SslEvaluation, Stat } from '../shared/results';
import { batchSummedStat, doubleSoftmaxCrossEntropy } from '../core/ssl/paper-metrics';
import { formatPaperStat, PAPER_TABLE2_SOURCE, REFERENCE_BATCH, TABLE2_DEFINITIONS, paperTable2Row } from '../shared/paper-table2';

export interface EvalOptions {
  split?: Split;
  /** At most this many slices (0 = all). */
  maxSlices?: number;
  samples?: number;
  backend?: BackendChoice;
  cacheDir?: string | null;
  batchSize?: number;
}

/**
 * The Table II rows for this evaluation, as Markdown: the run in our definitions, the run in the
 * paper's (src/shared/paper-table2.ts), the paper's published row for the task, then what each
 * column means.
 */
function tableOf(e: Omit<SslEvaluation, 'table'>): string {
  const f = (s?: Stat) => (s && Number.isFinite(s.mean) ? `${s.mean.toFixed(4)} ± ${s.sd.toFixed(4)}` : '');
  const name = taskTableName(e);
  const v = e.perVolume;
  const auroc = v.auroc && Number.isFinite(v.auroc.mean) ? v.auroc.mean.toFixed(4) : '';
  const cells = (key: (d: (typeof TABLE2_DEFINITIONS)[number]) => string) => TABLE2_DEFINITIONS.map((d) => (d.column === 'auroc' ? auroc : f(v[key(d)]))).join(' | ');
  const paper = paperTable2Row(e);
  const paperCells = paper ? TABLE2_DEFINITIONS.map((d) => formatPaperStat(paper.values[d.column])).join(' | ') : '';
  return [
    `| task | definitions | ${TABLE2_DEFINITIONS.map((d) => (d.column === 'auroc' ? 'AUROC (one-vs-rest)' : d.label)).join(' | ')} |`,
    '|---|---|---|---|---|---|---|',
    `| ${name} | ours | ${cells((d) => d.ours)} |`,
    `| ${name} | paper's | ${cells((d) => d.paper)} |`,
    ...(paper ? [`| ${paper.name} | ${PAPER_TABLE2_SOURCE.replace(/ \(.*\)$/, '')} | ${paperCells} |`] : []),
    '',
    `${e.volumes} held-out volume(s) of ${e.patients} patient(s), ${e.images} images, ${e.split} split, checkpoint at step ${e.checkpointStep}; mean ± sd across volumes.`,
    ...TABLE2_DEFINITIONS.map((d) =>
      d.ours === d.paper ? `${d.label}: ${d.oursText} (ours and the paper's).` : `${d.label}: ours, ${d.oursText}; paper's, ${d.paperText}.`,
    ),
  ].join('\n');
}

export async function evaluateRun(runDir: string, o: EvalOptions = {}): Promise<SslEvaluation> {
  const { config, manifest } = readPretrainRun(runDir);
  const ck = latestCheckpointDir(runDir);
  if (!ck) throw new Error(`${runDir} has no checkpoint to evaluate`);
  const warnings: string[] = [];
  let split: Split = o.split ?? 'test';
  for (const s of [split, 'val', 'train'] as Split[]) {
    if (manifest.counts[s].slices > 0) {
      if (s !== split) warnings.push(`the ${split} split is empty: evaluated on the ${s} split instead (not held out!)`);
      split = s;
      break;
    }
  }
  const backend = await initBackend({ force: o.backend });
  const engine = createPretrainEngine(config);
  const c = readCheckpoint(ck);
  await engine.setWeights(c.weights, true);
  const size = engine.size;
  const spec = runPreprocessSpec(config, size);
  const source = new SliceSource(manifest, spec, o.cacheDir ?? null);
  const task = taskOptionsOf(config);
  const stream = new PretrainBatchStream(source, split, task, o.batchSize ?? config.batchSize, config.seed ^ 0xe7a1, 1, false);
  const px = size * size;
  const limit = o.maxSlices && o.maxSlices > 0 ? o.maxSlices : Infinity;
  const classes = taskClasses(config.task);
  // Reconstruction tasks: image metrics per image and volume. Classification tasks: AUROC, and each
  // image's cross-entropy per image and volume.
  const reconstruction = new ReconstructionMetric(size);
  const probabilities = classes > 0 ? new AurocMetric({ classes, rows: true }) : null;
  const imageLoss = new MeanMetric();
  const sampleCount = o.samples ?? 4;
  const outDir = join(runDir, 'eval');
  mkdirSync(outDir, { recursive: true });
  const samples: SslEvaluation['samples'] = [];
  let images = 0;
  const patients = new Set<string>();
  for (let i = 0; i < stream.batchesPerEpoch && images < limit; i++) {
    const b = await stream.get(0, i);
    const out = await engine.predict(b);
    const take = Math.min(b.shape[0], limit - images);
    const volumes = b.refs.slice(0, take).map((r) => r.series);
    for (const v of volumes) patients.add(manifest.series[v].patientKey);
    if (b.kind === 'recon') {
      reconstruction.update(out.subarray(0, take * px), b.target.subarray(0, take * px), { mask: b.mask?.subarray(0, take * px), groups: volumes });
    } else {
      probabilities!.update(out.subarray(0, take * classes), b.labels.slice(0, take));
      for (let k = 0; k < take; k++) {
        imageLoss.add('crossEntropy', -Math.log(Math.max(1e-12, out[k * classes + b.labels[k]])), volumes[k]);
        imageLoss.add('crossEntropyDoubleSoftmax', doubleSoftmaxCrossEntropy(out.subarray(k * classes, (k + 1) * classes), b.labels[k]), volumes[k]);
      }
    }
    for (let k = 0; k < take && samples.length < sampleCount; k++) {
      const input = b.input.subarray(k * px, (k + 1) * px);
      if (b.kind === 'recon') {
        const o2 = out.subarray(k * px, (k + 1) * px);
        const t = b.target.subarray(k * px, (k + 1) * px);
        const n = samples.length;
        const png = reconstructionPngs(input, o2, t, size);
        const write = (name: keyof typeof png) => {
          const p = join(outDir, `sample-${n}-${name}.png`);
          writeFileSync(p, png[name]);
          return p;
        };
        samples.push({ input: write('input'), output: write('output'), target: write('target'), diff: write('diff') });
      } else {
        const p = Array.from(out.subarray(k * classes, (k + 1) * classes));
        const pth = join(outDir, `sample-${samples.length}-input-class${b.labels[k]}-pred${p.indexOf(Math.max(...p))}.png`);
        writeFileSync(pth, greyPng(input, size));
        samples.push({ input: pth, output: pth, target: null, diff: null });
      }
    }
    images += take;
  }
  await engine.dispose();
  const r = (probabilities ? imageLoss : reconstruction).compute();
  const perImageStats: Record<string, Stat> = { ...r.perItem };
  const perVolume: Record<string, Stat> = { ...r.perGroup };
  let aurocPerClass: number[] | undefined;
  if (probabilities?.count) {
    const p = probabilities.compute();
    aurocPerClass = p.perClass;
    perImageStats.auroc = { mean: p.auroc, sd: 0, n: p.n };
    perVolume.auroc = { mean: p.auroc, sd: 0, n: r.groups };
    perImageStats.crossEntropy = { ...perImageStats.crossEntropy, mean: p.crossEntropy! };
  }
  // The paper's masked MSE: each image's masked MSE summed over a batch of 16 (src/shared/paper-table2.ts).
  if (perVolume.maskedMse) perVolume.maskedMseBatchSum = batchSummedStat(perVolume.maskedMse, REFERENCE_BATCH);
  if (perImageStats.maskedMse) perImageStats.maskedMseBatchSum = batchSummedStat(perImageStats.maskedMse, REFERENCE_BATCH);
  if (r.groups < 2) warnings.push('fewer than 2 held-out volumes: the sd across volumes is not meaningful');
  warnings.push(...heldOutWarnings({ what: `evaluated ${split} split`, patients: patients.size }));
  const base = {
    runDir,
    task: config.task,
    maskPercent: taskOption(config, 'maskPercent'),
    maskDefinition: taskOption(config, 'maskDefinition'),
    split,
    checkpointStep: c.state.step,
    backend: `${backend.package}@${backend.version}`,
    patients: patients.size,
    volumes: r.groups,
    images,
    perVolume,
    perImage: perImageStats,
    aurocPerClass,
    samples,
    warnings,
  };
  const result: SslEvaluation = { ...base, table: tableOf(base) };
  writeJsonAtomic(join(outDir, 'table2.json'), result);
  writeFileSync(join(outDir, 'table2.md'), result.table + '\n');
  return result;
}
