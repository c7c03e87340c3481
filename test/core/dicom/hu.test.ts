/** Stored values to HU, padding and windows, on small hand-made cases (src/core/dicom/hu.ts). */
import { describe, expect, it } from 'vitest';
import { normalizeStored, paddingTest, storedRange, storedToHU, storedValueFn, WINDOW_PRESETS, windowToBytes, windowToUnit } from '../../../src/core/dicom/hu';

describe('stored values', () => {
  it('sign-extends 12-bit two\'s complement held in 16-bit containers', () => {
    const f = storedValueFn(12, true);
    expect(f(0x0fff)).toBe(-1);
    expect(f(0x0800)).toBe(-2048);
    expect(f(0x07ff)).toBe(2047);
    // Bits above BitsStored (e.g. an overlay in bit 15) are ignored.
    expect(f(0x8005)).toBe(5);
    expect(f(0xf000 | 0x0ffe)).toBe(-2);
  });

  it('masks unsigned values to BitsStored', () => {
    const f = storedValueFn(12, false);
    expect(f(0xf123)).toBe(0x123);
    expect(f(4095)).toBe(4095);
    expect(storedValueFn(16, false)(-1)).toBe(65535);
    expect(storedValueFn(16, true)(65535)).toBe(-1);
    expect(storedValueFn(32, false)(-1)).toBe(4294967295);
  });

  it('normalizes arrays in place whatever their own sign', () => {
    const a = new Uint16Array([0x0fff, 0x0800, 0x8001, 100]);
    normalizeStored(a, 12, true); // an unsigned array cannot hold negatives: values wrap as uint16
    expect(Array.from(new Int16Array(a.buffer))).toEqual([-1, -2048, 1, 100]);
    const b = new Int16Array([-1, 0x0123, -32768]);
    expect(Array.from(normalizeStored(b, 12, false))).toEqual([4095, 0x123, 0]);
    const c = new Int16Array([-1000, 1000]);
    expect(normalizeStored(c, 16, true)).toBe(c);
    expect(Array.from(c)).toEqual([-1000, 1000]);
    expect(storedRange(12, true)).toEqual([-2048, 2047]);
    expect(storedRange(8, false)).toEqual([0, 255]);
  });
});

