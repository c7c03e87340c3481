/**
 * The reference VQ-VAE's state-dict keys (the authors' PyTorch module, shared/docs/reference-model.md
 * and reference-state-dict.json) and our tensor for each. The naming rule, for `depth` residual
 * layers D:
 *   encoder.0 / .1 / .2       E1, E2, E3: Sequential(conv `.0`, BatchNorm `.1`, LeakyReLU)
 *   encoder.{3..D+2}          residual layers: `.resblock.0` conv 3x3, `.resblock.2` BatchNorm,
 *                             `.resblock.4` conv 1x1 (indices 1 and 3 hold no parameters)
 *   encoder.{D+3}             LeakyReLU (no parameters)
 *   encoder.{D+4}             E5: conv 1x1 `.0`, BatchNorm `.1`
 *   vq_layer.embedding.weight the codebook [codes, latent]
 *   decoder.0                 D1: conv `.0`, BatchNorm `.1`
 *   decoder.{1..D}            residual layers: `.resblock.0` conv 3x3, `.resblock.1` BatchNorm, `.resblock.3` conv 1x1
 *   decoder.{D+1}             LeakyReLU
 *   decoder.{D+2} / .{D+3}    D3, D4: transposed conv `.0`, BatchNorm `.1`
 * Every BatchNorm also has `num_batches_tracked` (int64, not used by inference; not kept).
 * PyTorch layouts: conv weight [out, in, kh, kw] and transposed conv [in, out, kh, kw]; ours are
 * [kh, kw, in, out] and [kh, kw, out, in] (specs/params.ts): both are the permutation (2, 3, 1, 0).
 */
import { type VqvaeConfig, type VqvaePresetName, VQVAE_PRESETS, vqvaePreset, vqvaeSpecs } from '../ml/specs/vqvae';
import { TorchFormatError } from './zip';

/** The architecture read off a state dict. */
export interface ReferenceArch {
  channels: number;
  widths: [number, number];
  depth: number;
  latent: number;
  codes: number;
}

export interface KeyMapping {
  /** The reference's key. */
  torch: string;
  /** Its shape in PyTorch's layout. */
  shape: number[];
  /** Our tensor, or null for a key that is checked and dropped (num_batches_tracked). */
  ours: string | null;
  /** conv and transposed-conv weights are permuted (2, 3, 1, 0); the rest copied. */
  permute: boolean;
}

const BN = ['weight', 'bias', 'running_mean', 'running_var'] as const;

/** Every key of the reference model of this architecture, in the reference's order. */
export function referenceKeys(a: ReferenceArch): KeyMapping[] {
  const { channels: c, latent: d, codes: k, depth } = a;
  const [w1, w2] = a.widths;
  const out: KeyMapping[] = [];
  const conv = (t: string, ours: string, shape: number[], bias: boolean) => {
    out.push({ torch: `${t}.weight`, shape, ours: `${ours}.weight`, permute: true });
    if (bias) out.push({ torch: `${t}.bias`, shape: [shape[0]], ours: `${ours}.bias`, permute: false });
  };
  const convT = (t: string, ours: string, cin: number, cout: number) => {
    out.push({ torch: `${t}.weight`, shape: [cin, cout, 4, 4], ours: `${ours}.weight`, permute: true });
    out.push({ torch: `${t}.bias`, shape: [cout], ours: `${ours}.bias`, permute: false });
  };
  const bn = (t: string, ours: string, n: number) => {
    for (const p of BN) out.push({ torch: `${t}.${p}`, shape: [n], ours: `${ours}.${p}`, permute: false });
    out.push({ torch: `${t}.num_batches_tracked`, shape: [], ours: null, permute: false });
  };
  conv('encoder.0.0', 'encoder.e1.conv', [w1, c, 4, 4], true);
  bn('encoder.0.1', 'encoder.e1.bn', w1);
  conv('encoder.1.0', 'encoder.e2.conv', [w2, w1, 4, 4], true);
  bn('encoder.1.1', 'encoder.e2.bn', w2);
  conv('encoder.2.0', 'encoder.e3.conv', [w2, w2, 3, 3], true);
  bn('encoder.2.1', 'encoder.e3.bn', w2);
  for (let i = 0; i < depth; i++) {
    const t = `encoder.${3 + i}.resblock`;
    conv(`${t}.0`, `encoder.res.${i}.conv1`, [w2, w2, 3, 3], false);
    bn(`${t}.2`, `encoder.res.${i}.bn`, w2);
    conv(`${t}.4`, `encoder.res.${i}.conv2`, [w2, w2, 1, 1], false);
  }
  conv(`encoder.${depth + 4}.0`, 'encoder.e5.conv', [d, w2, 1, 1], true);
  bn(`encoder.${depth + 4}.1`, 'encoder.e5.bn', d);
  out.push({ torch: 'vq_layer.embedding.weight', shape: [k, d], ours: 'vq.codebook', permute: false });
  conv('decoder.0.0', 'decoder.d1.conv', [w2, d, 3, 3], true);
  bn('decoder.0.1', 'decoder.d1.bn', w2);
  for (let i = 0; i < depth; i++) {
    const t = `decoder.${1 + i}.resblock`;
    conv(`${t}.0`, `decoder.res.${i}.conv1`, [w2, w2, 3, 3], false);
    bn(`${t}.1`, `decoder.res.${i}.bn`, w2);
    conv(`${t}.3`, `decoder.res.${i}.conv2`, [w2, w2, 1, 1], false);
  }
  convT(`decoder.${depth + 2}.0`, 'decoder.d3.convt', w2, w1);
  bn(`decoder.${depth + 2}.1`, 'decoder.d3.bn', w1);
  convT(`decoder.${depth + 3}.0`, 'decoder.d4.convt', w1, c);
  bn(`decoder.${depth + 3}.1`, 'decoder.d4.bn', c);
  return out;
}

