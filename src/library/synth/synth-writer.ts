/**
 * Writes a synthetic chest CT cohort to disk: DICOM series, one LIDC XML and one DICOM SEG per
 * series, an RSNA-style train.csv and manifest.json at the root. Patients are independent and
 * seeded by number, so they are spread over worker threads and the files are byte-identical
 * whatever the number of workers.
 *
 * Layout under the output folder:
 *   manifest.json            every patient, study, series, nodule and embolus (ground truth)
 *   train.csv                RSNA STR PE 2020 columns, one row per CT image
 *   dicom/<PatientID>/study-<n>/ct/IM0001.dcm ...   CT Image Storage, explicit VR little endian
 *   lidc/<PatientID>_study-<n>.xml                   LIDC-IDRI reader outlines (LidcReadMessage)
 *   seg/<PatientID>_study-<n>_seg.dcm                DICOM SEG (BINARY), one segment per nodule
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isMainThread, parentPort, type Worker, workerData } from 'node:worker_threads';
import { spawnWorker } from '../../platform/ts-worker';
import dcmjs from 'dcmjs';
import { CT_IMAGE_STORAGE, IMPLEMENTATION_UID, IMPLEMENTATION_VERSION } from '../../core/synth/dicom';
import { makeNoiseField, type NoiseField, noiseFieldSize } from '../../core/synth/noise';
import { effectiveTraitValue, planCohort, type PatientPlan, type StudyPlan, type SynthOptions, traitEffect } from '../../core/synth/plan';
import { RSNA_HEADER } from '../../core/synth/rsna';
import { generateStudy, type SegSpec, type StudyManifest } from '../../core/synth/study';

const { DicomMetaDictionary, DicomDict } = dcmjs.data;
export const SEG_STORAGE = '1.2.840.10008.5.1.4.1.1.66.4';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

export interface PatientManifest {
  index: number;
  patientId: string;
  patientName: string;
  sex: string;
  birthDate: string;
  ethnicGroup: string;
  traitApplied: boolean;
  studies: StudyManifest[];
}

export interface CohortManifest {
  generator: string;
  format: number;
  options: SynthOptions;
  trait: { attribute: string; value: string; strength: number; effect: { fatScale: number; widthScale: number } | null };
  layout: Record<string, string>;
  counts: { patients: number; studies: number; series: number; ctFiles: number; nodules: number; peStudies: number; peSlices: number; segFiles: number };
  patients: PatientManifest[];
}

export interface SynthSummary {
  out: string;
  patients: number;
  studies: number;
  ctFiles: number;
  files: number;
  nodules: number;
  peStudies: number;
  peSlices: number;
  seconds: number;
  filesPerSecond: number;
  jobs: number;
  manifest: string;
  csv: string;
}

export interface WriteCohortOptions {
  /** Worker threads (default: 1 for fewer than 4 patients, else one per core, at most 4). */
  jobs?: number;
  /** Replace the generated parts of a previous cohort in the same folder. */
  overwrite?: boolean;
  onProgress?: (patientsDone: number, patients: number) => void;
  signal?: AbortSignal;
}

interface PatientResult {
  manifest: PatientManifest;
  csvRows: string[];
  files: number;
  ctFiles: number;
}

const GENERATED = ['dicom', 'lidc', 'seg', 'train.csv', 'manifest.json'];

