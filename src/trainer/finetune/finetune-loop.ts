/**
 * Fine-tuning in the trainer process: the same events, checkpoints, pause/stop and exact resume
 * as pretraining, on labelled slices. The encoder may start from a pretrained run and stay frozen
 * for the first epochs; class imbalance is handled by loss weights. At the end the model is
 * evaluated on the held-out split: AUROC with a patient-level (cluster) bootstrap 95% interval and
 * sensitivity/specificity at the Youden threshold chosen on validation (classification), Dice
 * (with the same kind of interval) and IoU (segmentation); a split with fewer than 10 patients or
 * 20 positive slices carries a warning. With early stopping (`earlyStopPatience`) the run ends once
 * validation has not gained for that many evaluations, and the weights of the best evaluation
 * (kept in `early-stop/` so a resumed run has them) are its last checkpoint and what is scored.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseFinetuneConfig, type FinetuneConfig } from '../../shared/run-config';
import type { HostMessage } from '../../shared/trainer-protocol';
import type { FinetuneResults } from '../../shared/results';
import { AurocMetric, DiceMetric } from '../../core/metrics/accumulators';
import { chooseThreshold, rocCurve, thresholdMetrics } from '../../core/metrics/classification';
import { diceClusterCi, heldOutWarnings, type ClusterBootstrapOptions, type ClusterCi } from '../../core/metrics/cluster';
import { vqvaePreset, type VqvaePresetName } from '../../core/ml/vqvae';
import { latestCheckpointDir, readCheckpoint, writeCheckpoint, writeJsonAtomic } from '../../library/runs/checkpoint';
import type { WeightEntry } from '../../core/ml/weights';
import type { FinetuneManifest } from '../../library/runs/finetune-manifest';
import { createFinetuneEngine, type FinetuneEngine } from './finetune-engine';
import { FinetuneBatchStream, finetuneSliceSource, type FinetuneBatch } from './finetune-batches';
import type { Split } from '../../library/runs/manifest';
import { configHash } from '../../library/runs/run-hash';
import { checkpointSaver, runSteps, startBackend, truncateMetrics, type Position, type TrainerPort } from '../step-loop';
import { EarlyStopping } from './early-stop';

export function finetuneSize(c: FinetuneConfig): number {
  return c.size ?? vqvaePreset(c.preset as VqvaePresetName).size;
}

export function readFinetuneRun(runDir: string): { config: FinetuneConfig; manifest: FinetuneManifest; masks: Uint8Array } {
  const config = parseFinetuneConfig(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')));
  const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as FinetuneManifest;
  const masks = existsSync(join(runDir, 'masks.bin')) ? new Uint8Array(readFileSync(join(runDir, 'masks.bin'))) : new Uint8Array(0);
  return { config, manifest, masks };
}

/** Resamples of the patients for the held-out intervals. */
const BOOTSTRAP_RESAMPLES = 2000;

/** The accumulator of a task's held-out metric: AUROC of slice scores, or Dice of slice masks. */
function taskMetric(config: FinetuneConfig, size: number, clusterBootstrap?: ClusterBootstrapOptions): AurocMetric | DiceMetric {
  return config.task === 'classification' ? new AurocMetric({ clusterBootstrap }) : new DiceMetric({ imageSize: size * size });
}

/** Each patient key as an index 0, 1, ... in order of first appearance: no identifier leaves the manifest. */
class PatientNumbers {
  private readonly ids = new Map<string, number>();
  of(key: string): number {
    let i = this.ids.get(key);
    if (i === undefined) this.ids.set(key, (i = this.ids.size));
    return i;
  }
}

/**
 * Adds the model's predictions on a stream's first `maxBatches` batches (0: all) to `metric`: the
 * positive-class score of each slice (classification), or each slice's mask predicted at p >= 0.5
 * (segmentation); with `patients`, each slice's patient as a number.
 */
