import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { importLabels } from '../../../src/library/labels/label-import';
import { buildFinetuneManifest, readMask } from '../../../src/library/runs/finetune-manifest';
import { seriesMasks } from '../../../src/library/labels/label-queries';
import { listSeries } from '../../../src/library/db/catalog';
import { area } from '../../../src/core/labels/raster';
import { fixtures, tempDir } from '../../helpers';
import { globSync } from '../../glob';

describe('labelled data for fine-tuning', () => {
  it('labels slices by nodule presence and stores consensus masks, split by patient', async () => {
    const tmp = tempDir();
    const db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    try {
      await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
      await importLabels(db, globSync(join(fixtures, 'lidc-0001'), /069\.xml$/)[0]);
      await importLabels(db, join(fixtures, 'lidc-small', 'xml', '71.xml'));
      expect(() => buildFinetuneManifest(db, tmp.dir, { task: 'classification', label: { kind: 'image-label', name: 'pe_present_on_image' }, seed: 1 })).toThrow(
        /no series in the cohort has per-image labels named "pe_present_on_image"/,
      );
      const cls = buildFinetuneManifest(db, tmp.dir, { task: 'classification', label: { kind: 'nodule', consensusK: 1 }, seed: 1 });
      expect(cls.series).toHaveLength(2);
      const lidc1 = cls.series.find((s) => s.seriesUid.endsWith('603192'))!;
      expect(lidc1.slices).toHaveLength(17);
      const positives = lidc1.slices.filter((s) => s.label === 1).length;
      const id1 = listSeries(db, { text: 'LIDC-IDRI-0001' })[0].id;
      expect(positives).toBe(seriesMasks(db, id1, { consensusK: 1, kinds: ['nodule', 'segment'] }).size);
      // minAreaPx: slices whose nodule area is below it are left out (not negatives), the others keep their label.
      const masks1 = seriesMasks(db, id1, { consensusK: 1, kinds: ['nodule', 'segment'] });
      const areas = [...masks1.values()].map((m) => area(m)).sort((a, b) => a - b);
      const cut = areas[Math.floor(areas.length / 2)];
      const small = [...masks1.entries()].filter(([, m]) => area(m) < cut).map(([sop]) => sop);
      expect(small.length).toBeGreaterThan(0);
      const big = buildFinetuneManifest(db, tmp.dir, { task: 'classification', label: { kind: 'nodule', consensusK: 1, minAreaPx: cut }, seed: 1 });
      const b1 = big.series.find((s) => s.seriesUid.endsWith('603192'))!;
      expect(b1.slices).toHaveLength(17 - small.length);
      expect(b1.slices.filter((s) => s.label === 1)).toHaveLength(positives - small.length);
      for (const sop of small) expect(b1.slices.some((s) => s.sopUid === sop)).toBe(false);
      expect(b1.slices.filter((s) => s.label === 0)).toHaveLength(17 - positives);
      const seg = buildFinetuneManifest(db, tmp.dir, { task: 'segmentation', label: { kind: 'nodule', consensusK: 2 }, seed: 1, negativesPerPositive: 1 });
      const s1 = seg.series.find((s) => s.seriesUid.endsWith('603192'))!;
      const pos = s1.slices.filter((s) => s.label === 1);
      expect(pos.length).toBeGreaterThan(0);
      expect(s1.slices.length).toBeLessThanOrEqual(2 * pos.length);
      const blob = new Uint8Array(readFileSync(join(tmp.dir, 'masks.bin')));
      const want = seriesMasks(db, id1, { consensusK: 2, kinds: ['nodule', 'segment'] });
      for (const p of pos) {
        const m = readMask(blob, p.mask!, 512, 512);
        expect(area(m)).toBe(area(want.get(p.sopUid)!));
      }
      const patients = (sp: string) => new Set(seg.series.filter((s) => s.split === sp).map((s) => s.patientKey));
      for (const k of patients('train')) expect(patients('test').has(k)).toBe(false);
    } finally {
      db.close();
      tmp.cleanup();
    }
  });
});
