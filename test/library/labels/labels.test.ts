import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { importLabels, type CsvImportReport, type LidcImportReport, type SegImportReport } from '../../../src/library/labels/label-import';
import { findingsForSeries, seriesMasks, sliceLabelSummary, sliceMasks } from '../../../src/library/labels/label-queries';
import { exportSeriesSeg } from '../../../src/library/labels/seg-export';
import { readSeg } from '../../../src/library/labels/seg';
import { listSeries } from '../../../src/library/db/catalog';
import { area, consensus, roisToMask, unpackBits } from '../../../src/core/labels/raster';
import type { Database } from '../../../src/library/db/sqlite';
import { fixtures, hasSharedData, sharedData, tempDir } from '../../helpers';
import { globSync } from '../../glob';

const expected = JSON.parse(readFileSync(join(fixtures, '..', 'labels', 'lidc-0001-069.expected.json'), 'utf8')) as {
  readers: number;
  nodules: number;
  smallNodules: number;
  rois: number;
  roisPerSop: Record<string, number>;
  matchedRois: number;
  unmatchedRois: number;
  slabSops: string[];
  roiAreas: { reader: number; nodule: string; sopUid: string; inclusion: boolean; area: number }[];
};
const xml069 = globSync(join(fixtures, 'lidc-0001'), /069\.xml$/)[0];

describe('raster rule', () => {
  it('fills a square outline including its edge and removes exclusion interiors', () => {
    const sq: [number, number][] = [[2, 2], [6, 2], [6, 6], [2, 6]];
    expect(area(roisToMask([{ points: sq, inclusion: true }], 10, 10))).toBe(25);
    const hole: [number, number][] = [[3, 3], [5, 3], [5, 5], [3, 5]];
    // the hole's interior by the half-open rule is x, y in [3, 5): 4 pixels
    expect(area(roisToMask([{ points: sq, inclusion: true }, { points: hole, inclusion: false }], 10, 10))).toBe(21);
    expect(area(consensus([Uint8Array.from([1, 1, 0]), Uint8Array.from([1, 0, 0])], 2))).toBe(1);
  });
});

