/**
 * What a cluster job folder holds besides its data, shared by the export, the import and the
 * equivalence test: job.json (the job's identity and the model's architecture), the initial
 * weights (the app's seeded initialisation, computed without TensorFlow.js from the model's specs),
 * and where the PyTorch program lives in this installation.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PretrainConfig } from '../../shared/run-config';
import { appMeta } from '../../platform/app-meta';
import { mulberry32 } from '../../core/random';
import { encoderSpecs } from '../../core/ml/specs/vqvae';
import { classifierSpecs } from '../../core/ml/specs/classifier';
import { vqvaeSpecs } from '../../core/ml/specs/vqvae';
import { pretrainArchitecture, type PretrainArchitecture } from '../../core/ml/specs/pretrain';
import type { ParamSpec, WeightEntry } from '../../core/ml/specs/params';
import { configHash } from '../../library/runs/run-hash';

export const JOB_FORMAT = 'ctssl-cluster-job';
export const JOB_VERSION = 1;
export const JOB_DATA_FORMAT = 'ctssl-cluster-job-data';

/** The files of the PyTorch program, copied into every job folder. */
export const PROGRAM_FILES = ['train.py', 'model.py', 'README.md', 'slurm.sbatch'] as const;

/** job.json: who made the job, for which config and data, and the model the program builds. */
export interface JobDescription {
  format: typeof JOB_FORMAT;
  version: typeof JOB_VERSION;
  jobId: string;
  createdAt: string;
  app: string;
  appVersion: string;
  task: string;
  preset: string;
  /** configHash(config.json) and the manifest's hash: checkpoints carry both, and the import checks them. */
  configHash: string;
  manifestHash: string;
  architecture: PretrainArchitecture;
  /** The VQ codebook starts on encoder outputs of the first batch (config.codebookInit 'data', no init run). */
  codebookFromData: boolean;
  /** The run this one continues (a curriculum stage): its weights are init.safetensors. */
  initFrom: string | null;
}

export function jobDescription(config: PretrainConfig, manifestHash: string, jobId: string, createdAt = new Date().toISOString()): JobDescription {
  const architecture = pretrainArchitecture(config);
  return {
    format: JOB_FORMAT,
    version: JOB_VERSION,
    jobId,
    createdAt,
    app: appMeta().productName,
    appVersion: appMeta().version,
    task: config.task,
    preset: config.preset,
    configHash: configHash(config),
    manifestHash,
    architecture,
    codebookFromData: architecture.model === 'vqvae' && config.codebookInit === 'data' && !config.init,
    initFrom: config.init ?? null,
  };
}

/** Every tensor of an architecture, in the app's order. */
export function architectureSpecs(a: PretrainArchitecture): ParamSpec[] {
  if (a.model === 'vqvae') {
    const { model: _m, ...c } = a;
    void _m;
    return vqvaeSpecs(c);
  }
  const { model: _m, ...c } = a;
  void _m;
  return classifierSpecs(c);
}

/** The encoder's tensors of an architecture (what every pretext model shares). */
export function architectureEncoderNames(a: PretrainArchitecture): Set<string> {
  return new Set(encoderSpecs(a).map((s) => s.name));
}

/**
 * The app's initial weights of a model (src/core/ml/weights.ts createStore): one mulberry32 stream
 * seeded by the run's seed, uniform(+-bound) or constant per spec, parameters and buffers in spec
 * order. Pure, so the host computes them without TensorFlow.js.
 */
export function initialWeights(specs: ParamSpec[], seed: number): WeightEntry[] {
  const rng = mulberry32(seed);
  const params: WeightEntry[] = [];
  const buffers: WeightEntry[] = [];
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (s.init.kind === 'uniform') for (let i = 0; i < n; i++) data[i] = (rng() * 2 - 1) * s.init.bound;
    else data.fill(s.init.value);
    (s.trainable ? params : buffers).push({ name: s.name, shape: [...s.shape], dtype: 'float32', data });
  }
  return [...params, ...buffers];
}

/** The folder of the PyTorch program in this installation (sources, the built app, a packaged app). */
export function programDir(): string {
  const dir = join(appMeta().root, 'resources', 'cluster-job');
  if (!existsSync(join(dir, 'train.py'))) throw new Error(`the cluster job program is missing from this installation (${dir})`);
  return dir;
}
