/**
 * A library at the paper's size without pixel files, for `npm run bench:index-scale` and for the
 * tests that pin its queries' plans (at a small size): synthetic DICOM headers (deterministic from
 * a seed) recorded through the indexer's own write path (src/library/indexing/index-records.ts:
 * the same statements, FileRecorder and transactions of `batchSize` files as `ctssl index`; the
 * headers are handed to it as if read ahead by the header worker), then the indexer's geometry pass.
 * So the schema, indexes, triggers and rows are those of a real library.
 *
 * The cohort: patients of one study each, each with a thin axial CT (0.625-1.25 mm, 100-300
 * slices, the series the paper's rule keeps), and often a thick 5 mm axial CT, a coronal reformat,
 * a PET series or a localizer (what it excludes), with realistic UIDs (about 60 characters),
 * kernels, body parts, manufacturers and patient identifiers. Plus the matching RSNA STR PE
 * `train.csv` (one row per instance, exam columns, grouped by exam as the real file is).
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { InstanceHeader } from '../src/core/dicom/header';
import { RSNA_COLUMNS, RSNA_HEADER } from '../src/core/synth/rsna';
import type { Database } from '../src/library/db/sqlite';
import { updateDirtyGeometry } from '../src/library/db/catalog';
import type { ReadResult } from '../src/library/indexing/file-header';
import type { ScannedFile } from '../src/library/indexing/folder-walk';
import { FileRecorder, statements } from '../src/library/indexing/index-records';

/** mulberry32: a small seeded PRNG, so that a size and seed always give the same library. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    digits: (n: number) => {
      let s = String(1 + Math.floor(next() * 9));
      while (s.length < n) s += String(Math.floor(next() * 10));
      return s;
    },
  };
}

const UID_ROOT = '1.2.826.0.1.3680043.10.1042';
const CT = '1.2.840.10008.5.1.4.1.1.2';
const PT = '1.2.840.10008.5.1.4.1.1.128';
const AXIAL = [1, 0, 0, 0, 1, 0];
const CORONAL = [1, 0, 0, 0, 0, -1];

type SeriesKind = 'thin' | 'thick' | 'coronal' | 'pet' | 'localizer';

/** What a series of the synthetic cohort is: the paper's rule keeps 'thin' only. */
interface SeriesPlan {
  kind: SeriesKind;
  uid: string;
  number: number;
  slices: number;
  thickness: number;
  spacing: number;
  modality: string;
  sopClass: string;
  description: string;
  kernel: string;
  size: number;
  pixel: number;
  orientation: number[];
  contrast: string;
}

export interface PatientPlan {
  index: number;
  patientId: string;
  patientName: string;
  sex: string;
  birthDate: string;
  age: string;
  studyUid: string;
  studyDate: string;
  accession: string;
  manufacturer: [string, string];
  series: SeriesPlan[];
}

const MANUFACTURERS: [string, string][] = [
  ['SIEMENS', 'SOMATOM Definition AS+'],
  ['GE MEDICAL SYSTEMS', 'LightSpeed VCT'],
  ['Philips', 'Brilliance 64'],
  ['TOSHIBA', 'Aquilion ONE'],
];
const KERNELS: Record<string, string[]> = {
  SIEMENS: ['B30f', 'B70f', 'I30f\\3', 'B45f'],
  'GE MEDICAL SYSTEMS': ['STANDARD', 'LUNG', 'BONE', 'SOFT'],
  Philips: ['B', 'C', 'L', 'YA'],
  TOSHIBA: ['FC07', 'FC51', 'FC18', 'FC03'],
};
const SURNAMES = ['SMITH', 'GARCIA', 'MUELLER', 'NGUYEN', 'ROSSI', 'KOWALSKI', 'TANAKA', 'OKAFOR', 'SILVA', 'DUBOIS'];
const GIVEN = ['ANNA', 'JOHN', 'MARIA', 'WEI', 'FATIMA', 'LUCA', 'SOFIA', 'PETER', 'AMARA', 'JOSE'];

