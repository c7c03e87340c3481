/**
 * What the services compute and hand back: label import reports, Table II evaluations,
 * fine-tuning results, bias probe results, experiment reports and the model card of an export.
 * Each is declared once, here, and used by its producer (src/library, src/trainer, src/host), by
 * the trainer protocol, by the IPC contract and by the renderer, which reads them as they are.
 *
 * Numbers a metric leaves undefined (an AUROC with one class, a PPV with no positive call, an
 * interval over one seed) are NaN; JSON writes NaN as null, so a result read back from a file, the
 * run list or the `ctssl serve` socket holds null there. The renderer's format helpers take both.
 */

/** A split of a run's manifest (by patient). */
import type { RunSplit } from './types';

export type Split = 'train' | 'val' | 'test';

// ---------------------------------------------------------------- label import (labels.import)

/** The label formats this app ships with (src/library/labels/label-formats.ts lists every registered one). */
export type BuiltinLabelKind = 'lidc-xml' | 'rsna-csv' | 'dicom-seg' | 'attributes-csv';
/** The kind of a label file: a registered format's. */
export type LabelKind = BuiltinLabelKind | (string & {});

/** What every import report has, whatever its format. */
export interface LabelImportReport {
  kind: LabelKind;
  file: string;
  sourceId: number;
  warnings: string[];
}

/** An LIDC ROI that matched no indexed slice, and why. */
export interface UnmatchedRoi {
  sopUid: string;
  reader: number;
  nodule: string;
  z: number | null;
  reason: string;
}

/** A folder of label files imported (labels.importFolder, `ctssl labels import FOLDER`): what happened to every file. */
export interface LabelFolderImport {
  folder: string;
  /** Regular files looked at. */
  files: number;
  /** Paths relative to the folder. */
  imported: { file: string; kind: LabelKind; format: string; sourceId: number; headline: string; incomplete: boolean; warnings: number }[];
  /** Not label files (or not looked into), and why. */
  skipped: { file: string; reason: string }[];
  /** Label files whose import failed, and the error. */
  failed: { file: string; kind: LabelKind; error: string }[];
  /** Imported files per kind. */
  byKind: Record<string, number>;
  /** Files not reached because the import was cancelled. */
  notStarted: number;
  cancelled: boolean;
  warnings: string[];
  seconds: number;
}

export interface LidcImportReport {
  kind: 'lidc-xml';
  file: string;
  sourceId: number;
  seriesInstanceUid: string;
  seriesIndexed: boolean;
  readers: number;
  nodules: number;
  smallNodules: number;
  nonNodules: number;
  /** Nodules after grouping the readers' annotations of the same lesion. */
  groupedNodules: number;
  rois: number;
  matchedRois: number;
  unmatchedRois: UnmatchedRoi[];
  warnings: string[];
}

export interface CsvImportReport {
  kind: 'rsna-csv' | 'attributes-csv';
  file: string;
  sourceId: number;
  rows: number;
  matchedRows: number;
  unmatchedRows: number;
  /** The first unmatched rows, with the reason. */
  unmatched: { row: number; key: string; reason: string }[];
  exams?: number;
  positiveImages?: number;
  warnings: string[];
}

export interface SegImportReport {
  kind: 'dicom-seg';
  file: string;
  sourceId: number;
  seriesInstanceUid: string;
  segments: { number: number; label: string; frames: number; areaPx: number }[];
  frames: number;
  matchedFrames: number;
  unmatchedFrames: { frame: number; sopUid: string; reason: string }[];
  warnings: string[];
}

/** What importing a label file matched, what it did not and why; by kind of file. */
export type ImportReport = LidcImportReport | CsvImportReport | SegImportReport;

/**
 * What an import report says, in rows a researcher can read (its format's `describe`, in
 * src/library/labels/formats/): the app's report panel shows it, `ctssl labels import` prints `text`.
 */