async function collect<M extends AurocMetric | DiceMetric>(
  engine: FinetuneEngine,
  stream: FinetuneBatchStream,
  maxBatches: number,
  metric: M,
  patients?: { manifest: FinetuneManifest; numbers: PatientNumbers },
): Promise<M> {
  const n = maxBatches === 0 ? stream.batchesPerEpoch : Math.min(maxBatches, stream.batchesPerEpoch);
  const px = engine.size * engine.size;
  for (let i = 0; i < n; i++) {
    const b: FinetuneBatch = await stream.get(0, i);
    const p = await engine.predict(b);
    const clusters = patients ? Float64Array.from(b.refs.slice(0, b.shape[0]), (r) => patients.numbers.of(patients.manifest.series[r.series].patientKey)) : undefined;
    if (b.kind === 'class' && metric instanceof AurocMetric) metric.update(Float64Array.from({ length: b.shape[0] }, (_, k) => p[k * 2 + 1]), b.labels, clusters);
    else if (b.kind === 'seg' && metric instanceof DiceMetric) metric.update(Uint8Array.from(p.subarray(0, b.shape[0] * px), (v) => (v >= 0.5 ? 1 : 0)), b.mask, clusters);
    else throw new Error(`a ${b.kind} batch for the ${metric.constructor.name}`);
  }
  return metric;
}

