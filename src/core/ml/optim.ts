/**
 * Adam and RAdam (PyTorch 1.13 update rules), over named tf.Variables, with state that
 * serialises to plain arrays and restores exactly (checkpoint/resume gives bit-identical steps on
 * the same backend). Kinds, options and the state's shape live without TensorFlow.js in
 * specs/optimizer.ts (re-exported here).
 */
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_OPTIMIZER_OPTIONS, type OptimizerKind, type OptimizerOptions, type OptimizerState } from './specs/optimizer';
import { readValues } from './wasm-kernels';
import { type AdamMode, adamUpdateHeap } from './adam-kernel';

/** A non-trainable variable made from `t`, which is disposed. */
function ownedVariable(t: tf.Tensor): tf.Variable {
  const v = tf.variable(t, false);
  t.dispose();
  return v;
}

export { type OptimizerKind, type OptimizerOptions, type OptimizerState, DEFAULT_OPTIMIZER_OPTIONS } from './specs/optimizer';

let loopEnabled = true;
/** Turns the per-parameter loop of wasm and cpu off/on (tests compare it with the tensor version). */
export function setOptimizerLoopEnabled(on: boolean): void {
  loopEnabled = on;
}

export class AdamFamily {
  readonly kind: OptimizerKind;
  options: OptimizerOptions;
  step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(kind: OptimizerKind, options: Partial<OptimizerOptions> = {}) {
    if (kind !== 'adam' && kind !== 'radam') throw new Error(`optimizer kind must be 'adam' or 'radam' (got '${kind as string}')`);
    this.kind = kind;
    this.options = { ...DEFAULT_OPTIMIZER_OPTIONS, ...options };
    if (!(this.options.lr > 0)) throw new Error(`optimizer lr must be > 0 (got ${this.options.lr})`);
  }

  /** Learning rate actually applied at the next step's scale (for logging). */
  get lr(): number {
    return this.options.lr;
  }

  private slot(map: Map<string, tf.Variable>, name: string, shape: number[]): tf.Variable {
    let s = map.get(name);
    if (s == null) {
      s = ownedVariable(tf.zeros(shape));
      map.set(name, s);
    }
    return s;
  }