describe('LIDC-IDRI-0001 annotations (069.xml) on the committed slab', () => {
  const tmp = tempDir();
  let db: Database;
  let report: LidcImportReport;
  let seriesId: number;
  beforeAll(async () => {
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    await indexFolders(db, [join(fixtures, 'lidc-0001')]);
    seriesId = listSeries(db)[0].id;
    report = (await importLabels(db, xml069)) as LidcImportReport;
  });
  afterAll(() => {
    db.close();
    tmp.cleanup();
  });

  it('counts readers, nodules and ROIs as the independent reading does', () => {
    expect(report.kind).toBe('lidc-xml');
    expect(report.readers).toBe(expected.readers);
    expect(report.nodules).toBe(expected.nodules);
    expect(report.smallNodules).toBe(expected.smallNodules);
    expect(report.rois).toBe(expected.rois);
    expect(report.matchedRois).toBe(expected.matchedRois);
  });

  it('reports every ROI whose slice is not indexed, with its SOP UID and a reason', () => {
    expect(report.unmatchedRois).toHaveLength(expected.unmatchedRois);
    for (const u of report.unmatchedRois) {
      expect(expected.slabSops).not.toContain(u.sopUid);
      expect(u.reason).toMatch(/no indexed image/);
    }
  });

  it('has the expected number of ROIs on each slice', () => {
    const rows = db
      .prepare(`SELECT r.sop_uid, COUNT(*) AS n FROM rois r JOIN findings f ON f.id = r.finding_ref WHERE f.kind != 'non-nodule' GROUP BY r.sop_uid`)
      .all() as { sop_uid: string; n: number }[];
    expect(Object.fromEntries(rows.map((r) => [r.sop_uid, r.n]))).toEqual(expected.roisPerSop);
  });

  it('rasterises each matched ROI to the area computed independently', () => {
    const rows = db
      .prepare(
        `SELECT f.reader, f.finding_key, r.sop_uid, r.area_px FROM rois r JOIN findings f ON f.id = r.finding_ref
         WHERE r.area_px IS NOT NULL ORDER BY r.id`,
      )
      .all() as { reader: string; finding_key: string; sop_uid: string; area_px: number }[];
    expect(rows).toHaveLength(expected.matchedRois);
    const want = expected.roiAreas.filter((a) => expected.slabSops.includes(a.sopUid));
    expect(rows.map((r) => [Number(r.reader), r.finding_key, r.sop_uid, r.area_px])).toEqual(want.map((a) => [a.reader, a.nodule, a.sopUid, a.area]));
  });

  it("groups the four readers' outlines of the large nodule into one nodule", () => {
    expect(report.groupedNodules).toBe(1);
    const large = findingsForSeries(db, seriesId).filter((f) => f.kind === 'nodule');
    expect(new Set(large.map((f) => f.group))).toEqual(new Set(['N1']));
    expect(new Set(large.map((f) => f.reader)).size).toBe(4);
    expect(large.every((f) => typeof f.attributes.malignancy === 'number')).toBe(true);
  });

  it('builds per-reader and consensus masks: consensus of k readers shrinks as k grows', () => {
    const summary = sliceLabelSummary(db, seriesId);
    const four = [...summary.values()].find((s) => s.readers.length === 4 && s.findings.nodule === 4)!;
    expect(four).toBeDefined();
    const areas = [1, 2, 3, 4].map((k) => area(sliceMasks(db, four.sopUid, 512, 512, { consensusK: k })[0].mask));
    expect(areas[0]).toBeGreaterThan(0);
    for (let k = 1; k < 4; k++) expect(areas[k]).toBeLessThanOrEqual(areas[k - 1]);
    const reader1 = area(sliceMasks(db, four.sopUid, 512, 512, { reader: '1' })[0].mask);
    expect(reader1).toBeLessThanOrEqual(areas[0]);
    expect(reader1).toBeGreaterThanOrEqual(areas[3]);
  });

  it('writes a DICOM SEG of the consensus and reads back the same masks', async () => {
    const out = join(tmp.dir, 'consensus.seg.dcm');
    const res = exportSeriesSeg(db, seriesId, out, { consensusK: 2 });
    expect(res.frames).toBeGreaterThan(0);
    const seg = await readSeg(out);
    expect(seg.segments.map((s) => s.label)).toEqual(['N1']);
    const masks = seriesMasks(db, seriesId, { consensusK: 2 });
    expect(seg.frames).toHaveLength(masks.size);
    for (const f of seg.frames) {
      expect(f.sourceSopUid).not.toBe('');
      const want = masks.get(f.sourceSopUid)!;
      expect(Buffer.from(unpackBits(f.packed, 512 * 512)).equals(Buffer.from(want))).toBe(true);
    }
    const imported = (await importLabels(db, out)) as SegImportReport;
    expect(imported.kind).toBe('dicom-seg');
    expect(imported.matchedFrames).toBe(imported.frames);
    expect(imported.unmatchedFrames).toHaveLength(0);
  });

  it('imports RSNA-style per-image labels and reports rows it cannot match', async () => {
    const sops = expected.slabSops;
    const s = listSeries(db)[0];
    const lines = ['StudyInstanceUID,SeriesInstanceUID,SOPInstanceUID,pe_present_on_image,negative_exam_for_pe,rv_lv_ratio_gte_1'];
    sops.forEach((sop, i) => lines.push(`${s.studyInstanceUid},${s.seriesInstanceUid},${sop},${i % 3 === 0 ? 1 : 0},0,1`));
    lines.push(`${s.studyInstanceUid},${s.seriesInstanceUid},1.2.3.4.5,1,0,1`);
    const csv = join(tmp.dir, 'train.csv');
    writeFileSync(csv, lines.join('\n') + '\n');
    const r = (await importLabels(db, csv)) as CsvImportReport;
    expect(r).toMatchObject({ kind: 'rsna-csv', rows: sops.length + 1, matchedRows: sops.length, unmatchedRows: 1, exams: 1 });
    expect(r.positiveImages).toBe(sops.filter((_, i) => i % 3 === 0).length + 1);
    expect(r.unmatched[0]).toMatchObject({ key: '1.2.3.4.5', reason: 'no indexed image has this SOP Instance UID' });
    const summary = sliceLabelSummary(db, seriesId);
    expect([...summary.values()].filter((x) => x.image.pe_present_on_image === 1)).toHaveLength(sops.filter((_, i) => i % 3 === 0).length);
  });

  it('refuses files it cannot read, naming them', async () => {
    const junk = join(tmp.dir, 'notes.txt');
    writeFileSync(junk, 'hello');
    await expect(importLabels(db, junk)).rejects.toThrow(/notes\.txt: not a label file/);
    await expect(importLabels(db, join(tmp.dir, 'missing.xml'))).rejects.toThrow(/label file not found: .*missing\.xml/);
  });
});

