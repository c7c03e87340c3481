/**
 * The training loop of the trainer process: reads the run folder (config.json, manifest.json),
 * picks the backend, builds the model, optionally starts from another run's weights (curriculum)
 * or resumes from the latest checkpoint, then steps through deterministic batches, streaming
 * events (every loss term, learning rate, slices/s, ETA, memory), evaluating on validation
 * batches, writing atomic checkpoints, and obeying pause / resume / stop between steps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePretrainConfig, type PretrainConfig } from '../../shared/run-config';
import type { HostMessage, TrainerEvent } from '../../shared/trainer-protocol';
import { AurocMetric, ReconstructionMetric } from '../../core/metrics/accumulators';
import { taskClasses, taskOptionsOf } from '../../shared/pretext-tasks';
import { latestCheckpointDir, readCheckpoint } from '../../library/runs/checkpoint';
import { createPretrainEngine, modelSize, type PretrainEngine } from './pretrain-engine';
import type { Manifest } from '../../library/runs/manifest';
import { PretrainBatchStream, SliceSource, type PretrainBatch } from './pretrain-batches';
import { runPreprocessSpec } from '../../core/ssl/preprocess';
import { configHash } from '../../library/runs/run-hash';
import { checkpointSaver, runSteps, startBackend, truncateMetrics, type TrainerPort } from '../step-loop';
import { wasmDataParallel } from '../data-parallel';

export function readPretrainRun(runDir: string): { config: PretrainConfig; manifest: Manifest } {
  const config = parsePretrainConfig(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')));
  // a run trained elsewhere (imported) has none: the cohort the host chose to evaluate it on
  const own = join(runDir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(existsSync(own) ? own : join(runDir, 'eval', 'manifest.json'), 'utf8')) as Manifest;
  return { config, manifest };
}

/** Validation metrics over a few fixed batches, and one sample for the live panel. */
async function evaluate(engine: PretrainEngine, val: PretrainBatchStream, batches: number, config: PretrainConfig) {
  const n = batches === 0 ? val.batchesPerEpoch : Math.min(batches, val.batchesPerEpoch);
  const size = engine.size;
  const px = size * size;
  const classes = taskClasses(config.task);
  const images = new ReconstructionMetric(size);
  // Classification tasks (rotation: 4 classes, flip: 3): rows of class probabilities.
  const probabilities = classes > 0 ? new AurocMetric({ classes, rows: true }) : null;
  let sample: Omit<Extract<TrainerEvent, { type: 'sample' }>, 'v' | 'type' | 'step'> | null = null;
  for (let i = 0; i < n; i++) {
    const b: PretrainBatch = await val.get(0, i);
    const out = await engine.predict(b);
    if (b.kind === 'recon') {
      images.update(out, b.target, { mask: b.mask });
      if (!sample) sample = { size, input: b.input.slice(0, px), output: Float32Array.from(out.subarray(0, px), (v) => Math.min(1, Math.max(0, v))), target: b.target.slice(0, px) };
    } else {
      probabilities!.update(out, b.labels);
      if (!sample) {
        const p0 = Array.from(out.subarray(0, classes));
        sample = { size, input: b.input.slice(0, px), output: b.input.slice(0, px), target: null, label: b.labels[0], predicted: p0.indexOf(Math.max(...p0)) };
      }
    }
  }
  const metrics: Record<string, number> = {};
  const r = images.compute();
  for (const k of r.names) metrics[k] = r.perItem[k].mean;
  if (probabilities?.count) {
    const c = probabilities.compute();
    metrics.crossEntropy = c.crossEntropy!;
    metrics.auroc = c.auroc;
    metrics.accuracy = c.accuracy!;
  }
  return { metrics, sample };
}

