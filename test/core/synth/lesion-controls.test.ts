/**
 * `ctssl synth`'s lesion controls (issue 15): nodule diameter range and nodule contrast. Left
 * out, the generator draws and paints exactly what it did before they existed (the digests in
 * test/library/synth/synth.test.ts pin whole cohorts); set, the nodules are of the asked size and
 * their attenuation difference from the tissue behind them is scaled.
 */
import { describe, expect, it } from 'vitest';
import { buildModel, type ModelInput } from '../../../src/core/synth/model';
import { defaultOptions, modelInput, planCohort, validateOptions, type SynthOptions } from '../../../src/core/synth/plan';
import { makeNoiseField } from '../../../src/core/synth/noise';
import { renderSlice } from '../../../src/core/synth/render';

const OPTIONS: SynthOptions = { ...defaultOptions(4, 77), slices: 24, size: 96, nodules: [3, 3] };

function input(o: SynthOptions, patient = 0): ModelInput {
  const plan = planCohort(o)[patient];
  return modelInput(o, plan, plan.studies[0]);
}

/** The noise-free HU of the slice nearest a nodule's centre, and that nodule's mask pixels on it. */
function sliceThrough(inp: ModelInput, at?: number) {
  const m = buildModel(inp);
  const n = m.nodules[0];
  const k = at ?? Math.max(0, Math.min(m.scan.slices - 1, Math.round((n.centre[2] - m.scan.s0) / m.scan.thickness)));
  const out = renderSlice(m, k, makeNoiseField(1, 128));
  return { model: m, k, hu: Float32Array.from(out.hu), stored: Int16Array.from(out.stored), mask: n ? (out.nodules.get(n.id) ?? []) : [] };
}

describe('nodule size and contrast controls', () => {
  it('the explicit defaults (3-30 mm, contrast 1) give the same nodules and pixels as leaving them out', () => {
    for (let p = 0; p < 4; p++) {
      const a = sliceThrough(input(OPTIONS, p));
      const b = sliceThrough(input({ ...OPTIONS, noduleSize: [3, 30], noduleContrast: 1 }, p));
      expect(b.model.nodules).toEqual(a.model.nodules);
      expect(b.stored).toEqual(a.stored);
    }
  });

  it('draws diameters within the asked range', () => {
    const ds = [0, 1, 2, 3].flatMap((p) => buildModel(input({ ...OPTIONS, noduleSize: [12, 20] }, p)).nodules.map((n) => n.diameter));
    expect(ds.length).toBeGreaterThanOrEqual(8);
    for (const d of ds) expect(d).toBeGreaterThanOrEqual(12), expect(d).toBeLessThanOrEqual(20);
    const defaults = [0, 1, 2, 3].flatMap((p) => buildModel(input(OPTIONS, p)).nodules.map((n) => n.diameter));
    expect(Math.min(...defaults)).toBeLessThan(12);
  });

  it('contrast 0.5 paints each nodule pixel halfway between the tissue behind it and the full-contrast nodule', () => {
    const o = { ...OPTIONS, noduleSize: [10, 16] as [number, number] };
    const full = sliceThrough(input(o));
    const half = sliceThrough(input({ ...o, noduleContrast: 0.5 }));
    const none = sliceThrough(input({ ...o, nodules: [0, 0] }), full.k);
    expect(half.k).toBe(full.k);
    expect(full.mask.length).toBeGreaterThan(4);
    let checked = 0;
    for (const p of full.mask) {
      const behind = none.hu[p];
      // A nodule pixel fully inside (alpha = 1) of a solid nodule: exactly halfway.
      expect(half.hu[p] - behind).toBeCloseTo(0.5 * (full.hu[p] - behind), 1);
      if (full.hu[p] - behind > 300) checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('refuses sizes and contrasts out of range, naming the option', () => {
    expect(() => validateOptions({ ...OPTIONS, noduleSize: [0.5, 10] })).toThrow(/nodule-size/);
    expect(() => validateOptions({ ...OPTIONS, noduleSize: [20, 10] })).toThrow(/nodule-size/);
    expect(() => validateOptions({ ...OPTIONS, noduleContrast: 0 })).toThrow(/nodule-contrast/);
    expect(() => validateOptions({ ...OPTIONS, noduleContrast: 3 })).toThrow(/nodule-contrast/);
  });
});