export interface ReportView {
  kind: LabelKind;
  /** The format's name ('LIDC-IDRI XML'). */
  format: string;
  file: string;
  headline: string;
  /** [label, value] pairs in display order. */
  facts: [string, string][];
  /** Items that did not match an indexed image, with the reason. */
  unmatched: { what: string; reason: string }[];
  /** How many unmatched items the file had (the list may be cut short by the services). */
  unmatchedCount: number;
  warnings: string[];
  /** True when something did not match or the series is not indexed. */
  incomplete: boolean;
  /** The report as the command line prints it. */
  text: string;
}

/** What labels.import answers: the report, and what it says. */
export type LabelImport = ImportReport & { view: ReportView };

// ---------------------------------------------------------------- Table II (runs.evaluate)

/** Mean and standard deviation over n items. */
export interface Stat {
  mean: number;
  sd: number;
  n: number;
}

/** A pretext task evaluated on held-out scans: the paper's Table II numbers and sample images. */
export interface SslEvaluation {
  runDir: string;
  task: string;
  maskPercent: number | null;
  maskDefinition: string | null;
  split: Split;
  checkpointStep: number;
  backend: string;
  /** Patients of the evaluated images (absent in evaluations made before it was counted). */
  patients?: number;
  volumes: number;
  images: number;
  /**
   * Mean and sd across volumes (per-volume means), by metric: mse, maskedMse, ssim | crossEntropy,
   * auroc; and in the paper's definitions (src/shared/paper-table2.ts) maskedMseBatchSum |
   * crossEntropyDoubleSoftmax (absent in evaluations made before them).
   */
  perVolume: Record<string, Stat>;
  /** Mean and sd across images. */
  perImage: Record<string, Stat>;
  /** One-vs-rest AUROC per class (classification tasks). */
  aurocPerClass?: number[];
  /** Sample PNGs written in the run's eval/ folder. */
  samples: { input: string; output: string; target: string | null; diff: string | null }[];
  /** Among them: fewer than 10 held-out patients, an evaluation on a split that is not held out. */
  warnings: string[];
  /** The Table II row(s) as Markdown. */
  table: string;
}

// ---------------------------------------------------------------- fine-tuning (results.json, 'results')

/**
 * Early stopping of a fine-tuning run (its `earlyStopPatience`): the validation metric it watched,
 * the evaluation whose weights were kept (and scored on the held-out split), and where it stopped.
 */
export interface EarlyStopRecord {
  /** Validation evaluations in a row without a gain before the run stops. */
  patience: number;
  metric: 'auroc' | 'dice';
  /** Steps between evaluations. */
  evalEvery: number;
  evaluations: number;
  /** Step of the best validation value, whose weights the run kept (-1: no defined value, the last weights kept). */
  bestStep: number;
  bestValue: number;
  /** Step at which the run stopped early; null when it trained all its steps. */
  stoppedAtStep: number | null;
}

interface HeldOut {
  /** Present when the run watched validation to stop early (`earlyStopPatience`): which weights these numbers are of. */
  earlyStop?: EarlyStopRecord;
  /** The split scored: 'test', or another when the cohort is too small for a test split. */
  split: Split;
  slices: number;
  /** False when the numbers are on a split the model trained on. */
  heldOut: boolean;
  /** Patients in the scored split (absent in results written before patient-level statistics). */
  patients?: number;
  /**
   * What the reader must know about these numbers: a split with fewer than 10 patients or fewer
   * than 20 positive slices, a bootstrap with many undefined resamples (absent in older results).
   */
  warnings?: string[];
}

/** How an interval was computed: the patient-level (cluster) percentile bootstrap. */
export interface PatientBootstrap {
  unit: 'patient';
  /** Resamples of the patients drawn, and those where the metric is defined. */
  resamples: number;
  valid: number;
  seed: number;
}