/** Builds and writes the DICOM SEG of one series with dcmjs (deterministic: UIDs and dates from the plan). */
export function writeSeg(path: string, spec: SegSpec, p: PatientPlan, s: StudyPlan): void {
  const n = spec.rows * spec.columns;
  const bits = new Uint8Array(Math.ceil((spec.frames.length * n) / 8));
  spec.frames.forEach((f, k) => {
    const base = k * n;
    for (let i = 0; i < n; i++) if (f.mask[i]) bits[(base + i) >> 3] |= 1 << ((base + i) & 7);
  });
  const code = (CodeValue: string, CodingSchemeDesignator: string, CodeMeaning: string) => ({ CodeValue, CodingSchemeDesignator, CodeMeaning });
  const dimOrg = s.segInstanceUid + '.1';
  const dataset: Record<string, unknown> = {
    _vrMap: { PixelData: 'OB' },
    SpecificCharacterSet: 'ISO_IR 100',
    ImageType: ['DERIVED', 'PRIMARY'],
    SOPClassUID: SEG_STORAGE,
    SOPInstanceUID: s.segInstanceUid,
    StudyDate: s.studyDate,
    SeriesDate: s.studyDate,
    ContentDate: s.studyDate,
    StudyTime: s.studyTime,
    SeriesTime: s.studyTime,
    ContentTime: s.studyTime,
    AccessionNumber: s.accession,
    Modality: 'SEG',
    Manufacturer: 'CT SSL Studio',
    ReferringPhysicianName: '',
    SeriesDescription: 'Nodules (ground truth, synthetic)',
    ManufacturerModelName: 'ctssl synth',
    PatientName: p.patientName,
    PatientID: p.patientId,
    PatientBirthDate: p.birthDate,
    PatientSex: p.sex,
    PatientAge: `${String(s.age).padStart(3, '0')}Y`,
    EthnicGroup: p.ethnicGroup,
    DeviceSerialNumber: '1',
    SoftwareVersions: 'ctssl synth 1',
    StudyInstanceUID: s.studyUid,
    SeriesInstanceUID: s.segSeriesUid,
    StudyID: s.studyId,
    SeriesNumber: 100,
    InstanceNumber: 1,
    FrameOfReferenceUID: s.frameOfReferenceUid,
    PositionReferenceIndicator: '',
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimOrg }],
    DimensionOrganizationType: '3D',
    DimensionIndexSequence: [
      { DimensionOrganizationUID: dimOrg, DimensionIndexPointer: 0x0062000b, FunctionalGroupPointer: 0x0062000a, DimensionDescriptionLabel: 'ReferencedSegmentNumber' },
      { DimensionOrganizationUID: dimOrg, DimensionIndexPointer: 0x00200032, FunctionalGroupPointer: 0x00209113, DimensionDescriptionLabel: 'ImagePositionPatient' },
    ],
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    NumberOfFrames: spec.frames.length,
    Rows: spec.rows,
    Columns: spec.columns,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    SegmentationType: 'BINARY',
    ContentLabel: 'NODULES',
    ContentDescription: 'Synthetic nodules, true masks from the generator',
    ContentCreatorName: 'ctssl^synth',
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: s.seriesUid,
        ReferencedInstanceSequence: spec.sources.map((src) => ({ ReferencedSOPClassUID: CT_IMAGE_STORAGE, ReferencedSOPInstanceUID: src.sopInstanceUid })),
      },
    ],
    SegmentSequence: spec.segments.map((sg) => ({
      SegmentNumber: sg.number,
      SegmentLabel: sg.label,
      SegmentDescription: sg.description,
      SegmentAlgorithmType: 'AUTOMATIC',
      SegmentAlgorithmName: 'ctssl synth',
      SegmentedPropertyCategoryCodeSequence: [code('49755003', 'SCT', 'Morphologically Abnormal Structure')],
      SegmentedPropertyTypeCodeSequence: [code('27925004', 'SCT', 'Nodule')],
      AnatomicRegionSequence: [code('39607008', 'SCT', 'Lung')],
    })),
    SharedFunctionalGroupsSequence: [
      {
        PlaneOrientationSequence: [{ ImageOrientationPatient: [1, 0, 0, 0, 1, 0] }],
        PixelMeasuresSequence: [{ PixelSpacing: [spec.pixelSpacing, spec.pixelSpacing], SliceThickness: spec.sliceThickness, SpacingBetweenSlices: spec.sliceThickness }],
      },
    ],
    PerFrameFunctionalGroupsSequence: spec.frames.map((f) => ({
      DerivationImageSequence: [
        {
          SourceImageSequence: [
            {
              ReferencedSOPClassUID: CT_IMAGE_STORAGE,
              ReferencedSOPInstanceUID: spec.sources[f.slice].sopInstanceUid,
              PurposeOfReferenceCodeSequence: [code('121322', 'DCM', 'Source image for image processing operation')],
            },
          ],
          DerivationCodeSequence: [code('113076', 'DCM', 'Segmentation')],
        },
      ],
      FrameContentSequence: [{ DimensionIndexValues: [f.segment, f.slice + 1] }],
      PlanePositionSequence: [{ ImagePositionPatient: spec.sources[f.slice].position }],
      SegmentIdentificationSequence: [{ ReferencedSegmentNumber: f.segment }],
    })),
    PixelData: [bits.buffer],
  };
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: SEG_STORAGE,
    MediaStorageSOPInstanceUID: s.segInstanceUid,
    TransferSyntaxUID: EXPLICIT_LE,
    ImplementationClassUID: IMPLEMENTATION_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION,
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  writeFileSync(path, new Uint8Array(dict.write()));
}