export async function runPretrain(msg: Extract<HostMessage, { type: 'start' }>, port: TrainerPort): Promise<void> {
  const { runDir } = msg;
  const { config, manifest } = readPretrainRun(runDir);
  const backend = await startBackend(msg, port);

  const size = modelSize(config);
  const spec = runPreprocessSpec(config, size);
  const source = new SliceSource(manifest, spec, config.useCache ? msg.cacheDir : null);
  const taskOpts = taskOptionsOf(config);
  const train = new PretrainBatchStream(source, 'train', taskOpts, config.batchSize, config.seed);
  // Monitor on validation patients; without any, on held-out ones; without those, on training data.
  const monitorSplit = manifest.counts.val.slices > 0 ? 'val' : manifest.counts.test.slices > 0 ? 'test' : 'train';
  const val = new PretrainBatchStream(source, monitorSplit, taskOpts, config.batchSize, config.seed ^ 0x5a17, 1, false);
  const totalSteps = config.steps ?? Math.max(1, Math.ceil((config.epochs ?? 1) * train.batchesPerEpoch));
  const engine = createPretrainEngine(config, { dataParallel: wasmDataParallel(backend, config.preset) });
  let toldFallback = false;
  const cHash = configHash(config);

  let step = 0;
  let epoch = 0;
  let batch = 0;
  let resumedFrom: number | null = null;
  const ck = msg.resume ? latestCheckpointDir(runDir) : null;
  if (ck) {
    const c = readCheckpoint(ck);
    if (c.state.configHash !== cHash) throw new Error(`the checkpoint in ${ck} was written with a different config: start a new run instead`);
    if (c.state.manifestHash !== manifest.hash) throw new Error(`the checkpoint in ${ck} was written for a different manifest`);
    await engine.setWeights(c.weights, true);
    if (c.optimizer) await engine.setOptimizerState(c.optimizer);
    ({ step, epoch, batch } = c.state);
    resumedFrom = step;
  } else if (config.init) {
    const initDir = latestCheckpointDir(config.init);
    if (!initDir) throw new Error(`init run ${config.init} has no checkpoint to start from`);
    const c = readCheckpoint(initDir);
    const r = await engine.setWeights(c.weights, false);
    if (r.loaded.length === 0) throw new Error(`init run ${config.init}: no weights match this model (different preset?)`);
  }

  if (!ck && !config.init) await engine.prepare(await train.get(0, 0));
  // Metrics of steps after the checkpoint (from a killed run) are replaced by the resumed ones.
  const metricsPath = join(runDir, 'metrics.jsonl');
  truncateMetrics(metricsPath, step);
  port.send({ v: 1, type: 'started', step, totalSteps, batchesPerEpoch: train.batchesPerEpoch, params: engine.params, resumedFrom });

  const { position, stopped, last } = await runSteps<PretrainBatch>(
    {
      port,
      metricsPath,
      totalSteps,
      batchSize: config.batchSize,
      batchesPerEpoch: train.batchesPerEpoch,
      evalEvery: config.evalEvery,
      checkpointEvery: config.checkpointEvery,
      getBatch: (e, i) => train.get(e, i),
      step: async (b) => {
        const r = await engine.step(b);
        if (!toldFallback && engine.sharding?.fallback != null) {
          toldFallback = true;
          process.stderr.write(`${engine.sharding.fallback}\n`);
        }
        return r;
      },
      lr: () => engine.lr,
      numTensors: () => engine.numTensors(),
      evaluate: async (p) => {
        // BatchNorm running statistics lag behind fast-moving weights: re-estimate them from a
        // few fixed training batches first, so validation sees the model as it is now.
        const calib: PretrainBatch[] = [];
        for (let i = 0; i < Math.min(4, train.batchesPerEpoch); i++) calib.push(await train.get(0, i));
        await engine.recalibrate(calib);
        const { metrics, sample } = await evaluate(engine, val, config.evalBatches, config);
        if (sample) port.send({ v: 1, type: 'sample', step: p.step, ...sample });
        return metrics;
      },
      save: checkpointSaver(runDir, port, { configHash: cHash, manifestHash: manifest.hash }, engine),
    },
    { step, epoch, batch },
  );
  port.send({ v: 1, type: 'done', step: position.step, stopped, finalLosses: last });
  await engine.dispose();
}
