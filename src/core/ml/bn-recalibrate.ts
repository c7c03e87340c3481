/**
 * Re-estimating BatchNorm running statistics from a few batches (like PyTorch's update_bn): the
 * running averages lag behind weights that move fast, so evaluation in inference mode can be
 * far off the training loss. Each BatchNorm's running mean and (unbiased) variance become the
 * average of its batch statistics over the given batches.
 */
import * as tf from '@tensorflow/tfjs';
import { disposeContext, trainingContext, type ForwardContext } from './vqvae';
import type { ParamStore } from './weights';

export function recalibrateRunningStats(
  store: ParamStore,
  forward: (x: tf.Tensor4D, ctx: ForwardContext) => void,
  batches: Iterable<{ shape: [number, number, number, number]; input: Float32Array }>,
): number {
  const sums = new Map<string, { mean: Float64Array; variance: Float64Array; batches: number }>();
  for (const b of batches) {
    const ctx = trainingContext();
    try {
      tf.tidy(() => {
        forward(tf.tensor4d(b.input, b.shape), ctx);
      });
      for (const [name, st] of ctx.stats) {
        const m = st.mean.dataSync();
        const v = st.variance.dataSync();
        const unbias = st.count > 1 ? st.count / (st.count - 1) : 1;
        let acc = sums.get(name);
        if (acc == null) {
          acc = { mean: new Float64Array(m.length), variance: new Float64Array(m.length), batches: 0 };
          sums.set(name, acc);
        }
        for (let i = 0; i < m.length; i++) {
          acc.mean[i] += m[i];
          acc.variance[i] += v[i] * unbias;
        }
        acc.batches++;
      }
    } finally {
      disposeContext(ctx);
    }
  }
  for (const [name, acc] of sums) {
    const rm = store.buffers.get(`${name}.running_mean`);
    const rv = store.buffers.get(`${name}.running_var`);
    if (rm == null || rv == null) continue;
    tf.tidy(() => {
      rm.assign(tf.tensor1d(Float32Array.from(acc.mean, (x) => x / acc.batches)));
      rv.assign(tf.tensor1d(Float32Array.from(acc.variance, (x) => x / acc.batches)));
    });
  }
  return sums.size;
}
