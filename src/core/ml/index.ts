/**
 * Training compute engine (pure: imports @tensorflow/tfjs only). NHWC float32 tensors throughout.
 * The Node side (backend choice) is in src/trainer/backend.ts.
 */
export { FALLBACK_KERNELS, customGradient, registerTrainingKernels, stopGradient } from './backend';
export * from './classifier';
export * from './layers';
export * from './losses';
export * from './optim';
export * from './train-step';
export * from './vqvae';
export * from './weights';
