/**
 * The synthetic chest CT generator (`ctssl synth`): determinism by seed, valid DICOM for our
 * parser, pydicom and dcmjs, correct geometry in the index, HU inside the generator's organ
 * masks, labels (LIDC XML, DICOM SEG, RSNA CSV) on the slices that hold the lesions, and the
 * label importers reading every label. Small cohort: 3 patients, 32 slices of 128 x 128.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import dcmjs from 'dcmjs';
import { XMLParser } from 'fast-xml-parser';
import { readHeader } from '../../../src/core/dicom/header';
import { parseDicom } from '../../../src/core/dicom/parse';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { listSeries } from '../../../src/library/db/catalog';
import type { Database } from '../../../src/library/db/sqlite';
import { type CohortManifest, writeCohort } from '../../../src/library/synth/synth-writer';
import { T } from '../../../src/core/synth/labels';
import { buildModel } from '../../../src/core/synth/model';
import { makeNoiseField, noiseFieldSize } from '../../../src/core/synth/noise';
import { defaultOptions, modelInput, planCohort, type SynthOptions } from '../../../src/core/synth/plan';
import { encodePngGray, windowToGray } from '../../../src/core/synth/png';
import { renderSlice } from '../../../src/core/synth/render';
import { RSNA_HEADER, rsnaExam } from '../../../src/core/synth/rsna';
import { generateStudy } from '../../../src/core/synth/study';
import { root, tempDir } from '../../helpers';

const OPTIONS: SynthOptions = {
  ...defaultOptions(3, 20261126),
  slices: 32,
  size: 128,
  nodules: [2, 3],
  peFraction: 2 / 3,
  readers: [2, 4],
};

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

function hashes(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of walk(dir)) m.set(relative(dir, f), createHash('sha256').update(readFileSync(f)).digest('hex'));
  return m;
}

const tmp = tempDir('ctssl-synth-');
const out = join(tmp.dir, 'a');
let manifest: CohortManifest;

beforeAll(async () => {
  await writeCohort(OPTIONS, out, { jobs: 1 });
  manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as CohortManifest;
});
afterAll(() => tmp.cleanup());

const studies = () => manifest.patients.flatMap((p) => p.studies.map((s) => ({ p, s })));

describe('determinism', () => {
  it('the same seed gives byte-identical files, in one thread or two workers', async () => {
    const again = join(tmp.dir, 'b');
    const summary = await writeCohort(OPTIONS, again, { jobs: 2 });
    expect(summary.jobs).toBe(2);
    const a = hashes(out);
    const b = hashes(again);
    expect(a.size).toBe(3 * 32 + 3 + manifest.counts.segFiles + 2);
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [k, v] of a) expect(b.get(k), k).toBe(v);
  });

  it('default lesion controls keep the cohorts written before they existed byte-identical (digests stored at dde3501)', async () => {
    // One digest over every file's relative path and SHA-256, in walk order.
    const digest = (dir: string) => {
      const h = createHash('sha256');
      for (const [k, v] of hashes(dir)) h.update(`${k} ${v}\n`);
      return h.digest('hex');
    };
    expect(digest(out)).toBe('04d17b8d75910dc5663c47ae36529fe9fd22e7e1060a5793644a4181d7743411');
    const evidence = join(tmp.dir, 'evidence-like');
    await writeCohort({ ...defaultOptions(2, 11), slices: 32, size: 128, peFraction: 0.5, nodules: [1, 3], trait: 'ethnic-group', traitStrength: 2 }, evidence, { jobs: 1 });
    expect(digest(evidence)).toBe('37399d07f09d74505806d54246be945d8b902552e8a8c0c34645313f762b27f8');
  });

  it('another seed gives other pixels and other UIDs', () => {
    const other = planCohort({ ...OPTIONS, seed: OPTIONS.seed + 1 });
    const mine = planCohort(OPTIONS);
    expect(other[0].studies[0].studyUid).not.toBe(mine[0].studies[0].studyUid);
    const noise = makeNoiseField(1, 512);
    const s1 = renderSlice(buildModel(modelInput(OPTIONS, mine[0], mine[0].studies[0])), 16, noise).stored.slice();
    const s2 = renderSlice(buildModel(modelInput({ ...OPTIONS, seed: OPTIONS.seed + 1 }, other[0], other[0].studies[0])), 16, noise).stored;
    let diff = 0;
    for (let i = 0; i < s1.length; i++) if (s1[i] !== s2[i]) diff++;
    expect(diff).toBeGreaterThan(s1.length / 2);
  });

  it('refuses a non-empty folder it did not write, and replaces its own with --overwrite', async () => {
    const foreign = join(tmp.dir, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'keep me');
    await expect(writeCohort({ ...OPTIONS, patients: 1 }, foreign)).rejects.toThrow(/not empty/);
    await expect(writeCohort({ ...OPTIONS, patients: 1 }, out)).rejects.toThrow(/--overwrite/);
    expect(readFileSync(join(foreign, 'notes.txt'), 'utf8')).toBe('keep me');
  });
});

describe('DICOM files', () => {
  it('parse with our parser: CT Image Storage, geometry, rescale and patient attributes', () => {
    let n = 0;
    for (const { p, s } of studies()) {
      const zs: number[] = [];
      for (const inst of s.series.instances) {
        const bytes = new Uint8Array(readFileSync(join(out, inst.file)));
        const parsed = parseDicom(bytes);
        expect(parsed.part10).toBe(true);
        expect(parsed.transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
        const h = readHeader(parsed);
        expect(h.sopClassUid).toBe('1.2.840.10008.5.1.4.1.1.2');
        expect(h.sopInstanceUid).toBe(inst.sopInstanceUid);
        expect(h.seriesInstanceUid).toBe(s.series.seriesInstanceUid);
        expect(h.studyInstanceUid).toBe(s.studyInstanceUid);
        expect(h.frameOfReferenceUid).toBe(s.series.frameOfReferenceUid);
        expect(h.modality).toBe('CT');
        expect([h.rows, h.columns]).toEqual([128, 128]);
        expect(h.pixelSpacing).toEqual(s.series.pixelSpacing);
        expect(h.sliceThickness).toBe(2.5);
        expect(h.imageOrientation).toEqual([1, 0, 0, 0, 1, 0]);
        expect(h.imagePosition).toEqual(inst.imagePositionPatient);
        expect([h.rescaleSlope, h.rescaleIntercept]).toEqual([1, -1024]);
        expect([h.bitsAllocated, h.pixelRepresentation, h.samplesPerPixel]).toEqual([16, 1, 1]);
        expect(h.pixelDataLength).toBe(128 * 128 * 2);
        expect(h.patientId).toBe(p.patientId);
        expect(h.patientSex).toBe(p.sex);
        expect(h.patientAge).toBe(s.patientAge);
        expect(h.patientBirthDate).toBe(p.birthDate);
        expect(h.ethnicGroup).toBe(p.ethnicGroup);
        expect(h.studyDate).toBe(s.studyDate);
        zs.push(h.imagePosition![2]);
        n++;
      }
      // Contiguous slices, 2.5 mm apart, instance 1 the most superior.
      for (let i = 1; i < zs.length; i++) expect(zs[i - 1] - zs[i]).toBeCloseTo(2.5, 6);
    }
    expect(n).toBe(96);
  });

  it('read with pydicom (CT pixels in HU, SEG frames)', (ctx) => {
    if (!existsSync('/usr/bin/python3') || spawnSync('/usr/bin/python3', ['-c', 'import pydicom, numpy']).status !== 0) {
      console.warn('[synth] /usr/bin/python3 with pydicom and numpy not available: pydicom check skipped');
      ctx.skip();
      return;
    }
    const script = `
import json, sys, glob, os, pydicom
root = sys.argv[1]
res = {"ct": 0, "hu_min": 1e9, "hu_max": -1e9, "seg": []}
for f in sorted(glob.glob(os.path.join(root, "dicom", "*", "*", "ct", "*.dcm"))):
    d = pydicom.dcmread(f)
    a = d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
    assert a.shape == (d.Rows, d.Columns), a.shape
    res["ct"] += 1
    res["hu_min"] = min(res["hu_min"], float(a.min()))
    res["hu_max"] = max(res["hu_max"], float(a.max()))
for f in sorted(glob.glob(os.path.join(root, "seg", "*.dcm"))):
    d = pydicom.dcmread(f)
    a = d.pixel_array
    if a.ndim == 2: a = a[None]
    res["seg"].append({"frames": int(d.NumberOfFrames), "shape": list(a.shape), "area": int(a.sum()), "segments": len(d.SegmentSequence)})
print(json.dumps(res))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', script, out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { ct: number; hu_min: number; hu_max: number; seg: { frames: number; shape: number[]; area: number; segments: number }[] };
    expect(res.ct).toBe(96);
    expect(res.hu_min).toBeGreaterThanOrEqual(-1024);
    expect(res.hu_max).toBeGreaterThan(300);
    const segs = studies().filter(({ s }) => s.seg);
    expect(res.seg).toHaveLength(segs.length);
    res.seg.forEach((sg, i) => {
      const s = segs[i].s;
      expect(sg.frames).toBe(s.seg!.frames);
      expect(sg.shape).toEqual([s.seg!.frames, 128, 128]);
      expect(sg.segments).toBe(s.seg!.segments);
      expect(sg.area).toBe(s.nodules.reduce((a, n) => a + n.slices.reduce((b, x) => b + x.areaPx, 0), 0));
    });
  });

  it('index as uniform axial series with the right slices, spacing and size', async () => {
    const db: Database = openLibrary(join(tmp.dir, 'lib.sqlite'));
    try {
      const summary = await indexFolders(db, [join(out, 'dicom')]);
      expect(summary.skipped).toEqual([]);
      expect(summary.instances).toBe(96);
      const rows = listSeries(db);
      expect(rows).toHaveLength(3);
      for (const r of rows) {
        const s = studies().find(({ s }) => s.series.seriesInstanceUid === r.seriesInstanceUid)!.s;
        expect(r).toMatchObject({ modality: 'CT', orientation: 'axial', slices: 32, rows: 128, columns: 128, sliceThickness: 2.5, uniformSpacing: true, gaps: 0, gantryTilt: 0 });
        expect(r.spacing).toBeCloseTo(2.5, 6);
        expect(r.pixelSpacing).toEqual(s.series.pixelSpacing);
      }
    } finally {
      db.close();
    }
  });
});

describe('anatomy', () => {
  // The middle 32 slices of patient 1 rendered in memory with their tissue labels.
  const stats = new Map<number, number[]>();
  const boneCortex: number[] = [];
  const residual: number[] = [];
  const residualRight: number[] = [];
  let bytesMatch = true;
  beforeAll(() => {
    const plans = planCohort(OPTIONS);
    const noise = makeNoiseField(OPTIONS.seed, noiseFieldSize(OPTIONS.size));
    for (const p of plans) {
      generateStudy(OPTIONS, p, p.studies[0], noise, {
        writeSlice: (rel, bytes) => {
          if (Buffer.compare(Buffer.from(bytes), readFileSync(join(out, rel))) !== 0) bytesMatch = false;
        },
        onSlice: (_k, o) => {
          const n = OPTIONS.size;
          for (let i = 0; i < o.labels.length; i++) if (o.labels[i] === T.BONE_CORTEX) boneCortex.push(o.stored[i] - 1024);
          for (let y = 1; y < n - 1; y++)
            for (let x = 1; x < n - 1; x++) {
              const p = y * n + x;
              const l = o.labels[p];
              // Interior pixels only (same label on all 8 neighbours): no partial volume.
              if (
                o.labels[p - 1] !== l || o.labels[p + 1] !== l || o.labels[p - n] !== l || o.labels[p + n] !== l ||
                o.labels[p - n - 1] !== l || o.labels[p - n + 1] !== l || o.labels[p + n - 1] !== l || o.labels[p + n + 1] !== l
              )
                continue;
              let list = stats.get(l);
              if (!list) stats.set(l, (list = []));
              list.push(o.stored[p] - 1024);
              // Noise: stored minus the noise-free value, inside uniform soft tissue; and its right neighbour's.
              if ((l === T.FAT || l === T.MUSCLE) && o.labels[p + 2] === l && x < n - 2) {
                residual.push(o.stored[p] - 1024 - o.hu[p]);
                residualRight.push(o.stored[p + 1] - 1024 - o.hu[p + 1]);
              }
            }
        },
      });
    }
  });
  const mean = (l: number) => {
    const v = stats.get(l) ?? [];
    return v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  };
  const count = (l: number) => stats.get(l)?.length ?? 0;

  it('re-rendering in memory gives the bytes on disk', () => expect(bytesMatch).toBe(true));

  it('puts HU where they belong inside the organ masks', () => {
    const report = Object.fromEntries(Object.entries(T).map(([k, v]) => [k, [Math.round(mean(v)), count(v)]]));
    for (const l of [T.LUNG, T.FAT, T.MUSCLE, T.BONE_MARROW, T.BLOOD_RIGHT, T.AIR]) expect(count(l), JSON.stringify(report)).toBeGreaterThan(30);
    expect(mean(T.LUNG)).toBeGreaterThan(-910);
    expect(mean(T.LUNG)).toBeLessThan(-790);
    expect(mean(T.FAT)).toBeGreaterThan(-130);
    expect(mean(T.FAT)).toBeLessThan(-70);
    expect(mean(T.MUSCLE)).toBeGreaterThan(20);
    expect(mean(T.MUSCLE)).toBeLessThan(70);
    expect(mean(T.AIR)).toBeLessThan(-960);
    // Contrast-filled right heart and central pulmonary arteries.
    expect(mean(T.BLOOD_RIGHT)).toBeGreaterThan(230);
    expect(mean(T.BLOOD_RIGHT)).toBeLessThan(450);
    // Vertebral body and rib marrow, and the cortical shell where it is thick enough to keep an interior.
    expect(mean(T.BONE_MARROW)).toBeGreaterThan(130);
  });

  it('has bright cortical bone around the vertebral bodies and ribs', () => {
    // At 128 x 128 (2.8 mm pixels) the shell is partial-volumed: look at the brightest tenth.
    const v = boneCortex.slice().sort((a, b) => a - b);
    expect(v.length).toBeGreaterThan(100);
    expect(v[Math.floor(v.length * 0.9)]).toBeGreaterThan(400);
  });

  it('has Gaussian noise of 10-20 HU, slightly correlated between neighbours', () => {
    expect(residual.length).toBeGreaterThan(1000);
    const m = residual.reduce((a, b) => a + b, 0) / residual.length;
    const sd = Math.sqrt(residual.reduce((a, b) => a + (b - m) ** 2, 0) / residual.length);
    expect(Math.abs(m)).toBeLessThan(2);
    expect(sd).toBeGreaterThan(10);
    expect(sd).toBeLessThan(20);
    const m2 = residualRight.reduce((a, b) => a + b, 0) / residualRight.length;
    const sd2 = Math.sqrt(residualRight.reduce((a, b) => a + (b - m2) ** 2, 0) / residualRight.length);
    const corr = residual.reduce((a, v, i) => a + (v - m) * (residualRight[i] - m2), 0) / residual.length / (sd * sd2);
    expect(corr).toBeGreaterThan(0.2);
    expect(corr).toBeLessThan(0.9);
  });

  it('writes previews of a middle slice in the soft-tissue and lung windows (test/artifacts)', () => {
    const plans = planCohort({ ...OPTIONS, size: 256, slices: 64 });
    const model = buildModel(modelInput({ ...OPTIONS, size: 256, slices: 64 }, plans[0], plans[0].studies[0]));
    const o = renderSlice(model, 32, makeNoiseField(OPTIONS.seed, noiseFieldSize(256)));
    const dir = join(root, 'test', 'artifacts');
    mkdirSync(dir, { recursive: true });
    const soft = encodePngGray(windowToGray(o.stored, 50, 350), 256, 256);
    const lung = encodePngGray(windowToGray(o.stored, -600, 1500), 256, 256);
    writeFileSync(join(dir, 'synth-soft-tissue.png'), soft);
    writeFileSync(join(dir, 'synth-lung.png'), lung);
    expect(statSync(join(dir, 'synth-soft-tissue.png')).size).toBeGreaterThan(5000);
    expect([...soft.subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
  });

  it('ties the trait to its label: fat x1.25 and width x1.04 at strength 1, nothing else changes', () => {
    const o2: SynthOptions = { ...OPTIONS, trait: 'sex', traitValue: 'F' };
    const p = planCohort(o2).find((x) => x.sex === 'F') ?? planCohort({ ...o2, traitValue: 'M' })[0];
    const withTrait = { ...o2, traitValue: p.sex };
    const plan = planCohort(withTrait).find((x) => x.index === p.index)!;
    expect(plan.traitApplied).toBe(true);
    const without = planCohort(OPTIONS).find((x) => x.index === p.index)!;
    expect(without.traitApplied).toBe(false);
    const a = buildModel(modelInput(OPTIONS, without, without.studies[0])).anatomy;
    const b = buildModel(modelInput(withTrait, plan, plan.studies[0])).anatomy;
    expect(b.fat / a.fat).toBeCloseTo(1.25, 9);
    expect(b.width / a.width).toBeCloseTo(1.04, 9);
    expect(b.depth).toBe(a.depth);
    expect(b.lungHeight).toBe(a.lungHeight);
  });
});

describe('labels', () => {
  const xml = (rel: string) =>
    new XMLParser({ ignoreAttributes: false, removeNSPrefix: true, parseTagValue: false, isArray: (n) => ['readingSession', 'unblindedReadNodule', 'roi', 'edgeMap'].includes(n) }).parse(
      readFileSync(join(out, rel), 'utf8'),
    ) as Record<string, any>;

  it('every nodule is 3-30 mm and lies on the slices around its centre', () => {
    let nodules = 0;
    for (const { s } of studies()) {
      for (const n of s.nodules) {
        nodules++;
        expect(n.diameterMm).toBeGreaterThanOrEqual(3);
        expect(n.diameterMm).toBeLessThanOrEqual(30);
        expect(n.slices.length).toBeGreaterThan(0);
        const zs = n.slices.map((x) => x.z);
        expect(Math.min(...zs)).toBeLessThanOrEqual(n.centre[2] + 1.25 + 1e-6);
        expect(Math.max(...zs)).toBeGreaterThanOrEqual(n.centre[2] - 1.25 - 1e-6);
        // The slices span at most the nodule's extent (spicules included) around the centre.
        const reach = Math.max(...n.axesMm) * (n.spicules ? 2.2 : 0.75) + 2.5;
        for (const z of zs) expect(Math.abs(z - n.centre[2])).toBeLessThanOrEqual(reach);
        for (const x of n.slices) expect(s.series.instances[x.index].sopInstanceUid).toBe(x.sopInstanceUid);
      }
    }
    expect(nodules).toBeGreaterThanOrEqual(3);
  });

  it('LIDC XML: namespace, header UIDs, 2-4 readers, ROIs on written slices at the right z', () => {
    for (const { s } of studies()) {
      const text = readFileSync(join(out, s.lidcXml), 'utf8');
      expect(text).toContain('<LidcReadMessage uid="');
      expect(text).toContain('xmlns="http://www.nih.gov"');
      const doc = xml(s.lidcXml).LidcReadMessage;
      expect(doc.ResponseHeader.SeriesInstanceUid).toBe(s.series.seriesInstanceUid);
      expect(doc.ResponseHeader.StudyInstanceUID).toBe(s.studyInstanceUid);
      const sessions = doc.readingSession as any[];
      expect(sessions.length).toBeGreaterThanOrEqual(2);
      expect(sessions.length).toBeLessThanOrEqual(4);
      const bySop = new Map(s.series.instances.map((i, k) => [i.sopInstanceUid, { ...i, k }]));
      const marked = new Set<string>();
      for (const rs of sessions) {
        for (const n of rs.unblindedReadNodule ?? []) {
          marked.add(`${rs.servicingRadiologistID}/${n.noduleID}`);
          if (n.characteristics) for (const k of ['subtlety', 'malignancy', 'texture', 'spiculation']) expect(Number(n.characteristics[k])).toBeGreaterThanOrEqual(1);
          for (const roi of n.roi) {
            const inst = bySop.get(roi.imageSOP_UID);
            expect(inst, roi.imageSOP_UID).toBeDefined();
            expect(Number(roi.imageZposition)).toBeCloseTo(inst!.imagePositionPatient[2], 4);
            expect(roi.inclusion).toBe('TRUE');
            const pts = (roi.edgeMap as any[]).map((e) => [Number(e.xCoord), Number(e.yCoord)]);
            for (const [x, y] of pts) {
              expect(x).toBeGreaterThanOrEqual(0);
              expect(y).toBeLessThan(128);
            }
            if (pts.length > 1) expect(pts[0]).toEqual(pts[pts.length - 1]);
          }
        }
      }
      // Every visible nodule is marked by at least one reader, on slices where the nodule is.
      for (const n of s.nodules.filter((x) => x.segmentNumber !== null)) {
        expect(n.readers.length).toBeGreaterThan(0);
        for (const r of n.readers) expect(marked.has(`${s.readers[r.reader - 1].radiologistId}/${r.noduleId}`)).toBe(true);
      }
    }
  });

  it('reader outlines follow the nodule: each ROI lies within the nodule reach of its centre', () => {
    for (const { s } of studies()) {
      const doc = xml(s.lidcXml).LidcReadMessage;
      const ps = s.series.pixelSpacing[0];
      const x0 = s.series.instances[0].imagePositionPatient[0];
      const y0 = s.series.instances[0].imagePositionPatient[1];
      const sessions = doc.readingSession as any[];
      s.readers.forEach((r, i) => {
        for (const n of sessions[i].unblindedReadNodule ?? []) {
          const truth = s.nodules.find((x) => x.readers.some((m) => m.reader === r.reader && m.noduleId === n.noduleID))!;
          expect(truth).toBeDefined();
          const reach = Math.max(...truth.axesMm) * (truth.spicules ? 2.2 : 0.75) + 2 * ps;
          for (const roi of n.roi)
            for (const e of roi.edgeMap) {
              const x = x0 + Number(e.xCoord) * ps;
              const y = y0 + Number(e.yCoord) * ps;
              const z = Number(roi.imageZposition);
              expect(Math.hypot(x - truth.centre[0], y - truth.centre[1], z - truth.centre[2])).toBeLessThanOrEqual(reach + 2.5);
            }
        }
      });
    }
  });

  it('DICOM SEG: parses with dcmjs, one segment per visible nodule, frames on the nodule slices with the manifest areas', () => {
    const { DicomMessage, DicomMetaDictionary } = dcmjs.data;
    let segs = 0;
    for (const { s } of studies()) {
      if (!s.seg) {
        expect(s.nodules.every((n) => n.segmentNumber === null)).toBe(true);
        continue;
      }
      segs++;
      const b = readFileSync(join(out, s.seg.file));
      const dict = DicomMessage.readFile(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
      const ds = DicomMetaDictionary.naturalizeDataset(dict.dict) as Record<string, any>;
      expect(ds.SOPClassUID).toBe('1.2.840.10008.5.1.4.1.1.66.4');
      expect(ds.SegmentationType).toBe('BINARY');
      expect(ds.FrameOfReferenceUID).toBe(s.series.frameOfReferenceUid);
      expect(ds.ReferencedSeriesSequence[0]?.SeriesInstanceUID ?? ds.ReferencedSeriesSequence.SeriesInstanceUID).toBe(s.series.seriesInstanceUid);
      const segments = Array.isArray(ds.SegmentSequence) ? ds.SegmentSequence : [ds.SegmentSequence];
      expect(segments).toHaveLength(s.seg.segments);
      const frames = Array.isArray(ds.PerFrameFunctionalGroupsSequence) ? ds.PerFrameFunctionalGroupsSequence : [ds.PerFrameFunctionalGroupsSequence];
      expect(Number(ds.NumberOfFrames)).toBe(frames.length);
      const pix = new Uint8Array(Array.isArray(ds.PixelData) ? ds.PixelData[0] : ds.PixelData);
      const n2 = 128 * 128;
      const bySop = new Map(s.series.instances.map((i, k) => [i.sopInstanceUid, k]));
      const one = (v: any) => (Array.isArray(v) ? v[0] : v);
      frames.forEach((fg: any, f: number) => {
        const seg = Number(one(fg.SegmentIdentificationSequence).ReferencedSegmentNumber);
        const sop = one(one(one(fg.DerivationImageSequence).SourceImageSequence)).ReferencedSOPInstanceUID;
        const k = bySop.get(sop);
        expect(k, sop).toBeDefined();
        const nodule = s.nodules.find((x) => x.segmentNumber === seg)!;
        const sl = nodule.slices.find((x) => x.index === k);
        expect(sl, `segment ${seg} on slice ${k}`).toBeDefined();
        let area = 0;
        for (let i = 0; i < n2; i++) {
          const bit = f * n2 + i;
          if ((pix[bit >> 3] >> (bit & 7)) & 1) area++;
        }
        expect(area).toBe(sl!.areaPx);
        expect(one(fg.PlanePositionSequence).ImagePositionPatient.map(Number)).toEqual(s.series.instances[k!].imagePositionPatient);
      });
      expect(frames.length).toBe(s.nodules.reduce((a, n) => a + n.slices.length, 0));
    }
    expect(segs).toBeGreaterThan(0);
  });

  it('RSNA train.csv: header, one row per image, pe_present_on_image exactly on the embolus slices, consistent exam columns', () => {
    const lines = readFileSync(join(out, 'train.csv'), 'utf8').trim().split('\n');
    expect(lines[0]).toBe(RSNA_HEADER);
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows).toHaveLength(96);
    const col = (name: string) => RSNA_HEADER.split(',').indexOf(name);
    let positives = 0;
    for (const { s } of studies()) {
      const mine = rows.filter((r) => r[1] === s.series.seriesInstanceUid);
      expect(mine).toHaveLength(32);
      const pe = new Set(s.pe.slices);
      s.series.instances.forEach((inst, k) => {
        const r = mine.find((x) => x[2] === inst.sopInstanceUid)!;
        expect(r[0]).toBe(s.studyInstanceUid);
        expect(r[col('pe_present_on_image')]).toBe(pe.has(k) ? '1' : '0');
      });
      // Slices listed for emboli are exactly the PE-positive slices.
      expect([...new Set(s.pe.emboli.flatMap((e) => e.slices))].sort((a, b) => a - b)).toEqual(s.pe.slices);
      const exam = mine[0];
      expect(mine.every((r) => r.slice(4).join() === exam.slice(4).join())).toBe(true);
      if (s.pe.present) {
        positives++;
        expect(exam[col('negative_exam_for_pe')]).toBe('0');
        expect(Number(exam[col('rv_lv_ratio_gte_1')]) + Number(exam[col('rv_lv_ratio_lt_1')])).toBe(1);
        expect(Number(exam[col('leftsided_pe')]) + Number(exam[col('rightsided_pe')]) + Number(exam[col('central_pe')])).toBeGreaterThan(0);
        expect(pe.size).toBeGreaterThan(0);
      } else {
        expect(exam.slice(4).join()).toBe('1,0,0,0,0,0,0,0,0,0,0,0,0');
        expect(pe.size).toBe(0);
      }
    }
    expect(positives).toBe(2);
  });

  it('the embolus pixels are filling defects: low HU inside contrast-filled arteries', () => {
    const plans = planCohort(OPTIONS);
    const noise = makeNoiseField(OPTIONS.seed, noiseFieldSize(OPTIONS.size));
    const emb: number[] = [];
    const art: number[] = [];
    for (const p of plans.filter((x) => x.studies[0].pe.present)) {
      generateStudy(OPTIONS, p, p.studies[0], noise, {
        writeSlice: () => {},
        onSlice: (_k, o) => {
          for (let i = 0; i < o.labels.length; i++) {
            if (o.labels[i] === T.EMBOLUS) emb.push(o.hu[i]);
            else if (o.labels[i] === T.BLOOD_RIGHT || o.labels[i] === T.PA_TREE) art.push(o.hu[i]);
          }
        },
      });
    }
    expect(emb.length).toBeGreaterThan(0);
    const m = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    expect(m(emb)).toBeLessThan(120);
    expect(m(art)).toBeGreaterThan(200);
  });

  it('exam labels: negative exams have only negative_exam_for_pe, positive ones one RV/LV column and a side', () => {
    expect(rsnaExam([], { rvStrain: true, chronic: true, acuteAndChronic: false })).toMatchObject({ negative_exam_for_pe: 1, rv_lv_ratio_gte_1: 0, chronic_pe: 0 });
    const e = rsnaExam([{ side: 'central', site: 'right-main' }], { rvStrain: false, chronic: false, acuteAndChronic: false });
    expect(e).toMatchObject({ negative_exam_for_pe: 0, rv_lv_ratio_lt_1: 1, rv_lv_ratio_gte_1: 0, central_pe: 1, rightsided_pe: 1, leftsided_pe: 0 });
  });

  it('the label importers read every label of the cohort (LIDC XML, RSNA CSV, DICOM SEG)', async () => {
    const { importLabels } = await import('../../../src/library/labels/label-import');
    const db: Database = openLibrary(join(tmp.dir, 'labels.sqlite'));
    try {
      await indexFolders(db, [join(out, 'dicom')]);
      for (const { s } of studies()) {
        const r = (await importLabels(db, join(out, s.lidcXml))) as any;
        expect(r.kind).toBe('lidc-xml');
        expect(r.seriesIndexed).toBe(true);
        expect(r.readers).toBe(s.readers.length);
        expect(r.unmatchedRois).toEqual([]);
        expect(r.matchedRois).toBe(r.rois);
        // Nodules outlined by at least one reader; those only marked as a point (< 3 mm) are grouped apart.
        expect(r.groupedNodules).toBe(s.nodules.filter((n) => n.readers.some((m) => !m.small)).length);
        expect(r.smallNodules).toBe(s.nodules.reduce((a, n) => a + n.readers.filter((m) => m.small).length, 0));
        if (s.seg) {
          const g = (await importLabels(db, join(out, s.seg.file))) as any;
          expect(g.kind).toBe('dicom-seg');
          expect(g.unmatchedFrames).toEqual([]);
          expect(g.matchedFrames).toBe(s.seg.frames);
        }
      }
      const c = (await importLabels(db, join(out, 'train.csv'))) as any;
      expect(c.kind).toBe('rsna-csv');
      expect(c.matchedRows).toBe(96);
      expect(c.unmatchedRows).toBe(0);
      expect(c.positiveImages).toBe(manifest.counts.peSlices);
    } finally {
      db.close();
    }
  });
});
