/**
 * Held-out results on screen (issue 13): runs.heldOutList names a pretraining run's held-out
 * patients and series from its manifest; runs.heldOut runs every slice of one of them through the
 * latest checkpoint in a trainer process and returns input / output / target / difference as PNG
 * bytes (not paths), the same slices as the manifest holds, cached for the next request.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { createServices } from '../../src/host/services';
import { tempDir } from '../helpers';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width, height and the grey pixels of an 8-bit grey PNG (the trainer's encodePngGray). */
function decodeGrey(png: Uint8Array): { w: number; h: number; px: Uint8Array } {
  const b = Buffer.from(png);
  expect(b.subarray(0, 8).equals(PNG)).toBe(true);
  const w = b.readUInt32BE(16);
  const h = b.readUInt32BE(20);
  const idat: Buffer[] = [];
  for (let o = 8; o < b.length; ) {
    const len = b.readUInt32BE(o);
    if (b.toString('latin1', o + 4, o + 8) === 'IDAT') idat.push(b.subarray(o + 8, o + 8 + len));
    o += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const px = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    expect(raw[y * (w + 1)]).toBe(0); // filter None
    px.set(raw.subarray(y * (w + 1) + 1, (y + 1) * (w + 1)), y * w);
  }
  return { w, h, px };
}

describe('the held-out browser of the Evaluate page', () => {
  it('lists the held-out patients and returns every slice of one as PNG bytes through the checkpoint', async () => {
    const tmp = tempDir('ctssl-held-out-');
    const services = createServices({ mode: 'server', dataDir: tmp.dir, dbPath: join(tmp.dir, 'library.sqlite'), emit: () => {} });
    try {
      const h = services.handlers;
      await h['library.synthCohort']({});
      const run = await h['runs.create']({ task: 'masked', maskPercent: 20, preset: 'tiny', size: 32, steps: 2, batchSize: 2, checkpointEvery: 2, evalEvery: 2, useCache: false } as never);
      await h['runs.start'](run.id);
      expect((await services.runs.wait(run.id)).status).toBe('done');

      const list = await h['runs.heldOutList'](run.id);
      expect(list.split).toBe('test');
      const manifest = JSON.parse(readFileSync(join(run.dir, 'manifest.json'), 'utf8')) as { series: { patientKey: string; split: string; slices: unknown[] }[] };
      const held = manifest.series.map((s, index) => ({ ...s, index })).filter((s) => s.split === 'test');
      expect(held.length).toBeGreaterThan(0);
      expect(list.patients.flatMap((p) => p.series.map((s) => s.index)).sort()).toEqual(held.map((s) => s.index).sort());
      expect(list.patients.map((p) => p.patient).sort()).toEqual([...new Set(held.map((s) => s.patientKey))].sort());

      const series = list.patients[0].series[0];
      const t0 = Date.now();
      const images = await h['runs.heldOut'](run.id, series.index);
      const first = Date.now() - t0;
      expect(images).toMatchObject({ split: 'test', series: series.index, size: 32, kind: 'recon', checkpointStep: 2 });
      expect(images.slices).toHaveLength(series.slices);
      expect(images.slices.map((s) => s.slice)).toEqual(Array.from({ length: series.slices }, (_, i) => i));
      const s = images.slices[Math.floor(series.slices / 2)];
      const input = decodeGrey(s.input);
      const target = decodeGrey(s.target!);
      const output = decodeGrey(s.output!);
      const diff = decodeGrey(s.diff!);
      expect([input.w, input.h, output.w, target.w, diff.w]).toEqual([32, 32, 32, 32, 32]);
      // masked region: the input differs from the target where the mask is; the difference image is |output - target| x 4
      expect(input.px.some((v, i) => v !== target.px[i])).toBe(true);
      let worst = 0;
      for (let i = 0; i < diff.px.length; i++) worst = Math.max(worst, Math.abs(diff.px[i] - Math.min(255, Math.abs(output.px[i] - target.px[i]) * 4)));
      expect(worst).toBeLessThanOrEqual(5); // rounding of the 8-bit images
      expect(s.mse).toBeGreaterThan(0);

      // the same series again comes from memory
      const t1 = Date.now();
      expect(await h['runs.heldOut'](run.id, series.index)).toBe(images);
      expect(Date.now() - t1).toBeLessThan(first);
      // a series the run trained on is not held out
      const trained = manifest.series.findIndex((x) => x.split === 'train');
      await expect(h['runs.heldOut'](run.id, trained)).rejects.toThrow(/is not held out by this run/);
    } finally {
      await services.close();
      tmp.cleanup();
    }
  }, 240_000);
});
