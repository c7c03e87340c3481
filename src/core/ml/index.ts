/**
 * Training compute engine (pure: imports @tensorflow/tfjs only). NHWC float32 tensors throughout.
 * The Node side (backend choice, worker pool) is in src/trainer/backend.ts and ml-workers.ts.
 */
export { FALLBACK_KERNELS, customGradient, registerTrainingKernels, stopGradient } from './backend';
export * from './classifier';
export * from './layers';
export * from './losses';
export * from './optim';
export * from './train-step';
export * from './vqvae';
export * from './weights';
