/**
 * Parameter stores and weight (de)serialisation to plain lists, for checkpoints and safetensors
 * export written elsewhere.
 *
 * Tensor names are stable and PyTorch-like (`encoder.e1.conv.weight`, `encoder.e1.bn.running_mean`,
 * `vq.codebook`, ...; see vqvae.ts and classifier.ts for the full lists). Shapes are in tfjs layout:
 * conv weights [kh, kw, in, out], transposed-conv weights [kh, kw, out, in], dense [in, out],
 * codebook [codes, dim]. Data is float32, row-major.
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32, uniformArray } from './layers';

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
  /** Initialiser: uniform(+-bound), constant, used by {@link createStore}. */
  init: { kind: 'uniform'; bound: number } | { kind: 'const'; value: number };
}

/** Trainable parameters and buffers of a model, by name, in creation order. */
export interface ParamStore {
  params: Map<string, tf.Variable>;
  buffers: Map<string, tf.Variable>;
}

/** Number of trainable values in a list of specs. */
export function countParams(specs: ParamSpec[]): number {
  let n = 0;
  for (const s of specs) if (s.trainable) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** Creates the variables of `specs`, initialised deterministically from `seed`. */
export function createStore(specs: ParamSpec[], seed: number): ParamStore {
  const rng = mulberry32(seed);
  const params = new Map<string, tf.Variable>();
  const buffers = new Map<string, tf.Variable>();
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = s.init.kind === 'uniform' ? uniformArray(n, s.init.bound, rng) : new Float32Array(n).fill(s.init.value);
    const t = tf.tensor(data, s.shape, 'float32');
    const v = tf.variable(t, s.trainable); // unnamed: tfjs variable names are global
    t.dispose();
    (s.trainable ? params : buffers).set(s.name, v);
  }
  return { params, buffers };
}

/** Disposes every variable of the store. */
export function disposeStore(store: ParamStore): void {
  for (const v of store.params.values()) v.dispose();
  for (const v of store.buffers.values()) v.dispose();
}

/** All tensors (parameters then buffers) as plain data. */
export function exportWeights(store: ParamStore): WeightEntry[] {
  const out: WeightEntry[] = [];
  for (const map of [store.params, store.buffers]) {
    for (const [name, v] of map) {
      out.push({ name, shape: [...v.shape], dtype: 'float32', data: new Float32Array(v.dataSync() as Float32Array) });
    }
  }
  return out;
}

/**
 * Loads `entries` into the store. With `strict` (default), every tensor of the store must be
 * present and no unknown name may appear; shapes must always match.
 */
export function importWeights(store: ParamStore, entries: WeightEntry[], opts: { strict?: boolean } = {}): { loaded: string[]; missing: string[]; unexpected: string[] } {
  const strict = opts.strict ?? true;
  const byName = new Map(entries.map((e) => [e.name, e]));
  const loaded: string[] = [];
  const missing: string[] = [];
  for (const map of [store.params, store.buffers]) {
    for (const [name, v] of map) {
      const e = byName.get(name);
      if (e == null) {
        missing.push(name);
        continue;
      }
      if (e.shape.length !== v.shape.length || e.shape.some((d, i) => d !== v.shape[i])) {
        throw new Error(`importWeights: ${name} has shape [${e.shape}] but the model expects [${v.shape}]`);
      }
      if (e.data.length !== v.size) throw new Error(`importWeights: ${name} has ${e.data.length} values, expected ${v.size}`);
      tf.tidy(() => v.assign(tf.tensor(e.data, v.shape, 'float32')));
      loaded.push(name);
    }
  }
  const known = new Set([...store.params.keys(), ...store.buffers.keys()]);
  const unexpected = entries.map((e) => e.name).filter((n) => !known.has(n));
  if (strict && (missing.length > 0 || unexpected.length > 0)) {
    throw new Error(`importWeights: missing [${missing.join(', ')}], unexpected [${unexpected.join(', ')}]`);
  }
  return { loaded, missing, unexpected };
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
