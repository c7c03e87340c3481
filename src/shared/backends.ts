/**
 * The compute backends, by name: what every layer may name without loading TensorFlow.js. Every
 * `--backend` option of the CLI lists these names, the trainer protocol and the host's run and
 * evaluation options carry one, `CTSSL_BACKEND` takes one, and the doctor and the pretrain form give
 * their advice from here. How a backend is found and started (its packages, its probe) is its entry
 * in src/trainer/backend.ts, the only layer that loads tfjs; the order here is the order the trainer
 * tries them in when none is forced.
 *
 * Adding a backend: its entry here and its probe there (the type checker asks for it). Tests and
 * plug-ins add one at run time with `registerBackend` of src/trainer/backend.ts.
 *
 * Pure data and tiny helpers, without the schema library (the CLI reads this at start-up).
 */

export interface BackendDescription {
  /** The choice (`--backend`, `CTSSL_BACKEND`), and the tfjs backend's name once it runs. */
  readonly name: string;
  /** What it needs on the workstation. */
  readonly needs: string;
  /** What it is good for. */
  readonly usedFor: string;
  /** Runs the presets the doctor calls GPU jobs (paper, standard) at their speed. */
  readonly gpuJobs: boolean;
  /** What to do to have it (the doctor's advice when a GPU job meets a backend without `gpuJobs`). */
  readonly advice: string;
}

/** The backends this app ships with, best first. */
export const BUILTIN_BACKENDS = [
  {
    name: 'tensorflow',
    needs:
      '@tensorflow/tfjs-node-gpu (Linux x86-64, NVIDIA GPU, driver >= 450, CUDA 11.2, cuDNN 8.1) or @tensorflow/tfjs-node (libtensorflow on the CPU); optional dependencies, downloaded by npm install',
    usedFor: 'training at full size (the paper preset needs the GPU build)',
    gpuJobs: true,
    advice: 'install tfjs-node-gpu with CUDA',
  },
  {
    name: 'wasm',
    needs: 'nothing (@tensorflow/tfjs-backend-wasm, always present)',
    usedFor: 'CPU training of small presets, tests',
    gpuJobs: false,
    advice: 'always present',
  },
  {
    name: 'cpu',
    needs: 'nothing (pure JavaScript)',
    usedFor: 'last resort; far too slow for training',
    gpuJobs: false,
    advice: 'always present',
  },
] as const satisfies readonly BackendDescription[];

/** The backends this app ships with. */
export type BuiltinBackendName = (typeof BUILTIN_BACKENDS)[number]['name'];
/** A registered backend's name: a built-in one, or one added with `registerBackend`. */
export type BackendName = BuiltinBackendName | (string & {});

const registry: BackendDescription[] = [...BUILTIN_BACKENDS];

/** Every registered backend, best first. */
export function backends(): readonly BackendDescription[] {
  return registry;
}

/** The registered backend names, best first (the choices of every `--backend`). */
export function backendNames(): string[] {
  return registry.map((b) => b.name);
}

export function isBackendName(name: unknown): name is BackendName {
  return typeof name === 'string' && registry.some((b) => b.name === name);
}

/** The backend of this name, or undefined. */
export function backendInfo(name: string): BackendDescription | undefined {
  return registry.find((b) => b.name === name);
}

/** The advice for a GPU job on a backend that does not run one at speed: the first backend that does. */
export function gpuAdvice(): string | null {
  return registry.find((b) => b.gpuJobs)?.advice ?? null;
}

/**
 * Adds a backend's description (src/trainer/backend.ts `registerBackend` adds its probe with it),
 * tried after the ones before it.
 */
export function registerBackendInfo(b: BackendDescription): void {
  if (isBackendName(b.name)) throw new Error(`compute backend '${b.name}' is registered already`);
  registry.push(b);
}

/** Removes a backend added with `registerBackendInfo` (tests); built-in backends stay. */
export function unregisterBackendInfo(name: string): void {
  const i = registry.findIndex((b) => b.name === name);
  if (i >= BUILTIN_BACKENDS.length) registry.splice(i, 1);
}
