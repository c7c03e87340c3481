/**
 * Parameter stores (tf.Variables made from specs) and weight (de)serialisation to plain lists, for
 * checkpoints and safetensors export written elsewhere. The plain types and spec helpers (names,
 * shapes, layouts) live without TensorFlow.js in specs/params.ts (re-exported here).
 */
import * as tf from '@tensorflow/tfjs';
import { initialWeights, type ParamSpec, type WeightEntry } from './specs/params';

export { type ParamSpec, type WeightEntry, bnSpecs, convSpecs, convTransposeSpecs, countParams, denseSpecs, initialWeights } from './specs/params';

/** Trainable parameters and buffers of a model, by name, in creation order. */
export interface ParamStore {
  params: Map<string, tf.Variable>;
  buffers: Map<string, tf.Variable>;
}

/** Creates the variables of `specs`, initialised deterministically from `seed` ({@link initialWeights}). */
export function createStore(specs: ParamSpec[], seed: number): ParamStore {
  const trainable = new Set(specs.filter((s) => s.trainable).map((s) => s.name));
  const params = new Map<string, tf.Variable>();
  const buffers = new Map<string, tf.Variable>();
  for (const w of initialWeights(specs, seed)) {
    const t = tf.tensor(w.data, w.shape, 'float32');
    const v = tf.variable(t, trainable.has(w.name)); // unnamed: tfjs variable names are global
    t.dispose();
    (trainable.has(w.name) ? params : buffers).set(w.name, v);
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
