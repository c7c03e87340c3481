import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/core/random';
import { applyMask, flipImage, makeExample, maskBox, maskSide, rotate90, saltAndPepper, stackClass, stackRecon } from '../../../src/core/ssl/tasks';
import { preprocessSlice, resizeSquare, windowUnit } from '../../../src/core/ssl/preprocess';

const ramp = (size: number) => Float32Array.from({ length: size * size }, (_, i) => i / (size * size));

describe('seeded generator', () => {
  it('repeats from a seed and from a saved state', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    expect([a.next(), a.next(), a.int(10)]).toEqual([b.next(), b.next(), b.int(10)]);
    const state = a.getState();
    const after = [a.nextUint32(), a.nextUint32()];
    expect([new Rng(state).nextUint32(), new Rng(state).nextUint32()][0]).toBe(after[0]);
    const c = new Rng(state);
    expect([c.nextUint32(), c.nextUint32()]).toEqual(after);
    expect(new Rng(1).next()).not.toBe(new Rng(2).next());
  });
});

describe('preprocessing', () => {
  it('windows to [0, 1] with the fixed map and treats padding as air', () => {
    const u = windowUnit([-1000, -125, 50, 225, 1000, NaN], { level: 50, width: 350, scaling: 'fixed' });
    expect([...u]).toEqual([0, 0, 0.5, 1, 1, 0]);
    const m = windowUnit([-100, 0, 100], { level: 50, width: 350, scaling: 'minmax' });
    expect([...m]).toEqual([0, 0.5, 1]);
  });

  it('downscales by block averaging and pads non-square images', () => {
    const src = Float32Array.from([1, 3, 5, 7, 1, 3, 5, 7, 0, 0, 2, 2, 0, 0, 2, 2]); // 4x4
    expect([...resizeSquare(src, 4, 4, 2)]).toEqual([2, 6, 0, 2]);
    const wide = new Float32Array(4 * 2).fill(1); // 4 wide, 2 high -> centred on 4x4
    const sq = resizeSquare(wide, 4, 2, 4);
    expect([...sq.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    expect([...sq.subarray(4, 8)]).toEqual([1, 1, 1, 1]);
    expect(preprocessSlice(new Float32Array(16).fill(50), 4, 4, { level: 50, width: 350, size: 2, scaling: 'fixed' })[0]).toBeCloseTo(0.5);
  });
});

describe('masked region', () => {
  it('covers p% of the area (paper) or p% of the side (public code)', () => {
    expect(maskSide(512, 20, 'area')).toBe(Math.round(Math.sqrt(0.2) * 512)); // 229 px: 20% of the area
    expect(maskSide(512, 20, 'side')).toBe(102); // 3.97% of the area
    const areaPct = (p: number) => (maskSide(512, p, 'side') ** 2 / 512 ** 2) * 100;
    // the public code's int(): 25, 51, 102, 168 px at 512 (rounding would give 26 and 169)
    expect([5, 10, 20, 33].map((p) => maskSide(512, p, 'side'))).toEqual([25, 51, 102, 168]);
    expect(areaPct(5)).toBeCloseTo(0.24, 2);
    expect(areaPct(10)).toBeCloseTo(0.99, 2);
    expect(areaPct(20)).toBeCloseTo(3.97, 2);
    expect(areaPct(33)).toBeCloseTo(10.8, 1);
  });

  it('never masks the bottom and right 100 px (at 512) with the side definition', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 500; i++) {
      const b = maskBox(512, 33, 'side', rng);
      expect(b.x + b.side).toBeLessThanOrEqual(412);
      expect(b.y + b.side).toBeLessThanOrEqual(412);
    }
    const any = Array.from({ length: 500 }, () => maskBox(512, 5, 'area', rng));
    expect(Math.max(...any.map((b) => b.x + b.side))).toBeGreaterThan(450);
  });

  it('zeroes the region in the input only and marks it in the mask', () => {
    const img = new Float32Array(16).fill(0.7);
    const { input, mask } = applyMask(img, 4, { x: 1, y: 2, side: 2 });
    expect(mask.reduce((a, b) => a + b, 0)).toBe(4);
    expect(input[2 * 4 + 1]).toBe(0);
    expect(input[0]).toBeCloseTo(0.7);
    expect(img[2 * 4 + 1]).toBeCloseTo(0.7);
  });
});

describe('other tasks', () => {
  it('salt-and-pepper hits exactly the fraction, half white half black', () => {
    const img = new Float32Array(10000).fill(0.5);
    const out = saltAndPepper(img, 0.5, new Rng(1));
    expect(out.filter((v) => v === 1).length).toBe(2500);
    expect(out.filter((v) => v === 0).length).toBe(2500);
    expect(out.filter((v) => v === 0.5).length).toBe(5000);
  });

  it('rotation by four quarter turns and flips twice give the original back', () => {
    const img = ramp(5);
    let r: Float32Array = img;
    for (let k = 0; k < 4; k++) r = rotate90(r, 5, 1);
    expect([...r]).toEqual([...img]);
    expect([...rotate90(rotate90(img, 5, 1), 5, 1)]).toEqual([...rotate90(img, 5, 2)]);
    expect([...flipImage(flipImage(img, 5, 1), 5, 1)]).toEqual([...img]);
    expect(flipImage(img, 5, 2)[0]).toBe(img[20]);
    // one counter-clockwise turn moves the top-right corner to the top-left
    expect(rotate90(img, 5, 1)[0]).toBe(img[4]);
  });

  it('makes batches in NHWC with labels in range, deterministically from the seed', () => {
    const img = ramp(8);
    const mk = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 6 }, () => makeExample({ task: 'rotation', maskPercent: 20, maskDefinition: 'area', noiseFraction: 0.5, gap: 1 }, img, 8, rng)) as {
        input: Float32Array;
        label: number;
      }[];
    };
    const b = stackClass(mk(9), 8);
    expect(b.shape).toEqual([6, 8, 8, 1]);
    expect([...b.labels].every((l) => l >= 0 && l < 4)).toBe(true);
    expect([...stackClass(mk(9), 8).labels]).toEqual([...b.labels]);
    const rngR = new Rng(1);
    const rec = stackRecon([makeExample({ task: 'masked', maskPercent: 10, maskDefinition: 'area', noiseFraction: 0.5, gap: 1 }, img, 8, rngR) as never], 8);
    expect(rec.mask).toBeDefined();
    expect(() => makeExample({ task: 'next-slice', maskPercent: 10, maskDefinition: 'area', noiseFraction: 0.5, gap: 1 }, img, 8, rngR)).toThrow(/n \+ gap/);
  });
});

describe('body cross-section', async () => {
  const { bodyArea, largestComponentArea, argMax } = await import('../../../src/core/ssl/body');
  it('counts the largest connected region above the threshold, not the table beneath it', () => {
    const w = 10;
    const h = 8;
    const hu = new Float32Array(w * h).fill(-1000);
    for (let y = 1; y < 5; y++) for (let x = 2; x < 8; x++) hu[y * w + x] = 40; // body 6 x 4 = 24
    for (let x = 0; x < w; x++) hu[7 * w + x] = 300; // table row, separated by air at row 5-6
    expect(bodyArea(hu, w, h)).toBe(24);
    expect(largestComponentArea(Uint8Array.from([1, 0, 1, 1]), 4, 1)).toBe(2);
    expect(argMax([3, 9, 9, 2])).toBe(1);
  });
});
