/**
 * Domain types shared by every runtime (core, CLI, server, Electron main, preload, renderer).
 * Pure declarations: nothing here may import Node, DOM or Electron.
 */
import type { FinetuneConfig, PretrainConfig } from './run-config';
import type { ImportReport, LabelKind, RunRecord } from './results';

/** One file the indexer could not use, with the reason in words a researcher can act on. */
export interface SkippedFile {
  path: string;
  reason: string;
}

/** Result of one indexing job (also the `ctssl index --json` output). */
export interface IndexSummary {
  /** Files seen in the scanned folders (DICOM or not). */
  files: number;
  /** Distinct SOP instances in the whole index after the job. */
  instances: number;
  series: number;
  studies: number;
  patients: number;
  /** Files whose SOP Instance UID is already indexed from another path. */
  duplicates: number;
  skipped: SkippedFile[];
  /** Files read and parsed in this run (the rest were unchanged since the last run). */
  parsed: number;
  /** Files dropped from the index because they no longer exist. */
  removed: number;
  /** Non-fatal findings, e.g. empty UIDs replaced by derived ones. */
  warnings: string[];
  cancelled: boolean;
  seconds: number;
}

export type IndexPhase = 'scanning' | 'parsing' | 'geometry' | 'done' | 'cancelled' | 'error';

/** Progress of a running indexing job, emitted a few times a second. */
export interface IndexProgress {
  jobId: string;
  phase: IndexPhase;
  folders: string[];
  filesFound: number;
  filesDone: number;
  filesPerSecond: number;
  /** Seconds left at the current rate; null while unknown. */
  etaSeconds: number | null;
  skipped: number;
  message?: string;
  summary?: IndexSummary;
}

export type SliceOrientation = 'axial' | 'coronal' | 'sagittal' | 'oblique' | 'unknown';

/** A series as listed in the library table and by `ctssl series --json`. */
export interface SeriesRow {
  id: number;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  patientId: string;
  modality: string;
  seriesNumber: number | null;
  description: string;
  bodyPart: string;
  manufacturer: string;
  model: string;
  studyDate: string;
  rows: number | null;
  columns: number | null;
  /** Number of image planes (frames of multi-frame instances count one each). */
  slices: number;
  instances: number;
  sliceThickness: number | null;
  /** Median distance between adjacent planes along the slice normal, mm. */
  spacing: number | null;
  pixelSpacing: [number, number] | null;
  orientation: SliceOrientation;
  uniformSpacing: boolean;
  /** Gantry tilt in degrees (0 when the stack is orthogonal to its planes). */
  gantryTilt: number;
  /** Number of gaps: spacing steps larger than 1.5 x the median. */
  gaps: number;
  multiFrame: boolean;
  contrast: boolean;
  kernel: string;
  /** True when one or more UIDs were empty in the files and derived by the indexer. */
  derivedUids: boolean;
}

/** Cohort filters shared by the CLI and the library page. */
export interface CohortFilter {
  modality?: string;
  orientation?: SliceOrientation;
  /** Maximum slice thickness, mm (the paper keeps <= 3 mm). */
  maxThickness?: number;
  minSlices?: number;
  contrast?: 'yes' | 'no';
  uniformOnly?: boolean;
  /** Free text over patient ID, description, manufacturer. */
  text?: string;
  /** Only series with labels of this kind: LIDC/SEG nodules, SEG segments, RSNA PE-positive images, or any label. */
  labels?: 'nodule' | 'segment' | 'pe' | 'any';
}

export interface CohortCounts {
  total: number;
  matching: number;
  /** How many series pass each individual filter, to explain what excludes what. */
  byFilter: Record<string, number>;
}

export interface FolderRow {
  id: number;
  path: string;
  addedAt: string;
  lastIndexedAt: string | null;
  files: number;
  skipped: number;
}

export interface LibraryStats {
  dbPath: string;
  folders: number;
  files: number;
  instances: number;
  series: number;
  studies: number;
  patients: number;
  duplicates: number;
  skipped: number;
}

