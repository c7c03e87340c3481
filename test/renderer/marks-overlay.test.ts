import { describe, expect, it } from 'vitest';
import { paintMarks } from '../../src/renderer/src/viewer/marks-overlay';

describe('non-nodule marks as crosses', () => {
  it('draws a white cross with a dark edge at the mark, only for marks of the slice, clipped at the edges', () => {
    const w = 20;
    const h = 10;
    const out = new Uint8ClampedArray(w * h * 4);
    const at = (x: number, y: number) => Array.from(out.subarray((y * w + x) * 4, (y * w + x) * 4 + 4));
    const n = paintMarks([{ index: 2, x: 5, y: 5 }, { index: 3, x: 15, y: 5 }, { index: 2, x: 19.4, y: 0 }], 2, w, h, out, 3);
    expect(n).toBe(2);
    expect(at(5, 5)).toEqual([255, 255, 255, 255]);
    expect(at(8, 5)).toEqual([255, 255, 255, 255]);
    expect(at(5, 2)).toEqual([255, 255, 255, 255]);
    expect(at(9, 5)[3]).toBe(0); // beyond the arm and its edge
    expect(at(6, 6)).toEqual([0, 0, 0, 200]); // the edge beside a stroke
    expect(at(7, 7)[3]).toBe(0); // off the cross
    expect(at(15, 5)[3]).toBe(0); // another slice's mark
    expect(at(19, 0)).toEqual([255, 255, 255, 255]); // rounded and clipped, not wrapped
    expect(paintMarks([{ index: 2, x: -1, y: 3 }], 2, w, h, out)).toBe(0);
  });
});
