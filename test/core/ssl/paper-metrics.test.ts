/**
 * Table II in the paper's definitions (src/shared/paper-table2.ts, src/core/ssl/paper-metrics.ts):
 * the double-softmax cross-entropy and the batch-summed masked MSE, against closed forms and
 * against numbers computed once with numpy (the snippet is in each test's comment).
 */
import { describe, expect, it } from 'vitest';
import { batchSummedMaskedMse, batchSummedStat, doubleSoftmaxCrossEntropy } from '../../../src/core/ssl/paper-metrics';
import { doubleSoftmaxFloor, PAPER_TABLE2, paperTable2Row, REFERENCE_BATCH, TABLE2_DEFINITIONS } from '../../../src/shared/paper-table2';

describe("the paper's cross-entropy (softmax applied to softmax outputs)", () => {
  it('of perfect one-hot predictions is ln(1 + 3/e) = 0.74367 for 4 classes and ln(1 + 2/e) = 0.55144 for 3', () => {
    for (const k of [0, 1, 2, 3]) {
      const onehot = [0, 0, 0, 0];
      onehot[k] = 1;
      // closed form: -ln(e / (e + 3))
      expect(doubleSoftmaxCrossEntropy(onehot, k)).toBeCloseTo(-Math.log(Math.E / (Math.E + 3)), 12);
      expect(doubleSoftmaxCrossEntropy(onehot, k)).toBeCloseTo(0.7436683806286791, 12);
    }
    expect(doubleSoftmaxCrossEntropy([0, 1, 0], 1)).toBeCloseTo(0.5514447139320511, 12);
    expect(doubleSoftmaxFloor(4)).toBeCloseTo(0.7436683806286791, 12);
    expect(doubleSoftmaxFloor(3)).toBeCloseTo(0.5514447139320511, 12);
    // The paper's rotation CE at AUROC 1.0 (0.7436 ± 0.0001) is that floor, 0.743668, cut to 4 digits.
    const published = PAPER_TABLE2.find((r) => r.task === 'rotation')!.values.crossEntropy!;
    expect(Math.abs(doubleSoftmaxFloor(4) - published.mean)).toBeLessThan(published.sd!);
    expect(Math.floor(doubleSoftmaxFloor(4) * 1e4) / 1e4).toBe(published.mean);
    // A wrong answer costs more, and no prediction goes below the floor.
    expect(doubleSoftmaxCrossEntropy([1, 0, 0, 0], 1)).toBeGreaterThan(doubleSoftmaxFloor(4));
    expect(doubleSoftmaxCrossEntropy([0.25, 0.25, 0.25, 0.25], 0)).toBeCloseTo(Math.log(4), 12);
  });

  it('matches numpy on arbitrary probability rows', () => {
    // p = [[.7,.1,.15,.05],[.2,.5,.2,.1]]; y = [0, 2]; s = exp(p)/exp(p).sum(1); -log(s[range(2), y])
    expect(doubleSoftmaxCrossEntropy([0.7, 0.1, 0.15, 0.05], 0)).toBeCloseTo(0.97373183, 7);
    expect(doubleSoftmaxCrossEntropy([0.2, 0.5, 0.2, 0.1], 2)).toBeCloseTo(1.44802337, 7);
    expect(() => doubleSoftmaxCrossEntropy([0.5, 0.5], 2)).toThrow(/label 2/);
  });
});

describe("the paper's masked MSE (each image's masked MSE summed over the batch)", () => {
  // numpy: rng = RandomState(0); a, b = round(rng.rand(3,4,4), 3) twice; masks below;
  // sum(((a[i]-b[i])**2 * m[i]).sum() / m[i].sum() for i in range(3)) = 0.29210241666666664
  const a = [0.549, 0.715, 0.603, 0.545, 0.424, 0.646, 0.438, 0.892, 0.964, 0.383, 0.792, 0.529, 0.568, 0.926, 0.071, 0.087, 0.02, 0.833, 0.778, 0.87, 0.979, 0.799, 0.461, 0.781, 0.118, 0.64, 0.143, 0.945, 0.522, 0.415, 0.265, 0.774, 0.456, 0.568, 0.019, 0.618, 0.612, 0.617, 0.944, 0.682, 0.36, 0.437, 0.698, 0.06, 0.667, 0.671, 0.21, 0.129];
  const b = [0.315, 0.364, 0.57, 0.439, 0.988, 0.102, 0.209, 0.161, 0.653, 0.253, 0.466, 0.244, 0.159, 0.11, 0.656, 0.138, 0.197, 0.369, 0.821, 0.097, 0.838, 0.096, 0.976, 0.469, 0.977, 0.605, 0.739, 0.039, 0.283, 0.12, 0.296, 0.119, 0.318, 0.414, 0.064, 0.692, 0.567, 0.265, 0.523, 0.094, 0.576, 0.929, 0.319, 0.667, 0.132, 0.716, 0.289, 0.183];
  const m = new Float32Array(48);
  for (const [y, x] of [[1, 1], [1, 2], [2, 1], [2, 2]]) m[y * 4 + x] = 1; // image 0: 2x2 square
  for (const [y, x] of [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]) m[16 + y * 4 + x] = 1; // image 1: 2x3
  m[32 + 15] = 1; // image 2: one pixel

  it('equals numpy, and the batch times the mean per-image masked MSE', () => {
    const sum = batchSummedMaskedMse(a, b, m, 16);
    expect(sum).toBeCloseTo(0.29210241666666664, 10);
    // The per-image masked MSEs, by hand, from the definition.
    const per = [0, 1, 2].map((i) => {
      let s = 0;
      let n = 0;
      for (let j = i * 16; j < (i + 1) * 16; j++) if (m[j]) (s += (a[j] - b[j]) ** 2), n++;
      return s / n;
    });
    expect(sum).toBeCloseTo(3 * ((per[0] + per[1] + per[2]) / 3), 12);
    // an image without a mask adds nothing (the training loss divides by max(sum(mask), 1))
    const none = new Array<number>(16).fill(0);
    expect(batchSummedMaskedMse([...a, ...none.map(() => 1)], [...b, ...none], [...m, ...none], 16)).toBeCloseTo(sum, 12);
    expect(() => batchSummedMaskedMse(a, b, m, 5)).toThrow(/whole images/);
  });

  it("scales a per-image statistic by the public code's batch of 16", () => {
    expect(REFERENCE_BATCH).toBe(16);
    expect(batchSummedStat({ mean: 0.006175, sd: 0.0031, n: 12 }, REFERENCE_BATCH)).toEqual({ mean: 0.0988, sd: 0.0496, n: 12 });
  });
});

describe("the paper's Table II", () => {
  it('has its 8 rows, found by task and mask percent; each column says how it is defined, ours and the paper\'s', () => {
    expect(PAPER_TABLE2).toHaveLength(8);
    expect(paperTable2Row({ task: 'masked', maskPercent: 20 })!.values.maskedMse).toEqual({ mean: 0.0988, sd: 0.0494 });
    expect(paperTable2Row({ task: 'masked', maskPercent: 15 })).toBeNull();
    expect(paperTable2Row({ task: 'flip', maskPercent: null })!.values.auroc).toEqual({ mean: 0.85, sd: null });
    const differ = TABLE2_DEFINITIONS.filter((d) => d.ours !== d.paper).map((d) => d.column);
    expect(differ).toEqual(['maskedMse', 'crossEntropy']);
    expect(TABLE2_DEFINITIONS.find((d) => d.column === 'crossEntropy')!.paperText).toMatch(/0\.74367 for 4 classes \(the paper prints 0\.7436\), 0\.55144 for 3/);
  });
});
