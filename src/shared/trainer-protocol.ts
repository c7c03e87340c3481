/**
 * The versioned message protocol between a host (Electron main, `ctssl serve`, the CLI) and the
 * trainer process (an Electron utility process or a Node child process: one entry,
 * src/utility/trainer.ts). Messages travel by structured clone, so typed arrays cross as they are.
 */
import type { HeldOutSeriesImages } from './types';
import type { BiasProbeResult, FinetuneResults, ProbeAttribute, ProbeManifest, Split, SslEvaluation } from './results';
import type { BackendName } from './backends';
import type { DoctorInfo } from './types';
import type { PredictionComputation, PredictSeries } from './predict';

export const TRAINER_PROTOCOL = 1;

/**
 * What the trainer computes for the bias probe: the result without its files, the feature sets in
 * order (the raw slice, then each encoder) and the settings used (src/host/probe.ts writes the
 * report from it).
 */
export type ProbeComputation = Omit<BiasProbeResult, 'files'> & { features: string[]; attributes: ProbeAttribute[]; folds: number; seed: number };

export type HostMessage =
  | {
      v: 1;
      type: 'start';
      /** Run folder holding config.json and manifest.json; checkpoints and metrics go here. */
      runDir: string;
      /** Continue from the latest checkpoint when there is one. */
      resume: boolean;
      /** Folder of the preprocessed-slice cache, or null for none. */
      cacheDir: string | null;
      /** Force a backend (a name of src/shared/backends.ts); default: the best present. */
      backend?: BackendName;
    }
  | {
      v: 1;
      type: 'evaluate';
      runDir: string;
      split?: Split;
      maxSlices?: number;
      cacheDir: string | null;
      backend?: BackendName;
    }
  | {
      v: 1;
      type: 'held-out';
      /** Pretraining run folder: every slice of one series of its held-out split through its latest checkpoint. */
      runDir: string;
      /** The series' index in the run's manifest. */
      series: number;
      cacheDir: string | null;
      backend?: BackendName;
    }
  | { v: 1; type: 'doctor' }
  | {
      v: 1;
      type: 'probe';
      /** Scans with their attributes and slice files, prepared by the host from the library. */
      manifest: ProbeManifest;
      encoders: string[];
      attributes?: ProbeAttribute[];
      folds?: number;
      seed?: number;
      backend?: BackendName;
      /** The CNN baseline's settings (src/trainer/bias-probe.ts DEFAULT_CNN_BASELINE for the rest). */
      cnn?: { preset?: 'paper' | 'standard' | 'small' | 'tiny'; size?: number; steps?: number; batch?: number; lr?: number };
    }
  | {
      v: 1;
      type: 'export-encoder';
      /** Pretraining run folder: the encoder is built from its config.json and latest checkpoint. */
      runDir: string;
      /** An existing folder the host made for the files (model.json, weights.bin). */
      outDir: string;
    }
  | {
      v: 1;
      type: 'predict';
      /** Fine-tuning run folder: the model is built from its config.json and latest checkpoint. */
      runDir: string;
      /** The series, its slices in display order, prepared by the host from the library. */
      series: PredictSeries;
      /** Segmentation: foreground where the probability is at least this (default 0.5). */
      threshold?: number;
      backend?: BackendName;
    }
  | { v: 1; type: 'pause' }
  | { v: 1; type: 'resume' }
  | { v: 1; type: 'stop' };

export interface StepEvent {
  v: 1;
  type: 'step';
  step: number;
  epoch: number;
  /** Every loss term of the step (loss, mse, maskedMse, vq, ssim | loss, accuracy). */
  losses: Record<string, number>;
  lr: number;
  slicesPerSecond: number;
  etaSeconds: number | null;
  memory: { rssMb: number; tensors: number };
}

export type TrainerEvent =
  | { v: 1; type: 'ready'; pid: number; backend: { name: string; version: string; package: string; simd: boolean; threads: boolean } }
  | { v: 1; type: 'started'; step: number; totalSteps: number; batchesPerEpoch: number; params: number; resumedFrom: number | null }
  | StepEvent
  | { v: 1; type: 'eval'; step: number; split: 'val'; metrics: Record<string, number> }
  | {
      v: 1;
      type: 'sample';
      step: number;
      size: number;
      /** Input, model output and target of one validation example, each size x size in [0, 1]. */
      input: Float32Array;
      output: Float32Array;
      target: Float32Array | null;
      /** Classification tasks: true and predicted class. */
      label?: number;
      predicted?: number;
    }
  | { v: 1; type: 'checkpoint'; step: number; dir: string }
  | { v: 1; type: 'paused'; step: number }
  | { v: 1; type: 'resumed'; step: number }
  | { v: 1; type: 'done'; step: number; stopped: boolean; finalLosses: Record<string, number> }
  /** Table II evaluation of a run (answer to 'evaluate'). */
  | { v: 1; type: 'evaluation'; result: SslEvaluation }
  | { v: 1; type: 'held-out-images'; result: HeldOutSeriesImages }
  /** Fine-tuning: held-out results at the end of a run (also written to results.json). */
  | { v: 1; type: 'results'; results: FinetuneResults }
  /** Backends, memory and presets (answer to 'doctor'). */
  | { v: 1; type: 'doctor'; info: DoctorInfo }
  | { v: 1; type: 'probe-progress'; done: number; total: number; what: string }
  /** The bias probe's numbers (answer to 'probe'); the host writes the report from them. */
  | { v: 1; type: 'probe-result'; result: ProbeComputation }
  /** The encoder as a TF.js layers model, written into outDir (answer to 'export-encoder'). */
  | { v: 1; type: 'encoder-exported'; files: string[]; step: number; backend: { name: string; version: string; package: string } }
  /** Inference on a series: slices done (answer to 'predict' comes as 'prediction'). */
  | { v: 1; type: 'predict-progress'; done: number; total: number }
  | { v: 1; type: 'prediction'; result: PredictionComputation }
  | { v: 1; type: 'error'; message: string };
