/**
 * The compute backends' registry (name, packages, probe; their descriptions and advice are in
 * src/shared/backends.ts), and choosing the best tfjs backend present in this Node process.
 *
 * Order: 'tensorflow' (`@tensorflow/tfjs-node-gpu`, CUDA, then `@tensorflow/tfjs-node`, libtensorflow
 * on the CPU), 'wasm' (XNNPACK, SIMD; its .wasm files are located on disk under
 * node_modules/@tensorflow/tfjs-backend-wasm/dist), then the pure-JS 'cpu' backend.
 * `CTSSL_BACKEND=<name>` (or the `force` option) picks one; a forced backend that cannot load is an
 * error. After initialisation the training fallback kernels of `src/core/ml/backend.ts` are
 * registered for the chosen backend.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { registerTrainingKernels } from '../core/ml/backend';
import {
  backendNames,
  isBackendName,
  registerBackendInfo,
  unregisterBackendInfo,
  type BackendDescription,
  type BackendName,
  type BuiltinBackendName,
} from '../shared/backends';

/** A backend to force: one of src/shared/backends.ts. */
export type BackendChoice = BackendName;

export interface BackendInfo {
  /** tfjs backend name: 'tensorflow' (tfjs-node / tfjs-node-gpu), 'wasm' or 'cpu'. */
  name: string;
  /** Version of the package providing the backend. */
  version: string;
  /** Package that provided it, e.g. '@tensorflow/tfjs-node-gpu'. */
  package: string;
  /** wasm: SIMD build in use; native backends: true; cpu: false. */
  simd: boolean;
  /** wasm: threads in use (always false in Node); native: true; cpu: false. */
  threads: boolean;
  /** Why better backends were not used (package absent, failed to load...). */
  skipped: { package: string; reason: string }[];
  /** Fallback kernels registered for training (see src/core/ml/backend.ts). */
  fallbackKernels: string[];
}

export interface InitBackendOptions {
  /** Force a backend (a name of src/shared/backends.ts); default: env CTSSL_BACKEND, else the best present. */
  force?: BackendChoice;
}

const requireHere = createRequire(import.meta.url);

function packageVersion(pkg: string): string {
  try {
    const p = requireHere.resolve(`${pkg}/package.json`);
    return (requireHere(p) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Directory holding tfjs-backend-wasm's .wasm files, with a trailing slash. */
export function wasmDistDir(): string {
  const main = requireHere.resolve('@tensorflow/tfjs-backend-wasm');
  let dir = dirname(main);
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'tfjs-backend-wasm-simd.wasm'))) return dir + '/';
    const dist = join(dir, 'dist');
    if (existsSync(join(dist, 'tfjs-backend-wasm-simd.wasm'))) return dist + '/';
    dir = dirname(dir);
  }
  throw new Error(`cannot find tfjs-backend-wasm .wasm files near ${main}`);
}

/** What a backend's probe found: the backend runs, with these capabilities. */
export interface BackendProbe {
  /** wasm: SIMD build in use; native backends: true; cpu: false. */
  simd: boolean;
  /** wasm: threads in use (always false in Node); native: true; cpu: false. */
  threads: boolean;
}

/**
 * A compute backend: its name (its description, advice included, is its entry in
 * src/shared/backends.ts), the packages that provide it, tried in order, and its probe.
 */
export interface ComputeBackend {
  readonly name: string;
  /** Packages that provide it, tried in order (the first that loads is used). */
  readonly packages: readonly string[];
  /** Loads `pkg` and makes it tfjs's backend, or throws saying why it cannot. */
  probe(pkg: string): Promise<BackendProbe>;
  /** The error when this backend was forced and none of its packages loads (default: the last package's error). */
  unavailable?(skipped: { package: string; reason: string }[]): string;
}

