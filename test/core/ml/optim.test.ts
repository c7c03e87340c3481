import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createOptimizer } from '../../../src/core/ml/optim';
import reference from './reference_numbers.json';

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

describe('Adam and RAdam follow PyTorch 1.13 (reference_numbers.py)', () => {
  for (const c of reference.optim) {
    it(c.kind, () => {
      const p = tf.variable(tf.tensor1d(c.init));
      const opt = createOptimizer(c.kind as 'adam' | 'radam', { lr: c.lr });
      const params = new Map([['p', p]]);
      c.grads.forEach((g, t) => {
        const gt = tf.tensor1d(g);
        opt.apply(params, new Map([['p', gt]]));
        gt.dispose();
        const v = p.dataSync();
        c.values[t].forEach((e, i) => expect(Math.abs(v[i] - e)).toBeLessThan(1e-6));
      });
      opt.dispose();
      p.dispose();
    });
  }

  it('state round-trips exactly', () => {
    const run = (restoreAt: number | null) => {
      const p = tf.variable(tf.tensor1d([1, 2, 3]));
      let opt = createOptimizer('radam', { lr: 0.1 });
      const params = new Map([['p', p]]);
      for (let t = 0; t < 10; t++) {
        if (t === restoreAt) {
          const state = opt.getState();
          const json = JSON.parse(JSON.stringify({ ...state, slots: state.slots.map((s) => ({ ...s, m: Array.from(s.m), v: Array.from(s.v) })) }));
          opt.dispose();
          opt = createOptimizer('radam');
          opt.setState({ ...json, slots: json.slots.map((s: { name: string; shape: number[]; m: number[]; v: number[] }) => ({ ...s, m: Float32Array.from(s.m), v: Float32Array.from(s.v) })) });
        }
        const g = tf.tensor1d([Math.sin(t), Math.cos(t), 0.5]);
        opt.apply(params, new Map([['p', g]]));
        g.dispose();
      }
      const out = Array.from(p.dataSync());
      opt.dispose();
      p.dispose();
      return out;
    };
    expect(run(6)).toEqual(run(null));
  });

  it('validates its arguments', () => {
    expect(() => createOptimizer('sgd' as 'adam')).toThrow(/optimizer kind/);
    expect(() => createOptimizer('adam', { lr: 0 })).toThrow(/lr/);
  });
});
