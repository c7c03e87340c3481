/** Chart axes are as wide as their widest tick label (issue 13: labels were cut at a fixed 56 px). */
import { describe, expect, it } from 'vitest';
import { axisWidth, tickLabels } from '../../src/renderer/src/runs/curves';

const measure = (s: string) => s.length * 7; // a monospace stand-in for the canvas's metrics

describe('axisWidth', () => {
  it('fits the widest label, with room for the tick', () => {
    const labels = tickLabels([0.00012, 0.00014, 0.00016]);
    const w = axisWidth(labels, measure);
    expect(w).toBeGreaterThanOrEqual(Math.max(...labels.map(measure)) + 18);
    // a long label needs more than the old fixed 56 px
    expect(axisWidth(['-12345.678'], measure)).toBeGreaterThan(56);
  });
  it('keeps a minimum and ignores empty labels', () => {
    expect(axisWidth(['0', '', null, undefined], measure)).toBe(40);
    expect(axisWidth([], measure, 30)).toBe(30);
  });
});