export interface ClassificationResults extends HeldOut {
  task: 'classification';
  /** Positive slices, and the patients with at least one (absent in older results). */
  positives: number;
  positivePatients?: number;
  auroc: number;
  /**
   * 95% interval of the AUROC: a patient-level (cluster) percentile bootstrap, as `ci` says;
   * results without `ci` (written before it) hold a slice-level bootstrap, which ignores that
   * slices of a patient are alike and is too narrow.
   */
  aurocCi95: [number, number];
  ci?: PatientBootstrap;
  /** Youden-optimal threshold, chosen on `chosenOn` (validation), applied to the held-out split. */
  threshold: { method: 'youden'; chosenOn: Split; value: number };
  sensitivity: number;
  specificity: number;
  ppv: number;
  npv: number;
  roc: { fpr: number[]; tpr: number[] };
  /** Held-out scores and labels in a fixed order (for the paired tests of an experiment); results.json only. */
  scores: number[];
  labels: number[];
  /**
   * Each held-out slice's patient, as an index 0..patients-1 in order of first appearance (no
   * identifier), for the patient-level tests; results.json only (absent in older results).
   */
  patientOfSlice?: number[];
}

/** Classification whose held-out split has one class only: no AUROC. */
export interface UndefinedClassificationResults extends HeldOut {
  task: 'classification';
  error: string;
}

export interface SegmentationResults extends HeldOut {
  task: 'segmentation';
  /** Dice and IoU over every pixel of the split. */
  dice: number;
  /**
   * 95% interval of `dice` by a patient-level percentile bootstrap (the pooled Dice of the drawn
   * patients' slices), as `ci` says; absent in older results.
   */
  diceCi95?: [number, number];
  ci?: PatientBootstrap;
  /** Slices with a ground-truth mask (absent in older results). */
  positives?: number;
  iou: number;
  meanSliceDice: number;
  sdSliceDice: number;
  meanSliceIou: number;
  slicesScored: number;
}

/** Held-out results of a fine-tuning run (results.json and the trainer's 'results' event). */
export type FinetuneResults = ClassificationResults | UndefinedClassificationResults | SegmentationResults;

type Without<T, K extends string> = T extends unknown ? Omit<T, K & keyof T> : never;

/** The per-slice arrays of results.json. */
export type PerSliceField = 'scores' | 'labels' | 'patientOfSlice';

/** Results as kept in the run's summary: no per-slice scores, labels and patients, the ROC curve at most 256 points. */
export type RecordedResults = Without<FinetuneResults, PerSliceField>;

/** Results as an experiment's report.json keeps them: no per-slice arrays or ROC curve. */
export type ReportedResults = Without<FinetuneResults, PerSliceField | 'roc'>;

/** What a run's summary records once it ended (all absent for a run that never finished). */
export interface RunRecord {
  finalLosses?: Record<string, number>;
  step?: number;
  /** Fine-tuning: the held-out results. */
  results?: RecordedResults;
  /** Pretraining: the last Table II evaluation. */
  eval?: SslEvaluation;
}

// ---------------------------------------------------------------- bias probe (probe.run, probe.result)

export type ProbeAttribute = 'sex' | 'ethnicGroup' | 'ageGroup';

/** What the probe needs from the library, so the trainer process reads files only. */
export interface ProbeManifest {
  scans: {
    seriesId: number;
    seriesUid: string;
    attrs: Record<ProbeAttribute, string>;
    planes: { path: string; frame: number }[];
    transform: { transpose: boolean; flipX: boolean; flipY: boolean };
  }[];
}

/** Cross-validated AUROC of one attribute from one set of features (raw slices or an encoder's embeddings). */
export interface ProbeScore {
  features: string;
  attribute: ProbeAttribute;
  classes: string[];
  n: number;
  auroc: number;
  ci95: [number, number] | null;
  perClass: number[];
}

