/**
 * The compute backends' registry (name, packages, probe; their descriptions and advice are in
 * src/shared/backends.ts), and choosing the best tfjs backend present in this Node process.
 *
 * Order: 'tensorflow' (`@tensorflow/tfjs-node-gpu`, CUDA, then `@tensorflow/tfjs-node`, libtensorflow
 * on the CPU), 'wasm' (XNNPACK, SIMD; its .wasm files are located on disk under
 * node_modules/@tensorflow/tfjs-backend-wasm/dist; its threaded build with `wasmThreads` > 1 or
 * CTSSL_WASM_THREADS, see wasm-threads.ts, falling back to one thread when threads fail), then the
 * pure-JS 'cpu' backend.
 * `CTSSL_BACKEND=<name>` (or the `force` option) picks one; a forced backend that cannot load is an
 * error. After initialisation the training fallback kernels of `src/core/ml/backend.ts` are
 * registered for the chosen backend.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { registerTrainingKernels } from '../core/ml/backend';
import { installThreadsShim, threadedWasmFiles, threadsUnsupportedReason } from './wasm-threads';
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
  /** wasm: more than one thread in use; native: true; cpu: false. */
  threads: boolean;
  /** Threads the backend computes with: wasm its pool's size (1: single-threaded); cpu 1; native 0 (libtensorflow decides). */
  threadCount: number;
  /** Why better backends were not used (package absent, failed to load...). */
  skipped: { package: string; reason: string }[];
  /** Fallback kernels registered for training (see src/core/ml/backend.ts). */
  fallbackKernels: string[];
}

export interface InitBackendOptions {
  /** Force a backend (a name of src/shared/backends.ts); default: env CTSSL_BACKEND, else the best present. */
  force?: BackendChoice;
  /** Threads for the wasm backend (default: env CTSSL_WASM_THREADS, else {@link DEFAULT_WASM_THREADS}); falls back to 1 when threads fail. */
  wasmThreads?: number;
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
  /** wasm: more than one thread in use; native: true; cpu: false. */
  threads: boolean;
  /** Threads the backend computes with: wasm its pool's size (1: single-threaded); cpu 1; native 0 (libtensorflow decides). */
  threadCount: number;
}

/**
 * A compute backend: its name (its description, advice included, is its entry in
 * src/shared/backends.ts), the packages that provide it, tried in order, and its probe.
 */
export interface ComputeBackend {
  readonly name: string;
  /** Packages that provide it, tried in order (the first that loads is used). */
  readonly packages: readonly string[];
  /** Loads `pkg` and makes it tfjs's backend, or throws saying why it cannot; `opts.wasmThreads`: the threads asked for. */
  probe(pkg: string, opts: { wasmThreads: number }): Promise<BackendProbe>;
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
  return { simd: true, threads: true, threadCount: 0 };
}

/** The wasm backend's thread count: the `wasmThreads` option, else CTSSL_WASM_THREADS, else {@link DEFAULT_WASM_THREADS}. */
export function wasmThreadCount(opt?: number): number {
  if (opt != null) {
    if (!Number.isInteger(opt) || opt < 1) throw new Error(`wasm threads must be a whole number >= 1 (got ${opt})`);
    return Math.min(opt, 8);
  }
  const v = process.env.CTSSL_WASM_THREADS;
  if (v == null || v === '') return DEFAULT_WASM_THREADS;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`CTSSL_WASM_THREADS must be a whole number >= 1 (got '${v}')`);
  return Math.min(n, 8); // the build pre-creates 8 pthread workers
}

/**
 * Threads the wasm backend uses unless told otherwise. One: see docs/benchmarks.md, Training
 * throughput, for the threaded build measured against it.
 */
export const DEFAULT_WASM_THREADS = 1;

/** How long the threaded build may take to start its workers before the single-threaded one is used. */
const THREADED_INIT_TIMEOUT_MS = 60_000;

type WasmModule = typeof import('@tensorflow/tfjs-backend-wasm');

