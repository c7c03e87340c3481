/**
 * Seeded random numbers: every random choice of the app (data order, pretext tasks, patient
 * splits, bootstrap resamples, probe folds, the synthetic cohort, initial weights) comes from a
 * generator of this module passed in explicitly, never Math.random, so a seed reproduces a run,
 * a split or a cohort exactly.
 *
 * One interface, {@link Random}: uniform floats in [0, 1) from 32-bit outputs, and the helpers
 * built on them (integers, choices, normals, shuffles). Two algorithms, kept because stored
 * results depend on their exact streams (test/fixtures/golden, synthetic cohorts, checkpoints):
 *
 * - {@link Rng}: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit state, from
 *   PractRand), the generator for everything but weights. Its whole state is four 32-bit words,
 *   so a checkpoint saves it ({@link Rng.getState}) and a resumed run continues with the same
 *   choices. Two ways to seed it, each the one its stored results were made with:
 *   `new Rng(seed)` expands a number with splitmix32 (data pipeline, tasks, splits, statistics);
 *   `Rng.keyed(seed, key)` hashes `"<seed>/<key>"` (the synthetic cohort: each part of a patient
 *   draws from its own key, so changing one option leaves the draws of unrelated parts alone).
 *   Both discard the first 12 outputs.
 * - {@link Mulberry32}: mulberry32 (Tommy Ettinger, 32-bit state), the stream of initial model
 *   weights and the uniform VQ codebook; `mulberry32(seed)` is its function form for
 *   `uniformArray` (src/core/ml/layers.ts). Weights and the golden numbers depend on it.
 */

/** The four words of an sfc32 state. */
export type RngState = [number, number, number, number];

/** 32-bit string hash: FNV-1a followed by the murmur3 finaliser. */
export function hash32(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** What every generator gives: 32-bit outputs, and everything built on them. */
export abstract class Random {
  /** Cached second value of the Box-Muller pair (see normal()). */
  private spare: number | null = null;

  /** The next 32-bit output, unsigned. */
  abstract nextUint32(): number;

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    if (!(n > 0)) throw new Error(`Rng.int: n must be positive, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Integer in [lo, hi], both inclusive. */
  intBetween(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u <= 1e-12) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Normal with mean and standard deviation, clipped to +-3 sd. */
  gauss(mean: number, sd: number): number {
    return mean + sd * Math.max(-3, Math.min(3, this.normal()));
  }

  /** One of the items, uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** Index drawn with the given (unnormalised) weights. */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0);
    let x = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i];
      if (x < 0) return i;
    }
    return weights.length - 1;
  }

  /** Fisher-Yates shuffle in place; returns the array. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = xs[i];
      xs[i] = xs[j];
      xs[j] = t;
    }
    return xs;
  }

  /** Random unit vector in 3D. */
  unit3(): [number, number, number] {
    const z = this.uniform(-1, 1);
    const t = this.uniform(0, 2 * Math.PI);
    const r = Math.sqrt(1 - z * z);
    return [r * Math.cos(t), r * Math.sin(t), z];
  }
}

/** sfc32: the generator of everything but initial weights (see the module comment). */
export class Rng extends Random {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  /** Seeded from a number (expanded by splitmix32), or restored from a saved state. */
  constructor(seed: number | RngState) {
    super();
    if (Array.isArray(seed)) {
      this.setState(seed);
      return;
    }
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.setState([next(), next(), next(), next()]);
    this.discard(12);
  }

  /** Seeded from a seed and a key naming what the numbers are for (the synthetic cohort's way). */
  static keyed(seed: number | string, key = ''): Rng {
    const s = `${seed}/${key}`;
    const r = new Rng([hash32(s, 1), hash32(s, 2), hash32(s, 3), hash32(s, 4) | 1]);
    r.discard(12);
    return r;
  }

  private discard(n: number): void {
    for (let i = 0; i < n; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** An independent generator seeded from this one's next output and a label. */
  fork(label: number): Rng {
    return new Rng((this.nextUint32() ^ Math.imul(label + 1, 0x9e3779b1)) >>> 0);
  }

  /** The four state words (not normal()'s cached value: checkpointed streams never use it). */
  getState(): RngState {
    return [this.a, this.b, this.c, this.d];
  }

  setState(s: RngState): void {
    [this.a, this.b, this.c, this.d] = s.map((v) => v >>> 0) as RngState;
  }
}

/** mulberry32: the stream of initial weights (see the module comment). */
export class Mulberry32 extends Random {
  private state: number;

  constructor(seed: number) {
    super();
    this.state = seed >>> 0;
  }

  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
}

/** Uniform floats in [0, 1) from mulberry32, as a function (for uniformArray and weight init). */
export function mulberry32(seed: number): () => number {
  const r = new Mulberry32(seed);
  return () => r.next();
}
