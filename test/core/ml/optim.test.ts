import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createOptimizer, setOptimizerLoopEnabled } from '../../../src/core/ml/optim';
import { initBackend } from '../../../src/trainer/backend';
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

describe('the update loop of the wasm and cpu backends', () => {
  // Float32 values spanning magnitudes, zeros and negative numbers, from a fixed generator.
  const values = (n: number, seed: number, scale: number) => {
    let s = seed >>> 0;
    return Float32Array.from({ length: n }, (_, i) => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return i % 97 === 0 ? 0 : ((s / 2 ** 32) * 2 - 1) * scale * 10 ** ((i % 7) - 3);
    });
  };
  const run = (kind: 'adam' | 'radam', weightDecay: number, loop: boolean, n = 1500) => {
    const shape = n === 1500 ? [10, 150] : [n];
    setOptimizerLoopEnabled(loop);
    try {
      const p = tf.variable(tf.tensor(values(n, 1, 1), shape));
      const opt = createOptimizer(kind, { lr: 3e-3, weightDecay });
      for (let t = 0; t < 8; t++) {
        const g = tf.tensor(values(n, 10 + t, 0.5), shape);
        opt.apply(new Map([['p', p]]), new Map([['p', g]]));
        g.dispose();
      }
      const state = opt.getState();
      const out = { p: Array.from(p.dataSync()), m: Array.from(state.slots[0].m), v: Array.from(state.slots[0].v) };
      opt.dispose();
      p.dispose();
      return out;
    } finally {
      setOptimizerLoopEnabled(true);
    }
  };
  for (const backend of ['cpu', 'wasm'] as const) {
    for (const [kind, wd] of [['adam', 0], ['adam', 0.01], ['radam', 0], ['radam', 0.01]] as const) {
      it(`${kind}, weight decay ${wd}, on ${backend}: the same bits as the tensor version`, async () => {
        if (backend === 'wasm') await initBackend({ force: 'wasm', wasmThreads: 1 });
        else await tf.setBackend('cpu');
        const a = run(kind, wd, true);
        const b = run(kind, wd, false);
        expect(a.p).toEqual(b.p);
        expect(a.m).toEqual(b.m);
        expect(a.v).toEqual(b.v);
        expect(a.p).not.toEqual(Array.from(values(1500, 1, 1))); // it did update
      });
    }
  }
  // wasm's SIMD pass (adam-kernel.ts) takes 4 values a vector, the last n mod 4 in JavaScript
  for (const n of [1503, 3, 4]) {
    it(`adam and radam with weight decay, ${n} values, on wasm: the same bits as the tensor version`, async () => {
      await initBackend({ force: 'wasm', wasmThreads: 1 });
      for (const [kind, wd] of [['adam', 0.01], ['radam', 0.01], ['adam', 0]] as const) {
        const a = run(kind, wd, true, n);
        const b = run(kind, wd, false, n);
        expect(a.p).toEqual(b.p);
        expect(a.m).toEqual(b.m);
        expect(a.v).toEqual(b.v);
      }
    });
  }
});
