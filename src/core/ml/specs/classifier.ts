/**
 * The encoder-classifier's configuration, presets and tensor list (names and shapes), without
 * TensorFlow.js. The model itself is in ../classifier.ts.
 *
 * Tensor names: the encoder's (`encoder.*`, identical to vqvae.ts so pretrained encoder weights
 * load directly), then
 *   head.c1.conv.{weight [4,4,latent,h], bias}  head.c1.bn.*
 *   head.c2.conv.{weight [4,4,h,h], bias}       head.c2.bn.*
 *   head.fc.{weight [h, classes], bias [classes]}
 */
import { type ParamSpec, bnSpecs, convSpecs, countParams, denseSpecs } from './params';
import { type VqvaeConfig, type VqvaePresetName, VQVAE_PRESETS, encoderSpecs } from './vqvae';

export interface ClassifierConfig extends Omit<VqvaeConfig, 'codes' | 'commitment'> {
  /** Number of classes (4 for rotation, 3 for flip). */
  classes: number;
  /** Width of the compression convolutions (default: latent). */
  headWidth: number;
  /**
   * How the head pools its feature map before the dense layer (default 'mean', the paper's
   * global average). 'mean-max' concatenates the average and the maximum over positions, so that
   * a small finding (a nodule, an embolus) covering a few cells is not averaged away; the dense
   * layer then takes 2 x headWidth inputs.
   */
  pool?: 'mean' | 'mean-max';
}

/** A classifier with the encoder of a VQ-VAE preset. */
export function classifierPreset(name: VqvaePresetName, classes: number, overrides: Partial<ClassifierConfig> = {}): ClassifierConfig {
  const base = VQVAE_PRESETS[name];
  if (base == null) throw new Error(`unknown preset '${name}'`);
  const { codes: _c, commitment: _m, ...enc } = base;
  void _c;
  void _m;
  return { ...enc, classes, headWidth: base.latent, ...overrides };
}

export function classifierSpecs(c: ClassifierConfig): ParamSpec[] {
  if (!Number.isInteger(c.classes) || c.classes < 2) throw new Error(`ClassifierConfig.classes must be an integer >= 2 (got ${c.classes})`);
  if (c.pool != null && c.pool !== 'mean' && c.pool !== 'mean-max') throw new Error(`ClassifierConfig.pool must be 'mean' or 'mean-max' (got '${String(c.pool)}')`);
  if (!Number.isInteger(c.headWidth) || c.headWidth < 1) throw new Error(`ClassifierConfig.headWidth must be a positive integer (got ${c.headWidth})`);
  if (c.size % 16 !== 0) throw new Error(`ClassifierConfig.size must be a multiple of 16 (got ${c.size})`);
  return [
    ...encoderSpecs(c),
    ...convSpecs('head.c1.conv', 4, c.latent, c.headWidth, true), ...bnSpecs('head.c1.bn', c.headWidth),
    ...convSpecs('head.c2.conv', 4, c.headWidth, c.headWidth, true), ...bnSpecs('head.c2.bn', c.headWidth),
    ...denseSpecs('head.fc', c.pool === 'mean-max' ? 2 * c.headWidth : c.headWidth, c.classes),
  ];
}

export function classifierParamCount(c: ClassifierConfig): number {
  return countParams(classifierSpecs(c));
}