describe('LIDC-IDRI-0002 (71.xml) with only 12 of its slices indexed', () => {
  it('matches the ROIs on indexed slices and reports the others', async () => {
    const tmp = tempDir();
    const db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    try {
      await indexFolders(db, [join(fixtures, 'lidc-small', 'small')]);
      const r = (await importLabels(db, join(fixtures, 'lidc-small', 'xml', '71.xml'))) as LidcImportReport;
      expect(r.matchedRois).toBeGreaterThan(0);
      expect(r.unmatchedRois.length).toBeGreaterThan(0);
      expect(r.matchedRois + r.unmatchedRois.length).toBe(r.rois);
    } finally {
      db.close();
      tmp.cleanup();
    }
  });
});

describe.skipIf(!hasSharedData)('the complete LIDC-IDRI-0001 series and the pydicom SEG samples', () => {
  it('matches all 41 ROIs of 069.xml on the full 133-slice series', async () => {
    const tmp = tempDir();
    const db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    try {
      await indexFolders(db, [join(sharedData, 'lidc-c2c-full')]);
      const xml = globSync(join(sharedData, 'lidc-c2c-full'), /069\.xml$/)[0];
      const r = (await importLabels(db, xml)) as LidcImportReport;
      expect(r.matchedRois).toBe(expected.rois);
      expect(r.unmatchedRois).toHaveLength(0);
    } finally {
      db.close();
      tmp.cleanup();
    }
  });

  it('reads the liver SEG: one segment, three frames referencing CT images', async () => {
    const seg = await readSeg(join(sharedData, 'pydicom-data-subset', 'data_store', 'data', 'liver.dcm'));
    expect(seg.segments.map((s) => s.label)).toEqual(['Liver']);
    expect(seg.frames).toHaveLength(3);
    expect(seg.frames.every((f) => f.sourceSopUid.startsWith('1.2.392') && f.area > 0)).toBe(true);
    const odd = await readSeg(join(sharedData, 'pydicom-data-subset', 'data_store', 'data', 'liver_nonbyte_aligned.dcm'));
    expect(odd.rows).toBe(510);
    expect(odd.frames.every((f) => f.area > 0)).toBe(true);
  });
});

describe('patient attributes', () => {
  it('come from headers and are overridden by an imported CSV keyed by PatientID', async () => {
    const { seriesAttributes } = await import('../../../src/library/db/attributes');
    const tmp = tempDir();
    const db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    try {
      await indexFolders(db, [join(fixtures, 'covid-slices')]);
      const s = listSeries(db)[0];
      const fromHeaders = seriesAttributes(db, s.id);
      expect(['M', 'F', 'O', '']).toContain(fromHeaders.sex);
      const csv = join(tmp.dir, 'attributes.csv');
      writeFileSync(csv, `patient_id,sex,age,ethnic_group\n${s.patientId},female,64,Group B\nNOBODY,M,30,\n`);
      const r = (await importLabels(db, csv)) as CsvImportReport;
      expect(r).toMatchObject({ kind: 'attributes-csv', rows: 2, matchedRows: 1, unmatchedRows: 1 });
      const a = seriesAttributes(db, s.id);
      expect(a).toMatchObject({ sex: 'F', ageYears: 64, ageGroup: '60-69', ethnicGroup: 'Group B' });
      expect(a.provenance.sex).toMatch(/^csv:.*attributes\.csv$/);
    } finally {
      db.close();
      tmp.cleanup();
    }
  });
});