describe('stored to HU', () => {
  it('applies slope and intercept to signed 16-bit data', () => {
    const r = storedToHU(new Int16Array([-1024, 0, 1024, 3071]), { bitsAllocated: 16, bitsStored: 16, signed: true, rescaleSlope: 1, rescaleIntercept: 0 });
    expect(Array.from(r.hu)).toEqual([-1024, 0, 1024, 3071]);
    expect(r.padding).toBeNull();
    expect(r.paddingCount).toBe(0);
  });

  it('applies slope and intercept to unsigned 12-bit data (the usual GE/Siemens layout)', () => {
    const r = storedToHU(new Uint16Array([0, 1024, 2000, 4095 | 0xf000]), { bitsAllocated: 16, bitsStored: 12, signed: false, rescaleSlope: 1, rescaleIntercept: -1024 });
    expect(Array.from(r.hu)).toEqual([-1024, 0, 976, 3071]);
  });

  it('handles a non-unit slope (the lossy cornerstone encodings)', () => {
    const r = storedToHU(new Uint16Array([0, 2023, 4095]), { bitsAllocated: 16, bitsStored: 12, signed: false, rescaleSlope: 2.0002442, rescaleIntercept: -4047 });
    expect(r.hu[0]).toBeCloseTo(-4047, 4);
    expect(r.hu[1]).toBeCloseTo(2023 * 2.0002442 - 4047, 3);
    expect(r.hu[2]).toBeCloseTo(4095 * 2.0002442 - 4047, 3);
  });

  it('sign-extends signed 12-bit data before rescaling', () => {
    const r = storedToHU(new Uint16Array([0x0fff, 0x0c00, 0x0400]), { bitsAllocated: 16, bitsStored: 12, signed: true, rescaleSlope: 1, rescaleIntercept: 0 });
    expect(Array.from(r.hu)).toEqual([-1, -1024, 1024]);
  });

  it('handles 8-bit unsigned and signed data', () => {
    expect(Array.from(storedToHU(new Uint8Array([0, 255]), { bitsAllocated: 8, signed: false, rescaleSlope: 10, rescaleIntercept: -1000 }).hu)).toEqual([-1000, 1550]);
    expect(Array.from(storedToHU(new Int8Array([-128, 127]), { bitsAllocated: 8, signed: true, rescaleSlope: 1, rescaleIntercept: 0 }).hu)).toEqual([-128, 127]);
  });

  it('keeps a single PixelPaddingValue apart as a mask, never as HU', () => {
    const stored = new Int16Array([-2000, -1024, 0, -2000, 500]);
    const r = storedToHU(stored, { bitsAllocated: 16, signed: true, rescaleSlope: 1, rescaleIntercept: -1024, pixelPaddingValue: -2000 });
    expect(Array.from(r.padding!)).toEqual([1, 0, 0, 1, 0]);
    expect(r.paddingCount).toBe(2);
    expect(Number.isNaN(r.hu[0])).toBe(true);
    expect(Number.isNaN(r.hu[3])).toBe(true);
    expect([r.hu[1], r.hu[2], r.hu[4]]).toEqual([-2048, -1024, -524]);
  });

  it('masks a PixelPaddingValue..PixelPaddingRangeLimit range in either order', () => {
    const stored = new Uint16Array([0, 5, 10, 11, 63, 64, 1000]);
    const params = { bitsAllocated: 16, bitsStored: 12, signed: false, rescaleSlope: 1, rescaleIntercept: -1024 };
    const a = storedToHU(stored, { ...params, pixelPaddingValue: 0, pixelPaddingRangeLimit: 10 });
    expect(Array.from(a.padding!)).toEqual([1, 1, 1, 0, 0, 0, 0]);
    const b = storedToHU(stored, { ...params, pixelPaddingValue: 63, pixelPaddingRangeLimit: 11 });
    expect(Array.from(b.padding!)).toEqual([0, 0, 0, 1, 1, 0, 0]);
    expect(b.hu[5]).toBe(64 - 1024);
  });

  it('compares padding with the stored value, after masking the unused high bits', () => {
    // An unsigned 12-bit padding value 4095 with junk in the top nibble is still padding.
    const r = storedToHU(new Uint16Array([0xffff, 0x0fff, 0x0ffe]), { bitsAllocated: 16, bitsStored: 12, signed: false, rescaleSlope: 1, rescaleIntercept: 0, pixelPaddingValue: 4095 });
    expect(Array.from(r.padding!)).toEqual([1, 1, 0]);
  });

  it('ignores a range limit without a padding value', () => {
    expect(paddingTest({ pixelPaddingValue: null, pixelPaddingRangeLimit: 10 })).toBeNull();
    expect(storedToHU(new Int16Array([0]), { bitsAllocated: 16, signed: true, rescaleSlope: 1, rescaleIntercept: 0, pixelPaddingRangeLimit: 10 }).padding).toBeNull();
  });

  it('passes float pixel data through the rescale without masking', () => {
    const r = storedToHU(new Float32Array([-0.5, 1.25]), { bitsAllocated: 32, signed: true, floatingPoint: true, rescaleSlope: 2, rescaleIntercept: 1, pixelPaddingValue: 1.25 });
    expect(Array.from(r.hu)).toEqual([0, 3.5]);
    expect(r.padding).toBeNull();
  });

  it('reuses an output buffer and rejects bad parameters with the argument named', () => {
    const out = new Float32Array(2);
    expect(storedToHU(new Int16Array([1, 2]), { bitsAllocated: 16, signed: true, rescaleSlope: 1, rescaleIntercept: 0 }, out).hu).toBe(out);
    expect(() => storedToHU(new Int16Array(3), { bitsAllocated: 16, signed: true, rescaleSlope: 1, rescaleIntercept: 0 }, out)).toThrow(/out has 2 elements/);
    expect(() => storedToHU(new Int16Array(1), { bitsAllocated: 16, signed: true, rescaleSlope: 0, rescaleIntercept: 0 })).toThrow(/rescaleSlope/);
    expect(() => storedToHU(new Int16Array(1), { bitsAllocated: 12, signed: true, rescaleSlope: 1, rescaleIntercept: 0 })).toThrow(/bitsAllocated/);
    expect(() => storedToHU(new Int16Array(1), { bitsAllocated: 16, bitsStored: 17, signed: true, rescaleSlope: 1, rescaleIntercept: 0 })).toThrow(/bitsStored/);
  });
});

describe('windows', () => {
  it('has the three presets of the viewer', () => {
    expect(WINDOW_PRESETS.map((p) => [p.id, p.level, p.width])).toEqual([
      ['softTissue', 50, 350],
      ['lung', -600, 1500],
      ['bone', 400, 1800],
    ]);
    expect(Object.isFrozen(WINDOW_PRESETS)).toBe(true);
  });

  it('maps the window linearly to [0, 1] and clips outside it', () => {
    expect(windowToUnit(50 - 175, 50, 350)).toBe(0);
    expect(windowToUnit(50, 50, 350)).toBe(0.5);
    expect(windowToUnit(50 + 175, 50, 350)).toBe(1);
    expect(windowToUnit(-1000, 50, 350)).toBe(0);
    expect(windowToUnit(3000, 50, 350)).toBe(1);
    expect(windowToUnit(-600 + 375, -600, 1500)).toBeCloseTo(0.75, 12);
    expect(windowToUnit(NaN, 50, 350)).toBe(0);
    expect(() => windowToUnit(0, 0, 0)).toThrow(/width/);
  });

  it('windows a plane to bytes, padding (NaN) to 0', () => {
    const bytes = windowToBytes(new Float32Array([-2000, -125, 50, 225, 5000, NaN]), 50, 350);
    expect(Array.from(bytes)).toEqual([0, 0, 128, 255, 255, 0]);
  });
});
