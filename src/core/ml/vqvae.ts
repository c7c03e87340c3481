/**
 * The reference VQ-VAE (see shared/docs/reference-model.md): encoder E1-E5, vector quantiser with
 * straight-through gradient, decoder D1-D4 with tanh; no skip connections. NHWC tensors.
 *
 * Tensor names (tfjs shapes, see weights.ts), for widths w1/w2, latent d, codes K, channels C:
 *   encoder.e1.conv.{weight [4,4,C,w1], bias}      encoder.e1.bn.{weight,bias,running_mean,running_var}
 *   encoder.e2.conv.{weight [4,4,w1,w2], bias}     encoder.e2.bn.*
 *   encoder.e3.conv.{weight [3,3,w2,w2], bias}     encoder.e3.bn.*
 *   encoder.res.{i}.conv1.weight [3,3,w2,w2]       encoder.res.{i}.bn.*     encoder.res.{i}.conv2.weight [1,1,w2,w2]
 *   encoder.e5.conv.{weight [1,1,w2,d], bias}      encoder.e5.bn.*
 *   vq.codebook [K, d]
 *   decoder.d1.conv.{weight [3,3,d,w2], bias}      decoder.d1.bn.*
 *   decoder.res.{i}.conv1/bn/conv2 as in the encoder
 *   decoder.d3.convt.{weight [4,4,w1,w2], bias}    decoder.d3.bn.*
 *   decoder.d4.convt.{weight [4,4,C,w1], bias}     decoder.d4.bn.*
 *
 * The configuration, presets and tensor list live without TensorFlow.js in specs/vqvae.ts
 * (re-exported here).
 */
import * as tf from '@tensorflow/tfjs';
import { customGradient, stopGradient } from './backend';
import { type BnActivation, applyActivation, batchNormAct } from './bn-act';
import { type BatchStats, batchNormInfer, conv2d, conv2dTranspose, mulberry32, tanh } from './layers';
import { readValues } from './wasm-kernels';
import { nearestCodeHeap } from './vq-kernel';
import { meanAll } from './losses';
import { type ParamStore, createStore } from './weights';
import { type VqvaeConfig, vqvaeSpecs } from './specs/vqvae';

export { type VqvaeConfig, type VqvaePresetName, VQVAE_PRESETS, encoderSpecs, foldToGreyInput, presetParamCounts, vqvaeParamCount, vqvaePreset, vqvaeSpecs } from './specs/vqvae';

export interface Vqvae extends ParamStore {
  kind: 'vqvae';
  config: VqvaeConfig;
}

/** Allocates a VQ-VAE initialised deterministically from `seed` (PyTorch-style init bounds). */
export function createVqvae(config: VqvaeConfig, seed = 0): Vqvae {
  return { kind: 'vqvae', config, ...createStore(vqvaeSpecs(config), seed) };
}

/** Forward context: training mode records BatchNorm batch statistics (kept tensors). */
export interface ForwardContext {
  training: boolean;
  stats: Map<string, BatchStats>;
}

export function trainingContext(): ForwardContext {
  return { training: true, stats: new Map() };
}

export function inferenceContext(): ForwardContext {
  return { training: false, stats: new Map() };
}

/** Disposes the statistics recorded in a context. */
export function disposeContext(ctx: ForwardContext): void {
  for (const s of ctx.stats.values()) tf.dispose([s.mean, s.variance]);
  ctx.stats.clear();
}

function p(store: ParamStore, name: string): tf.Variable {
  const v = store.params.get(name);
  if (v == null) throw new Error(`missing parameter ${name}`);
  return v;
}

export function bn<T extends tf.Tensor>(store: ParamStore, name: string, x: T, ctx: ForwardContext): T {
  return bnAct(store, name, x, ctx, 'none');
}

/**
 * act(BatchNorm(x)) for the layer `name`: in training mode one fused pass each way on the wasm
 * backend (bn-act.ts; the tensor path elsewhere), recording the batch statistics; in inference
 * mode the running statistics, then the activation.
 */
