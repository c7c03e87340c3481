// The label-efficiency study's pre-specified statistics (recipe v4): the primary family, Holm within
// it and within the rest, and the per-mode decision rule.
import { describe, expect, it } from 'vitest';
import { holmFamilies, isPrimary, primaryVerdict, type Comparison } from '../../bench/label-efficiency';

const cmp = (init: string, mode: string, fraction: number, seed: number | null, difference: number, p: number): Comparison => ({ init, mode, fraction, seed, difference, ci95: [difference - 0.05, difference + 0.05], p });

describe('label-efficiency primary family', () => {
  it('holds exactly the pooled masked-vs-random tests at 1 % and 2 %, full and frozen', () => {
    expect(isPrimary(cmp('masked', 'full', 0.01, null, 0, 1))).toBe(true);
    expect(isPrimary(cmp('masked', 'frozen', 0.02, null, 0, 1))).toBe(true);
    expect(isPrimary(cmp('masked', 'full', 0.01, 1, 0, 1))).toBe(false); // per seed
    expect(isPrimary(cmp('masked', 'linear', 0.01, null, 0, 1))).toBe(false);
    expect(isPrimary(cmp('masked', 'full', 0.1, null, 0, 1))).toBe(false);
    expect(isPrimary(cmp('denoise', 'frozen', 0.02, null, 0, 1))).toBe(false);
  });

  it('adjusts within each family and over all tests', () => {
    const cs = [
      cmp('masked', 'full', 0.01, null, 0.05, 0.01),
      cmp('masked', 'full', 0.02, null, 0.05, 0.02),
      cmp('masked', 'frozen', 0.01, null, 0.05, 0.03),
      cmp('masked', 'frozen', 0.02, null, 0.05, 0.04),
      cmp('masked', 'full', 0.01, 1, 0.05, 0.001),
      cmp('denoise', 'frozen', 0.02, null, 0.05, 0.5),
    ];
    holmFamilies(cs, isPrimary);
    // Primary: Holm over 4 (0.01*4, 0.02*3, 0.03*2, 0.04*1, step-down maxima).
    expect(cs.slice(0, 4).map((c) => c.family)).toEqual(['primary', 'primary', 'primary', 'primary']);
    expect(cs.slice(0, 4).map((c) => c.pHolmFamily)).toEqual([0.04, 0.06, 0.06, 0.06].map((v) => expect.closeTo(v, 12)));
    // Exploratory: Holm over the other 2.
    expect(cs.slice(4).map((c) => c.family)).toEqual(['exploratory', 'exploratory']);
    expect(cs[4].pHolmFamily).toBeCloseTo(0.002, 12);
    expect(cs[5].pHolmFamily).toBeCloseTo(0.5, 12);
    // All tests: Holm over 6.
    expect(cs[0].pHolm).toBeCloseTo(0.05, 12);
    expect(cs[4].pHolm).toBeCloseTo(0.006, 12);
    // Without a primary family, only the all-tests adjustment.
    const plain = [cmp('masked', 'full', 0.01, null, 0.05, 0.01), cmp('masked', 'full', 0.02, null, 0.05, 0.02)];
    holmFamilies(plain);
    expect(plain.map((c) => c.family)).toEqual([undefined, undefined]);
    expect(plain[0].pHolm).toBeCloseTo(0.02, 12);
  });

  it('meets a mode only when both cells are met and the gap narrows at 100 %', () => {
    const summary = (mode: string, f: number, masked: [number, number], random: [number, number]) => [
      { init: 'masked', mode, fraction: f, slices: 0, auroc: [], mean: (masked[0] + masked[1]) / 2, ci95: masked },
      { init: 'random', mode, fraction: f, slices: 0, auroc: [], mean: (random[0] + random[1]) / 2, ci95: random },
    ];
    const r = {
      summary: [
        ...summary('full', 0.01, [0.75, 0.85], [0.7, 0.8]),
        ...summary('full', 0.02, [0.8, 0.9], [0.7, 0.78]), // intervals apart
        ...summary('full', 1, [0.9, 0.95], [0.9, 0.95]),
      ],
      comparisons: [cmp('masked', 'full', 0.01, null, 0.05, 0.001), cmp('masked', 'full', 0.02, null, 0.11, 0.2), cmp('masked', 'full', 1, null, 0.0, 0.9), cmp('masked', 'full', 0.01, 1, 0.05, 0.01), cmp('masked', 'full', 0.01, 2, -0.01, 0.8)],
    };
    holmFamilies(r.comparisons, isPrimary);
    const v = primaryVerdict(r, 'full')!;
    expect(v.cells.map((c) => [c.apart, c.significant, c.met])).toEqual([[false, true, true], [true, false, true]]);
    expect(v.cells[0].seedsAhead).toBe(1);
    expect(v.narrows).toBe(true);
    expect(v.met).toBe(true);
    // The gap at 100 % as large as at 1-2 %: not met.
    r.comparisons[2].difference = 0.09;
    expect(primaryVerdict(r, 'full')!.met).toBe(false);
    // A significant test with random ahead does not count.
    r.comparisons[2].difference = 0;
    r.comparisons[0].difference = -0.05;
    expect(primaryVerdict(r, 'full')!.cells[0].met).toBe(false);
    expect(primaryVerdict(r, 'frozen')).toBeNull();
  });
});