const shapeText = (s: number[]) => `[${s.join(', ')}]`;

/**
 * The architecture of a state dict (keys and PyTorch shapes), from the keys that fix it:
 * `encoder.0.0.weight` (E1: width and channels), `encoder.1.0.weight` (E2), the residual layers
 * present, `vq_layer.embedding.weight` (codes, latent). Refuses, naming the key, when one of them
 * is missing or not 4-D/2-D.
 */
export function inferReferenceArch(shapes: Map<string, number[]>): ReferenceArch {
  const get = (key: string, rank: number): number[] => {
    const s = shapes.get(key);
    if (!s) throw new TorchFormatError(`missing key ${key}: not the reference VQ-VAE's state dict (shared/docs/reference-model.md)`);
    if (s.length !== rank) throw new TorchFormatError(`key ${key} has shape ${shapeText(s)}, the reference model's is ${rank}-D`);
    return s;
  };
  const e1 = get('encoder.0.0.weight', 4);
  const e2 = get('encoder.1.0.weight', 4);
  const cb = get('vq_layer.embedding.weight', 2);
  let depth = 0;
  while (shapes.has(`encoder.${3 + depth}.resblock.0.weight`)) depth++;
  return { channels: e1[1], widths: [e1[0], e2[0]], depth, latent: cb[1], codes: cb[0] };
}

/** The preset whose widths, residual blocks, latent and codes are the architecture's, or a refusal saying what the file has. */
export function presetOf(a: ReferenceArch): VqvaePresetName {
  const hit = (Object.keys(VQVAE_PRESETS) as VqvaePresetName[]).find((n) => {
    const p = VQVAE_PRESETS[n];
    return p.widths[0] === a.widths[0] && p.widths[1] === a.widths[1] && p.resBlocks === a.depth && p.latent === a.latent && p.codes === a.codes;
  });
  if (!hit) {
    const list = (Object.keys(VQVAE_PRESETS) as VqvaePresetName[]).map((n) => {
      const p = VQVAE_PRESETS[n];
      return `${n} ${p.widths.join('/')}, ${p.resBlocks}, ${p.latent}, ${p.codes}`;
    });
    throw new TorchFormatError(
      `the checkpoint's model (hidden_dims ${a.widths.join('/')}, depth ${a.depth}, embedding_dim ${a.latent}, num_embeddings ${a.codes}) is none of this app's presets (widths, residual blocks, latent, codes: ${list.join('; ')})`,
    );
  }
  if (a.channels !== 1 && a.channels !== 3) throw new TorchFormatError(`key encoder.0.0.weight: ${a.channels} input channels; the app builds 1 or 3`);
  return hit;
}

export interface MatchedStateDict {
  arch: ReferenceArch;
  preset: VqvaePresetName;
  config: VqvaeConfig;
  mapping: KeyMapping[];
}

/**
 * Checks a state dict's keys and shapes against the reference model of its architecture: every
 * key known, none missing, each of its shape; a refusal names the key. `size` is the input side
 * of the run it becomes (the weights do not fix it).
 */
export function matchStateDict(shapes: Map<string, number[]>, size?: number): MatchedStateDict {
  const arch = inferReferenceArch(shapes);
  const mapping = referenceKeys(arch);
  const expected = new Map(mapping.map((m) => [m.torch, m]));
  for (const key of shapes.keys()) {
    if (!expected.has(key)) throw new TorchFormatError(`unknown key ${key}: not a tensor of the reference VQ-VAE (hidden_dims ${arch.widths.join('/')}, depth ${arch.depth}; shared/docs/reference-model.md)`);
  }
  for (const m of mapping) {
    const s = shapes.get(m.torch);
    if (!s) throw new TorchFormatError(`missing key ${m.torch} (the reference VQ-VAE with hidden_dims ${arch.widths.join('/')} and depth ${arch.depth} has it)`);
    if (s.join(',') !== m.shape.join(',')) throw new TorchFormatError(`key ${m.torch} has shape ${shapeText(s)}, the reference model of this checkpoint expects ${shapeText(m.shape)}`);
  }
  const preset = presetOf(arch);
  const config = vqvaePreset(preset, { channels: arch.channels, ...(size ? { size } : {}) });
  // the mapping covers our model exactly (a check of this file's rule against specs/vqvae.ts)
  const ours = new Map(vqvaeSpecs(config).map((s) => [s.name, s.shape]));
  const mapped = mapping.filter((m) => m.ours !== null);
  if (mapped.length !== ours.size || mapped.some((m) => !ours.has(m.ours!))) throw new Error('internal: the reference naming rule does not cover this app\'s VQ-VAE');
  return { arch, preset, config, mapping };
}

/** A PyTorch conv / transposed-conv weight [a, b, kh, kw] in our layout [kh, kw, b, a]. */
export function permute2310(data: Float32Array, shape: number[]): { data: Float32Array; shape: number[] } {
  const [a, b, kh, kw] = shape;
  const out = new Float32Array(data.length);
  for (let i = 0; i < a; i++)
    for (let j = 0; j < b; j++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) out[((y * kw + x) * b + j) * a + i] = data[((i * b + j) * kh + y) * kw + x];
  return { data: out, shape: [kh, kw, b, a] };
}