async function probeNative(pkg: string): Promise<BackendProbe> {
  // The module name is held in a variable so that bundlers leave it alone and its absence is a
  // run-time condition. Any error (missing module, missing libtensorflow, wrong ABI, no CUDA)
  // means "not available".
  const name: string = pkg;
  await import(/* @vite-ignore */ name);
  const ok = await tf.setBackend('tensorflow');
  if (!ok) throw new Error('setBackend(tensorflow) returned false');
  await tf.ready();
  return { simd: true, threads: true };
}

async function probeWasm(): Promise<BackendProbe> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(wasmDistDir());
  // The threaded build needs a browser-style worker setup; Node runs the SIMD build.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('setBackend(wasm) returned false');
  await tf.ready();
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  return { simd, threads: false };
}

async function probeCpu(): Promise<BackendProbe> {
  const ok = await tf.setBackend('cpu');
  if (!ok) throw new Error('cannot initialise the cpu backend');
  await tf.ready();
  return { simd: false, threads: false };
}

/** The built-in backends' probes, one per name of src/shared/backends.ts. */
const BUILTIN = {
  tensorflow: {
    name: 'tensorflow',
    packages: ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'],
    probe: probeNative,
    unavailable: (skipped) => `CTSSL_BACKEND=tensorflow but no native backend loads: ${skipped.map((s) => `${s.package}: ${s.reason}`).join('; ')}`,
  },
  wasm: { name: 'wasm', packages: ['@tensorflow/tfjs-backend-wasm'], probe: probeWasm },
  cpu: { name: 'cpu', packages: ['@tensorflow/tfjs-backend-cpu'], probe: probeCpu },
} satisfies Record<BuiltinBackendName, ComputeBackend>;

const registry = new Map<string, ComputeBackend>(Object.entries(BUILTIN));

/** The probe of a registered backend; throws naming the registered ones. */
export function computeBackend(name: string): ComputeBackend {
  const b = registry.get(name);
  if (!b) throw new Error(`unknown compute backend '${name}' (known: ${backendNames().join(', ')})`);
  return b;
}

/**
 * Registers a backend at run time (plug-ins, tests): its description joins the shared list (every
 * `--backend` and CTSSL_BACKEND accept it, the doctor knows its advice) and its probe this registry.
 * Returns the undo.
 */
export function registerBackend(b: ComputeBackend & Omit<BackendDescription, 'name'>): () => void {
  const { packages, probe, unavailable, ...description } = b;
  registerBackendInfo(description);
  registry.set(b.name, { name: b.name, packages, probe, unavailable });
  return () => {
    registry.delete(b.name);
    unregisterBackendInfo(b.name);
  };
}

function parseChoice(v: string | undefined): BackendName | undefined {
  if (v == null || v === '') return undefined;
  if (isBackendName(v)) return v;
  throw new Error(`CTSSL_BACKEND must be one of ${backendNames().join(', ')} (got '${v}')`);
}

let current: BackendInfo | null = null;

/** The backend chosen by the last {@link initBackend}, or null. */
export function currentBackend(): BackendInfo | null {
  return current;
}

/**
 * Picks and initialises the backend. Calling it again re-selects (cheap if unchanged).
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const force = opts.force ?? parseChoice(process.env.CTSSL_BACKEND);
  const skipped: { package: string; reason: string }[] = [];
  // Forced: that backend or an error. Otherwise the registered ones best first; cpu, last, always loads.
  const tried = force != null ? [computeBackend(force)] : backendNames().map(computeBackend);
  let error: unknown = null;
  for (const b of tried) {
    const from = skipped.length;
    for (const pkg of b.packages) {
      try {
        const probe = await b.probe(pkg);
        const info = { name: tf.getBackend(), version: packageVersion(pkg), package: pkg, ...probe };
        const fallbackKernels = registerTrainingKernels(info.name);
        current = { ...info, skipped, fallbackKernels };
        return current;
      } catch (e) {
        error = e;
        skipped.push({ package: pkg, reason: e instanceof Error ? e.message.split('\n')[0] : String(e) });
      }
    }
    if (force != null) throw b.unavailable ? new Error(b.unavailable(skipped.slice(from))) : error;
  }
  throw error;
}