/** Generates and writes every study of one patient. */
function writePatient(o: SynthOptions, root: string, p: PatientPlan, noise: NoiseField): PatientResult {
  const made = new Set<string>();
  const write = (rel: string, bytes: Uint8Array | string) => {
    const abs = join(root, rel);
    const dir = dirname(abs);
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    writeFileSync(abs, bytes);
  };
  const studies: StudyManifest[] = [];
  const csvRows: string[] = [];
  let files = 0;
  let ctFiles = 0;
  for (const s of p.studies) {
    const r = generateStudy(o, p, s, noise, { writeSlice: (rel, bytes) => write(rel, bytes) });
    ctFiles += r.files.length;
    files += r.files.length;
    write(r.lidc.file, r.lidc.xml);
    files++;
    if (r.seg) {
      const abs = join(root, r.seg.file);
      if (!made.has(dirname(abs))) {
        mkdirSync(dirname(abs), { recursive: true });
        made.add(dirname(abs));
      }
      writeSeg(abs, r.seg, p, s);
      files++;
    }
    studies.push(r.manifest);
    csvRows.push(...r.csvRows);
  }
  return {
    manifest: { index: p.index, patientId: p.patientId, patientName: p.patientName, sex: p.sex, birthDate: p.birthDate, ethnicGroup: p.ethnicGroup, traitApplied: p.traitApplied, studies },
    csvRows,
    files,
    ctFiles,
  };
}

function prepareOut(out: string, overwrite: boolean): void {
  if (existsSync(out)) {
    const entries = readdirSync(out);
    if (entries.length > 0) {
      const ours = existsSync(join(out, 'manifest.json')) && readFileSync(join(out, 'manifest.json'), 'utf8').includes('"generator": "ctssl synth"');
      if (!overwrite || !ours) {
        throw new Error(
          ours
            ? `${out} already holds a synthetic cohort: pass --overwrite to replace it`
            : `${out} is not empty and holds no cohort written by ctssl synth: choose an empty or new folder`,
        );
      }
      for (const name of GENERATED) rmSync(join(out, name), { recursive: true, force: true });
    }
  }
  mkdirSync(out, { recursive: true });
}

/**
 * A worker thread running this module. When it is TypeScript (run through tsx), the worker first
 * registers tsx's loader, then imports the module; compiled JavaScript is imported directly.
 */
function spawnSelf(job: WorkerJob): Worker {
  return spawnWorker(new URL(import.meta.url), job);
}

interface WorkerJob {
  ctsslSynth: true;
  options: SynthOptions;
  root: string;
  patients: number[];
}

/** Runs in a worker thread: generates the given patients and posts each result. */
function workerMain(job: WorkerJob): void {
  const plans = planCohort(job.options);
  const noise = makeNoiseField(job.options.seed, noiseFieldSize(job.options.size));
  for (const i of job.patients) {
    const r = writePatient(job.options, job.root, plans[i], noise);
    parentPort!.postMessage({ kind: 'patient', index: i, result: r });
  }
  parentPort!.postMessage({ kind: 'done' });
}

if (!isMainThread && (workerData as WorkerJob | undefined)?.ctsslSynth) workerMain(workerData as WorkerJob);