/** Everything the viewer needs to lay out a series before the voxels arrive. */
export interface VolumeInfo {
  seriesId: number;
  seriesInstanceUid: string;
  /** [columns, rows, slices] in display orientation. */
  dims: [number, number, number];
  /** Voxel size in mm along display x, display y, and the stack. */
  spacing: [number, number, number];
  orientation: SliceOrientation;
  /** Patient-direction letters at the four screen edges, e.g. {left:'R', right:'L', top:'A', bottom:'P'}. */
  labels: { left: string; right: string; top: string; bottom: string };
  /** Slice positions along the stack direction, mm, in display order. */
  positions: number[];
  /** HU value used for padding pixels in the voxel buffers (they are kept apart from real air). */
  paddingValue: number;
  /** Patient coordinates (LPS, mm) of the display voxels; null without ImagePositionPatient/ImageOrientationPatient. */
  frame: VolumeFrame | null;
  metadata: Record<string, string | number | null>;
  warnings: string[];
}

/**
 * Display voxel (x, y) of display slice k lies at origins[k] + x * xStep + y * yStep (LPS mm);
 * `stored` maps display (x, y) back to the file's column and row (src/core/dicom/patient-geometry.ts).
 */
export interface VolumeFrame {
  origins: [number, number, number][];
  xStep: [number, number, number];
  yStep: [number, number, number];
  stored: { rows: number; columns: number; transpose: boolean; flipX: boolean; flipY: boolean };
}

/** A run of consecutive slices in display orientation, HU as int16 (padding = VolumeInfo.paddingValue). */
export interface SliceBlock {
  seriesId: number;
  start: number;
  count: number;
  data: Int16Array;
}

/** Consecutive slices in a wire form of src/shared/slice-packing.ts: `sizes[k]` bytes for slice start + k. */
export interface PackedSlices {
  seriesId: number;
  start: number;
  count: number;
  width: number;
  height: number;
  encoding: 'int16' | 'deflate' | 'delta8';
  sizes: number[];
  bytes: Uint8Array;
}

export interface AppInfo {
  name: string;
  version: string;
  contractVersion: number;
  mode: 'electron' | 'server';
  dataDir: string;
  dbPath: string;
  /** True when the native folder picker is available (Electron). */
  nativeDialogs: boolean;
}

/** One imported label file. */
export interface LabelSource {
  id: number;
  kind: LabelKind;
  file: string;
  name: string;
  importedAt: string;
  seriesInstanceUid: string;
  /** Its format's name ('LIDC-IDRI XML'; the kind when no registered format has it). */
  format: string;
  /** The import report (counts matched/unmatched, warnings), by kind. */
  report: ImportReport;
}

/** A labelled finding of a series: a reader's nodule, or a SEG segment. */
export interface LabelFinding {
  id: number;
  sourceId: number;
  sourceKind: string;
  kind: 'nodule' | 'small-nodule' | 'non-nodule' | 'segment';
  reader: string;
  key: string;
  /** Findings of the same lesion across readers share a group (e.g. "N1"). */
  group: string;
  attributes: FindingAttributes;
}

/**
 * What a finding records: an LIDC reader's ratings of a nodule (1 to 5: malignancy, subtlety,
 * margin, …) and the reader's radiologistId, or a SEG segment's label, category and type.
 */
export type FindingAttributes = { malignancy?: number; radiologistId?: string; label?: string; category?: string; type?: string } & Partial<Record<string, number | string>>;

/** Labels of one series, for the viewer: findings and per-slice badges in display order. */
export interface SeriesLabels {
  seriesId: number;
  findings: LabelFinding[];
  readers: string[];
  /**
   * Point markers that are not lesions (LIDC non-nodules), in display coordinates of their slice:
   * drawn as small crosses, not counted as labelled slices (N/P skip them).
   */
  marks?: { index: number; sopUid: string; x: number; y: number; reader: string; key: string }[];
  /** One entry per labelled slice (display index); slices with only marks are not listed. */
  slices: {
    index: number;
    sopUid: string;
    nodules: number;
    smallNodules: number;
    segments: number;
    readers: string[];
    image: Record<string, number>;
  }[];
}

/** Masks of one slice in display orientation (width x height of VolumeInfo.dims), one per finding group. */
export interface SliceMasks {
  seriesId: number;
  index: number;
  width: number;
  height: number;
  groups: { group: string; kind: string; sourceId: number; readers: string[]; mask: Uint8Array }[];
}

