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
 * Before writing, every file of the package is scanned for the source data's patient
 * identifiers and for paths of the user; export refuses, saying what it found where, if any
 * slipped in. The identifiers are those the indexer stored for each series (phi_identifiers, see
 * db.ts migration 5), not read from the source files, so a moved or unmounted source cannot skip
 * the check. When the library cannot vouch for a series of the run (no database, a series that
 * is no longer indexed, or one indexed before identifiers were stored), export refuses and says
 * to re-index. What counts as a match is documented in core/privacy/phi.ts.
 *
 * The package holds no path: metrics/pretext.json takes only the numbers of eval/table2.json
 * (not its run folder or sample image paths), the curriculum only tasks and settings.
 */
import { CARD_WORDS, modelCardMarkdown } from '../shared/model-card';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import { isPretextTask, taskOption, taskOptionFields, taskTitle, type PretextTaskId } from '../shared/pretext-tasks';
import { parsePretrainConfig, type PretrainConfig } from '../shared/run-config';
import { buildMatcher, PHI_KINDS, type PhiFinding, type PhiIdentifier, type PhiKind, scanFiles, shorten, wordsOf } from '../core/privacy/phi';
import { encodeSafetensors } from '../core/ml/safetensors';
import { modelSize, pretrainArchitecture } from '../core/ml/specs/pretrain';
import type { VqvaePresetName } from '../core/ml/specs/vqvae';
import { appMeta } from '../platform/app-meta';
import { latestCheckpointDir, readCheckpoint, writeJsonAtomic } from '../library/runs/checkpoint';
import type { Manifest } from '../library/runs/manifest';
import { defaultDataDir } from '../platform/paths';
import { spawnNodeTrainer, trainerRequest, type SpawnTrainer } from './runs/trainer-host';
import { configHash } from '../library/runs/run-hash';
import type { Database } from '../library/db/sqlite';
import type { DataSummary, ModelCard, PackageLedger } from '../shared/results';

export const PACKAGE_FORMAT = 'ct-ssl-studio-weights';
export const PACKAGE_VERSION = 1;

export interface ExportOptions {
  licence: string;
  author?: string;
  intendedUse?: string;
  limitations?: string[];
  /** The app's data folder, never to appear in a package (default: defaultDataDir()). */
  dataDir?: string;
  /**
   * Starts the trainer process that builds the TF.js encoder (the host never loads tfjs): the
   * app's utility process, or by default a Node child process.
   */
  spawn?: SpawnTrainer;
}

export type PrivacyFinding = PhiFinding;

/**
 * Export refused for privacy: identifiers or paths found in the package (findings), or the
 * library cannot say which identifiers to look for (no findings, the reason in the message).
 */
export class PrivacyError extends Error {
  constructor(
    readonly findings: PrivacyFinding[],
    reason?: string,
  ) {
    super(
      reason ??
        `export refused: the package would contain patient identifiers or paths of this computer:\n` +
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

/** The folders of the runs this one started from (curriculum), newest first. */
function initDirs(config: PretrainConfig): string[] {
  const dirs: string[] = [];
  let cur = config;
  for (let i = 0; i < 20 && cur.init; i++) {
    dirs.push(resolve(cur.init));
    if (!existsSync(join(cur.init, 'config.json'))) break;
    try {
      cur = parsePretrainConfig(JSON.parse(readFileSync(join(cur.init, 'config.json'), 'utf8')));
    } catch {
      break;
    }
  }
  return dirs;
}

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
    maskPercent: taskOption(c, 'maskPercent'),
    maskDefinition: taskOption(c, 'maskDefinition'),
    steps: c.steps ?? null,
    epochs: c.epochs ?? null,
  }));
}

/** Identifiers of the source data and paths of the user, to make sure none leaks into the package. */
export interface Identifiers {
  values: { value: string; kind: PhiKind }[];
  /** Folders of the user (absolute). */
  paths?: string[];
}

const KINDS = new Set<string>(PHI_KINDS);

/** Says why the library cannot vouch for the run's data: refuses, saying to re-index. */
function unverifiable(what: string, folders: string[]): PrivacyError {
  const where = folders.length ? ` (${folders.slice(0, 3).join(', ')}${folders.length > 3 ? ', ...' : ''})` : '';
  return new PrivacyError(
    [],
    `export refused: cannot check the package for patient identifiers: ${what}${where}. ` +
      'Re-index the folder(s) of the run\'s data (`ctssl index <folder>`, or Re-index in the app) with this library, then export again.',
  );
}

