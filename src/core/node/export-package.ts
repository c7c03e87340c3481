/**
 * Sharing weights: one file (a zip) that a colleague imports into their copy of the app, or loads
 * from Python, knowing what it was trained on, how, and how well, with no patient data inside.
 *
 *   README.md                     how to load it (TensorFlow.js, PyTorch/safetensors, numpy)
 *   model-card.md, model-card.json
 *   ledger.json                   app version, backend, seeds, manifest hash, config hash
 *   config.json                   architecture, preprocessing, task, curriculum history (no paths)
 *   weights/model.safetensors     every tensor, names and layouts in weights/TENSORS.md
 *   tfjs/encoder/model.json, tfjs/encoder/weights.bin   the encoder as a TF.js layers model
 *   metrics/pretext.json          Table II evaluation and final training losses
 *   checksums.json                SHA-256 of every other file
 *
 * Before writing, the package is scanned for the source data's patient IDs, names, UIDs and
 * dates; export refuses, saying what it found where, if any slipped in.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import { parsePretrainConfig, type PretrainConfig } from '../../shared/run-config';
import { parseDicom, str } from '../dicom/parse';
import { buildEncoderModel, layersModelArtifacts, setEncoderWeights } from '../ml/encoder-layers';
import { classifierPreset } from '../ml/classifier';
import { encodeSafetensors } from '../ml/safetensors';
import { vqvaePreset, type VqvaePresetName } from '../ml/vqvae';
import { isReconstructionTask, taskClasses } from '../ssl/tasks';
import { appMeta } from './app-meta';
import { initBackend } from './backend';
import { latestCheckpointDir, readCheckpoint, writeJsonAtomic } from './checkpoint';
import type { Manifest } from './manifest';
import { modelSize } from './engine';
import { configHash } from './run-hash';
import type { Database } from './sqlite';

export const PACKAGE_FORMAT = 'ct-ssl-studio-weights';
export const PACKAGE_VERSION = 1;

export interface ExportOptions {
  licence: string;
  author?: string;
  intendedUse?: string;
  limitations?: string[];
}

export interface PrivacyFinding {
  file: string;
  kind: 'patient-id' | 'patient-name' | 'uid' | 'date' | 'path';
  /** The identifier, shortened for display. */
  excerpt: string;
}