/** A training run as the app lists it. */
export interface RunSummary {
  id: number;
  name: string;
  kind: string;
  task: string;
  status: 'created' | 'running' | 'paused' | 'done' | 'stopped' | 'failed' | 'crashed';
  /** A trainer process of this host still holds the run (it may be finishing after 'done'). */
  active: boolean;
  dir: string;
  preset: string;
  /** The saved config (an imported run's is a pretraining config). */
  config: PretrainConfig | FinetuneConfig;
  backend: string;
  createdAt: string;
  updatedAt: string;
  step: number;
  totalSteps: number;
  manifestHash: string;
  parentDir: string;
  /** What the run recorded when it ended: final losses, fine-tuning results, the last evaluation. */
  summary: RunRecord;
  error: string;
}

/** Metric curves of a run: one series per (split, name). */
export interface RunMetrics {
  runId: number;
  series: { split: string; name: string; steps: number[]; values: number[] }[];
}

/** What `ctssl doctor` reports. */
export interface DoctorInfo {
  /** `threadCount`: the threads the backend computes with (wasm: its pool's size, 1 single-threaded; native: 0, libtensorflow decides). */
  backend: { name: string; package: string; version: string; simd: boolean; threads: boolean; threadCount?: number };
  /** Better backends that are not used, and why. */
  skipped: { package: string; reason: string }[];
  /** Training kernels this backend lacks, registered by the app. */
  fallbackKernels: string[];
  /** `gc`: how the trainer process collects garbage: 'single-threaded' where no core is free for V8's GC threads (src/platform/trainer-flags.ts), else 'parallel'. */
  cpu: { cores: number; model: string; gc?: 'single-threaded' | 'parallel' };
  memory: { totalGb: number; freeGb: number };
  /** Memory the presets' largest batches are computed for (free memory less 1 GB). */
  budgetGb: number;
  /** Per VQ-VAE preset; `params` at 1 input channel, `paramsByChannels` the trainable parameters at 1 and 3 (the reference's). */
  presets: { preset: string; size: number; params: number; paramsByChannels: { '1': number; '3': number }; activationsPerImageMb: number; largestBatch: number; gpuRecommended: boolean }[];
  /** How the memory estimates are made. */
  note: string;
  /**
   * The `paper` preset on a GPU workstation, per recipe (ours: 1 channel, batch 8; reference: 3
   * channels, batch 16): the largest batch per GPU of 24, 48 and 80 GB and the GPUs (data
   * parallel) the recipe's batch takes, from the memory estimate (src/core/ml/memory.ts); `note`
   * says how it is computed. Absent from doctors before it.
   */
  gpu?: {
    preset: string;
    recipes: { recipe: 'ours' | 'reference'; channels: number; batch: number; perImageMb: number; fixedMb: number; byGpu: { gb: number; largestBatch: number }[]; gpusFor: { gb: number; gpus: number | null }[] }[];
    note: string;
  };
}

/** A finished bias probe in the data folder (probes/<id>/), as listed by 'probe.list'. */
export interface ProbeSummary {
  id: string;
  /** ISO time the probe was started. */
  createdAt: string;
  scans: number;
  attributes: string[];
  /** Representations probed: the raw-slice baseline and one per encoder. */
  features: string[];
  folds: number | null;
  seed: number | null;
  dir: string;
}

/** An experiment grid as the app lists it. */
export interface ExperimentSummary {
  id: string;
  name: string;
  task: string;
  status: 'running' | 'done' | 'stopped' | 'failed' | 'incomplete';
  cells: number;
  completed: number;
  dir: string;
}

/**
 * A run a run starts from (its `init`, that run's `init`, …; for an experiment grid every
 * pretrained initialisation), as its patient split saw it.
 */
export interface SplitParent {
  dir: string;
  name: string;
  kind: 'pretrain' | 'finetune' | 'imported' | 'unknown';
  /** Patients of its training split that are in this run's cohort; null: unknown (no manifest, e.g. an imported encoder). */
  trainPatients: number | null;
  /** Why its patients cannot be checked, when they cannot. */
  note: string;
}

