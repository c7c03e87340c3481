/**
 * Worker-thread entry of the data-parallel training pool (see ml-workers.ts). Each worker owns
 * its own tfjs backend (wasm: one SIMD thread each) and an identical replica of the model and
 * optimizer; it computes gradients on its part of a batch, and applies the averaged update that
 * the pool sends back, so replicas stay bit-identical.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { type Classifier, type ClassifierConfig, createClassifier } from '../../core/ml/classifier';
import type { BatchStats } from '../../core/ml/layers';
import type { CompositeWeights } from '../../core/ml/losses';
import { type AdamFamily, type OptimizerKind, type OptimizerOptions, type OptimizerState, createOptimizer } from '../../core/ml/optim';
import { type ClassBatch, type GradientResult, type ReconBatch, classifierGradients, reconGradients } from '../../core/ml/train-step';
import { type Vqvae, type VqvaeConfig, createVqvae, updateRunningStats } from '../../core/ml/vqvae';
import { type WeightEntry, exportWeights, importWeights } from '../../core/ml/weights';
import { type BackendChoice, initBackend } from '../backend';

/** What the pool passes as workerData. */
export interface WorkerInit {
  backend?: BackendChoice;
  model: { kind: 'vqvae'; config: VqvaeConfig; seed: number } | { kind: 'classifier'; config: ClassifierConfig; seed: number };
  optimizer: { kind: OptimizerKind; options?: Partial<OptimizerOptions> };
  lossWeights?: Partial<CompositeWeights>;
}

/** Plain-data BatchNorm statistics. */
export interface StatsData {
  name: string;
  mean: Float32Array;
  variance: Float32Array;
  count: number;
}

export type WorkerRequest =
  | { type: 'grad'; id: number; batch: ReconBatch | ClassBatch }
  | { type: 'apply'; grads: Float32Array[]; stats: StatsData[] }
  | { type: 'getWeights'; id: number }
  | { type: 'setWeights'; id: number; entries: WeightEntry[] }
  | { type: 'getOptimizer'; id: number }
  | { type: 'setOptimizer'; id: number; state: OptimizerState }
  | { type: 'memory'; id: number };

export type WorkerReply =
  | { type: 'ready'; backend: string; paramNames: string[] }
  | { type: 'grad'; id: number; grads: Float32Array[]; stats: StatsData[]; losses: Record<string, number> }
  | { type: 'weights'; id: number; entries: WeightEntry[] }
  | { type: 'optimizer'; id: number; state: OptimizerState }
  | { type: 'memory'; id: number; numTensors: number }
  | { type: 'ok'; id: number }
  | { type: 'error'; id: number; message: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (port == null) throw new Error('ml-worker must run in a worker thread');
  const init = workerData as WorkerInit;
  const info = await initBackend({ force: init.backend });
  const model: Vqvae | Classifier = init.model.kind === 'vqvae'
    ? createVqvae(init.model.config, init.model.seed)
    : createClassifier(init.model.config, init.model.seed);
  let optimizer: AdamFamily = createOptimizer(init.optimizer.kind, init.optimizer.options);
  const names = [...model.params.keys()];

  const handle = (msg: WorkerRequest): void => {
    switch (msg.type) {
      case 'grad': {
        const r: GradientResult<object> = model.kind === 'vqvae'
          ? reconGradients(model, msg.batch as ReconBatch, init.lossWeights)
          : classifierGradients(model, msg.batch as ClassBatch);
        const grads = names.map((n) => {
          const g = r.grads.get(n);
          return g == null ? new Float32Array(model.params.get(n)!.size) : new Float32Array(g.dataSync() as Float32Array);
        });
        for (const g of r.grads.values()) g.dispose();
        const stats: StatsData[] = [];
        for (const [name, s] of r.stats) {
          stats.push({ name, mean: new Float32Array(s.mean.dataSync() as Float32Array), variance: new Float32Array(s.variance.dataSync() as Float32Array), count: s.count });
          tf.dispose([s.mean, s.variance]);
        }
        const reply: WorkerReply = { type: 'grad', id: msg.id, grads, stats, losses: r.losses as Record<string, number> };
        port.postMessage(reply, [...grads.map((g) => g.buffer), ...stats.flatMap((s) => [s.mean.buffer, s.variance.buffer])] as ArrayBuffer[]);
        return;
      }
      case 'apply': {
        tf.tidy(() => {
          const grads = new Map<string, tf.Tensor>();
          names.forEach((n, i) => grads.set(n, tf.tensor(msg.grads[i], model.params.get(n)!.shape, 'float32')));
          optimizer.apply(model.params, grads);
          const stats = new Map<string, BatchStats>();
          for (const s of msg.stats) stats.set(s.name, { mean: tf.tensor1d(s.mean), variance: tf.tensor1d(s.variance), count: s.count });
          updateRunningStats(model, stats);
        });
        return;
      }
      case 'getWeights': {
        const entries = exportWeights(model);
        port.postMessage({ type: 'weights', id: msg.id, entries } satisfies WorkerReply, entries.map((e) => e.data.buffer) as ArrayBuffer[]);
        return;
      }
      case 'setWeights':
        importWeights(model, msg.entries);
        port.postMessage({ type: 'ok', id: msg.id } satisfies WorkerReply);
        return;
      case 'getOptimizer':
        port.postMessage({ type: 'optimizer', id: msg.id, state: optimizer.getState() } satisfies WorkerReply);
        return;
      case 'setOptimizer':
        optimizer.dispose();
        optimizer = createOptimizer(msg.state.kind, msg.state.options);
        optimizer.setState(msg.state);
        port.postMessage({ type: 'ok', id: msg.id } satisfies WorkerReply);
        return;
      case 'memory':
        port.postMessage({ type: 'memory', id: msg.id, numTensors: tf.memory().numTensors } satisfies WorkerReply);
        return;
    }
  };

  port.on('message', (msg: WorkerRequest) => {
    try {
      handle(msg);
    } catch (e) {
      const id = 'id' in msg ? msg.id : -1;
      port.postMessage({ type: 'error', id, message: e instanceof Error ? e.stack ?? e.message : String(e) } satisfies WorkerReply);
    }
  });
  port.postMessage({ type: 'ready', backend: info.name, paramNames: names } satisfies WorkerReply);
}

void main().catch((e: unknown) => {
  parentPort?.postMessage({ type: 'error', id: -1, message: e instanceof Error ? e.stack ?? e.message : String(e) });
});