export function bnAct<T extends tf.Tensor>(store: ParamStore, name: string, x: T, ctx: ForwardContext, act: BnActivation): T {
  const g = p(store, `${name}.weight`) as unknown as tf.Tensor1D;
  const b = p(store, `${name}.bias`) as unknown as tf.Tensor1D;
  if (ctx.training) {
    const { y, stats } = batchNormAct(x, g, b, act);
    const old = ctx.stats.get(name);
    if (old != null) tf.dispose([old.mean, old.variance]);
    ctx.stats.set(name, stats);
    return y;
  }
  const rm = store.buffers.get(`${name}.running_mean`) as unknown as tf.Tensor1D;
  const rv = store.buffers.get(`${name}.running_var`) as unknown as tf.Tensor1D;
  return applyActivation(batchNormInfer(x, g, b, rm, rv), act);
}

export function convLayer(store: ParamStore, name: string, x: tf.Tensor4D, stride: number, pad: number, inputGrad = true): tf.Tensor4D {
  const w = p(store, `${name}.weight`) as unknown as tf.Tensor4D;
  const b = (store.params.get(`${name}.bias`) ?? null) as unknown as tf.Tensor1D | null;
  return conv2d(x, w, b, { stride, pad, inputGrad });
}

function convTLayer(store: ParamStore, name: string, x: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  const w = p(store, `${name}.weight`) as unknown as tf.Tensor4D;
  const b = (store.params.get(`${name}.bias`) ?? null) as unknown as tf.Tensor1D | null;
  return conv2dTranspose(x, w, b, { stride, pad });
}

function resBlock(store: ParamStore, prefix: string, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
  const h = convLayer(store, `${prefix}.conv1`, x, 1, 1);
  const a = bnAct(store, `${prefix}.bn`, h, ctx, 'relu');
  return tf.add(x, convLayer(store, `${prefix}.conv2`, a, 1, 0));
}

/**
 * A batch with `channels` channels: a grey batch [N, H, W, 1] is repeated into every channel (the
 * reference's 3-channel input is the grey slice copied three times: shared/docs/reference-model.md),
 * a batch that has them already is returned as it is; anything else is refused naming both counts.
 */
export function expandChannels(x: tf.Tensor4D, channels: number): tf.Tensor4D {
  const c = x.shape[3];
  if (c === channels) return x;
  if (c !== 1) throw new Error(`input has ${c} channels, the model takes ${channels} (or 1, repeated into each)`);
  return tf.tile(x, [1, 1, 1, channels]);
}

/** Input channels of a store's encoder (the E1 filter's input depth). */
export function encoderChannels(store: ParamStore): number {
  return (p(store, 'encoder.e1.conv.weight').shape as number[])[2];
}

/**
 * The grey image of a C-channel reconstruction [N, H, W, C]: the mean of its channels (a model
 * trained on a grey slice repeated into 3 channels outputs 3 near-equal channels); C = 1 unchanged.
 */
export function greyOf(recon: tf.Tensor4D): tf.Tensor4D {
  return recon.shape[3] === 1 ? recon : (tf.mean(recon, 3, true) as tf.Tensor4D);
}

/**
 * Encoder E1-E5: [N, S, S, C] (or a grey [N, S, S, 1], repeated into the C channels) -> latent
 * [N, S/4, S/4, latent]. No gradient flows back into the input images (they are data, not
 * parameters).
 */
export function encode(store: ParamStore, cfg: Pick<VqvaeConfig, 'resBlocks' | 'leak'>, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
  const act: BnActivation = { leakyRelu: cfg.leak };
  const lr = (t: tf.Tensor4D) => applyActivation(t, act);
  x = expandChannels(x, encoderChannels(store));
  let h = bnAct(store, 'encoder.e1.bn', convLayer(store, 'encoder.e1.conv', x, 2, 1, false), ctx, act);
  h = bnAct(store, 'encoder.e2.bn', convLayer(store, 'encoder.e2.conv', h, 2, 1), ctx, act);
  h = bnAct(store, 'encoder.e3.bn', convLayer(store, 'encoder.e3.conv', h, 1, 1), ctx, act);
  for (let i = 0; i < cfg.resBlocks; i++) h = resBlock(store, `encoder.res.${i}`, h, ctx);
  h = convLayer(store, 'encoder.e5.conv', lr(h), 1, 0);
  return bnAct(store, 'encoder.e5.bn', h, ctx, act);
}

