/**
 * `npm run bench:synth`: time to write a 100-patient synthetic cohort (64 slices of 256 x 256 per
 * series) with `ctssl synth`'s writer, with the default worker count and with one thread, and the
 * cost of encoding one CT slice with our Part 10 writer against dcmjs. Writes the "Synthetic cohort
 * generation" section of docs/benchmarks.md. Target: under a minute on this 2-core machine.
 *
 * Options: --patients N (default 100), --skip-single (skip the one-thread run).
 * The cohort goes to bench/.work/synth (deleted afterwards).
 */
import { rmSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import { writeCohort } from '../src/library/synth/synth-writer';
import { CT_IMAGE_STORAGE, encodeCtSlice, EXPLICIT_VR_LE, type CtSliceHeader } from '../src/core/synth/dicom';
import { defaultOptions } from '../src/core/synth/plan';
import { root, replaceSection } from './common';

const args = process.argv.slice(2);
const patients = Number(args[args.indexOf('--patients') + 1]) || 100;
const skipSingle = args.includes('--skip-single');
const out = join(root, 'bench', '.work', 'synth');
const options = defaultOptions(patients, 1);

async function run(jobs: number | undefined) {
  rmSync(out, { recursive: true, force: true });
  const load = loadavg()[0];
  const s = await writeCohort(options, out, { jobs, onProgress: (d, n) => d % 10 === 0 && process.stderr.write(`${d}/${n} patients\n`) });
  const cpu = process.cpuUsage();
  return { ...s, loadBefore: load, cpu };
}

/** ms per slice to encode a 256 x 256 CT slice: ours, and dcmjs from a naturalized dataset. */
function encoders() {
  const n = 256;
  const pixels = new Int16Array(n * n);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919) % 2000;
  const h: CtSliceHeader = {
    patientName: 'SYNTHETIC^0001', patientId: 'SYN1-0001', birthDate: '19600101', sex: 'F', age: '060Y', ethnicGroup: 'GROUP A',
    studyUid: '2.25.1', seriesUid: '2.25.2', frameOfReferenceUid: '2.25.3', sopUid: '2.25.4', studyDate: '20200101', studyTime: '101010',
    seriesTime: '101010', accession: 'A1', studyId: '1', studyDescription: 'CT', seriesDescription: 'AXIAL', seriesNumber: 2, instanceNumber: 1,
    contrast: true, rows: n, columns: n, pixelSpacing: 1.40625, sliceThickness: 2.5, position: [-179.3, -160.2, -23.5], reconstructionDiameter: 360,
    softwareVersion: 'ctssl synth 1',
  };
  const reps = 400;
  let t = performance.now();
  for (let i = 0; i < reps; i++) encodeCtSlice({ ...h, instanceNumber: i + 1 }, pixels, true);
  const ours = (performance.now() - t) / reps;
  const { DicomMetaDictionary, DicomDict } = dcmjs.data;
  t = performance.now();
  for (let i = 0; i < reps; i++) {
    const meta = {
      FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
      MediaStorageSOPClassUID: CT_IMAGE_STORAGE,
      MediaStorageSOPInstanceUID: h.sopUid,
      TransferSyntaxUID: EXPLICIT_VR_LE,
      ImplementationClassUID: '2.25.5',
    };
    const ds = {
      _vrMap: { PixelData: 'OW' },
      SOPClassUID: CT_IMAGE_STORAGE, SOPInstanceUID: h.sopUid, StudyDate: h.studyDate, Modality: 'CT', PatientName: h.patientName, PatientID: h.patientId,
      PatientBirthDate: h.birthDate, PatientSex: h.sex, PatientAge: h.age, EthnicGroup: h.ethnicGroup, SliceThickness: 2.5, StudyInstanceUID: h.studyUid,
      SeriesInstanceUID: h.seriesUid, InstanceNumber: i + 1, ImagePositionPatient: h.position, ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
      FrameOfReferenceUID: h.frameOfReferenceUid, SamplesPerPixel: 1, PhotometricInterpretation: 'MONOCHROME2', Rows: n, Columns: n,
      PixelSpacing: [h.pixelSpacing, h.pixelSpacing], BitsAllocated: 16, BitsStored: 16, HighBit: 15, PixelRepresentation: 1,
      RescaleIntercept: -1024, RescaleSlope: 1, PixelData: [pixels.slice().buffer],
    };
    const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
    dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
    dict.write();
  }
  const viaDcmjs = (performance.now() - t) / reps;
  return { ours, viaDcmjs };
}

const enc = encoders();
console.log(`encode one 256x256 CT slice: ours ${enc.ours.toFixed(3)} ms, dcmjs ${enc.viaDcmjs.toFixed(3)} ms`);
const multi = await run(undefined);
console.log(`${patients} patients, ${multi.jobs} workers: ${multi.seconds} s, ${multi.filesPerSecond} files/s`);
const single = skipSingle ? null : await run(1);
if (single) console.log(`${patients} patients, 1 thread: ${single.seconds} s, ${single.filesPerSecond} files/s`);
rmSync(out, { recursive: true, force: true });

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const row = (label: string, r: typeof multi) =>
  `| ${label} | ${r.patients} | ${r.ctFiles} | ${r.files} | ${r.seconds} | ${r.filesPerSecond} | ${r.loadBefore.toFixed(1)} |`;
const lines = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} x ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}. Command: \`npm run bench:synth\`.`,
  '',
  `Cohort: \`ctssl synth --patients ${patients} --seed 1\` defaults: 64 slices of 256 x 256 at 2.5 mm, 0-3 nodules per patient, PE in half the studies, 1-4 readers. Files: CT slices plus one LIDC XML and (when a nodule shows) one DICOM SEG per series, train.csv and manifest.json. Target: under 60 s.`,
  '',
  '| run | patients | CT files | all files | seconds | files/s | load average before |',
  '|---|---|---|---|---|---|---|',
  row(`${multi.jobs} worker threads (default)`, multi),
  ...(single ? [row('1 thread', single)] : []),
  '',
  `Encoding one 256 x 256 CT slice (header and pixels, explicit VR little endian): our writer (src/core/synth/dicom.ts) ${enc.ours.toFixed(3)} ms, dcmjs 0.52 from a naturalized dataset ${enc.viaDcmjs.toFixed(3)} ms. The SEG objects use dcmjs.`,
  '',
  'The load average is that of the whole machine just before the run: other jobs running at the same time slow the cohort down.',
];
replaceSection('Synthetic cohort generation', lines.join('\n'));
console.log('docs/benchmarks.md: "Synthetic cohort generation" updated');
