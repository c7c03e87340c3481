/**
 * A PyTorch checkpoint read without Python: the zip archive (zip.ts), its pickle (pickle.ts, which
 * executes nothing) and the raw storages of the tensors asked for. The state dict is the
 * checkpoint's `model_state` (the authors' script), else `state_dict`, else the top-level dict
 * itself (`torch.save(model.state_dict(), path)`). Only the storages of that dict's tensors are
 * read; the rest (`'model'`, a pickled module; `'optimizer_state'`) is parsed and left alone.
 */
import { type PickleLimits, type PickleReport, type PValue, DTYPE_BYTES, PDict, PStorage, PTensor, readPickle, type TorchDtype } from './pickle';
import { type RandomAccess, type TorchZip, type TorchZipLimits, readTorchEntry, readTorchZip, sniffTorchFile, TorchFormatError } from './zip';

export interface TorchCheckpointLimits extends TorchZipLimits {
  /** Size of data.pkl read at all. */
  maxPickleBytes: number;
  /** One storage read into memory. */
  maxStorageBytes: number;
  /** All storages of the state dict together. */
  maxStateBytes: number;
  /** Tensors in the state dict. */
  maxTensors: number;
  pickle: Partial<PickleLimits>;
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/**
 * Sized from the paper's checkpoint: 302 state-dict tensors of 405 MB; with the pickled module
 * and the optimizer's two moments about 650 storages and 1.2 GB, a pickle of a few MB.
 */
export const TORCH_LIMITS: TorchCheckpointLimits = {
  maxEntries: 100_000,
  maxCentralDirectoryBytes: 32 * MiB,
  maxNameLength: 512,
  maxPickleBytes: 256 * MiB,
  maxStorageBytes: 2 * GiB,
  maxStateBytes: 4 * GiB,
  maxTensors: 100_000,
  pickle: {},
};

/** One tensor of the state dict, before its data is read. */
export interface StateTensor {
  key: string;
  dtype: TorchDtype;
  shape: number[];
  tensor: PTensor;
}

export interface TorchCheckpoint {
  zip: TorchZip;
  root: PValue;
  /** Where the state dict was found: 'model_state', 'state_dict' or '(top level)'. */
  stateKey: string;
  tensors: StateTensor[];
  /** Other top-level keys of the checkpoint (not read further). */
  otherKeys: string[];
  /** `epoch` of the checkpoint, when it has one. */
  epoch: number | null;
  report: PickleReport;
}

/** Opens a checkpoint: the zip, the whole pickle, the state dict's tensors (no tensor data yet). */
export function openTorchCheckpoint(r: RandomAccess, limits: TorchCheckpointLimits = TORCH_LIMITS): TorchCheckpoint {
  const kind = sniffTorchFile(r.read(0, 4));
  if (kind === 'legacy') {
    throw new TorchFormatError('the legacy PyTorch format (torch.save before PyTorch 1.6, or _use_new_zipfile_serialization=False) is not read: load it in PyTorch and save it again with torch.save (the zip format)');
  }
  if (kind !== 'zip') throw new TorchFormatError('not a PyTorch checkpoint (torch.save writes a zip archive; this file does not start with one)');
  const zip = readTorchZip(r, limits);
  const pklEntry = zip.entries.get('data.pkl')!;
  if (pklEntry.size > limits.maxPickleBytes) throw new TorchFormatError(`data.pkl is ${pklEntry.size} bytes, more than the ${limits.maxPickleBytes} read`);
  const pkl = readTorchEntry(r, pklEntry, zip.prefix);
  const storages = new Map<string, PStorage>();
  const { value: root, report } = readPickle(pkl, {
    limits: limits.pickle,
    storage: (dtype, key, location, numel) => {
      const seen = storages.get(key);
      if (seen) {
        if (seen.dtype !== dtype || seen.numel !== numel) throw new TorchFormatError(`storage ${key} is described twice, differently (${seen.dtype} x ${seen.numel}, then ${dtype} x ${numel})`);
        return seen;
      }
      const e = zip.entries.get(`data/${key}`);
      if (!e) throw new TorchFormatError(`storage ${key}: the archive has no ${zip.prefix}/data/${key}`);
      const bytes = numel * DTYPE_BYTES[dtype];
      if (e.size !== bytes) throw new TorchFormatError(`storage ${key}: the pickle says ${numel} ${dtype} values (${bytes} bytes), its entry ${zip.prefix}/data/${key} has ${e.size} bytes`);
      const s = new PStorage(dtype, key, location, numel);
      storages.set(key, s);
      return s;
    },
  });
  let state: PDict;
  let stateKey: string;
  let otherKeys: string[] = [];
  let epoch: number | null = null;
  if (!(root instanceof PDict)) throw new TorchFormatError('the checkpoint is not a dict (expected {"model_state": ...} or a state_dict)');
  const top = root.map;
  const pick = ['model_state', 'state_dict'].find((k) => top.get(k) instanceof PDict);
  if (pick) {
    state = top.get(pick) as PDict;
    stateKey = pick;
    otherKeys = [...top.keys()].filter((k) => k !== pick).map(String);
    const e = top.get('epoch');
    if (typeof e === 'number' && Number.isFinite(e)) epoch = e;
  } else {
    state = root;
    stateKey = '(top level)';
    if (![...top.values()].some((v) => v instanceof PTensor)) {
      throw new TorchFormatError(`no state dict: the checkpoint has neither 'model_state' nor 'state_dict', and its keys (${[...top.keys()].slice(0, 10).map((k) => JSON.stringify(String(k))).join(', ')}) are not tensors`);
    }
  }
  if (state.map.size > limits.maxTensors) throw new TorchFormatError(`${stateKey} has ${state.map.size} entries, more than ${limits.maxTensors}`);
  const tensors: StateTensor[] = [];
  let total = 0;
  for (const [k, v] of state.map) {
    if (typeof k !== 'string') throw new TorchFormatError(`${stateKey}: a key that is not a string (${typeof k})`);
    if (!(v instanceof PTensor)) throw new TorchFormatError(`${stateKey}: key ${JSON.stringify(k)} is not a tensor`);
    const n = v.shape.reduce((a, b) => a * b, 1);
    total += n * DTYPE_BYTES[v.storage.dtype];
    tensors.push({ key: k, dtype: v.storage.dtype, shape: v.shape, tensor: v });
  }
  if (total > limits.maxStateBytes) throw new TorchFormatError(`${stateKey} holds ${total} bytes of tensors, more than ${limits.maxStateBytes}`);
  return { zip, root, stateKey, tensors, otherKeys, epoch, report };
}

/**
 * A float32 tensor's values in row-major order (its view of the storage: offset and strides), read
 * from the file with the storage's CRC checked. `cache` keeps storages shared by several tensors
 * (the caller drops them when done). A tensor that is its whole storage is that storage's array.
 */
export function readFloat32Tensor(r: RandomAccess, ck: TorchCheckpoint, t: StateTensor, cache: Map<string, Float32Array> = new Map(), limits: TorchCheckpointLimits = TORCH_LIMITS): Float32Array {
  if (t.dtype !== 'float32') throw new TorchFormatError(`${ck.stateKey}: key ${JSON.stringify(t.key)} is ${t.dtype}; weights are read as float32 only`);
  const s = t.tensor.storage;
  let all = cache.get(s.key);
  if (!all) {
    const e = ck.zip.entries.get(`data/${s.key}`)!;
    if (e.size > limits.maxStorageBytes) throw new TorchFormatError(`storage ${s.key} is ${e.size} bytes, more than the ${limits.maxStorageBytes} read`);
    const bytes = readTorchEntry(r, e, ck.zip.prefix);
    // little-endian, as torch writes and every supported platform is; the bytes read are the array
    // (a view: the storage is not copied again) unless they are not 4-byte aligned
    all = bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, s.numel) : new Float32Array(bytes.slice().buffer, 0, s.numel);
    cache.set(s.key, all);
  }
  const { shape, stride, offset } = t.tensor;
  const n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return new Float32Array(0);
  // contiguous: one copy; otherwise walk the strides
  let contiguous = true;
  for (let i = shape.length - 1, want = 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== want) contiguous = false;
    want *= shape[i];
  }
  if (contiguous) return offset === 0 && n === all.length ? all : all.slice(offset, offset + n);
  const out = new Float32Array(n);
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    let at = offset;
    for (let d = 0; d < shape.length; d++) at += idx[d] * stride[d];
    out[k] = all[at];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}
