/**
 * The helper thread of data-parallel training (data-parallel.ts): its own single-threaded wasm
 * backend and a replica of the model, which takes the weights sent with each shard and returns
 * that shard's gradients, BatchNorm statistics and losses (shardGradients, as the main thread's).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createClassifier } from '../core/ml/classifier';
import { createVqvae } from '../core/ml/vqvae';
import { importWeights } from '../core/ml/weights';
import { initBackend } from './backend';
import { shardGradients, type HelperInit, type HelperReply, type HelperRequest } from './data-parallel';

async function main(): Promise<void> {
  const port = parentPort;
  if (port == null) throw new Error('grad-worker must run in a worker thread');
  const init = workerData as HelperInit;
  const info = await initBackend({ force: 'wasm', wasmThreads: 1 });
  const model = init.model.kind === 'vqvae' ? createVqvae(init.model.config, 0) : createClassifier(init.model.config, 0);
  port.on('message', (msg: HelperRequest) => {
    try {
      importWeights(model, msg.weights, { strict: true });
      const result = shardGradients(model, msg.batch, msg.loss);
      const transfer = [...result.grads.map((g) => g.buffer), ...result.stats.flatMap((s) => [s.mean.buffer, s.variance.buffer])];
      port.postMessage({ type: 'grad', id: msg.id, result } satisfies HelperReply, transfer as ArrayBuffer[]);
    } catch (e) {
      port.postMessage({ type: 'error', id: msg.id, message: e instanceof Error ? e.stack ?? e.message : String(e) } satisfies HelperReply);
    }
  });
  port.postMessage({ type: 'ready', backend: info.name, threadCount: info.threadCount } satisfies HelperReply);
}

void main().catch((e: unknown) => {
  parentPort?.postMessage({ type: 'error', id: -1, message: e instanceof Error ? e.stack ?? e.message : String(e) } satisfies HelperReply);
});
