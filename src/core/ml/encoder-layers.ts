/**
 * The pretrained encoder (E1-E5) as a standard TensorFlow.js layers model, for sharing: anyone
 * loads it with `tf.loadLayersModel('.../model.json')` and gets the latent map
 * [N, S/4, S/4, latent] of a [N, S, S, C] input, with no code of ours. Built from the same
 * weights as src/core/ml/vqvae.ts (inference mode: BatchNorm uses running statistics,
 * epsilon 1e-5 as in training). 'same' padding equals the explicit padding of training for these
 * kernel/stride pairs (4/2 pad 1, 3/1 pad 1, 1/1 pad 0).
 */
import * as tf from '@tensorflow/tfjs';
import type { VqvaeConfig } from './specs/vqvae';
import type { WeightEntry } from './specs/params';

type EncoderConfig = Pick<VqvaeConfig, 'size' | 'channels' | 'widths' | 'resBlocks' | 'latent' | 'leak'>;

/** Layer name in the layers model for each of our tensor-name prefixes. */
const safe = (prefix: string) => prefix.replace(/\./g, '_');

export function buildEncoderModel(c: EncoderConfig): tf.LayersModel {
  const [w1, w2] = c.widths;
  const input = tf.input({ shape: [c.size, c.size, c.channels], name: 'image' });
  const conv = (x: tf.SymbolicTensor, name: string, filters: number, k: number, s: number, bias: boolean) =>
    tf.layers.conv2d({ name: safe(name), filters, kernelSize: k, strides: s, padding: 'same', useBias: bias }).apply(x) as tf.SymbolicTensor;
  const bnorm = (x: tf.SymbolicTensor, name: string) => tf.layers.batchNormalization({ name: safe(name), epsilon: 1e-5, axis: -1 }).apply(x) as tf.SymbolicTensor;
  const lrelu = (x: tf.SymbolicTensor, name: string) => tf.layers.leakyReLU({ alpha: c.leak, name }).apply(x) as tf.SymbolicTensor;
  let h = lrelu(bnorm(conv(input, 'encoder.e1.conv', w1, 4, 2, true), 'encoder.e1.bn'), 'e1_act');
  h = lrelu(bnorm(conv(h, 'encoder.e2.conv', w2, 4, 2, true), 'encoder.e2.bn'), 'e2_act');
  h = lrelu(bnorm(conv(h, 'encoder.e3.conv', w2, 3, 1, true), 'encoder.e3.bn'), 'e3_act');
  for (let i = 0; i < c.resBlocks; i++) {
    const p = `encoder.res.${i}`;
    const a = tf.layers.reLU({ name: safe(p) + '_relu' }).apply(bnorm(conv(h, `${p}.conv1`, w2, 3, 1, false), `${p}.bn`)) as tf.SymbolicTensor;
    h = tf.layers.add({ name: safe(p) + '_add' }).apply([h, conv(a, `${p}.conv2`, w2, 1, 1, false)]) as tf.SymbolicTensor;
  }
  h = conv(lrelu(h, 'e5_pre_act'), 'encoder.e5.conv', c.latent, 1, 1, true);
  const latent = lrelu(bnorm(h, 'encoder.e5.bn'), 'latent');
  return tf.model({ inputs: input, outputs: latent, name: 'ct_ssl_encoder' });
}

/** Copies our encoder tensors (`encoder.*`) into the layers model; throws naming a missing tensor. */
export function setEncoderWeights(model: tf.LayersModel, entries: WeightEntry[]): void {
  const by = new Map(entries.map((e) => [e.name, e]));
  const take = (name: string, shape: number[]) => {
    const e = by.get(name);
    if (!e) throw new Error(`encoder weights: missing tensor ${name}`);
    if (e.shape.join(',') !== shape.join(',')) throw new Error(`encoder weights: ${name} has shape [${e.shape}], the model expects [${shape}]`);
    return tf.tensor(e.data, e.shape);
  };
  for (const layer of model.layers) {
    const prefix = layer.name.replace(/_/g, '.');
    const cls = layer.getClassName();
    const shapes = layer.getWeights().map((w) => w.shape as number[]);
    let values: tf.Tensor[] | null = null;
    if (cls === 'Conv2D') values = [take(`${prefix}.weight`, shapes[0]), ...(shapes.length > 1 ? [take(`${prefix}.bias`, shapes[1])] : [])];
    else if (cls === 'BatchNormalization')
      values = [take(`${prefix}.weight`, shapes[0]), take(`${prefix}.bias`, shapes[1]), take(`${prefix}.running_mean`, shapes[2]), take(`${prefix}.running_var`, shapes[3])];
    if (values) {
      layer.setWeights(values);
      tf.dispose(values);
    }
  }
}

/** Saves a layers model to plain artifacts: model.json text and the weights binary. */
export async function layersModelArtifacts(model: tf.LayersModel, weightsFile = 'weights.bin'): Promise<{ modelJson: string; weights: Uint8Array }> {
  let saved: tf.io.ModelArtifacts | null = null;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const a = saved as unknown as tf.io.ModelArtifacts;
  const data = a.weightData as ArrayBuffer;
  const modelJson = JSON.stringify({
    format: 'layers-model',
    generatedBy: a.generatedBy,
    convertedBy: null,
    modelTopology: a.modelTopology,
    weightsManifest: [{ paths: [weightsFile], weights: a.weightSpecs }],
  });
  return { modelJson, weights: new Uint8Array(data) };
}

/** Loads a layers model from the artifacts written by {@link layersModelArtifacts}. */
export async function loadLayersModelFromArtifacts(modelJson: string, weights: Uint8Array): Promise<tf.LayersModel> {
  const j = JSON.parse(modelJson) as { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
  const buf = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: j.modelTopology, weightSpecs: j.weightsManifest[0].weights, weightData: buf }));
}
