/**
 * Segmentation metrics by hand (src/core/metrics/segmentation.ts and the DiceMetric accumulator):
 * Dice / IoU with the empty-empty convention, 3D components, per-nodule Dice, iterationsToReach.
 */
import { describe, expect, it } from 'vitest';
import {
  connectedComponents3d,
  dice,
  DiceMetric,
  iou,
  iterationsToReach,
  perNoduleDice,
  segmentationScores,
  smoothCurve,
  speedupToReach,
  type Dims3,
} from '../../../src/core/metrics';

describe('Dice and IoU', () => {
  // Two 2x2 slices.
  //   slice 0: pred 1 1 0 0, target 1 0 1 0 -> TP 1, FP 1, FN 1: Dice 2/4 = .5, IoU 1/3
  //   slice 1: both empty
  const pred = [1, 1, 0, 0, 0, 0, 0, 0];
  const target = [1, 0, 1, 0, 0, 0, 0, 0];

  it('per slice, mean and micro with the empty-empty convention', () => {
    const ex = segmentationScores(pred, target, 4);
    expect(ex.perSlice[0]).toEqual({ dice: 0.5, iou: 1 / 3 });
    expect(ex.perSlice[1].dice).toBeNaN();
    expect([ex.meanDice, ex.meanIou, ex.nScored, ex.nEmptyEmpty, ex.nSlices]).toEqual([0.5, 1 / 3, 1, 1, 2]);
    expect([ex.microDice, ex.microIou]).toEqual([0.5, 1 / 3]);
    const one = segmentationScores(pred, target, 4, { emptyEmpty: 'one' });
    // mean over both slices: (.5 + 1) / 2 = .75, IoU (1/3 + 1) / 2 = 2/3; micro unchanged.
    expect([one.meanDice, one.meanIou, one.nScored]).toEqual([0.75, 2 / 3, 2]);
    expect(one.microDice).toBe(0.5);
  });

  it('empty ground truth with a prediction scores 0; probabilities thresholded at .5', () => {
    expect(dice([0, 1, 0, 0], [0, 0, 0, 0])).toBe(0);
    expect(dice([0, 0], [0, 0])).toBeNaN();
    expect(dice([0, 0], [0, 0], { emptyEmpty: 'one' })).toBe(1);
    // .6 and .9 are foreground, .5 is not: pred {0, 1}, target {1, 2}: TP 1 FP 1 FN 1
    expect(dice([0.6, 0.9, 0.5], [0, 1, 1])).toBe(0.5);
    expect(iou([0.6, 0.9, 0.5], [0, 1, 1])).toBeCloseTo(1 / 3, 15);
    expect(dice([0.6, 0.9, 0.5], [0, 1, 1], { threshold: 0.4 })).toBeCloseTo(0.8, 15); // TP 2 FP 1 FN 0
    expect(() => segmentationScores([0, 1, 0], [0, 1, 0], 2)).toThrow('perSliceCounts: pred has 3 values, not a multiple of sliceSize 2');
    expect(() => dice([0, 1], [0])).toThrow('dice: pred and target differ in length (2 vs 1)');
  });

  it('DiceMetric accumulates per image counts only', () => {
    const m = new DiceMetric({ imageSize: 4 });
    m.update(pred.slice(0, 4), target.slice(0, 4));
    m.update(pred.slice(4), target.slice(4));
    expect(m.count).toBe(2);
    const r = m.compute();
    expect([r.meanDice, r.microDice, r.nEmptyEmpty]).toEqual([0.5, 0.5, 1]);
    m.update(pred, target); // one batch of two images
    expect(m.compute().nSlices).toBe(4);
    m.reset();
    expect(m.compute().nSlices).toBe(0);
    expect(() => new DiceMetric({ imageSize: 3 }).update(pred, target)).toThrow('DiceMetric.update: pred has 8 values, not a multiple of imageSize 3');
  });
});

describe('connected components', () => {
  const dims: Dims3 = [3, 3, 3];
  const at = (x: number, y: number, z: number) => x + 3 * (y + 3 * z);
  const mask = (...pts: [number, number, number][]) => {
    const m = new Uint8Array(27);
    for (const [x, y, z] of pts) m[at(x, y, z)] = 1;
    return m;
  };

  it('corner neighbours join only with 26, edge neighbours with 18 and 26, faces always', () => {
    const corner = mask([0, 0, 0], [1, 1, 1]);
    expect(connectedComponents3d(corner, dims).count).toBe(1);
    expect(connectedComponents3d(corner, dims, { connectivity: 18 }).count).toBe(2);
    expect(connectedComponents3d(corner, dims, { connectivity: 6 }).count).toBe(2);
    const edge = mask([0, 0, 0], [1, 1, 0]);
    expect(connectedComponents3d(edge, dims, { connectivity: 18 }).count).toBe(1);
    expect(connectedComponents3d(edge, dims, { connectivity: 6 }).count).toBe(2);
    const face = mask([0, 0, 0], [0, 0, 1]);
    expect(connectedComponents3d(face, dims, { connectivity: 6 }).count).toBe(1);
  });

  it('labels, sizes and bounding boxes', () => {
    const cc = connectedComponents3d(mask([0, 0, 0], [1, 0, 0], [2, 2, 2], [2, 2, 1]), dims);
    expect(cc.count).toBe(2);
    expect(cc.components[0]).toEqual({ label: 1, voxels: 2, bbox: { min: [0, 0, 0], max: [1, 0, 0] } });
    expect(cc.components[1]).toEqual({ label: 2, voxels: 2, bbox: { min: [2, 2, 1], max: [2, 2, 2] } });
    expect(cc.labels[at(2, 2, 2)]).toBe(2);
    expect(() => connectedComponents3d(new Uint8Array(26), dims)).toThrow('connectedComponents3d: mask has 26 values but dims 3x3x3 need 27');
  });
});