/** Decoder D1-D4: latent -> [N, S, S, C] in (-1, 1). */
export function decode(store: ParamStore, cfg: VqvaeConfig, q: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
  const act: BnActivation = { leakyRelu: cfg.leak };
  const lr = (t: tf.Tensor4D) => applyActivation(t, act);
  let h = bnAct(store, 'decoder.d1.bn', convLayer(store, 'decoder.d1.conv', q, 1, 1), ctx, act);
  for (let i = 0; i < cfg.resBlocks; i++) h = resBlock(store, `decoder.res.${i}`, h, ctx);
  h = lr(h);
  h = bnAct(store, 'decoder.d3.bn', convTLayer(store, 'decoder.d3.convt', h, 2, 1), ctx, act);
  return tanh(bn(store, 'decoder.d4.bn', convTLayer(store, 'decoder.d4.convt', h, 2, 1), ctx));
}

/**
 * Index of the nearest code (L2) for each row of z [m, d], int32 [m]. The distances
 * |e|^2 - 2 z.e^T come from one matrix product; the arg-min over codes (the first minimum) is one
 * SIMD pass over the products on wasm (vq-kernel.ts), elsewhere a plain loop over the distance
 * matrix (~10x faster than the wasm ArgMin kernel); the same choice either way.
 */
export function nearestCode(z: tf.Tensor2D, codebook: tf.Tensor2D): tf.Tensor1D {
  const [m] = z.shape;
  const k = codebook.shape[0];
  const [dot, norms] = tf.tidy(() => {
    const et = tf.transpose(codebook); // [d, k]; matMul(., transposeB) is slow on wasm
    return [tf.matMul(z, et as tf.Tensor2D), tf.sum(tf.square(codebook), 1)] as [tf.Tensor2D, tf.Tensor1D];
  });
  // wasm: the distances and their arg-min in one SIMD pass over the products (vq-kernel.ts)
  const inHeap = nearestCodeHeap(dot, norms);
  if (inHeap != null) {
    tf.dispose([dot, norms]);
    return inHeap;
  }
  const dist = tf.tidy(() => tf.sub(norms, tf.mul(dot, 2)));
  tf.dispose([dot, norms]);
  const dv = readValues(dist) as Float32Array;
  const idx = new Int32Array(m);
  for (let r = 0; r < m; r++) {
    const o = r * k;
    let best = 0;
    let bv = dv[o];
    for (let j = 1; j < k; j++) {
      const v = dv[o + j];
      if (v < bv) {
        bv = v;
        best = j;
      }
    }
    idx[r] = best;
  }
  dist.dispose(); // after the loop: dv may be a view of the backend's memory
  return tf.tensor1d(idx, 'int32');
}

export interface QuantizeResult {
  /** Quantised latent with straight-through gradient to z. */
  q: tf.Tensor4D;
  /** ||sg[q] - z||^2 * commitment + ||q - sg[z]||^2 (means). */
  loss: tf.Scalar;
  /** Code index per latent position, int32 [N, h, w]. */
  indices: tf.Tensor3D;
}

/**
 * Nearest-code quantisation by L2 distance. The codebook gradient is a segment sum over the
 * chosen codes (no gather gradient, which needs UnsortedSegmentSum).
 */
export function vectorQuantize(z: tf.Tensor4D, codebook: tf.Tensor2D, commitment: number): QuantizeResult {
  const [n, h, w, d] = z.shape;
  const k = codebook.shape[0];
  if (codebook.shape[1] !== d) throw new Error(`vectorQuantize: latent dim ${d} != codebook dim ${codebook.shape[1]}`);
  const m = n * h * w;
  const flat = z.reshape([m, d]);
  let indices: tf.Tensor1D | null = null;
  const lookup = customGradient((zz: tf.Tensor, e: tf.Tensor) => {
    const idx = nearestCode(zz as tf.Tensor2D, e as tf.Tensor2D);
    indices = tf.keep(idx);
    const ids = Int32Array.from(readValues(idx));
    // gather and its gradient (a segment sum) as plain loops: the indices are on the JS side
    // already, and the wasm GatherV2 kernel is slow for this shape
    const ev = readValues(e) as Float32Array;
    const qv = new Float32Array(m * d);
    for (let r = 0; r < m; r++) qv.set(ev.subarray(ids[r] * d, ids[r] * d + d), r * d);
    return {
      value: tf.tensor2d(qv, [m, d]),
      gradFunc: (dy: tf.Tensor) => {
        const g = readValues(dy) as Float32Array;
        const de = new Float32Array(k * d);
        for (let r = 0; r < m; r++) {
          const o = ids[r] * d;
          const i0 = r * d;
          for (let j = 0; j < d; j++) de[o + j] += g[i0 + j];
        }
        return [tf.zeros([m, d]), tf.tensor2d(de, [k, d])];
      },
    };
  });
  const q = lookup(flat, codebook) as tf.Tensor2D;
  const codebookLoss = meanAll(tf.squaredDifference(q, stopGradient(flat)));
  const commitLoss = meanAll(tf.squaredDifference(flat, stopGradient(q)));
  const loss = tf.add(codebookLoss, tf.mul(commitLoss, commitment)) as tf.Scalar;
  const st = tf.add(flat, stopGradient(tf.sub(q, flat)));
  const idx = indices!;
  const out = { q: st.reshape([n, h, w, d]) as tf.Tensor4D, loss, indices: idx.reshape([n, h, w]) as tf.Tensor3D };
  (idx as tf.Tensor).dispose();
  return out;
}

