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
  volumes: number;
  images: number;
  /** Mean and sd across volumes (per-volume means), by metric: mse, maskedMse, ssim | crossEntropy, auroc. */
  perVolume: Record<string, Stat>;
  /** Mean and sd across images. */
  perImage: Record<string, Stat>;
  /** One-vs-rest AUROC per class (classification tasks). */
  aurocPerClass?: number[];
  /** Sample PNGs written in the run's eval/ folder. */
  samples: { input: string; output: string; target: string | null; diff: string | null }[];
  warnings: string[];
  /** The Table II row(s) as Markdown. */
  table: string;
}

// ---------------------------------------------------------------- fine-tuning (results.json, 'results')

interface HeldOut {
  /** The split scored: 'test', or another when the cohort is too small for a test split. */
  split: Split;
  slices: number;
  /** False when the numbers are on a split the model trained on. */
  heldOut: boolean;
}

export interface ClassificationResults extends HeldOut {
  task: 'classification';
  positives: number;
  auroc: number;
  /** Bootstrap 95% interval of the AUROC. */
  aurocCi95: [number, number];
  /** Youden-optimal threshold, chosen on `chosenOn` (validation), applied to the held-out split. */
  threshold: { method: 'youden'; chosenOn: Split; value: number };
  sensitivity: number;
  specificity: number;
  ppv: number;
  npv: number;
  roc: { fpr: number[]; tpr: number[] };
  /** Held-out scores and labels in a fixed order (for DeLong's test); results.json only. */
  scores: number[];
  labels: number[];
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
  iou: number;
  meanSliceDice: number;
  sdSliceDice: number;
  meanSliceIou: number;
  slicesScored: number;
}

/** Held-out results of a fine-tuning run (results.json and the trainer's 'results' event). */
export type FinetuneResults = ClassificationResults | UndefinedClassificationResults | SegmentationResults;

type Without<T, K extends string> = T extends unknown ? Omit<T, K & keyof T> : never;

/** Results as kept in the run's summary: no per-slice scores and labels, the ROC curve at most 256 points. */
export type RecordedResults = Without<FinetuneResults, 'scores' | 'labels'>;

/** Results as an experiment's report.json keeps them: no scores, labels or ROC curve. */
export type ReportedResults = Without<FinetuneResults, 'scores' | 'labels' | 'roc'>;

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

export interface BiasProbeResult {
  scans: number;
  middleSlices: { seriesUid: string; index: number; slices: number; areaPx: number }[];
  scores: ProbeScore[];
  files: { json: string; csv: string; svg: string; html: string };
  warnings: string[];
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

export interface ExperimentReport<R = FinetuneResults> {
  name: string;
  task: 'classification' | 'segmentation';
  metric: 'auroc' | 'dice';
  cells: ExperimentCell<R>[];
  /** Mean and 95% interval over seeds, per initialisation and fraction. */
  summary: { init: string; fraction: number; n: number; mean: number; lower: number; upper: number }[];
  /** Paired DeLong tests of each pretrained init against each baseline. */
  delong: { fraction: number; seed: number; pretrained: string; baseline: string; aurocPretrained: number; aurocBaseline: number; difference: number; p: number }[];
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
  training: { optimizer: string; lr: number; batchSize: number; steps: number; lossWeights: Partial<Record<string, number>>; seed: number; fractions: Record<Split, number> };
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
