/**
 * The step loop shared by pretraining and fine-tuning in the trainer process: obeys pause /
 * resume / stop between steps, streams a step event (every loss term, learning rate, slices/s,
 * ETA, memory), appends metrics.jsonl, evaluates and checkpoints on schedule, and saves on stop.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { HostMessage, StepEvent, TrainerEvent } from '../shared/trainer-protocol';
import type { OptimizerState } from '../core/ml/optim';
import type { WeightEntry } from '../core/ml/weights';
import { writeCheckpoint } from '../library/runs/checkpoint';
import { initBackend, type BackendInfo } from './backend';

/** Where a training loop sends its events, and the latest control message from the host. */
export interface TrainerPort {
  send(e: TrainerEvent): void;
  /** Latest control message, checked between steps. */
  control: { paused: boolean; stop: boolean; wake: (() => void) | null };
}

export interface Position {
  step: number;
  epoch: number;
  batch: number;
}

export interface StepLoop<B extends { shape: number[] }> {
  port: TrainerPort;
  metricsPath: string;
  totalSteps: number;
  batchSize: number;
  batchesPerEpoch: number;
  evalEvery: number;
  checkpointEvery: number;
  getBatch(epoch: number, index: number): Promise<B>;
  /** One optimisation step; `epoch` is the epoch the batch belongs to. */
  step(batch: B, epoch: number): Promise<Record<string, number>>;
  lr(): number;
  numTensors(): number;
  /** Validation at `step`: returns the metrics to record (and may send its own events). */
  evaluate(position: Position): Promise<Record<string, number>>;
  /** Writes a checkpoint at the current position. */
  save(position: Position, losses: Record<string, number>): Promise<void>;
  /**
   * Asked after each evaluation: true ends training there (early stopping), as if all steps were
   * done, without a checkpoint: the caller writes the one it keeps (early stopping's best weights).
   */
  stopAfterEvaluation?(): boolean;
}

/** Starts the backend the host asked for (or the best available) and tells the host which one. */
export async function startBackend(msg: Extract<HostMessage, { type: 'start' }>, port: TrainerPort): Promise<BackendInfo> {
  const backend = await initBackend({ force: msg.backend });
  port.send({ v: 1, type: 'ready', pid: process.pid, backend: { name: backend.name, version: backend.version, package: backend.package, simd: backend.simd, threads: backend.threads } });
  return backend;
}

/**
 * The `save` of a step loop: writes the model's weights and optimizer state as the run's checkpoint
 * at the position (atomically, with the hashes that a resume checks), and tells the host.
 */
export function checkpointSaver(
  runDir: string,
  port: TrainerPort,
  hashes: { configHash: string; manifestHash: string },
  engine: { getWeights(): Promise<WeightEntry[]>; getOptimizerState(): Promise<OptimizerState> },
): StepLoop<never>['save'] {
  return async (p, losses) => {
    const dir = writeCheckpoint(
      runDir,
      { ...p, configHash: hashes.configHash, manifestHash: hashes.manifestHash, losses, savedAt: new Date().toISOString() },
      await engine.getWeights(),
      await engine.getOptimizerState(),
    );
    port.send({ v: 1, type: 'checkpoint', step: p.step, dir });
  };
}

/** Drops metrics of steps after `step` (a killed run's; the resumed run writes them again). */
export function truncateMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const keep = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l && (JSON.parse(l) as { step: number }).step <= step);
  writeFileSync(path, keep.map((l) => l + '\n').join(''));
}

export async function runSteps<B extends { shape: number[] }>(
  loop: StepLoop<B>,
  start: Position,
): Promise<{ position: Position; stopped: boolean; last: Record<string, number>; endedEarly?: boolean }> {
  const { port } = loop;
  const pos = { ...start };
  let last: Record<string, number> = {};
  const window: { t: number; n: number }[] = [];
  let stopped = false;
  while (pos.step < loop.totalSteps) {
    // Let the process read its messages (pause, stop) between steps: with prefetched batches a
    // step may never otherwise yield to the event loop.
    await new Promise<void>((r) => setImmediate(r));
    if (port.control.stop) {
      stopped = true;
      break;
    }
    if (port.control.paused) {
      port.send({ v: 1, type: 'paused', step: pos.step });
      await new Promise<void>((r) => (port.control.wake = r));
      port.control.wake = null;
      if (port.control.stop) {
        stopped = true;
        break;
      }
      port.send({ v: 1, type: 'resumed', step: pos.step });
    }
    const b = await loop.getBatch(pos.epoch, pos.batch);
    last = await loop.step(b, pos.epoch);
    pos.step++;
    pos.batch++;
    if (pos.batch >= loop.batchesPerEpoch) {
      pos.epoch++;
      pos.batch = 0;
    }
    window.push({ t: Date.now(), n: b.shape[0] });
    while (window.length > 20) window.shift();
    const span = (window[window.length - 1].t - window[0].t) / 1000;
    const rate = window.length > 1 && span > 0 ? window.slice(1).reduce((a, w) => a + w.n, 0) / span : 0;
    const ev: StepEvent = {
      v: 1,
      type: 'step',
      step: pos.step,
      epoch: pos.epoch,
      losses: last,
      lr: loop.lr(),
      slicesPerSecond: Math.round(rate * 100) / 100,
      etaSeconds: rate > 0 ? Math.round(((loop.totalSteps - pos.step) * loop.batchSize) / rate) : null,
      memory: { rssMb: Math.round(process.memoryUsage().rss / 2 ** 20), tensors: loop.numTensors() },
    };
    port.send(ev);
    appendFileSync(loop.metricsPath, JSON.stringify({ step: pos.step, split: 'train', ...last }) + '\n');
    if (pos.step % loop.evalEvery === 0 || pos.step === loop.totalSteps) {
      const metrics = await loop.evaluate({ ...pos });
      port.send({ v: 1, type: 'eval', step: pos.step, split: 'val', metrics });
      appendFileSync(loop.metricsPath, JSON.stringify({ step: pos.step, split: 'val', ...metrics }) + '\n');
      if (loop.stopAfterEvaluation?.()) return { position: pos, stopped: false, last, endedEarly: true };
    }
    if (pos.step % loop.checkpointEvery === 0 || pos.step === loop.totalSteps) await loop.save({ ...pos }, last);
  }
  if (stopped && pos.step > 0) await loop.save({ ...pos }, last);
  return { position: pos, stopped, last };
}