describe('labels through the services (what the app asks)', () => {
  it('lists labelled slices in display order, gives display-oriented masks, and filters series by label kind', async () => {
    const { createServices } = await import('../../../src/host/services');
    const tmp = tempDir();
    const services = createServices({ mode: 'server', dataDir: tmp.dir, dbPath: join(tmp.dir, 'lib.sqlite'), emit: () => {} });
    try {
      await indexFolders(services.db, [join(fixtures, 'lidc-0001'), join(fixtures, 'covid-slices')]);
      const h = services.handlers;
      expect(((await h['library.series']({ labels: 'nodule' })) as unknown[]).length).toBe(0);
      const report = await h['labels.import'](xml069);
      expect(report.kind).toBe('lidc-xml');
      const withNodules = await h['library.series']({ labels: 'nodule' });
      expect(withNodules.map((s) => s.patientId)).toEqual(['LIDC-IDRI-0001']);
      const counts = await h['library.cohortCounts']({ labels: 'any' });
      expect(counts.matching).toBe(1);
      const labels = await h['labels.series'](withNodules[0].id);
      expect(labels.readers).toEqual(['1', '2', '3', '4']);
      expect(labels.slices.length).toBeGreaterThan(5);
      // display order is superior first: indices increase as z decreases
      const zs = labels.slices.map((s) => s.index);
      expect([...zs].sort((a, b) => a - b)).toEqual(zs);
      const busiest = labels.slices.reduce((a, b) => (b.nodules > a.nodules ? b : a));
      const masks = await h['labels.masks'](withNodules[0].id, busiest.index, { consensusK: 1 });
      expect(masks.width).toBe(512);
      expect(masks.groups[0].group).toMatch(/N1$/);
      expect(area(masks.groups[0].mask)).toBeGreaterThan(0);
      await expect(Promise.resolve().then(() => h['labels.masks'](withNodules[0].id, 999, {}))).rejects.toThrow(/outside the series/);
      await expect(h['labels.import']('/nope/labels.xml')).rejects.toThrow(/label file not found/);
      expect((await h['labels.sources']()).map((s) => s.kind)).toEqual(['lidc-xml']);
    } finally {
      await services.close();
      tmp.cleanup();
    }
  });

  it("counts series whose only masks come from a DICOM SEG under the 'nodule' filter (what segmentation trains on)", async () => {
    const { createServices } = await import('../../../src/host/services');
    const tmp = tempDir();
    // A SEG made from the XML in one library, imported alone into another.
    const first = openLibrary(join(tmp.dir, 'a.sqlite'));
    const seg = join(tmp.dir, 'n1.seg.dcm');
    try {
      await indexFolders(first, [join(fixtures, 'lidc-0001')]);
      await importLabels(first, xml069);
      exportSeriesSeg(first, listSeries(first)[0].id, seg, { consensusK: 2 });
    } finally {
      first.close();
    }
    const services = createServices({ mode: 'server', dataDir: tmp.dir, dbPath: join(tmp.dir, 'b.sqlite'), emit: () => {} });
    try {
      await indexFolders(services.db, [join(fixtures, 'lidc-0001'), join(fixtures, 'covid-slices')]);
      const h = services.handlers;
      expect(((await h['library.series']({ labels: 'nodule' })) as unknown[]).length).toBe(0);
      expect((await h['labels.import'](seg)).kind).toBe('dicom-seg');
      for (const labels of ['nodule', 'segment'] as const)
        expect((await h['library.series']({ labels })).map((s) => s.patientId)).toEqual(['LIDC-IDRI-0001']);
    } finally {
      await services.close();
      tmp.cleanup();
    }
  });
});

describe('label NIfTI export', () => {
  it('writes a uint8 label volume on the image grid: same affine as the image NIfTI, masks on the right slices', async () => {
    const { exportSeriesNifti } = await import('../../../src/library/volumes/nifti');
    const { exportSeriesLabelNifti } = await import('../../../src/library/labels/nifti-export');
    const { gunzipSync } = await import('node:zlib');
    const tmp = tempDir();
    const db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    try {
      await indexFolders(db, [join(fixtures, 'lidc-0001')]);
      await importLabels(db, xml069);
      const [s] = listSeries(db);
      const img = await exportSeriesNifti(db, s.id, join(tmp.dir, 'img.nii.gz'));
      const lab = await exportSeriesLabelNifti(db, s.id, join(tmp.dir, 'lab.nii.gz'), { consensusK: 2 });
      expect(lab.dims).toEqual(img.dims);
      expect(lab.labels).toEqual([{ value: 1, group: expect.stringMatching(/N1$/) }]);
      const raw = gunzipSync(readFileSync(join(tmp.dir, 'lab.nii.gz')));
      const rawImg = gunzipSync(readFileSync(join(tmp.dir, 'img.nii.gz')));
      // srow_x/y/z (affine) identical, datatype uint8
      expect(raw.subarray(280, 328).equals(rawImg.subarray(280, 328))).toBe(true);
      expect(raw.readInt16LE(70)).toBe(2);
      const vox = raw.subarray(352);
      let count = 0;
      for (const v of vox) if (v) count++;
      expect(count).toBe(lab.voxels);
      const masks = seriesMasks(db, s.id, { consensusK: 2 });
      expect(lab.labelledSlices).toBe(masks.size);
      expect(count).toBe([...masks.values()].reduce((a, m) => a + area(m), 0));
    } finally {
      db.close();
      tmp.cleanup();
    }
  });
});