export interface VqvaeOutput {
  /** Reconstruction [N, S, S, C] in (-1, 1). */
  recon: tf.Tensor4D;
  vqLoss: tf.Scalar;
  indices: tf.Tensor3D;
  /** Encoder output before quantisation. */
  z: tf.Tensor4D;
}

/**
 * Full forward pass. The input has the model's C channels, or 1 (repeated into each); the
 * reconstruction always has C (compare it with a target expanded by {@link expandChannels}, or
 * take {@link greyOf} it).
 */
export function vqvaeForward(model: Vqvae, x: tf.Tensor4D, ctx: ForwardContext): VqvaeOutput {
  const c = model.config;
  if (x.rank !== 4 || x.shape[1] !== c.size || x.shape[2] !== c.size || (x.shape[3] !== c.channels && x.shape[3] !== 1)) {
    throw new Error(`vqvaeForward: input must be [N, ${c.size}, ${c.size}, ${c.channels}]${c.channels !== 1 ? ' or a grey [N, S, S, 1]' : ''} (got [${x.shape}])`);
  }
  const z = encode(model, c, x, ctx);
  const vq = vectorQuantize(z, p(model, 'vq.codebook') as unknown as tf.Tensor2D, c.commitment);
  const recon = decode(model, c, vq.q, ctx);
  return { recon, vqLoss: vq.loss, indices: vq.indices, z };
}

/**
 * Updates BatchNorm running statistics from batch statistics (PyTorch rule: momentum 0.1,
 * unbiased variance for running_var).
 */
export function updateRunningStats(store: ParamStore, stats: Map<string, BatchStats>, momentum = 0.1): void {
  tf.tidy(() => {
    for (const [name, s] of stats) {
      const rm = store.buffers.get(`${name}.running_mean`);
      const rv = store.buffers.get(`${name}.running_var`);
      if (rm == null || rv == null) continue;
      const unbias = s.count > 1 ? s.count / (s.count - 1) : 1;
      rm.assign(tf.add(tf.mul(rm, 1 - momentum), tf.mul(s.mean, momentum)));
      rv.assign(tf.add(tf.mul(rv, 1 - momentum), tf.mul(s.variance, momentum * unbias)));
    }
  });
}

/**
 * Data-dependent codebook initialisation: the K codes become K encoder outputs of a batch, picked
 * with a seeded generator (a common VQ-VAE practice). With the reference's uniform +-1/K start,
 * Adam moves each code by about the learning rate per step, so on short CPU runs the codebook
 * stays near zero and the decoder sees almost no information; starting the codes on the data
 * avoids that. Option `codebookInit: 'uniform'` keeps the reference's start.
 */
export function initCodebookFromData(model: Vqvae, x: tf.Tensor4D, seed: number): void {
  const c = model.config;
  const ctx = trainingContext();
  try {
    tf.tidy(() => {
      const z = encode(model, c, x, ctx);
      const flat = z.reshape([-1, c.latent]).dataSync();
      const n = flat.length / c.latent;
      const rng = mulberry32(seed);
      const out = new Float32Array(c.codes * c.latent);
      for (let k = 0; k < c.codes; k++) {
        const r = Math.floor(rng() * n);
        for (let j = 0; j < c.latent; j++) out[k * c.latent + j] = flat[r * c.latent + j] + 1e-3 * (rng() - 0.5);
      }
      (model.params.get('vq.codebook') as tf.Variable).assign(tf.tensor2d(out, [c.codes, c.latent]));
    });
  } finally {
    disposeContext(ctx);
  }
}