function summarise(db: Database | null, manifest: Manifest): { summary: DataSummary; ids: Identifiers } {
  const ids: Identifiers = { values: [], paths: [] };
  const add = (value: string | null | undefined, kind: PhiKind) => {
    const v = (value ?? '').trim();
    if (v) ids.values.push({ value: v, kind });
  };
  const folderOf = (s: Manifest['series'][number]) => (s.slices[0] ? dirname(s.slices[0].path) : '?');
  if (!db) throw unverifiable('no library database (the identifiers of the training data are stored there at index time)', []);
  if (!db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'phi_identifiers'`).get()) {
    throw unverifiable('the library database predates stored identifiers (open it with this version once to upgrade it)', []);
  }
  const seriesRow = db.prepare(
    `SELECT se.id, p.patient_id, p.birth_date, st.study_uid, st.study_id, st.study_date, se.series_date, se.manufacturer, se.model,
       se.slice_thickness, se.frame_of_reference_uid
     FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref WHERE se.series_uid = ?`,
  );
  // Whether every instance of the series was indexed with its identifiers (a series may have none
  // at all: fully de-identified data with derived UIDs).
  const indexedState = db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(identifiers_indexed = 0), 0) AS old FROM instances WHERE series_ref = ?');
  const stored = db.prepare('SELECT kind, value FROM phi_identifiers WHERE series_ref = ?');
  const missing: string[] = [];
  const notYet: string[] = [];
  const studies = new Set<string>();
  const scanners = new Map<string, { manufacturer: string; model: string; series: number }>();
  let tMin: number | null = null;
  let tMax: number | null = null;
  let yFrom: number | null = null;
  let yTo: number | null = null;
  const sourceDirs = new Set<string>();
  for (const s of manifest.series) {
    add(s.seriesUid, 'uid');
    add(s.patientKey.startsWith('derived:') ? null : s.patientKey, 'patient-id');
    for (const sl of s.slices) {
      add(sl.sopUid, 'uid');
      sourceDirs.add(dirname(sl.path));
    }
    const row = seriesRow.get(s.seriesUid) as
      | {
          id: number;
          patient_id: string;
          birth_date: string;
          study_uid: string;
          study_id: string;
          study_date: string;
          series_date: string;
          manufacturer: string;
          model: string;
          slice_thickness: number | null;
          frame_of_reference_uid: string;
        }
      | undefined;
    if (!row) {
      missing.push(folderOf(s));
      continue;
    }
    const rows = stored.all(row.id) as { kind: string; value: string }[];
    const state = indexedState.get(row.id) as { n: number; old: number };
    if (state.n === 0) missing.push(folderOf(s));
    else if (state.old > 0) notYet.push(folderOf(s));
    for (const r of rows) if (KINDS.has(r.kind)) add(r.value, r.kind as PhiKind);
    add(row.patient_id, 'patient-id');
    add(row.study_uid, 'uid');
    add(row.frame_of_reference_uid, 'uid');
    add(row.study_id, 'study-id');
    add(row.birth_date, 'birth-date');
    add(row.study_date, 'study-date');
    add(row.series_date, 'series-date');
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
  if (missing.length) throw unverifiable(`${missing.length} series of the run are not in the library (removed, moved, or indexed in another database)`, missing);
  if (notYet.length) throw unverifiable(`${notYet.length} series of the run were indexed before identifiers were stored`, notYet);
  ids.paths!.push(...sourceDirs, ...(db.prepare('SELECT path FROM folders').pluck().all() as string[]));
  if (db.name && db.name !== ':memory:') ids.paths!.push(dirname(resolve(db.name)));
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

export interface ScanOptions {
  /**
   * Words of the package's own text (see phi.ts: a single name component equal to one is not
   * reported); default: the fixed text, the JSON keys, the TF.js model and the tensor list.
   */
  fixedWords?: ReadonlySet<string>;
  /** Timestamps the app wrote into the package. */
  timestamps?: string[];
}

/** Finds source identifiers and user paths in the package files (text, PNG text chunks and binary). */
export function scanForIdentifiers(files: Record<string, Uint8Array>, ids: Identifiers, o: ScanOptions = {}): PrivacyFinding[] {
  const matcher = buildMatcher(ids.values as PhiIdentifier[], ids.paths ?? []);
  return scanFiles(files, matcher, {
    fixedWords: o.fixedWords ?? packageWords(files),
    timestamps: o.timestamps,
    bytesAsText: (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1'),
  });
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

const DEFAULT_INTENDED_USE =
  'Initialisation of CT image encoders for research on chest CT (slice classification, segmentation). Not a medical device; not for clinical decisions.';

/** The fixed words of what the package says (templates, model card labels): see scanForIdentifiers. */
const FIXED_TEXT = [
  'Licence Author Intended use Training data no identifiers patients studies series slices train validation held out split by patient',
  'Scanners unknown Slice thickness mm Study years Training Task Curriculum Settings Pretext metrics volume volumes not evaluated run ctssl eval ssl',
  'before exporting Final training losses Downstream results none recorded Known limitations Reproducibility File checksums json SHA 256',
  'Trained on patient s and slices from scanner model s generalisation to other scanners protocols and populations is untested',
  'Self supervised features may encode patient attributes sex age ethnic group check with the bias probe before use',
  'Expects the preprocessing in config json exactly window scaling orientation px',
  'fixed HU level width clipped to per slice min max after clipping radiological display anterior up patient right on the left from ImageOrientationPatient',
  'pixel padding treated as air NHWC masked next slice denoise rotation flip area side data uniform',
  'recipe ours reference the authors public code',
  CARD_WORDS,
  DEFAULT_INTENDED_USE,
].join('\n');

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

const FIXED_WORDS: ReadonlySet<string> = wordsOf([FIXED_TEXT, README('', 64, 1), tensorDoc([])].join('\n'));

/** The package's own vocabulary: the fixed words, the JSON keys, tensor and layer names. */
function packageWords(files: Record<string, Uint8Array>): Set<string> {
  const words = new Set(FIXED_WORDS);
  const keys: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) keys.push(k), walk(x);
  };
  for (const [name, b] of Object.entries(files)) {
    if (!name.endsWith('.json')) continue;
    try {
      walk(JSON.parse(Buffer.from(b).toString('utf8')));
    } catch {
      /* not JSON: no keys */
    }
  }
  // The TF.js model and the tensor list are generated from the architecture alone.
  const generated = ['tfjs/encoder/model.json', 'weights/TENSORS.md'].map((n) => (files[n] ? Buffer.from(files[n]).toString('utf8') : ''));
  for (const w of wordsOf([...keys, ...generated].join(' '))) words.add(w);
  return words;
}

/** The metrics eval-ssl writes, ours and in the paper's definitions (any other key of a hand-edited table2.json is dropped). */
const METRIC_NAMES = new Set(['mse', 'maskedMse', 'ssim', 'crossEntropy', 'auroc', 'maskedMseBatchSum', 'crossEntropyDoubleSoftmax']);

/** The Table II numbers a package carries (metrics/pretext.json; the model card keeps some). */
interface PretextNumbers extends NonNullable<ModelCard['pretextMetrics']> {
  task: PretextTaskId | null;
  maskPercent: number | null;
  maskDefinition: 'area' | 'side' | null;
  checkpointStep: number | null;
  aurocPerClass: number[] | null;
}

/** Only the numbers of a Table II evaluation: no run folder, no sample image paths. */
function pretextMetrics(t: Record<string, unknown> | null): PretextNumbers | null {
  if (!t) return null;
  const stats = (v: unknown): Record<string, { mean: number; sd: number; n: number }> => {
    const out: Record<string, { mean: number; sd: number; n: number }> = {};
    if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v as Record<string, { mean?: unknown; sd?: unknown; n?: unknown }>)) {
        if (METRIC_NAMES.has(k) && x && typeof x === 'object') out[k] = { mean: Number(x.mean), sd: Number(x.sd), n: Number(x.n) };
      }
    }
    return out;
  };
  const oneOf = <T extends string>(v: unknown, allowed: readonly T[]): T | null => (allowed.includes(v as T) ? (v as T) : null);
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return {
    task: isPretextTask(t.task) ? t.task : null,
    maskPercent: num(t.maskPercent),
    maskDefinition: oneOf(t.maskDefinition, ['area', 'side'] as const),
    split: oneOf(t.split, ['train', 'val', 'test'] as const),
    checkpointStep: num(t.checkpointStep),
    volumes: num(t.volumes),
    images: num(t.images),
    perVolume: stats(t.perVolume),
    perImage: stats(t.perImage),
    aurocPerClass: Array.isArray(t.aurocPerClass) ? t.aurocPerClass.map(Number) : null,
  };
}

/** The empty manifest of a run trained elsewhere (no series of this library). */
function importedManifest(seed: number): Manifest {
  const none = { patients: 0, series: 0, slices: 0 };
  return { version: 1, createdAt: '', seed, filter: {}, fractions: { train: 0, val: 0, test: 0 }, series: [], counts: { train: none, val: none, test: none }, hash: '' };
}

export interface ExportResult {
  file: string;
  bytes: number;
  sha256: string;
  files: string[];
  modelCard: ModelCard;
}

export async function exportRun(db: Database | null, runDir: string, outFile: string, o: ExportOptions): Promise<ExportResult> {
  const dir = resolve(runDir);
  const config = parsePretrainConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  // An imported run (a package, the authors' PyTorch checkpoint) was trained elsewhere: no manifest,
  // no data of this library to describe or check.
  const manifest = existsSync(join(dir, 'manifest.json')) ? (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest) : importedManifest(config.seed);
  const ledgerIn = existsSync(join(dir, 'run.json')) ? (JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { uid?: string; appVersion?: string }) : {};
  const ck = latestCheckpointDir(dir);
  if (!ck) throw new Error(`${dir} has no checkpoint to export`);
  const c = readCheckpoint(ck);
  const size = modelSize(config);
  const preset = config.preset as VqvaePresetName;
  const arch = pretrainArchitecture(config);
  const { summary, ids } = summarise(db, manifest);
  ids.paths!.push(dir, ...initDirs(config), resolve(o.dataDir ?? defaultDataDir()), homedir());
  const evalPath = join(dir, 'eval', 'table2.json');
  const pretext = pretextMetrics(existsSync(evalPath) ? (JSON.parse(readFileSync(evalPath, 'utf8')) as Record<string, unknown>) : null);
  const tfjs = await tfjsEncoder(o.spawn ?? (() => spawnNodeTrainer()), dir, c.state.step);

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
    // Every option field of the tasks: the run's value where its task takes it, else null.
    task: { name: config.task, ...taskOptionFields(config) },
    curriculum: curriculum(config),
    training: {
      recipe: config.recipe ?? 'ours',
      optimizer: config.optimizer,
      lr: config.lr,
      batchSize: config.batchSize,
      steps: c.state.step,
      lossWeights: config.lossWeights,
      seed: config.seed,
      fractions: config.fractions,
    },
  };
  const ledger: PackageLedger = {
    app: appMeta().productName,
    appVersion: appMeta().version,
    exportedAt: new Date().toISOString(),
    runUid: ledgerIn.uid ?? null,
    trainedWith: {
      appVersion: ledgerIn.appVersion ?? null,
      backend: ((db?.prepare('SELECT backend FROM runs WHERE dir = ?').pluck().get(dir) as string | undefined) ?? '') || null,
    },
    backendAtExport: `${tfjs.backend.package}@${tfjs.backend.version}`,
    seeds: { run: config.seed },
    manifestHash: manifest.hash,
    configHash: configHash(config),
    checkpoint: { step: c.state.step, savedAt: c.state.savedAt },
  };
  const finalLosses = c.state.losses;
  const card: ModelCard = {
    name: config.name || `CT SSL ${taskTitle(config)} encoder (${preset}, ${size}px)`,
    intendedUse: o.intendedUse ?? DEFAULT_INTENDED_USE,
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
  files['tfjs/encoder/model.json'] = tfjs.modelJson;
  files['tfjs/encoder/weights.bin'] = tfjs.weights;
  files['metrics/pretext.json'] = strToU8(JSON.stringify({ evaluation: pretext, finalTrainingLosses: finalLosses }, null, 2));
  files['model-card.json'] = strToU8(JSON.stringify(card, null, 2));
  files['model-card.md'] = strToU8(modelCardMarkdown(card));
  const checksums: Record<string, string> = {};
  for (const [name, b] of Object.entries(files)) checksums[name] = sha256(b);
  files['checksums.json'] = strToU8(JSON.stringify({ format: PACKAGE_FORMAT, formatVersion: PACKAGE_VERSION, sha256: checksums }, null, 2));

  const findings = scanForIdentifiers(files, ids, { timestamps: [ledger.exportedAt, String(c.state.savedAt ?? '')] });
  if (findings.length) throw new PrivacyError(findings);

  const zip = zipSync(files, { level: 6 });
  const out = resolve(outFile);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, zip);
  renameSync(tmp, out);
  return { file: out, bytes: zip.length, sha256: sha256(zip), files: Object.keys(files), modelCard: card };
}

/**
 * The run's encoder as a TF.js layers model (model.json, weights.bin), built by a trainer process
 * from the same checkpoint (`step`) into a temporary folder, read back, and the folder removed.
 */
async function tfjsEncoder(spawn: SpawnTrainer, runDir: string, step: number): Promise<{ modelJson: Uint8Array; weights: Uint8Array; backend: { package: string; version: string } }> {
  const tmp = mkdtempSync(join(tmpdir(), 'ctssl-export-'));
  try {
    const e = await trainerRequest(spawn, { v: 1, type: 'export-encoder', runDir, outDir: tmp }, 'encoder-exported');
    if (e.step !== step) throw new Error(`the run's latest checkpoint changed during the export (step ${step}, then ${e.step}): export again`);
    const read = (name: string) => {
      const b = readFileSync(join(tmp, name));
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    };
    return { modelJson: read('model.json'), weights: read('weights.bin'), backend: e.backend };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
