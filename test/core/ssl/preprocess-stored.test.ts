import { describe, expect, it } from 'vitest';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { toDisplay } from '../../../src/core/dicom/geometry';
import { storedToHU, type PixelArray, type RescaleParams } from '../../../src/core/dicom/hu';
import { preprocessSlice, preprocessStored, type PreprocessSpec } from '../../../src/core/ssl/preprocess';
import { Rng } from '../../../src/core/random';
import { readModelSlice } from '../../../src/library/volumes/model-slice';
import { readFrameHU } from '../../../src/library/volumes/pixels';
import { fixtures } from '../../helpers';

/**
 * preprocessStored (the pretraining pipeline's fused path) must give exactly, bit for bit, what the
 * three steps give: storedToHU, toDisplay, preprocessSlice.
 */
function threeSteps(values: PixelArray, rows: number, columns: number, p: RescaleParams, t: { transpose: boolean; flipX: boolean; flipY: boolean }, spec: PreprocessSpec): Float32Array {
  const hu = storedToHU(values, p).hu;
  const disp = new Float32Array(hu.length);
  const d = toDisplay(hu, rows, columns, t, disp);
  return preprocessSlice(disp, d.width, d.height, spec);
}

function expectSameBits(a: Float32Array, b: Float32Array, what: string): void {
  expect(a.length, what).toBe(b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let bad = -1;
  for (let i = 0; i < ua.length && bad < 0; i++) if (ua[i] !== ub[i]) bad = i;
  expect(bad, `${what}: first differing pixel ${bad} (${a[bad]} vs ${b[bad]})`).toBe(-1);
}

const TRANSFORMS = [false, true].flatMap((transpose) => [false, true].flatMap((flipX) => [false, true].map((flipY) => ({ transpose, flipX, flipY }))));

describe('preprocessStored', () => {
  it('equals storedToHU -> toDisplay -> preprocessSlice bit for bit (pixel types, padding, transforms, sizes, scalings, 8-bit quantisation)', () => {
    const rng = new Rng(7);
    const cases: { name: string; values: PixelArray; p: RescaleParams }[] = [];
    const n = 64 * 64;
    const i16 = new Int16Array(n).map(() => Math.round(rng.next() * 3000) - 2000);
    i16[5] = -2000;
    cases.push({ name: 'int16, padding -2000', values: i16, p: { bitsAllocated: 16, bitsStored: 16, signed: true, rescaleSlope: 1, rescaleIntercept: 0, pixelPaddingValue: -2000 } });
    const u16 = new Uint16Array(n).map(() => Math.round(rng.next() * 4095));
    cases.push({ name: 'uint16 12 bits, intercept -1024', values: u16, p: { bitsAllocated: 16, bitsStored: 12, signed: false, rescaleSlope: 1, rescaleIntercept: -1024 } });
    const u16b = new Uint16Array(n).map(() => Math.round(rng.next() * 65535));
    cases.push({ name: 'uint16, slope 0.37, padding range', values: u16b, p: { bitsAllocated: 16, bitsStored: 16, signed: false, rescaleSlope: 0.37, rescaleIntercept: -1000.3, pixelPaddingValue: 0, pixelPaddingRangeLimit: 300 } });
    const s12 = new Int16Array(n).map(() => Math.round(rng.next() * 4095) - 2048);
    cases.push({ name: 'int16 12 bits signed', values: s12, p: { bitsAllocated: 16, bitsStored: 12, signed: true, rescaleSlope: 1.5, rescaleIntercept: -100 } });
    const u8 = new Uint8Array(n).map(() => Math.round(rng.next() * 255));
    cases.push({ name: 'uint8', values: u8, p: { bitsAllocated: 8, bitsStored: 8, signed: false, rescaleSlope: 2, rescaleIntercept: -200 } });
    const f32 = new Float32Array(n).map(() => rng.next() * 2000 - 1000);
    cases.push({ name: 'float32 (three-step path)', values: f32, p: { bitsAllocated: 32, signed: false, floatingPoint: true, rescaleSlope: 1, rescaleIntercept: 0 } });
    const specs: PreprocessSpec[] = [
      { level: 50, width: 350, size: 32, scaling: 'fixed' },
      { level: 50, width: 350, size: 16, scaling: 'fixed' },
      { level: 50, width: 350, size: 8, scaling: 'fixed' },
      { level: 50, width: 350, size: 64, scaling: 'fixed' },
      { level: -600, width: 1500, size: 32, scaling: 'fixed', bits: 8 },
      { level: 40.1, width: 333.3, size: 32, scaling: 'fixed' },
      { level: 50, width: 350, size: 48, scaling: 'fixed' },
      { level: 50, width: 350, size: 32, scaling: 'minmax' },
    ];
    for (const c of cases)
      for (const spec of specs)
        for (const t of TRANSFORMS) expectSameBits(preprocessStored(c.values, 64, 64, c.p, t, spec), threeSteps(c.values, 64, 64, c.p, t, spec), `${c.name} ${JSON.stringify(spec)} ${JSON.stringify(t)}`);
    // Non-square frames take the three-step path.
    const rect = new Int16Array(48 * 64).map(() => Math.round(rng.next() * 3000) - 2000);
    for (const t of TRANSFORMS) {
      const p: RescaleParams = { bitsAllocated: 16, bitsStored: 16, signed: true, rescaleSlope: 1, rescaleIntercept: -1024 };
      const spec: PreprocessSpec = { level: 50, width: 350, size: 32, scaling: 'fixed' };
      expectSameBits(preprocessStored(rect, 48, 64, p, t, spec), threeSteps(rect, 48, 64, p, t, spec), `48 x 64 ${JSON.stringify(t)}`);
    }
  });

  it('invalid rescale parameters are reported as storedToHU reports them', () => {
    const p: RescaleParams = { bitsAllocated: 16, signed: true, rescaleSlope: 0, rescaleIntercept: 0 };
    expect(() => preprocessStored(new Int16Array(16), 4, 4, p, TRANSFORMS[0], { level: 50, width: 350, size: 2, scaling: 'fixed' })).toThrow(/rescaleSlope/);
  });

  it('readModelSlice of real CT (LIDC-IDRI-0001, 512 x 512 int16) equals readFrameHU -> toDisplay -> preprocessSlice at 256, 128 and 512 px', async () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else if (e.endsWith('.dcm')) files.push(p);
      }
    };
    walk(join(fixtures, 'lidc-0001'));
    expect(files.length).toBeGreaterThan(2);
    for (const path of files.sort().slice(0, 3)) {
      const f = await readFrameHU(path, 0);
      for (const size of [256, 128, 512])
        for (const t of [TRANSFORMS[0], TRANSFORMS[5]]) {
          const spec: PreprocessSpec = { level: 50, width: 350, size, scaling: 'fixed' };
          const disp = new Float32Array(f.hu.length);
          const d = toDisplay(f.hu, f.rows, f.columns, t, disp);
          expectSameBits(await readModelSlice(path, 0, t, spec), preprocessSlice(disp, d.width, d.height, spec), `${path} ${size} ${JSON.stringify(t)}`);
        }
    }
  });
});