function seriesPlans(r: ReturnType<typeof prng>, studyUid: string, manufacturer: string): SeriesPlan[] {
  const uid = (n: number) => `${studyUid.slice(0, 46)}.${n}.${r.digits(10)}`;
  const kernel = () => r.pick(KERNELS[manufacturer]);
  const contrast = r.next() < 0.4 ? 'OMNIPAQUE 350' : '';
  const thin = r.pick([0.625, 1, 1.25]);
  const out: SeriesPlan[] = [
    {
      kind: 'thin',
      uid: uid(2),
      number: 2,
      slices: r.int(100, 300),
      thickness: thin,
      spacing: thin,
      modality: 'CT',
      sopClass: CT,
      description: r.pick(['CHEST W/O', 'CT CHEST LUNG', 'Thorax 1.0 B70f', 'CTA CHEST PE']),
      kernel: kernel(),
      size: 512,
      pixel: Math.round((0.6 + r.next() * 0.25) * 1000) / 1000,
      orientation: AXIAL,
      contrast,
    },
  ];
  // A second series for about half the studies, a third (a localizer) for some.
  const second = r.next();
  if (second < 0.25) out.push({ ...out[0], kind: 'thick', uid: uid(3), number: 3, slices: r.int(40, 70), thickness: 5, spacing: 5, description: 'CHEST 5mm', kernel: kernel() });
  else if (second < 0.35)
    out.push({ ...out[0], kind: 'coronal', uid: uid(4), number: 4, slices: r.int(80, 150), thickness: 2, spacing: 2, description: 'COR MPR 2mm', orientation: CORONAL });
  else if (second < 0.45)
    out.push({ ...out[0], kind: 'pet', uid: uid(5), number: 5, slices: r.int(100, 200), thickness: 3.27, spacing: 3.27, modality: 'PT', sopClass: PT, description: 'PET WB AC', kernel: '', size: 128, pixel: 4.07, contrast: '' });
  if (r.next() < 0.3)
    out.unshift({ ...out[0], kind: 'localizer', uid: uid(1), number: 1, slices: r.int(1, 2), thickness: 1, spacing: 1, description: 'Topogram', kernel: 'T20s', orientation: CORONAL });
  return out;
}

function patientPlan(r: ReturnType<typeof prng>, index: number): PatientPlan {
  const m = r.pick(MANUFACTURERS);
  const year = r.int(2003, 2020);
  const birth = year - r.int(25, 85);
  const studyUid = `${UID_ROOT}.${100000 + index}.${r.digits(18)}`;
  return {
    index,
    patientId: `SCALE-${String(index).padStart(6, '0')}`,
    patientName: `${r.pick(SURNAMES)}^${r.pick(GIVEN)}`,
    sex: r.pick(['M', 'F']),
    birthDate: `${birth}0${r.int(1, 9)}1${r.int(0, 9)}`,
    age: `0${year - birth}Y`,
    studyUid,
    studyDate: `${year}0${r.int(1, 9)}${r.int(10, 28)}`,
    accession: r.digits(10),
    manufacturer: m,
    series: seriesPlans(r, studyUid, m[0]),
  };
}

/** The patients of a library of (at least) `instances` instances; the last series is cut so the total is exact. */
export function* cohortPlan(instances: number, seed = 1): Generator<PatientPlan> {
  const r = prng(seed);
  let total = 0;
  for (let i = 0; total < instances; i++) {
    const p = patientPlan(r, i);
    const kept: SeriesPlan[] = [];
    for (const s of p.series) {
      if (total >= instances) break;
      const slices = Math.min(s.slices, instances - total);
      kept.push({ ...s, slices });
      total += slices;
    }
    yield { ...p, series: kept };
  }
}

export const sopUid = (s: { uid: string }, k: number) => `${s.uid}.${k + 1}`;

