/**
 * Classifier-type model for the rotation and flip tasks (and downstream heads): the VQ-VAE's
 * encoder E1-E5, then compression layers (two 4x4 stride-2 convolutions with BatchNorm and
 * LeakyReLU, global average pooling) and a dense softmax head. NHWC.
 *
 * Tensor names: the encoder's (`encoder.*`, identical to vqvae.ts so pretrained encoder weights
 * load directly), then
 *   head.c1.conv.{weight [4,4,latent,h], bias}  head.c1.bn.*
 *   head.c2.conv.{weight [4,4,h,h], bias}       head.c2.bn.*
 *   head.fc.{weight [h, classes], bias [classes]}
 *
 * The configuration, presets and tensor list live without TensorFlow.js in specs/classifier.ts
 * (re-exported here).
 */
import * as tf from '@tensorflow/tfjs';
import { dense } from './layers';
import { type ForwardContext, bnAct, convLayer, encode } from './vqvae';
import { type ParamStore, createStore } from './weights';
import { type ClassifierConfig, classifierSpecs } from './specs/classifier';

export { type ClassifierConfig, classifierParamCount, classifierPreset, classifierSpecs } from './specs/classifier';

export interface Classifier extends ParamStore {
  kind: 'classifier';
  config: ClassifierConfig;
}

export function createClassifier(config: ClassifierConfig, seed = 0): Classifier {
  return { kind: 'classifier', config, ...createStore(classifierSpecs(config), seed) };
}

/** Logits [N, classes]. */
export function classifierForward(model: Classifier, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
  const c = model.config;
  if (x.rank !== 4 || x.shape[1] !== c.size || x.shape[2] !== c.size || (x.shape[3] !== c.channels && x.shape[3] !== 1)) {
    throw new Error(`classifierForward: input must be [N, ${c.size}, ${c.size}, ${c.channels}]${c.channels !== 1 ? ' or a grey [N, S, S, 1]' : ''} (got [${x.shape}])`);
  }
  let h = encode(model, c, x, ctx);
  h = bnAct(model, 'head.c1.bn', convLayer(model, 'head.c1.conv', h, 2, 1), ctx, { leakyRelu: c.leak });
  h = bnAct(model, 'head.c2.bn', convLayer(model, 'head.c2.conv', h, 2, 1), ctx, { leakyRelu: c.leak });
  const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
  const w = model.params.get('head.fc.weight') as unknown as tf.Tensor2D;
  const b = model.params.get('head.fc.bias') as unknown as tf.Tensor1D;
  return dense(pooled, w, b);
}