export async function writeCohort(options: SynthOptions, outDir: string, w: WriteCohortOptions = {}): Promise<SynthSummary> {
  const t0 = performance.now();
  const root = resolve(outDir);
  const plans = planCohort(options);
  prepareOut(root, !!w.overwrite);
  const jobs = Math.max(1, Math.min(w.jobs ?? (plans.length < 4 ? 1 : Math.min(4, availableParallelism())), plans.length));
  const results: PatientResult[] = new Array(plans.length);
  let done = 0;
  const progress = () => w.onProgress?.(done, plans.length);
  if (jobs === 1) {
    const noise = makeNoiseField(options.seed, noiseFieldSize(options.size));
    for (let i = 0; i < plans.length; i++) {
      if (w.signal?.aborted) throw new Error('cancelled');
      results[i] = writePatient(options, root, plans[i], noise);
      done++;
      progress();
      await new Promise((r) => setImmediate(r));
    }
  } else {
    const workers: Worker[] = [];
    await Promise.all(
      Array.from({ length: jobs }, (_, j) => {
        const patients = plans.map((_, i) => i).filter((i) => i % jobs === j);
        return new Promise<void>((res, rej) => {
          const worker = spawnSelf({ ctsslSynth: true, options, root, patients });
          workers.push(worker);
          const onAbort = () => {
            for (const x of workers) void x.terminate();
            rej(new Error('cancelled'));
          };
          w.signal?.addEventListener('abort', onAbort, { once: true });
          worker.on('message', (m: { kind: string; index: number; result: PatientResult }) => {
            if (m.kind === 'patient') {
              results[m.index] = m.result;
              done++;
              progress();
            } else if (m.kind === 'done') {
              w.signal?.removeEventListener('abort', onAbort);
              res();
            }
          });
          worker.on('error', (e) => {
            w.signal?.removeEventListener('abort', onAbort);
            for (const x of workers) void x.terminate();
            rej(e);
          });
          worker.on('exit', (code) => {
            if (code !== 0) rej(new Error(`synth worker exited with code ${code}`));
          });
        });
      }),
    );
  }
  const csv = [RSNA_HEADER, ...results.flatMap((r) => r.csvRows)].join('\n') + '\n';
  writeFileSync(join(root, 'train.csv'), csv);
  const patients = results.map((r) => r.manifest);
  const studies = patients.flatMap((p) => p.studies);
  const traitValue = effectiveTraitValue(options);
  const manifest: CohortManifest = {
    generator: 'ctssl synth',
    format: 1,
    options,
    trait: {
      attribute: options.trait,
      value: traitValue,
      strength: options.traitStrength,
      effect: options.trait === 'none' ? null : traitEffect(options.traitStrength),
    },
    layout: {
      'manifest.json': 'this file: ground truth for every patient, study, series, nodule and embolus',
      'train.csv': 'RSNA STR PE 2020 train.csv columns, one row per CT image',
      'dicom/<PatientID>/study-<n>/ct/IM<k>.dcm': 'CT Image Storage, explicit VR little endian, int16, RescaleIntercept -1024, slope 1; IM0001 is the most superior slice',
      'lidc/<PatientID>_study-<n>.xml': 'LIDC-IDRI LidcReadMessage with 1-4 simulated readers',
      'seg/<PatientID>_study-<n>_seg.dcm': 'DICOM SEG (BINARY), one segment per visible nodule, true masks',
    },
    counts: {
      patients: patients.length,
      studies: studies.length,
      series: studies.length,
      ctFiles: results.reduce((a, r) => a + r.ctFiles, 0),
      nodules: studies.reduce((a, s) => a + s.nodules.length, 0),
      peStudies: studies.filter((s) => s.pe.present).length,
      peSlices: studies.reduce((a, s) => a + s.pe.slices.length, 0),
      segFiles: studies.filter((s) => s.seg).length,
    },
    patients,
  };
  writeFileSync(join(root, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  const seconds = (performance.now() - t0) / 1000;
  const files = results.reduce((a, r) => a + r.files, 0) + 2;
  return {
    out: root,
    patients: patients.length,
    studies: studies.length,
    ctFiles: manifest.counts.ctFiles,
    files,
    nodules: manifest.counts.nodules,
    peStudies: manifest.counts.peStudies,
    peSlices: manifest.counts.peSlices,
    seconds: Math.round(seconds * 100) / 100,
    filesPerSecond: Math.round(files / seconds),
    jobs,
    manifest: join(root, 'manifest.json'),
    csv: join(root, 'train.csv'),
  };
}
