/**
 * The authors' PyTorch checkpoints as this app's VQ-VAE weights: open (checkpoint.ts: zip +
 * pickle, nothing executed), match the state dict to the reference model's keys and shapes
 * (reference-names.ts), read the tensors and put them in our layout.
 */
import type { WeightEntry } from '../ml/specs/params';
import { openTorchCheckpoint, readFloat32Tensor, TORCH_LIMITS, type TorchCheckpoint, type TorchCheckpointLimits } from './checkpoint';
import { matchStateDict, permute2310, type MatchedStateDict } from './reference-names';
import type { RandomAccess } from './zip';
import { PDict, POpaque } from './pickle';

export { openTorchCheckpoint, readFloat32Tensor, TORCH_LIMITS, type TorchCheckpoint, type TorchCheckpointLimits } from './checkpoint';
export { inferReferenceArch, matchStateDict, presetOf, referenceKeys, type KeyMapping, type MatchedStateDict, type ReferenceArch } from './reference-names';
export { ALLOWED_CALLABLES, readPickle, PDict, PGlobal, POpaque, PStorage, PTensor, PTuple, type PValue } from './pickle';
export { readTorchZip, sniffTorchFile, TorchFormatError, type RandomAccess } from './zip';

export interface ReferenceWeights {
  checkpoint: TorchCheckpoint;
  matched: MatchedStateDict;
  /** Our tensors, in specs order of the mapping (names and layouts of src/core/ml/specs/vqvae.ts). */
  weights: WeightEntry[];
}

/**
 * Reads a reference VQ-VAE checkpoint into our tensors. Every key is checked (unknown, missing,
 * mis-shaped: refused naming it) before any tensor data is read. `size`: the run's input side.
 */
export function readReferenceCheckpoint(r: RandomAccess, o: { size?: number; limits?: TorchCheckpointLimits } = {}): ReferenceWeights {
  const limits = o.limits ?? TORCH_LIMITS;
  const checkpoint = openTorchCheckpoint(r, limits);
  // a model wrapped in nn.DataParallel saves every key under 'module.'
  const wrapped = checkpoint.tensors.length > 0 && checkpoint.tensors.every((t) => t.key.startsWith('module.'));
  const keyOf = (k: string) => (wrapped ? k.slice('module.'.length) : k);
  const shapes = new Map(checkpoint.tensors.map((t) => [keyOf(t.key), t.shape]));
  const matched = matchStateDict(shapes, o.size);
  const byKey = new Map(checkpoint.tensors.map((t) => [keyOf(t.key), t]));
  // storages are kept only while a tensor still to be read uses them (bounded memory: the weights once)
  const uses = new Map<string, number>();
  for (const m of matched.mapping) if (m.ours !== null) uses.set(byKey.get(m.torch)!.tensor.storage.key, (uses.get(byKey.get(m.torch)!.tensor.storage.key) ?? 0) + 1);
  const cache = new Map<string, Float32Array>();
  const weights: WeightEntry[] = [];
  for (const m of matched.mapping) {
    if (m.ours === null) continue;
    const t = byKey.get(m.torch)!;
    const data = readFloat32Tensor(r, checkpoint, t, cache, limits);
    const key = t.tensor.storage.key;
    const left = uses.get(key)! - 1;
    uses.set(key, left);
    if (left === 0) cache.delete(key);
    const w = m.permute ? permute2310(data, t.shape) : { data, shape: t.shape };
    weights.push({ name: m.ours, shape: w.shape, dtype: 'float32', data: w.data });
  }
  return { checkpoint, matched, weights };
}

/** An optional positive integer `img_size` recorded on the pickled module (the authors' `'model'` entry), read as data. */
export function moduleImageSize(ck: TorchCheckpoint): number | null {
  const model = ck.root instanceof PDict ? ck.root.map.get('model') : null;
  const state = model instanceof POpaque ? model.state : null;
  const v = state instanceof PDict ? state.map.get('img_size') : null;
  return typeof v === 'number' && Number.isInteger(v) && v >= 16 && v <= 1024 && v % 4 === 0 ? v : null;
}
