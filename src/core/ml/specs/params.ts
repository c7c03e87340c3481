/**
 * Named tensors as plain data and the shapes of a model's tensors, without TensorFlow.js: what
 * checkpoints, packages and the host need to know about weights. The tfjs parameter stores built
 * from these specs are in ../weights.ts.
 *
 * Tensor names are stable and PyTorch-like (`encoder.e1.conv.weight`, `encoder.e1.bn.running_mean`,
 * `vq.codebook`, ...; see vqvae.ts and classifier.ts here for the full lists). Shapes are in tfjs
 * layout: conv weights [kh, kw, in, out], transposed-conv weights [kh, kw, out, in], dense
 * [in, out], codebook [codes, dim]. Data is float32, row-major.
 */
import { mulberry32 } from '../../random';

/** One named tensor as plain data. */
export interface WeightEntry {
  name: string;
  shape: number[];
  dtype: 'float32';
  data: Float32Array;
}

/** Shape and role of one tensor of a model, known before any tensor exists. */
export interface ParamSpec {
  name: string;
  shape: number[];
  /** Trainable parameter (true) or buffer such as BatchNorm running statistics (false). */
  trainable: boolean;
  /** Initialiser: uniform(+-bound) or constant, applied by {@link initialWeights}. */
  init: { kind: 'uniform'; bound: number } | { kind: 'const'; value: number };
}

/**
 * A model's initial weights: one mulberry32 stream seeded by `seed`, drawn uniform(+-bound) or
 * filled constant per spec in spec order; parameters then buffers. The one initialisation:
 * `createStore` (../weights.ts) makes its variables from it, and the host (a cluster job's
 * init.safetensors) takes it without TensorFlow.js.
 */
export function initialWeights(specs: ParamSpec[], seed: number): WeightEntry[] {
  const rng = mulberry32(seed);
  const params: WeightEntry[] = [];
  const buffers: WeightEntry[] = [];
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (s.init.kind === 'uniform') for (let i = 0; i < n; i++) data[i] = (rng() * 2 - 1) * s.init.bound;
    else data.fill(s.init.value);
    (s.trainable ? params : buffers).push({ name: s.name, shape: [...s.shape], dtype: 'float32', data });
  }
  return [...params, ...buffers];
}

/** Number of trainable values in a list of specs. */
export function countParams(specs: ParamSpec[]): number {
  let n = 0;
  for (const s of specs) if (s.trainable) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

// Spec helpers shared by the models ------------------------------------------------------------

/** conv weight [k,k,in,out] (+ bias), PyTorch default init bound 1/sqrt(fan_in). */
export function convSpecs(prefix: string, k: number, cin: number, cout: number, bias: boolean): ParamSpec[] {
  const bound = 1 / Math.sqrt(k * k * cin);
  const s: ParamSpec[] = [{ name: `${prefix}.weight`, shape: [k, k, cin, cout], trainable: true, init: { kind: 'uniform', bound } }];
  if (bias) s.push({ name: `${prefix}.bias`, shape: [cout], trainable: true, init: { kind: 'uniform', bound } });
  return s;
}

/** transposed-conv weight [k,k,out,in] (+ bias [out]); PyTorch's fan_in is out*k*k. */
export function convTransposeSpecs(prefix: string, k: number, cin: number, cout: number, bias: boolean): ParamSpec[] {
  const bound = 1 / Math.sqrt(k * k * cout);
  const s: ParamSpec[] = [{ name: `${prefix}.weight`, shape: [k, k, cout, cin], trainable: true, init: { kind: 'uniform', bound } }];
  if (bias) s.push({ name: `${prefix}.bias`, shape: [cout], trainable: true, init: { kind: 'uniform', bound } });
  return s;
}

/** BatchNorm: weight (gamma) 1, bias (beta) 0, running_mean 0, running_var 1. */
export function bnSpecs(prefix: string, c: number): ParamSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [c], trainable: true, init: { kind: 'const', value: 1 } },
    { name: `${prefix}.bias`, shape: [c], trainable: true, init: { kind: 'const', value: 0 } },
    { name: `${prefix}.running_mean`, shape: [c], trainable: false, init: { kind: 'const', value: 0 } },
    { name: `${prefix}.running_var`, shape: [c], trainable: false, init: { kind: 'const', value: 1 } },
  ];
}

/** dense weight [in, out] + bias [out]. */
export function denseSpecs(prefix: string, cin: number, cout: number): ParamSpec[] {
  const bound = 1 / Math.sqrt(cin);
  return [
    { name: `${prefix}.weight`, shape: [cin, cout], trainable: true, init: { kind: 'uniform', bound } },
    { name: `${prefix}.bias`, shape: [cout], trainable: true, init: { kind: 'uniform', bound } },
  ];
}
