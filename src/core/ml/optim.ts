/**
 * Adam and RAdam (PyTorch 1.13 update rules), over named tf.Variables, with state that
 * serialises to plain arrays and restores exactly (checkpoint/resume gives bit-identical steps on
 * the same backend). Kinds, options and the state's shape live without TensorFlow.js in
 * specs/optimizer.ts (re-exported here).
 */
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_OPTIMIZER_OPTIONS, type OptimizerKind, type OptimizerOptions, type OptimizerState } from './specs/optimizer';

/** A non-trainable variable made from `t`, which is disposed. */
function ownedVariable(t: tf.Tensor): tf.Variable {
  const v = tf.variable(t, false);
  t.dispose();
  return v;
}

export { type OptimizerKind, type OptimizerOptions, type OptimizerState, DEFAULT_OPTIMIZER_OPTIONS } from './specs/optimizer';

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
    for (const [name, p] of params) {
      const grad = g.get(name);
      if (grad == null) continue;
      const m = this.slot(this.m, name, p.shape);
      const v = this.slot(this.v, name, p.shape);
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