/** The header of slice `k` of a series of the cohort, as the header reader would give it. */
export function instanceHeader(p: PatientPlan, s: PatientPlan['series'][number], k: number): InstanceHeader {
  const z = s.orientation === AXIAL ? -40 - k * s.spacing : 0;
  const y = s.orientation === AXIAL ? 0 : 120 - k * s.spacing;
  return {
    sopInstanceUid: sopUid(s, k),
    sopClassUid: s.sopClass,
    studyInstanceUid: p.studyUid,
    seriesInstanceUid: s.uid,
    frameOfReferenceUid: `${p.studyUid}.9`,
    patientId: p.patientId,
    patientNameHash: '',
    patientSex: p.sex,
    patientAge: p.age,
    patientBirthDate: p.birthDate,
    ethnicGroup: '',
    studyDate: p.studyDate,
    studyTime: '101530',
    studyId: String(p.index),
    studyDescription: 'CT CHEST',
    seriesDate: p.studyDate,
    seriesTime: '102000',
    seriesNumber: s.number,
    seriesDescription: s.description,
    modality: s.modality,
    bodyPart: s.modality === 'PT' ? 'WHOLEBODY' : 'CHEST',
    manufacturer: p.manufacturer[0],
    model: p.manufacturer[1],
    contrastAgent: s.contrast,
    kernel: s.kernel,
    imageType: s.kind === 'localizer' ? 'ORIGINAL\\PRIMARY\\LOCALIZER' : s.kind === 'coronal' ? 'DERIVED\\SECONDARY\\MPR' : 'ORIGINAL\\PRIMARY\\AXIAL',
    instanceNumber: k + 1,
    acquisitionNumber: 1,
    acquisitionTime: '102015.123456',
    rows: s.size,
    columns: s.size,
    pixelSpacing: [s.pixel, s.pixel],
    sliceThickness: s.thickness,
    spacingBetweenSlices: null,
    imagePosition: [-180.5, s.orientation === AXIAL ? -170.25 : y, s.orientation === AXIAL ? Math.round(z * 1000) / 1000 : 150],
    imageOrientation: s.orientation,
    sliceLocation: s.orientation === AXIAL ? z : null,
    gantryTilt: 0,
    rescaleSlope: 1,
    rescaleIntercept: s.modality === 'PT' ? 0 : -1024,
    rescaleType: s.modality === 'PT' ? 'BQML' : 'HU',
    bitsAllocated: 16,
    bitsStored: s.modality === 'PT' ? 16 : 12,
    highBit: s.modality === 'PT' ? 15 : 11,
    pixelRepresentation: 0,
    photometric: 'MONOCHROME2',
    samplesPerPixel: 1,
    planarConfiguration: null,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    numberOfFrames: 1,
    pixelPaddingValue: s.modality === 'PT' ? null : -2000,
    pixelPaddingRangeLimit: null,
    windowCenter: s.modality === 'PT' ? null : -600,
    windowWidth: s.modality === 'PT' ? null : 1500,
    hasPixelData: true,
    pixelDataOffset: 1500,
    pixelDataLength: s.size * s.size * 2,
    framePositions: null,
    identifiers: [
      { kind: 'patient-name', value: p.patientName },
      { kind: 'patient-id', value: p.patientId },
      { kind: 'accession', value: p.accession },
      { kind: 'institution', value: 'GENERAL HOSPITAL' },
      { kind: 'study-date', value: p.studyDate },
      { kind: 'birth-date', value: p.birthDate },
      { kind: 'uid', value: p.studyUid },
      { kind: 'uid', value: s.uid },
    ],
    warnings: [],
  };
}

export interface BuildResult {
  instances: number;
  series: number;
  patients: number;
  /** Series the paper's rule keeps (thin axial CT). */
  paperSeries: number;
  skipped: number;
  recordSeconds: number;
  geometrySeconds: number;
}

/**
 * Records the synthetic cohort into an open library (fresh, migrated) under `folder` (its paths
 * need not exist: the headers are given, nothing is read), `batchSize` files per transaction as
 * the indexer does; then the indexer's geometry pass. `onProgress` gets the instances so far.
 */