/** Warnings about a patient bootstrap whose metric was undefined in many resamples. */
function bootstrapWarnings(ci: ClusterCi, metric: string): string[] {
  if (ci.nValid >= 0.9 * ci.nResamples) return [];
  return [
    `${metric} was undefined in ${ci.nResamples - ci.nValid} of ${ci.nResamples} resamples of the ${ci.clusters} patients (a resample without both classes${metric === 'Dice' ? ' or without foreground' : ''}): the interval is unreliable`,
  ];
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
  const engine = await createFinetuneEngine(config, train.classWeights(config.classWeights));
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

  // Early stopping: the tracker replays the validations a resumed run already made; the best
  // weights so far live in early-stop/ (written at each gain).
  const early = config.earlyStopPatience ? new EarlyStopping(config.earlyStopPatience, config.task === 'classification' ? 'auroc' : 'dice', config.evalEvery) : null;
  const bestDir = join(runDir, 'early-stop');
  // (typed by assertion: TypeScript would narrow a `null` initialiser and miss the closure's writes)
  let best = null as { weights: WeightEntry[]; position: Position } | null;
  let endNow = false;
  if (early) {
    if (!ck) rmSync(bestDir, { recursive: true, force: true });
    else {
      for (const line of existsSync(metricsPath) ? readFileSync(metricsPath, 'utf8').split('\n') : []) {
        const m = line ? (JSON.parse(line) as Record<string, number | string>) : null;
        if (m?.split === 'val') early.update(Number(m.step), Number(m[early.metric]));
      }
      const b = latestCheckpointDir(bestDir);
      if (b && early.best.step >= 0) {
        const c = readCheckpoint(b);
        if (c.state.step === early.best.step && c.state.configHash === cHash) best = { weights: c.weights, position: { step: c.state.step, epoch: c.state.epoch, batch: c.state.batch } };
      }
    }
  }
  port.send({ v: 1, type: 'started', step, totalSteps, batchesPerEpoch: train.batchesPerEpoch, params: engine.params, resumedFrom });

  // BatchNorm running statistics lag behind fast-moving weights: re-estimate them from a few
  // fixed training batches before every evaluation (like PyTorch's update_bn).
  const recalibrate = async (epoch: number) => {
    await engine.recalibrate(await train.calibrationBatches(), { freezeEncoder: epoch < config.freezeEpochs });
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

  const save = checkpointSaver(runDir, port, { configHash: cHash, manifestHash: manifest.hash }, engine);
  const { position, stopped, last, endedEarly } = await runSteps<FinetuneBatch>(
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
      evaluate: async (p) => {
        const metrics = await validate(p.epoch);
        if (early) {
          const verdict = early.update(p.step, metrics[early.metric]);
          if (verdict === 'improved') {
            best = { weights: await engine.getWeights(), position: { ...p } };
            writeCheckpoint(bestDir, { ...p, configHash: cHash, manifestHash: manifest.hash, losses: metrics, savedAt: new Date().toISOString() }, best.weights, null, 1);
          }
          endNow = verdict === 'stop';
        }
        return metrics;
      },
      save,
      stopAfterEvaluation: () => endNow,
    },
    { step, epoch, batch },
  );
  if (!stopped) {
    // With early stopping, the best validation's weights are the run's: its last checkpoint holds them
    // (the step loop leaves the checkpoint of an early end to this one write).
    const kept = best; // set only with early stopping
    if (kept) await engine.setWeights(kept.weights);
    if (kept || endedEarly) await save(position, last);
    await recalibrate(kept ? kept.position.epoch : position.epoch);
    const scored = await finalEvaluation(engine, manifest, masks, source, config, size, evalSplit);
    const results = early ? { ...scored, earlyStop: early.record() } : scored;
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
  const bootstrap = { nResamples: BOOTSTRAP_RESAMPLES, seed: config.seed };
  const t = await collect(engine, test, 0, taskMetric(config, size, bootstrap), { manifest, numbers: new PatientNumbers() });
  const what = `${testSplit} split`;
  if (t instanceof AurocMetric) {
    const v = await collect(engine, new FinetuneBatchStream(manifest, masks, source, valSplit, config.batchSize, config.seed ^ 0x5a17, 1, false), 0, new AurocMetric());
    const r = t.compute();
    const { scores, labels, clusters } = t.values();
    const patients = r.clusters ?? 0;
    const positivePatients = new Set(clusters?.filter((_, i) => labels[i] === 1)).size;
    const warnings = [...heldOutWarnings({ what, patients, positives: r.nPos ?? 0, positivePatients })];
    const base = { split: testSplit, slices: t.count, heldOut: testSplit === 'test', patients };
    if (!r.clusterCi) return { ...base, task: 'classification', error: `the ${testSplit} split has only one class: AUROC undefined`, warnings };
    const val = v.values();
    const th = chooseThreshold(val.scores, val.labels, { method: 'youden' });
    const at = thresholdMetrics(scores, labels, th.threshold);
    const roc = rocCurve(scores, labels);
    return {
      ...base,
      task: 'classification',
      positives: r.nPos!,
      positivePatients,
      auroc: r.clusterCi.estimate,
      aurocCi95: [r.clusterCi.lower, r.clusterCi.upper],
      ci: { unit: 'patient', resamples: r.clusterCi.nResamples, valid: r.clusterCi.nValid, seed: bootstrap.seed },
      threshold: { method: 'youden', chosenOn: valSplit, value: th.threshold },
      sensitivity: at.sensitivity,
      specificity: at.specificity,
      ppv: at.ppv,
      npv: at.npv,
      roc: { fpr: Array.from(roc.fpr), tpr: Array.from(roc.tpr) },
      warnings: [...warnings, ...bootstrapWarnings(r.clusterCi, 'the AUROC')],
      // Held-out scores, labels and patients in a fixed order, for an experiment's paired tests.
      scores: Array.from(scores),
      labels: Array.from(labels),
      patientOfSlice: Array.from(clusters ?? []),
    };
  }
  const s = t.compute();
  const { counts, clusters } = t.values();
  const patients = clusters ? new Set(clusters).size : 0;
  const positives = manifest.series.reduce((a, sr) => a + (sr.split === testSplit ? sr.slices.filter((x) => x.label === 1).length : 0), 0);
  const ci = clusters && Number.isFinite(s.microDice) ? diceClusterCi(counts, clusters, bootstrap) : null;
  return {
    split: testSplit,
    slices: t.count,
    heldOut: testSplit === 'test',
    patients,
    task: 'segmentation',
    dice: s.microDice,
    ...(ci && { diceCi95: [ci.lower, ci.upper] as [number, number], ci: { unit: 'patient' as const, resamples: ci.nResamples, valid: ci.nValid, seed: bootstrap.seed } }),
    positives,
    iou: s.microIou,
    meanSliceDice: s.meanDice,
    sdSliceDice: s.sdDice,
    meanSliceIou: s.meanIou,
    slicesScored: s.nScored,
    warnings: [...heldOutWarnings({ what, patients, positives, positivesName: 'slices with a nodule mask' }), ...(ci ? bootstrapWarnings(ci, 'Dice') : [])],
  };
}