/** The scans a bias probe left out: those a probed encoder (or a run it started from) trained or validated on. */
export interface ProbeExclusion {
  /** Scans left out in all. */
  scans: number;
  /** Per encoder checked (its run folder's name): the scans of the cohort it trained or validated on. */
  byEncoder: { encoder: string; scans: number }[];
  /** Encoders without a run manifest (imported): not checked, nothing left out for them. */
  unchecked: string[];
  /** True when asked to include them (nothing left out: not held out). */
  training: boolean;
}

export interface BiasProbeResult {
  scans: number;
  middleSlices: { seriesUid: string; index: number; slices: number; areaPx: number }[];
  /** Per attribute: the CNN trained from scratch on raw slices (the paper's baseline), the logistic regression on raw 16x16 slices, then each encoder. */
  scores: ProbeScore[];
  files: { json: string; csv: string; svg: string; html: string };
  warnings: string[];
  /** What was left out as seen by an encoder (absent in probes before it). */
  excluded?: ProbeExclusion;
}

// ---------------------------------------------------------------- experiments (experiments.report)

/** One run of an experiment grid; `R` is the form of its results (full in the host, reduced in report.json). */
export interface ExperimentCell<R = FinetuneResults> {
  /** 'random', 'cnn' or the pretrained run's folder. */
  init: string;
  initLabel: string;
  fraction: number;
  seed: number;
  runDir: string;
  /** 'pending' or the run's final status. */
  status: string;
  results: R | null;
}

/** What a paired comparison concludes, at Holm-adjusted p < 0.05. */
export type ComparisonVerdict = 'pretrained higher' | 'baseline higher' | 'no significant difference' | 'not testable';

/**
 * A pretrained initialisation against a baseline (random init or the supervised CNN) at one
 * training fraction, on the same held-out slices: for one seed (both runs trained with it), or
 * pooled over the seeds both have (`seed` null: the mean over seeds of the AUROC difference).
 */
export interface PairedComparison {
  pretrained: string;
  baseline: string;
  fraction: number;
  /** The seed of both runs, or null for the test pooled over `seeds`. */
  seed: number | null;
  seeds: number[];
  /** AUROC of each (the mean over `seeds` when pooled) and their difference, pretrained - baseline. */
  aurocPretrained: number;
  aurocBaseline: number;
  difference: number;
  /**
   * Primary, patient-level: the patient (cluster) bootstrap of the difference, its 95% interval
   * (clipped to [-1, 1]) and two-sided p (bootstrap standard error, Student's t with patients - 1
   * degrees of freedom); NaN when it cannot be computed (older results without patients, a single
   * patient).
   */
  ci95: [number, number];
  p: number;
  /** p adjusted by Holm over every patient-level test of the report. */
  pHolm: number;
  verdict: ComparisonVerdict;
  /** The held-out split compared on. */
  patients: number;
  slices: number;
  positives: number;
  /**
   * Secondary, per seed only: DeLong's test on slices, which assumes independent slices and is
   * too confident when a patient contributes many; null when pooled or undefined.
   */
  sliceLevelP: number | null;
}

/** How a report's tests were made, in numbers and words. */
export interface ReportStatistics {
  /** Resamples of the patients per bootstrap, and their seed (the same resamples for every comparison). */
  resamples: number;
  seed: number;
  /** Patient-level tests in the Holm family. */
  family: number;
  alpha: number;
  /** One paragraph for the reader. */
  method: string;
}

export interface ExperimentReport<R = FinetuneResults> {
  name: string;
  task: 'classification' | 'segmentation';
  metric: 'auroc' | 'dice';
  cells: ExperimentCell<R>[];
  /**
   * Per initialisation and fraction: mean and 95% t interval over seeds (training variability on
   * a fixed test set), and the patient-level bootstrap 95% interval of that mean (test-set
   * sampling; null when the results hold no patients).
   */
  summary: { init: string; fraction: number; n: number; mean: number; lower: number; upper: number; patientCi95?: [number, number] | null }[];
  /** Paired comparisons of each pretrained init against each baseline (classification). */
  comparisons: PairedComparison[];
  statistics: ReportStatistics;
  /** Small held-out split, runs whose results predate patient-level statistics. */
  warnings: string[];
  /** Segmentation: iterations to reach the Dice level. */
  iterationsToReach: { init: string; fraction: number; level: number; meanIterations: number | null; runsReaching: number; runs: number }[];
  files: { csv: string; html: string; json: string; svg: string[] };
  /** The patient split every run of the grid shares (its first created run's); absent in reports written before it was kept. */
  split?: RunSplit | null;
}

