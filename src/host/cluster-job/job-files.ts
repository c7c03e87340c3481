/**
 * What a cluster job folder holds besides its data, shared by the export, the import and the
 * equivalence test: job.json (the job's identity and the model's architecture) and where the
 * PyTorch program lives in this installation. (The initial weights are the app's own seeded
 * initialisation, src/core/ml/specs/params.ts initialWeights.)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PretrainConfig } from '../../shared/run-config';
import { appMeta } from '../../platform/app-meta';
import { pretrainArchitecture, type PretrainArchitecture } from '../../core/ml/specs/pretrain';
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

/** The folder of the PyTorch program in this installation (sources, the built app, a packaged app). */
export function programDir(): string {
  const dir = join(appMeta().root, 'resources', 'cluster-job');
  if (!existsSync(join(dir, 'train.py'))) throw new Error(`the cluster job program is missing from this installation (${dir})`);
  return dir;
}