export class PrivacyError extends Error {
  constructor(readonly findings: PrivacyFinding[]) {
    super(
      `export refused: the package would contain patient identifiers:\n` +
        findings
          .slice(0, 20)
          .map((f) => `  ${f.file}: ${f.kind} ${f.excerpt}`)
          .join('\n') +
        (findings.length > 20 ? `\n  ... and ${findings.length - 20} more` : ''),
    );
    this.name = 'PrivacyError';
  }
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const shorten = (s: string) => (s.length > 12 ? `${s.slice(0, 6)}...${s.slice(-4)}` : s.slice(0, 2) + '***');

/** The chain of runs this one started from (curriculum), oldest first, without paths. */
function curriculum(config: PretrainConfig): { task: string; maskPercent: number | null; maskDefinition: string | null; steps: number | null; epochs: number | null }[] {
  const chain: PretrainConfig[] = [config];
  let cur = config;
  for (let i = 0; i < 20 && cur.init && existsSync(join(cur.init, 'config.json')); i++) {
    cur = parsePretrainConfig(JSON.parse(readFileSync(join(cur.init, 'config.json'), 'utf8')));
    chain.unshift(cur);
  }
  return chain.map((c) => ({
    task: c.task,
    maskPercent: c.task === 'masked' ? c.maskPercent : null,
    maskDefinition: c.task === 'masked' ? c.maskDefinition : null,
    steps: c.steps ?? null,
    epochs: c.epochs ?? null,
  }));
}

interface DataSummary {
  patients: number;
  studies: number;
  series: number;
  slices: number;
  bySplit: Manifest['counts'];
  scanners: { manufacturer: string; model: string; series: number }[];
  sliceThicknessMm: { min: number | null; max: number | null };
  studyYears: { from: number | null; to: number | null };
}

/** Identifiers of the source data, to make sure none leaks into the package. */
interface Identifiers {
  values: { value: string; kind: PrivacyFinding['kind'] }[];
}

function summarise(db: Database | null, manifest: Manifest): { summary: DataSummary; ids: Identifiers } {
  const ids: Identifiers = { values: [] };
  const add = (value: string | null | undefined, kind: PrivacyFinding['kind']) => {
    const v = (value ?? '').trim();
    if (v.length >= 4) ids.values.push({ value: v, kind });
  };
  const studies = new Set<string>();
  const scanners = new Map<string, { manufacturer: string; model: string; series: number }>();
  let tMin: number | null = null;
  let tMax: number | null = null;
  let yFrom: number | null = null;
  let yTo: number | null = null;
  for (const s of manifest.series) {
    add(s.seriesUid, 'uid');
    add(s.patientKey.startsWith('derived:') ? null : s.patientKey, 'patient-id');
    for (const sl of s.slices) {
      add(sl.sopUid, 'uid');
      add(dirname(sl.path), 'path');
    }
    const row = db
      ?.prepare(
        `SELECT p.patient_id, p.birth_date, st.study_uid, st.study_date, se.manufacturer, se.model, se.slice_thickness, se.frame_of_reference_uid
         FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref WHERE se.series_uid = ?`,
      )
      .get(s.seriesUid) as
      | { patient_id: string; birth_date: string; study_uid: string; study_date: string; manufacturer: string; model: string; slice_thickness: number | null; frame_of_reference_uid: string }
      | undefined;
    if (row) {
      add(row.patient_id, 'patient-id');
      add(row.study_uid, 'uid');
      add(row.frame_of_reference_uid, 'uid');
      for (const d of [row.study_date, row.birth_date]) {
        if (/^\d{8}$/.test(d)) {
          add(d, 'date');
          add(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}`, 'date');
        }
      }
      studies.add(row.study_uid);
      const key = `${row.manufacturer}|${row.model}`;
      const sc = scanners.get(key) ?? { manufacturer: row.manufacturer || 'unknown', model: row.model || 'unknown', series: 0 };
      sc.series++;
      scanners.set(key, sc);
      if (row.slice_thickness !== null) {
        tMin = tMin === null ? row.slice_thickness : Math.min(tMin, row.slice_thickness);
        tMax = tMax === null ? row.slice_thickness : Math.max(tMax, row.slice_thickness);
      }
      const y = Number(row.study_date.slice(0, 4));
      if (y > 1900) {
        yFrom = yFrom === null ? y : Math.min(yFrom, y);
        yTo = yTo === null ? y : Math.max(yTo, y);
      }
    }
    // Patient names are not kept in the index: read them from one source file per series.
    const first = s.slices[0]?.path;
    if (first && existsSync(first)) {
      try {
        add(str(parseDicom(new Uint8Array(readFileSync(first)), { headerOnly: true }).dataSet, 'x00100010').replace(/\^+/g, ' ').trim(), 'patient-name');
        add(str(parseDicom(new Uint8Array(readFileSync(first)), { headerOnly: true }).dataSet, 'x00100010'), 'patient-name');
      } catch {
        /* unreadable source: nothing to add */
      }
    }
  }
  const patients = new Set(manifest.series.map((s) => s.patientKey)).size;
  return {
    summary: {
      patients,
      studies: studies.size || manifest.series.length,
      series: manifest.series.length,
      slices: manifest.series.reduce((a, s) => a + s.slices.length, 0),
      bySplit: manifest.counts,
      scanners: [...scanners.values()].sort((a, b) => b.series - a.series),
      sliceThicknessMm: { min: tMin, max: tMax },
      studyYears: { from: yFrom, to: yTo },
    },
    ids,
  };
}

/** Finds source identifiers in the package files (text and binary alike). */
export function scanForIdentifiers(files: Record<string, Uint8Array>, ids: Identifiers): PrivacyFinding[] {
  const findings: PrivacyFinding[] = [];
  const unique = new Map(ids.values.map((v) => [v.value, v.kind]));
  for (const [name, bytes] of Object.entries(files)) {
    const text = Buffer.from(bytes).toString('latin1');
    for (const [value, kind] of unique) if (text.includes(value)) findings.push({ file: name, kind, excerpt: shorten(value) });
  }
  return findings;
}

function tensorDoc(names: { name: string; shape: number[] }[]): string {
  return [
    '# Tensors in model.safetensors',
    '',
    'All float32, little-endian, row-major. Layouts (TensorFlow.js/NHWC conventions):',
    '',
    '- convolution `*.conv*.weight`: [kernel_h, kernel_w, in_channels, out_channels] (PyTorch Conv2d wants `w.permute(3, 2, 0, 1)`)',
    '- transposed convolution `*.convt.weight`: [kernel_h, kernel_w, out_channels, in_channels] (PyTorch ConvTranspose2d wants `w.permute(3, 2, 0, 1)`, i.e. [in, out, kh, kw])',
    '- BatchNorm: `weight` (gamma), `bias` (beta), `running_mean`, `running_var`; epsilon 1e-5',
    '- dense `*.fc.weight`: [in, out] (PyTorch Linear wants the transpose)',
    '- `vq.codebook`: [codes, latent]',
    '',
    '| name | shape |',
    '|---|---|',
    ...names.map((n) => `| ${n.name} | [${n.shape.join(', ')}] |`),
    '',
  ].join('\n');
}

const README = (name: string, size: number, channels: number) => `# ${name}

A CT encoder pretrained with CT SSL Studio. See model-card.md for what it was trained on, how, and how well.

## Input
Axial CT slices in radiological display orientation (anterior up, patient's right on the left),
Hounsfield units windowed as config.json's \`preprocessing\` says (soft tissue: level 50, width 350),
scaled to [0, 1], resized to ${size} x ${size}, ${channels} channel(s). Layout NHWC.

## TensorFlow.js
\`\`\`js
const encoder = await tf.loadLayersModel('file://.../tfjs/encoder/model.json'); // or fromMemory
const latent = encoder.predict(x); // [N, ${size / 4}, ${size / 4}, latent]
\`\`\`

## PyTorch / numpy
\`\`\`python
from safetensors.numpy import load_file   # or safetensors.torch
w = load_file("weights/model.safetensors")
# names and layouts: weights/TENSORS.md (conv weights are [kh, kw, in, out]: permute(3, 2, 0, 1) for torch)
\`\`\`
Without the safetensors package: an 8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets}}, then the raw float32 data.

## In CT SSL Studio
\`ctssl import <this file>\` (or drag it onto the app): the encoder is then offered as an
initialisation for fine-tuning and the bias probe.
`;

export interface ExportResult {
  file: string;
  bytes: number;
  sha256: string;
  files: string[];
  modelCard: Record<string, unknown>;
}

export async function exportRun(db: Database | null, runDir: string, outFile: string, o: ExportOptions): Promise<ExportResult> {
  const dir = resolve(runDir);
  const config = parsePretrainConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const ledgerIn = existsSync(join(dir, 'run.json')) ? (JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as Record<string, unknown>) : {};
  const ck = latestCheckpointDir(dir);
  if (!ck) throw new Error(`${dir} has no checkpoint to export`);
  const c = readCheckpoint(ck);
  const size = modelSize(config);
  const preset = config.preset as VqvaePresetName;
  const arch = isReconstructionTask(config.task)
    ? { model: 'vqvae' as const, ...vqvaePreset(preset, { size }) }
    : { model: 'classifier' as const, ...classifierPreset(preset, taskClasses(config.task), { size }) };
  const { summary, ids } = summarise(db, manifest);
  const evalPath = join(dir, 'eval', 'table2.json');
  const pretext = existsSync(evalPath) ? (JSON.parse(readFileSync(evalPath, 'utf8')) as Record<string, unknown>) : null;
  const backend = await initBackend();

  const exportedConfig = {
    format: PACKAGE_FORMAT,
    formatVersion: PACKAGE_VERSION,
    architecture: { ...arch, preset },
    preprocessing: {
      window: { level: config.windowLevel, width: config.windowWidth },
      scaling: config.scaling === 'fixed' ? 'fixed: (HU - (level - width/2)) / width, clipped to [0, 1]' : 'per-slice min-max after clipping',
      scalingMode: config.scaling,
      size,
      channels: arch.channels,
      orientation: 'radiological display (anterior up, patient right on the left), from ImageOrientationPatient',
      padding: 'pixel padding treated as air (-1024 HU)',
      layout: 'NHWC',
    },
    task: {
      name: config.task,
      maskPercent: config.task === 'masked' ? config.maskPercent : null,
      maskDefinition: config.task === 'masked' ? config.maskDefinition : null,
      gap: config.task === 'next-slice' ? config.gap : null,
      noiseFraction: config.task === 'denoise' ? config.noiseFraction : null,
    },
    curriculum: curriculum(config),
    training: {
      optimizer: config.optimizer,
      lr: config.lr,
      batchSize: config.batchSize,
      steps: c.state.step,
      lossWeights: config.lossWeights,
      seed: config.seed,
      fractions: config.fractions,
    },
  };
  const ledger = {
    app: appMeta().productName,
    appVersion: appMeta().version,
    exportedAt: new Date().toISOString(),
    runUid: ledgerIn.uid ?? null,
    trainedWith: {
      appVersion: ledgerIn.appVersion ?? null,
      backend: ((db?.prepare('SELECT backend FROM runs WHERE dir = ?').pluck().get(dir) as string | undefined) ?? '') || null,
    },
    backendAtExport: `${backend.package}@${backend.version}`,
    seeds: { run: config.seed },
    manifestHash: manifest.hash,
    configHash: configHash(config),
    checkpoint: { step: c.state.step, savedAt: c.state.savedAt },
  };
  const finalLosses = c.state.losses;
  const card = {
    name: config.name || `CT SSL ${config.task}${config.task === 'masked' ? ` ${config.maskPercent}%` : ''} encoder (${preset}, ${size}px)`,
    intendedUse:
      o.intendedUse ??
      'Initialisation of CT image encoders for research on chest CT (slice classification, segmentation). Not a medical device; not for clinical decisions.',
    data: summary,
    training: exportedConfig.training,
    task: exportedConfig.task,
    curriculum: exportedConfig.curriculum,
    pretextMetrics: pretext ? { split: pretext.split, perVolume: pretext.perVolume, perImage: pretext.perImage, volumes: pretext.volumes, images: pretext.images } : null,
    finalTrainingLosses: finalLosses,
    downstream: null,
    limitations: o.limitations ?? [
      `Trained on ${summary.patients} patient(s) and ${summary.slices} slices from ${summary.scanners.length || 'unknown'} scanner model(s): generalisation to other scanners, protocols and populations is untested.`,
      'Self-supervised features may encode patient attributes (sex, age, ethnic group); check with the bias probe before use.',
      `Expects the preprocessing in config.json exactly (window, scaling, orientation, ${size}px).`,
    ],
    licence: o.licence,
    author: o.author ?? '',
    ledger,
  };
  const tensors = c.weights.map((w) => ({ name: w.name, shape: w.shape, data: w.data }));
  const files: Record<string, Uint8Array> = {};
  files['README.md'] = strToU8(README(card.name, size, arch.channels));
  files['config.json'] = strToU8(JSON.stringify(exportedConfig, null, 2));
  files['ledger.json'] = strToU8(JSON.stringify(ledger, null, 2));
  files['weights/model.safetensors'] = encodeSafetensors(tensors, { format: 'pt-compatible-names', layout: 'tfjs (see TENSORS.md)' });
  files['weights/TENSORS.md'] = strToU8(tensorDoc(tensors));
  const encoder = buildEncoderModel(arch);
  setEncoderWeights(encoder, c.weights);
  const art = await layersModelArtifacts(encoder);
  encoder.dispose();
  files['tfjs/encoder/model.json'] = strToU8(art.modelJson);
  files['tfjs/encoder/weights.bin'] = art.weights;
  files['metrics/pretext.json'] = strToU8(JSON.stringify({ evaluation: pretext, finalTrainingLosses: finalLosses }, null, 2));
  files['model-card.json'] = strToU8(JSON.stringify(card, null, 2));
  files['model-card.md'] = strToU8(modelCardMarkdown(card));
  const checksums: Record<string, string> = {};
  for (const [name, b] of Object.entries(files)) checksums[name] = sha256(b);
  files['checksums.json'] = strToU8(JSON.stringify({ format: PACKAGE_FORMAT, formatVersion: PACKAGE_VERSION, sha256: checksums }, null, 2));

  const findings = scanForIdentifiers(files, ids);
  if (findings.length) throw new PrivacyError(findings);

  const zip = zipSync(files, { level: 6 });
  const out = resolve(outFile);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, zip);
  renameSync(tmp, out);
  return { file: out, bytes: zip.length, sha256: sha256(zip), files: Object.keys(files), modelCard: card };
}

function modelCardMarkdown(card: Record<string, unknown> & { data: DataSummary }): string {
  const c = card as unknown as {
    name: string;
    intendedUse: string;
    data: DataSummary;
    training: Record<string, unknown>;
    task: Record<string, unknown>;
    curriculum: Record<string, unknown>[];
    pretextMetrics: { perVolume?: Record<string, { mean: number; sd: number }>; volumes?: number; split?: string } | null;
    finalTrainingLosses: Record<string, number>;
    limitations: string[];
    licence: string;
    author: string;
    ledger: Record<string, unknown>;
  };
  const d = c.data;
  const pm = c.pretextMetrics?.perVolume ?? {};
  return [
    `# ${c.name}`,
    '',
    `Licence: ${c.licence}${c.author ? ` · Author: ${c.author}` : ''}`,
    '',
    '## Intended use',
    c.intendedUse,
    '',
    '## Training data (no identifiers)',
    `- ${d.patients} patients, ${d.studies} studies, ${d.series} series, ${d.slices} slices (train ${d.bySplit.train.slices} / validation ${d.bySplit.val.slices} / held-out ${d.bySplit.test.slices} slices, split by patient)`,
    `- Scanners: ${d.scanners.map((s) => `${s.manufacturer} ${s.model} (${s.series})`).join(', ') || 'unknown'}`,
    `- Slice thickness: ${d.sliceThicknessMm.min ?? '?'}–${d.sliceThicknessMm.max ?? '?'} mm`,
    `- Study years: ${d.studyYears.from ?? '?'}–${d.studyYears.to ?? '?'}`,
    '',
    '## Training',
    `- Task: ${JSON.stringify(c.task)}`,
    `- Curriculum: ${c.curriculum.map((s) => `${s.task}${s.maskPercent ? ` ${s.maskPercent}%` : ''}`).join(' → ')}`,
    `- Settings: ${JSON.stringify(c.training)}`,
    '',
    '## Pretext metrics',
    Object.keys(pm).length
      ? [`${c.pretextMetrics?.volumes ?? '?'} ${c.pretextMetrics?.split ?? ''} volume(s):`, ...Object.entries(pm).map(([k, v]) => `- ${k}: ${v.mean.toFixed(4)} ± ${v.sd.toFixed(4)}`)].join('\n')
      : '- not evaluated (run `ctssl eval-ssl` before exporting)',
    `- Final training losses: ${Object.entries(c.finalTrainingLosses).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`,
    '',
    '## Downstream results',
    '- none recorded',
    '',
    '## Known limitations',
    ...c.limitations.map((l) => `- ${l}`),
    '',
    '## Reproducibility',
    '```json',
    JSON.stringify(c.ledger, null, 2),
    '```',
    '',
    'File checksums: checksums.json (SHA-256).',
    '',
  ].join('\n');
}