/** An experiment's report.json. */
export type SavedExperimentReport = ExperimentReport<ReportedResults>;

// ---------------------------------------------------------------- export (runs.export)

/** The training data of an exported encoder, in counts only (no identifiers). */
export interface DataSummary {
  patients: number;
  studies: number;
  series: number;
  slices: number;
  bySplit: Record<Split, { patients: number; series: number; slices: number }>;
  scanners: { manufacturer: string; model: string; series: number }[];
  sliceThicknessMm: { min: number | null; max: number | null };
  studyYears: { from: number | null; to: number | null };
}

/** The model card of a weights package (model-card.json). */
export interface ModelCard {
  name: string;
  intendedUse: string;
  data: DataSummary;
  /** recipe: 'ours' or 'reference' (the authors' public code, src/shared/recipes.ts); absent in cards written before recipes. */
  training: { recipe?: string; optimizer: string; lr: number; batchSize: number; steps: number; lossWeights: Partial<Record<string, number>>; seed: number; fractions: Record<Split, number> };
  task: { name: string; maskPercent: number | null; maskDefinition: string | null; gap: number | null; noiseFraction: number | null };
  /** The chain of runs the encoder was trained through, oldest first. */
  curriculum: { task: string; maskPercent: number | null; maskDefinition: string | null; steps: number | null; epochs: number | null }[];
  pretextMetrics: { split: Split | null; perVolume: Record<string, Stat>; perImage: Record<string, Stat>; volumes: number | null; images: number | null } | null;
  finalTrainingLosses: Record<string, number>;
  downstream: null;
  limitations: string[];
  licence: string;
  author: string;
  ledger: PackageLedger;
}

/** The reproducibility ledger of a weights package (ledger.json, and in the model card). */
export interface PackageLedger {
  app: string;
  appVersion: string;
  exportedAt: string;
  /** The exported run's uid and the app version it was trained with (its run.json), when recorded. */
  runUid: string | null;
  trainedWith: { appVersion: string | null; backend: string | null };
  backendAtExport: string;
  seeds: { run: number };
  manifestHash: string;
  configHash: string;
  checkpoint: { step: number; savedAt: string };
}

/**
 * A cluster job written for PyTorch DDP (src/host/cluster-job/export-job.ts), as `ctssl job
 * export --json` prints it and the app shows it.
 */
export interface ClusterJobExport {
  /** The job folder. */
  dir: string;
  jobId: string;
  task: string;
  preset: string;
  size: number;
  dtype: 'int16' | 'uint8';
  slices: { train: number; val: number };
  /** Held-out slices that stay home (for eval-ssl after the import). */
  heldOut: number;
  shards: number;
  bytes: number;
  seconds: number;
  /** Files and folders of the job, relative to it. */
  files: string[];
  /** How to run it (the job README's commands) and bring it home. */
  commands: { oneNode: string; oneProcess: string; slurm: string; importBack: string };
}

/** A cluster job's output brought home as a run (src/host/cluster-job/import-job.ts). */
export interface ClusterJobImport {
  /** The run folder made for it. */
  dir: string;
  jobId: string;
  task: string;
  preset: string;
  step: number;
  totalSteps: number;
  /** Curve points recorded from metrics.jsonl, and the lines left out (malformed or past the checkpoint). */
  metrics: { points: number; skippedLines: number };
  /** True when this checkpoint had been imported before (the existing run is returned). */
  existing: boolean;
}
