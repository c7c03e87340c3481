/**
 * The reference VQ-VAE's configuration, presets and tensor list (names and shapes), without
 * TensorFlow.js: what the host needs to describe or check a model. The model itself (forward pass,
 * quantiser) is in ../vqvae.ts.
 *
 * Tensor names (tfjs shapes, see params.ts), for widths w1/w2, latent d, codes K, channels C:
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
 */
import { type ParamSpec, type WeightEntry, bnSpecs, convSpecs, convTransposeSpecs, countParams } from './params';

export interface VqvaeConfig {
  /** Input height = width in pixels (multiple of 4). */
  size: number;
  /** Input channels (1: grey; the paper's code copies grey into 3). */
  channels: number;
  /** Widths of E1 / E2-E4 (and D1-D3 mirrored). */
  widths: [number, number];
  /** Residual blocks in E4 and in D2. */
  resBlocks: number;
  /** Latent (code) dimension. */
  latent: number;
  /** Codebook size. */
  codes: number;
  /** Commitment cost beta. */
  commitment: number;
  /** LeakyReLU slope. */
  leak: number;
}

export type VqvaePresetName = 'paper' | 'standard' | 'small' | 'tiny';

/**
 * Presets (1 channel; `vqvaePreset(name, { channels: 3 })` for the reference's 3). `paper`: 512 px, widths 256/512, 18 blocks (101,337,283 parameters at 1 channel, 101,353,673 at 3);
 * `standard`: 256 px, 128/256, 6 blocks (about 9.7M at 3 channels); `small`: 128 px, 32/64,
 * 2 blocks (CPU work; also the benchmark probe); `tiny`: 64 px, 8/16, 1 block (tests).
 */
export const VQVAE_PRESETS: Record<VqvaePresetName, VqvaeConfig> = {
  paper: { size: 512, channels: 1, widths: [256, 512], resBlocks: 18, latent: 64, codes: 512, commitment: 0.25, leak: 0.01 },
  standard: { size: 256, channels: 1, widths: [128, 256], resBlocks: 6, latent: 64, codes: 512, commitment: 0.25, leak: 0.01 },
  small: { size: 128, channels: 1, widths: [32, 64], resBlocks: 2, latent: 64, codes: 512, commitment: 0.25, leak: 0.01 },
  tiny: { size: 64, channels: 1, widths: [8, 16], resBlocks: 1, latent: 8, codes: 32, commitment: 0.25, leak: 0.01 },
};

/** A preset, optionally with overrides (e.g. `{ channels: 3 }`). */
export function vqvaePreset(name: VqvaePresetName, overrides: Partial<VqvaeConfig> = {}): VqvaeConfig {
  const base = VQVAE_PRESETS[name];
  if (base == null) throw new Error(`unknown VQ-VAE preset '${name}' (expected ${Object.keys(VQVAE_PRESETS).join(', ')})`);
  return { ...base, ...overrides };
}

function validate(c: VqvaeConfig): void {
  const posInt = (v: number, what: string) => {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`VqvaeConfig.${what} must be a positive integer (got ${v})`);
  };
  posInt(c.size, 'size');
  posInt(c.channels, 'channels');
  posInt(c.widths[0], 'widths[0]');
  posInt(c.widths[1], 'widths[1]');
  posInt(c.latent, 'latent');
  posInt(c.codes, 'codes');
  if (!Number.isInteger(c.resBlocks) || c.resBlocks < 0) throw new Error(`VqvaeConfig.resBlocks must be >= 0 (got ${c.resBlocks})`);
  if (c.size % 4 !== 0) throw new Error(`VqvaeConfig.size must be a multiple of 4 (got ${c.size})`);
}

function resSpecs(prefix: string, w: number): ParamSpec[] {
  return [...convSpecs(`${prefix}.conv1`, 3, w, w, false), ...bnSpecs(`${prefix}.bn`, w), ...convSpecs(`${prefix}.conv2`, 1, w, w, false)];
}