describe('per-nodule Dice', () => {
  // 6 x 6 x 2 volume. Nodule A: the 2x2 block x 0-1, y 0-1, z 0 (4 voxels). Nodule B: (4, 4, 1).
  // Prediction: A without (1,1,0), plus (2,0,0) touching A's prediction, plus a lone (5,0,1).
  const dims: Dims3 = [6, 6, 2];
  const at = (x: number, y: number, z: number) => x + 6 * (y + 6 * z);
  const target = new Uint8Array(72);
  for (const [x, y] of [[0, 0], [1, 0], [0, 1], [1, 1]]) target[at(x, y, 0)] = 1;
  target[at(4, 4, 1)] = 1;
  const pred = new Float32Array(72);
  for (const [x, y, z] of [[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0], [5, 0, 1]]) pred[at(x, y, z)] = 0.9;

  it('bbox matching: A TP 3 FN 1 FP 0 (2,0,0 is outside the box) -> 6/7; B missed -> 0', () => {
    const r = perNoduleDice(pred, target, dims);
    expect(r.nodules.map((n) => [n.tp, n.fp, n.fn])).toEqual([[3, 0, 1], [0, 0, 1]]);
    expect(r.nodules[0].dice).toBeCloseTo(6 / 7, 15);
    expect(r.nodules[1].dice).toBe(0);
    expect(r.meanDice).toBeCloseTo(3 / 7, 15);
    expect(r.detectionRate).toBe(0.5);
    // Prediction components: {A part + (2,0,0)} and {(5,0,1)}, the latter touching no nodule.
    expect([r.predComponents, r.falsePositiveComponents]).toEqual([2, 1]);
  });

  it('a margin of 1, or overlap matching, counts (2,0,0): TP 3 FP 1 FN 1 -> 6/8', () => {
    expect(perNoduleDice(pred, target, dims, { margin: 1 }).nodules[0].dice).toBe(0.75);
    const o = perNoduleDice(pred, target, dims, { match: 'overlap' });
    expect(o.nodules.map((n) => [n.tp, n.fp, n.fn])).toEqual([[3, 1, 1], [0, 0, 1]]);
    expect(o.nodules[0].dice).toBe(0.75);
  });
});

describe('iterationsToReach', () => {
  const values = [0.1, 0.5, 0.3, 0.6, 0.7, 0.8];
  it('raw and smoothed', () => {
    expect(iterationsToReach(values, 0.5)).toBe(1);
    // trailing mean of 2: .1 .3 .4 .45 .65 .75 -> first >= .5 at index 4
    expect(Array.from(smoothCurve(values, 2)).map((v) => +v.toFixed(12))).toEqual([0.1, 0.3, 0.4, 0.45, 0.65, 0.75]);
    expect(iterationsToReach(values, 0.5, { window: 2 })).toBe(4);
    // centered 3: (.1+.5)/2=.3, .3, .4667, .5333 -> index 3
    expect(iterationsToReach(values, 0.5, { window: 3, mode: 'centered' })).toBe(3);
    expect(iterationsToReach(values, 0.9)).toBeNull();
  });

  it('with explicit steps, losses, and the speed-up', () => {
    const pts = values.map((v, i) => ({ step: 100 * (i + 1), value: v }));
    expect(iterationsToReach(pts, 0.6)).toBe(400);
    expect(iterationsToReach([1, 0.8, 0.4, 0.5], 0.45, { direction: 'below' })).toBe(2);
    const fast = [0.2, 0.5, 0.7, 0.8].map((v, i) => ({ step: 50 * (i + 1), value: v }));
    const slow = [0.1, 0.3, 0.5, 0.7].map((v, i) => ({ step: 50 * (i + 1), value: v }));
    // .5 reached at step 100 (fast) and 150 (slow); .7 at 150 and 200
    expect(speedupToReach(fast, slow, 0.5)).toBe(1.5);
    expect(speedupToReach(fast, slow, 0.9)).toBeNull();
    expect(() => iterationsToReach([{ step: 2, value: 1 }, { step: 1, value: 1 }], 0.5)).toThrow('iterationsToReach: curve steps must increase (curve[1].step = 1)');
  });
});
