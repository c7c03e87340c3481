/**
 * Fine-tuning in the trainer process: the same events, checkpoints, pause/stop and exact resume
 * as pretraining, on labelled slices. The encoder may start from a pretrained run and stay frozen
 * for the first epochs; class imbalance is handled by loss weights. At the end the model is
 * evaluated on the held-out split: AUROC with a bootstrap 95% interval and sensitivity/specificity
 * at the Youden threshold chosen on validation (classification), Dice and IoU (segmentation).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFinetuneConfig, type FinetuneConfig } from '../../shared/run-config';
import type { HostMessage } from '../../shared/trainer-protocol';
import type { FinetuneResults } from '../../shared/results';
import { AurocMetric, DiceMetric } from '../../core/metrics/accumulators';
import { chooseThreshold, rocCurve, thresholdMetrics, type BootstrapOptions } from '../../core/metrics/classification';
import { vqvaePreset, type VqvaePresetName } from '../../core/ml/vqvae';
import { latestCheckpointDir, readCheckpoint, writeJsonAtomic } from '../../library/runs/checkpoint';
import type { FinetuneManifest } from '../../library/runs/finetune-manifest';
import { createFinetuneEngine, type FinetuneEngine } from './finetune-engine';
import { FinetuneBatchStream, finetuneSliceSource, type FinetuneBatch } from './finetune-batches';
import type { Split } from '../../library/runs/manifest';
import { configHash } from '../../library/runs/run-hash';
import { checkpointSaver, runSteps, startBackend, truncateMetrics, type TrainerPort } from '../step-loop';

export function finetuneSize(c: FinetuneConfig): number {
  return c.size ?? vqvaePreset(c.preset as VqvaePresetName).size;
}

export function readFinetuneRun(runDir: string): { config: FinetuneConfig; manifest: FinetuneManifest; masks: Uint8Array } {
  const config = parseFinetuneConfig(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')));
  const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as FinetuneManifest;
  const masks = existsSync(join(runDir, 'masks.bin')) ? new Uint8Array(readFileSync(join(runDir, 'masks.bin'))) : new Uint8Array(0);
  return { config, manifest, masks };
}

/** The accumulator of a task's held-out metric: AUROC of slice scores, or Dice of slice masks. */
function taskMetric(config: FinetuneConfig, size: number, bootstrap?: BootstrapOptions): AurocMetric | DiceMetric {
  return config.task === 'classification' ? new AurocMetric({ bootstrap }) : new DiceMetric({ imageSize: size * size });
}

/**
 * Adds the model's predictions on a stream's first `maxBatches` batches (0: all) to `metric`: the
 * positive-class score of each slice (classification), or each slice's mask predicted at p >= 0.5
 * (segmentation).
 */
async function collect<M extends AurocMetric | DiceMetric>(engine: FinetuneEngine, stream: FinetuneBatchStream, maxBatches: number, metric: M): Promise<M> {
  const n = maxBatches === 0 ? stream.batchesPerEpoch : Math.min(maxBatches, stream.batchesPerEpoch);
  const px = engine.size * engine.size;
  for (let i = 0; i < n; i++) {
    const b: FinetuneBatch = await stream.get(0, i);
    const p = await engine.predict(b);
    if (b.kind === 'class' && metric instanceof AurocMetric) metric.update(Float64Array.from({ length: b.shape[0] }, (_, k) => p[k * 2 + 1]), b.labels);
    else if (b.kind === 'seg' && metric instanceof DiceMetric) metric.update(Uint8Array.from(p.subarray(0, b.shape[0] * px), (v) => (v >= 0.5 ? 1 : 0)), b.mask);
    else throw new Error(`a ${b.kind} batch for the ${metric.constructor.name}`);
  }
  return metric;
}