/** Encoder E1-E5 specs (shared with the classifier). */
export function encoderSpecs(c: Pick<VqvaeConfig, 'channels' | 'widths' | 'resBlocks' | 'latent'>): ParamSpec[] {
  const [w1, w2] = c.widths;
  const s: ParamSpec[] = [
    ...convSpecs('encoder.e1.conv', 4, c.channels, w1, true), ...bnSpecs('encoder.e1.bn', w1),
    ...convSpecs('encoder.e2.conv', 4, w1, w2, true), ...bnSpecs('encoder.e2.bn', w2),
    ...convSpecs('encoder.e3.conv', 3, w2, w2, true), ...bnSpecs('encoder.e3.bn', w2),
  ];
  for (let i = 0; i < c.resBlocks; i++) s.push(...resSpecs(`encoder.res.${i}`, w2));
  s.push(...convSpecs('encoder.e5.conv', 1, w2, c.latent, true), ...bnSpecs('encoder.e5.bn', c.latent));
  return s;
}

/** Every tensor of the VQ-VAE, in a fixed order. */
export function vqvaeSpecs(c: VqvaeConfig): ParamSpec[] {
  validate(c);
  const [w1, w2] = c.widths;
  const s = encoderSpecs(c);
  s.push({ name: 'vq.codebook', shape: [c.codes, c.latent], trainable: true, init: { kind: 'uniform', bound: 1 / c.codes } });
  s.push(...convSpecs('decoder.d1.conv', 3, c.latent, w2, true), ...bnSpecs('decoder.d1.bn', w2));
  for (let i = 0; i < c.resBlocks; i++) s.push(...resSpecs(`decoder.res.${i}`, w2));
  s.push(...convTransposeSpecs('decoder.d3.convt', 4, w2, w1, true), ...bnSpecs('decoder.d3.bn', w1));
  s.push(...convTransposeSpecs('decoder.d4.convt', 4, w1, c.channels, true), ...bnSpecs('decoder.d4.bn', c.channels));
  return s;
}

/** Trainable parameter count of a configuration, without allocating it. */
export function vqvaeParamCount(c: VqvaeConfig): number {
  return countParams(vqvaeSpecs(c));
}

/**
 * Encoder weights for a grey (1-channel) input from weights trained on C channels: the E1 filter
 * [kh, kw, C, w1] summed over its input channels. Exact for inputs that repeat the grey slice into
 * every channel (the reference's 3-channel input): conv(repeat(x), W) = conv(x, sum_c W[:, :, c, :]).
 * Fine-tuning and the bias probe, which feed grey slices to a 1-channel encoder, start from a
 * 3-channel run this way; other entries (and 1-channel weights) are returned unchanged.
 */
export function foldToGreyInput(entries: WeightEntry[]): WeightEntry[] {
  return entries.map((e) => {
    if (e.name !== 'encoder.e1.conv.weight' || e.shape.length !== 4 || e.shape[2] === 1) return e;
    const [kh, kw, c, o] = e.shape;
    const data = new Float32Array(kh * kw * o);
    for (let k = 0; k < kh * kw; k++) {
      for (let ch = 0; ch < c; ch++) {
        const src = (k * c + ch) * o;
        for (let j = 0; j < o; j++) data[k * o + j] += e.data[src + j];
      }
    }
    return { ...e, shape: [kh, kw, 1, o], data };
  });
}

/** Trainable parameter count of each preset at 1 and at 3 input channels (what `ctssl doctor` lists). */
export function presetParamCounts(): { preset: VqvaePresetName; channels1: number; channels3: number }[] {
  return (Object.keys(VQVAE_PRESETS) as VqvaePresetName[]).map((preset) => ({
    preset,
    channels1: vqvaeParamCount(vqvaePreset(preset, { channels: 1 })),
    channels3: vqvaeParamCount(vqvaePreset(preset, { channels: 3 })),
  }));
}