/**
 * How a run's patients were split beyond its seed, kept in its manifest.json (`split`): the runs it
 * descends from, the patients kept in training because one of them trained on them, and what the
 * user should know. Patients a parent trained on are never in validation or held-out unless the
 * run was created with `allowOverlap`, and then they are listed in `overlap`.
 */
export interface SplitLineage {
  /** The run whose manifest this one is (a curriculum stage keeps its parent's data and split). */
  inheritedFrom: string | null;
  parents: SplitParent[];
  /** Patient keys kept in the training split because a parent trained on them. */
  keptInTrain: string[];
  /** Patient keys a parent trained on that are in validation or held-out all the same (allowOverlap). */
  overlap: string[];
  /** Patients with a positive slice and those without were split apart (fine-tuning). */
  stratified: boolean;
  /** Patients the validation and held-out splits were due (the seeded split of the whole cohort) and got. */
  due: { val: number; test: number };
  warnings: string[];
}

/** One patient of a split, with its series. */
export interface SplitPatient {
  key: string;
  /** Fine-tuning: whether any of its slices is positive; null for pretraining. */
  positive: boolean | null;
  /** A parent run trained on this patient. */
  parentTrained: boolean;
  series: { id: number; uid: string; description: string; slices: number; positives: number | null }[];
}

/** Which patients and series are in each split of a run (runs.split; `split` of pretrain/finetune --json). */
export interface RunSplit {
  runId: number;
  manifestHash: string;
  seed: number;
  fractions: { train: number; val: number; test: number };
  /** Fine-tuning: slices carry labels and patients a class. */
  labelled: boolean;
  lineage: SplitLineage | null;
  splits: Record<'train' | 'val' | 'test', { patients: number; series: number; slices: number; positives: number | null; positivePatients: number | null; list: SplitPatient[] }>;
}

/** A folder of the server's file system as the folder picker lists it (files.listFolder): its sub-folders. */
export interface FolderListing {
  /** The folder, absolute, as asked (symbolic links in it kept). */
  path: string;
  /** Where it really is (links followed). */
  real: string;
  /** The folder above, or null at the root. */
  parent: string | null;
  /** Sub-folders, sorted by name; links to folders with their target. */
  entries: { name: string; path: string; link: string | null; hidden: boolean; problem: string | null }[];
  /** Files in the folder (counted, not listed). */
  files: number;
  /** Sub-folders beyond the listing's cap. */
  more: number;
  /** The server user's home folder. */
  home: string;
}

/** What "Try it on a synthetic cohort" made (library.synthCohort). */
export interface SyntheticCohortResult {
  /** The cohort's folder, under <data>/synthetic. */
  folder: string;
  patients: number;
  /** Files written (DICOM, SEG, label files, manifest). */
  files: number;
  nodules: number;
  /** PE-positive slices in its train.csv. */
  peSlices: number;
  /** Label files imported (LIDC XML per series, the RSNA-style train.csv). */
  labelFiles: number;
  seconds: number;
}

/** One slice of a run's held-out browser: grey PNG bytes (never paths). */
export interface HeldOutSliceImages {
  /** Slice index in the series' display order. */
  slice: number;
  input: Uint8Array;
  /** Reconstruction tasks: the model's output, the target and |output - target| x 4; null for classification tasks. */
  output: Uint8Array | null;
  target: Uint8Array | null;
  diff: Uint8Array | null;
  /** Mean squared error of this slice (reconstruction tasks). */
  mse: number | null;
  /** Classification tasks: the true and the predicted class. */
  label: number | null;
  predicted: number | null;
}

/** Every slice of one held-out series of a run, through its latest checkpoint (runs.heldOut). */
export interface HeldOutSeriesImages {
  split: 'train' | 'val' | 'test';
  /** The series' index in the run's manifest. */
  series: number;
  size: number;
  kind: 'recon' | 'class';
  checkpointStep: number;
  slices: HeldOutSliceImages[];
}

/** The held-out patients of a run and their series, for the Evaluate page's browser (runs.heldOutList). */
export interface HeldOutList {
  split: 'train' | 'val' | 'test';
  patients: { patient: string; series: { index: number; seriesUid: string; slices: number }[] }[];
}
