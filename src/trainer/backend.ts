/**
 * Chooses the best tfjs backend present in this Node process and initialises it.
 *
 * Order: `@tensorflow/tfjs-node-gpu` (CUDA), `@tensorflow/tfjs-node` (libtensorflow on the CPU),
 * the wasm backend (XNNPACK, SIMD; its .wasm files are located on disk under
 * node_modules/@tensorflow/tfjs-backend-wasm/dist), then the pure-JS cpu backend.
 * `CTSSL_BACKEND=tensorflow|wasm|cpu` (or the `force` option) picks one; a forced backend that
 * cannot load is an error. After initialisation the training fallback kernels of
 * `src/core/ml/backend.ts` are registered for the chosen backend.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { registerTrainingKernels } from '../core/ml/backend';

export type BackendChoice = 'tensorflow' | 'wasm' | 'cpu';

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
  /** Force a backend; default: env CTSSL_BACKEND, else the best present. */
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

async function tryNative(pkg: string): Promise<void> {
  // The module name is held in a variable so that bundlers leave it alone and its absence is a
  // run-time condition. Any error (missing module, missing libtensorflow, wrong ABI, no CUDA)
  // means "not available".
  const name: string = pkg;
  await import(/* @vite-ignore */ name);
  const ok = await tf.setBackend('tensorflow');
  if (!ok) throw new Error('setBackend(tensorflow) returned false');
  await tf.ready();
}

async function tryWasm(): Promise<{ simd: boolean; threads: boolean }> {
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

function parseChoice(v: string | undefined): BackendChoice | undefined {
  if (v == null || v === '') return undefined;
  if (v === 'tensorflow' || v === 'wasm' || v === 'cpu') return v;
  throw new Error(`CTSSL_BACKEND must be one of tensorflow, wasm, cpu (got '${v}')`);
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
  const finish = (info: Omit<BackendInfo, 'skipped' | 'fallbackKernels'>): BackendInfo => {
    const fallbackKernels = registerTrainingKernels(info.name);
    current = { ...info, skipped, fallbackKernels };
    return current;
  };

  if (force == null || force === 'tensorflow') {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        await tryNative(pkg);
        return finish({ name: 'tensorflow', version: packageVersion(pkg), package: pkg, simd: true, threads: true });
      } catch (e) {
        skipped.push({ package: pkg, reason: e instanceof Error ? e.message.split('\n')[0] : String(e) });
      }
    }
    if (force === 'tensorflow') {
      throw new Error(`CTSSL_BACKEND=tensorflow but no native backend loads: ${skipped.map((s) => `${s.package}: ${s.reason}`).join('; ')}`);
    }
  }
  if (force == null || force === 'wasm') {
    try {
      const { simd, threads } = await tryWasm();
      return finish({ name: 'wasm', version: packageVersion('@tensorflow/tfjs-backend-wasm'), package: '@tensorflow/tfjs-backend-wasm', simd, threads });
    } catch (e) {
      if (force === 'wasm') throw e;
      skipped.push({ package: '@tensorflow/tfjs-backend-wasm', reason: e instanceof Error ? e.message : String(e) });
    }
  }
  const ok = await tf.setBackend('cpu');
  if (!ok) throw new Error('cannot initialise the cpu backend');
  await tf.ready();
  return finish({ name: 'cpu', version: packageVersion('@tensorflow/tfjs-backend-cpu'), package: '@tensorflow/tfjs-backend-cpu', simd: false, threads: false });
}