export async function runFinetune(msg: Extract<HostMessage, { type: 'start' }>, port: TrainerPort): Promise<void> {
  const { runDir } = msg;
  const { config, manifest, masks } = readFinetuneRun(runDir);
  await startBackend(msg, port);
  const size = finetuneSize(config);
  const spec = { level: config.windowLevel, width: config.windowWidth, size, scaling: config.scaling };
  const source = finetuneSliceSource(manifest, spec, config.useCache ? msg.cacheDir : null);
  const train = new FinetuneBatchStream(manifest, masks, source, 'train', config.batchSize, config.seed, config.trainFraction);
  const evalSplit = (want: Split): Split => (manifest.counts[want].slices > 0 ? want : manifest.counts.val.slices > 0 ? 'val' : 'train');
  const val = new FinetuneBatchStream(manifest, masks, source, evalSplit('val'), config.batchSize, config.seed ^ 0x5a17, 1, false);
  const [neg, pos] = train.classCounts();
  const classWeights = config.classWeights === 'balanced' && neg > 0 && pos > 0 ? [(neg + pos) / (2 * neg), (neg + pos) / (2 * pos)] : [1, 1];
  const engine = await createFinetuneEngine(config, classWeights);
  const totalSteps = config.steps ?? Math.max(1, Math.ceil((config.epochs ?? 1) * train.batchesPerEpoch));
  const cHash = configHash(config);

  let step = 0;
  let epoch = 0;
  let batch = 0;
  let resumedFrom: number | null = null;
  const ck = msg.resume ? latestCheckpointDir(runDir) : null;
  if (ck) {
    const c = readCheckpoint(ck);
    if (c.state.configHash !== cHash) throw new Error(`the checkpoint in ${ck} was written with a different config`);
    await engine.setWeights(c.weights);
    if (c.optimizer) await engine.setOptimizerState(c.optimizer);
    ({ step, epoch, batch } = c.state);
    resumedFrom = step;
  } else if (config.init) {
    const initDir = latestCheckpointDir(config.init);
    if (!initDir) throw new Error(`init run ${config.init} has no checkpoint`);
    try {
      await engine.loadEncoder(readCheckpoint(initDir).weights);
    } catch (err) {
      throw new Error(`init run ${config.init}: ${(err as Error).message}`);
    }
  }
  const metricsPath = join(runDir, 'metrics.jsonl');
  truncateMetrics(metricsPath, step);
  port.send({ v: 1, type: 'started', step, totalSteps, batchesPerEpoch: train.batchesPerEpoch, params: engine.params, resumedFrom });

  // BatchNorm running statistics lag behind fast-moving weights: re-estimate them from a few
  // fixed training batches before every evaluation (like PyTorch's update_bn).
  const recalibrate = async (epoch: number) => {
    const n = Math.min(4, train.batchesPerEpoch);
    const batches: FinetuneBatch[] = [];
    for (let i = 0; i < n; i++) batches.push(await train.get(0, i));
    await engine.recalibrate(batches, { freezeEncoder: epoch < config.freezeEpochs });
  };
  const validate = async (epoch: number) => {
    await recalibrate(epoch);
    const c = await collect(engine, val, config.evalBatches, taskMetric(config, size));
    const metrics: Record<string, number> = {};
    if (c instanceof AurocMetric) {
      metrics.auroc = c.compute().auroc;
    } else {
      const s = c.compute();
      metrics.dice = s.microDice;
      metrics.iou = s.microIou;
      metrics.meanSliceDice = s.meanDice;
    }
    return metrics;
  };

  const { position, stopped, last } = await runSteps<FinetuneBatch>(
    {
      port,
      metricsPath,
      totalSteps,
      batchSize: config.batchSize,
      batchesPerEpoch: train.batchesPerEpoch,
      evalEvery: config.evalEvery,
      checkpointEvery: config.checkpointEvery,
      getBatch: (e, i) => train.get(e, i),
      step: (b, e) => engine.step(b, { freezeEncoder: e < config.freezeEpochs }),
      lr: () => engine.lr,
      numTensors: () => engine.numTensors(),
      evaluate: (p) => validate(p.epoch),
      save: checkpointSaver(runDir, port, { configHash: cHash, manifestHash: manifest.hash }, engine),
    },
    { step, epoch, batch },
  );
  if (!stopped) {
    await recalibrate(position.epoch);
    const results = await finalEvaluation(engine, manifest, masks, source, config, size, evalSplit);
    writeJsonAtomic(join(runDir, 'results.json'), results);
    port.send({ v: 1, type: 'results', results });
  }
  port.send({ v: 1, type: 'done', step: position.step, stopped, finalLosses: last });
  await engine.dispose();
}

async function finalEvaluation(
  engine: FinetuneEngine,
  manifest: FinetuneManifest,
  masks: Uint8Array,
  source: ReturnType<typeof finetuneSliceSource>,
  config: FinetuneConfig,
  size: number,
  evalSplit: (s: Split) => Split,
): Promise<FinetuneResults> {
  const testSplit = evalSplit('test');
  const valSplit = evalSplit('val');
  const test = new FinetuneBatchStream(manifest, masks, source, testSplit, config.batchSize, config.seed ^ 0x7e57, 1, false);
  const t = await collect(engine, test, 0, taskMetric(config, size, { nResamples: 1000, seed: config.seed }));
  const base = { split: testSplit, slices: t.count, heldOut: testSplit === 'test' };
  if (t instanceof AurocMetric) {
    const v = await collect(engine, new FinetuneBatchStream(manifest, masks, source, valSplit, config.batchSize, config.seed ^ 0x5a17, 1, false), 0, new AurocMetric());
    const r = t.compute();
    if (!r.ci) return { ...base, task: 'classification', error: `the ${testSplit} split has only one class: AUROC undefined` };
    const { scores, labels } = t.values();
    const val = v.values();
    const th = chooseThreshold(val.scores, val.labels, { method: 'youden' });
    const at = thresholdMetrics(scores, labels, th.threshold);
    const roc = rocCurve(scores, labels);
    return {
      ...base,
      task: 'classification',
      positives: r.nPos!,
      auroc: r.ci.estimate,
      aurocCi95: [r.ci.lower, r.ci.upper],
      threshold: { method: 'youden', chosenOn: valSplit, value: th.threshold },
      sensitivity: at.sensitivity,
      specificity: at.specificity,
      ppv: at.ppv,
      npv: at.npv,
      roc: { fpr: Array.from(roc.fpr), tpr: Array.from(roc.tpr) },
      // Held-out scores, in a fixed order, so an experiment can compare models with DeLong's test.
      scores: Array.from(scores),
      labels: Array.from(labels),
    };
  }
  const s = t.compute();
  return { ...base, task: 'segmentation', dice: s.microDice, iou: s.microIou, meanSliceDice: s.meanDice, sdSliceDice: s.sdDice, meanSliceIou: s.meanIou, slicesScored: s.nScored };
}