export function buildLibrary(db: Database, o: { instances: number; folder: string; seed?: number; batchSize?: number; onProgress?: (n: number) => void }): BuildResult {
  const t0 = performance.now();
  const s = statements(db);
  const folderId = (s.upsertFolder.get(o.folder, new Date().toISOString()) as { id: number }).id;
  const recorder = new FileRecorder(s, Date.now(), 64 * 1024);
  const batchSize = o.batchSize ?? 500;
  const write = db.transaction((files: ScannedFile[], read: Map<string, ReadResult>) => {
    for (const f of files) recorder.record(f, folderId, read);
  });
  let files: ScannedFile[] = [];
  let read = new Map<string, ReadResult>();
  const flush = () => {
    write(files, read);
    files = [];
    read = new Map();
  };
  let n = 0;
  let series = 0;
  let patients = 0;
  let paperSeries = 0;
  const mtimeMs = Date.UTC(2026, 0, 1);
  for (const p of cohortPlan(o.instances, o.seed ?? 1)) {
    patients++;
    for (const se of p.series) {
      series++;
      if (se.kind === 'thin') paperSeries++;
      const dir = join(o.folder, p.patientId, `${p.studyDate}-CT`, `${se.number}-${se.description.replace(/[^\w]+/g, '_')}`);
      for (let k = 0; k < se.slices; k++) {
        const path = join(dir, `IM-${String(k + 1).padStart(4, '0')}.dcm`);
        files.push({ path, size: 525_000, mtimeMs });
        read.set(path, { header: instanceHeader(p, se, k) });
        if (files.length >= batchSize) flush();
        if ((++n & 16383) === 0) o.onProgress?.(n);
      }
    }
  }
  if (files.length) flush();
  const t1 = performance.now();
  updateDirtyGeometry(db);
  const t2 = performance.now();
  return { instances: n, series, patients, paperSeries, skipped: recorder.skipped, recordSeconds: (t1 - t0) / 1000, geometrySeconds: (t2 - t1) / 1000 };
}

/** The exam-level columns of the RSNA file, after the image columns (the column list of src/core/synth/rsna.ts). */
const RSNA_EXAM_COLUMNS = RSNA_COLUMNS.slice(4);

/**
 * Writes an RSNA STR PE `train.csv` for the cohort: one row per instance (the real file's columns
 * and order: StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, pe_present_on_image, then the
 * exam columns), the rows of an exam adjacent, its slices in a shuffled order as in the real file.
 * Returns the rows and bytes written.
 */
export async function writeRsnaCsv(path: string, o: { instances: number; seed?: number }): Promise<{ rows: number; bytes: number }> {
  const out = createWriteStream(path);
  let bytes = 0;
  let chunk = '';
  const put = async (s: string) => {
    chunk += s;
    if (chunk.length >= 1 << 20) {
      bytes += Buffer.byteLength(chunk);
      if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
      chunk = '';
    }
  };
  await put(RSNA_HEADER + '\n');
  const r = prng((o.seed ?? 1) + 7919);
  let rows = 0;
  for (const p of cohortPlan(o.instances, o.seed ?? 1)) {
    for (const s of p.series) {
      const positive = r.next() < 0.3;
      const exam = RSNA_EXAM_COLUMNS.map((c) => (c === 'negative_exam_for_pe' ? (positive ? 0 : 1) : positive && r.next() < 0.3 ? 1 : 0)).join(',');
      const order = Array.from({ length: s.slices }, (_, k) => k);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(r.next() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      const lo = Math.floor(s.slices * 0.4);
      const hi = Math.floor(s.slices * 0.6);
      for (const k of order) {
        await put(`${p.studyUid},${s.uid},${sopUid(s, k)},${positive && k >= lo && k < hi ? 1 : 0},${exam}\n`);
        rows++;
      }
    }
  }
  bytes += Buffer.byteLength(chunk);
  out.write(chunk);
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
  return { rows, bytes };
}
