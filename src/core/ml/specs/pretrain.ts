/**
 * The model a pretraining run trains, from its config alone: its input size and its architecture
 * (a VQ-VAE for the reconstruction tasks, the encoder-classifier with one output per class for the
 * classification tasks: the task's kind in src/shared/pretext-tasks.ts). Shared by
 * the trainer (which builds it) and the host (which describes it in a package), without
 * TensorFlow.js.
 */
import type { PretrainConfig } from '../../../shared/run-config';
import { isReconstructionTask, taskClasses } from '../../../shared/pretext-tasks';
import { type ClassifierConfig, classifierPreset, classifierSpecs } from './classifier';
import type { ParamSpec } from './params';
import { type VqvaeConfig, type VqvaePresetName, vqvaePreset, vqvaeSpecs } from './vqvae';

/** Input height = width of a run's model: the config's size, else its preset's. */
export function modelSize(config: Pick<PretrainConfig, 'size' | 'preset'>): number {
  return config.size ?? vqvaePreset(config.preset as VqvaePresetName).size;
}

export type PretrainArchitecture = ({ model: 'vqvae' } & VqvaeConfig) | ({ model: 'classifier' } & ClassifierConfig);

/** Input channels of a run's model: the config's (1 or 3), else 1. */
export function modelChannels(config: Pick<PretrainConfig, 'channels'>): number {
  return config.channels ?? 1;
}

/** The architecture of a pretraining run: its preset at the run's size and channels, for the run's task. */
export function pretrainArchitecture(config: Pick<PretrainConfig, 'size' | 'preset' | 'task' | 'channels'>): PretrainArchitecture {
  const size = modelSize(config);
  const channels = modelChannels(config);
  const preset = config.preset as VqvaePresetName;
  return isReconstructionTask(config.task)
    ? { model: 'vqvae' as const, ...vqvaePreset(preset, { size, channels }) }
    : { model: 'classifier' as const, ...classifierPreset(preset, taskClasses(config.task), { size, channels }) };
}

/** Every tensor of an architecture, in the app's order (the model the trainer builds from it has these). */
export function architectureSpecs(a: PretrainArchitecture): ParamSpec[] {
  return a.model === 'vqvae' ? vqvaeSpecs(a) : classifierSpecs(a);
}