/** Starts the threaded SIMD build with `threads` threads; throws (workers cleaned up) when it cannot. */
async function initThreadedWasm(wasm: WasmModule, dist: string, threads: number): Promise<number> {
  const unsupported = threadsUnsupportedReason();
  if (unsupported != null) throw new Error(unsupported);
  const shim = installThreadsShim(threadedWasmFiles(dist), threads);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    wasm.setThreadsCount(threads);
    const timeout = new Promise<Error>((resolve) => {
      timer = setTimeout(() => resolve(new Error(`workers did not start within ${THREADED_INIT_TIMEOUT_MS / 1000} s`)), THREADED_INIT_TIMEOUT_MS);
    });
    const r = await Promise.race([tf.setBackend('wasm'), shim.failed, timeout]);
    if (r instanceof Error) throw r;
    if (!r) throw new Error('setBackend(wasm) returned false');
    await tf.ready();
    const failure = shim.failure();
    if (failure) throw failure;
    if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) throw new Error('no SIMD');
    const n = wasm.getThreadsCount();
    if (n < 2) throw new Error(`the threaded build started ${n} thread(s)`);
    return n;
  } catch (e) {
    shim.terminate();
    throw e;
  } finally {
    clearTimeout(timer);
    shim.uninstall();
  }
}

/** Why the last wasm probe ran single-threaded although more threads were asked for, or null. */
let threadsFallback: string | null = null;

async function probeWasm(threads: number): Promise<BackendProbe> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dist = wasmDistDir();
  wasm.setWasmPaths(dist);
  threadsFallback = null;
  if (tf.findBackend('wasm') != null) {
    // already initialised in this process (with the threads it started with)
    if (!(await tf.setBackend('wasm'))) throw new Error('setBackend(wasm) returned false');
    const n = wasm.getThreadsCount();
    if (n < threads) threadsFallback = `${threads} wasm threads asked for, running ${n}: the backend was already started with ${n}`;
    return { simd: Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')), threads: n > 1, threadCount: n };
  }
  if (threads > 1) {
    try {
      const n = await initThreadedWasm(wasm, dist, threads);
      return { simd: true, threads: true, threadCount: n };
    } catch (e) {
      // fall back to the single-threaded SIMD build, saying why
      threadsFallback = `${threads} wasm threads asked for, running 1: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
    }
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('setBackend(wasm) returned false');
  await tf.ready();
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  return { simd, threads: false, threadCount: 1 };
}

async function probeCpu(): Promise<BackendProbe> {
  const ok = await tf.setBackend('cpu');
  if (!ok) throw new Error('cannot initialise the cpu backend');
  await tf.ready();
  return { simd: false, threads: false, threadCount: 1 };
}

/** The built-in backends' probes, one per name of src/shared/backends.ts. */
const BUILTIN = {
  tensorflow: {
    name: 'tensorflow',
    packages: ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'],
    probe: probeNative,
    unavailable: (skipped) => `CTSSL_BACKEND=tensorflow but no native backend loads: ${skipped.map((s) => `${s.package}: ${s.reason}`).join('; ')}`,
  },
  wasm: { name: 'wasm', packages: ['@tensorflow/tfjs-backend-wasm'], probe: (_pkg, opts) => probeWasm(opts.wasmThreads) },
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
  const wasmThreads = wasmThreadCount(opts.wasmThreads);
  // Forced: that backend or an error. Otherwise the registered ones best first; cpu, last, always loads.
  const tried = force != null ? [computeBackend(force)] : backendNames().map(computeBackend);
  let error: unknown = null;
  for (const b of tried) {
    const from = skipped.length;
    for (const pkg of b.packages) {
      try {
        const probe = await b.probe(pkg, { wasmThreads });
        const info = { name: tf.getBackend(), version: packageVersion(pkg), package: pkg, ...probe };
        const fallbackKernels = registerTrainingKernels(info.name);
        if (info.name === 'wasm' && threadsFallback != null) skipped.push({ package: `${pkg} (threaded build)`, reason: threadsFallback });
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