  /**
   * One update of every parameter that has a gradient. `grads` maps parameter names to gradient
   * tensors (not disposed here).
   */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor> | Record<string, tf.Tensor>): void {
    const g = grads instanceof Map ? grads : new Map(Object.entries(grads));
    this.step += 1;
    const { lr, beta1, beta2, eps, weightDecay } = this.options;
    const t = this.step;
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    // RAdam rectification (PyTorch 1.13)
    const rhoInf = 2 / (1 - beta2) - 1;
    const rhoT = rhoInf - (2 * t * beta2 ** t) / bc2;
    const rect = rhoT > 5 ? Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT)) : 0;
    const backend = tf.getBackend();
    const inMemory = loopEnabled && (backend === 'wasm' || backend === 'cpu');
    for (const [name, p] of params) {
      const grad = g.get(name);
      if (grad == null) continue;
      const m = this.slot(this.m, name, p.shape);
      const v = this.slot(this.v, name, p.shape);
      if (inMemory && grad.dtype === 'float32' && p.dtype === 'float32') {
        // one loop instead of ~13 kernels per parameter (the kernels' per-call cost dominates on
        // wasm and cpu, whose tensors live in this process's memory anyway); same float32 results
        this.applyLoop(p, grad, m, v, bc1, bc2, rhoT, rect);
        continue;
      }
      tf.tidy(() => {
        const gr = weightDecay !== 0 ? tf.add(grad, tf.mul(p, weightDecay)) : grad;
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(gr, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(gr), 1 - beta2));
        m.assign(mNew);
        v.assign(vNew);
        let update: tf.Tensor;
        if (this.kind === 'adam') {
          // p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
          update = tf.div(tf.mul(mNew, lr / bc1), tf.add(tf.div(tf.sqrt(vNew), Math.sqrt(bc2)), eps));
        } else if (rhoT > 5) {
          // p -= (m / bc1) * lr * sqrt(bc2) / (sqrt(v) + eps) * rect
          update = tf.div(tf.mul(mNew, (lr * rect * Math.sqrt(bc2)) / bc1), tf.add(tf.sqrt(vNew), eps));
        } else {
          update = tf.mul(mNew, lr / bc1);
        }
        p.assign(tf.sub(p, update));
      });
    }
  }

  /**
   * The update of {@link apply} for one parameter as a loop over its values, rounding to float32
   * after every operation exactly where the tensor version's kernels do (IEEE float32 +, -, *, /
   * and sqrt; a float64 result rounded once to float32 is the float32 result), so both give the
   * same bits.
   */
  private applyLoop(p: tf.Variable, grad: tf.Tensor, m: tf.Variable, v: tf.Variable, bc1: number, bc2: number, rhoT: number, rect: number): void {
    const f = Math.fround;
    const { lr, beta1, beta2, eps, weightDecay } = this.options;
    const b1 = f(beta1), c1 = f(1 - beta1), b2 = f(beta2), c2 = f(1 - beta2), e = f(eps), wd = f(weightDecay);
    // the scalars the tensor version multiplies or divides by (each a float32 scalar tensor there)
    const adamScale = f(lr / bc1), sqrtBc2 = f(Math.sqrt(bc2));
    const radamScale = f((lr * rect * Math.sqrt(bc2)) / bc1);
    const mode: AdamMode = this.kind === 'adam' ? 0 : rhoT > 5 ? 1 : 2;
    const n = p.size;
    const one = (i: number, gv: Float32Array, pv: Float32Array, mv: Float32Array, vv: Float32Array, out: { p: Float32Array; m: Float32Array; v: Float32Array }) => {
      const pi = pv[i];
      const gr = weightDecay !== 0 ? f(gv[i] + f(pi * wd)) : gv[i];
      const mi = f(f(mv[i] * b1) + f(gr * c1));
      const vi = f(f(vv[i] * b2) + f(f(gr * gr) * c2));
      out.m[i] = mi;
      out.v[i] = vi;
      let u: number;
      if (mode === 0) u = f(f(mi * adamScale) / f(f(f(Math.sqrt(vi)) / sqrtBc2) + e));
      else if (mode === 1) u = f(f(mi * radamScale) / f(f(Math.sqrt(vi)) + e));
      else u = f(mi * adamScale);
      out.p[i] = f(pi - u);
    };
    // wasm: one SIMD pass in the backend's heap (adam-kernel.ts), the same operations in the same order
    const heap = adamUpdateHeap(grad, p, m, v, mode, weightDecay !== 0, { b1, c1, b2, c2, e, wd, adamScale, sqrtBc2, radamScale }, one);
    if (heap != null) {
      m.assign(heap.m);
      v.assign(heap.v);
      p.assign(heap.p);
      tf.dispose([heap.m, heap.v, heap.p]);
      return;
    }
    const out = { p: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) };
    // views of the backend's memory (wasm): read them all before allocating anything
    const gv = readValues(grad) as Float32Array, pv = readValues(p) as Float32Array, mv = readValues(m) as Float32Array, vv = readValues(v) as Float32Array;
    for (let i = 0; i < n; i++) one(i, gv, pv, mv, vv, out);
    for (const [variable, values] of [[m, out.m], [v, out.v], [p, out.p]] as const) {
      const t = tf.tensor(values, variable.shape, 'float32');
      variable.assign(t);
      t.dispose();
    }
  }

  getState(): OptimizerState {
    const slots: OptimizerState['slots'] = [];
    for (const [name, m] of this.m) {
      const v = this.v.get(name)!;
      slots.push({ name, shape: [...m.shape], m: new Float32Array(m.dataSync() as Float32Array), v: new Float32Array(v.dataSync() as Float32Array) });
    }
    return { kind: this.kind, step: this.step, options: { ...this.options }, slots };
  }

  setState(state: OptimizerState): void {
    if (state.kind !== this.kind) throw new Error(`optimizer state is for '${state.kind}', this optimizer is '${this.kind}'`);
    this.disposeSlots();
    this.step = state.step;
    this.options = { ...state.options };
    for (const s of state.slots) {
      this.m.set(s.name, ownedVariable(tf.tensor(s.m, s.shape, 'float32')));
      this.v.set(s.name, ownedVariable(tf.tensor(s.v, s.shape, 'float32')));
    }
  }

  private disposeSlots(): void {
    for (const s of this.m.values()) s.dispose();
    for (const s of this.v.values()) s.dispose();
    this.m.clear();
    this.v.clear();
  }

  dispose(): void {
    this.disposeSlots();
  }
}

export function createOptimizer(kind: OptimizerKind, options: Partial<OptimizerOptions> = {}): AdamFamily {
  return new AdamFamily(kind, options);
}
