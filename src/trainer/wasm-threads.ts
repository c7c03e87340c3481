/**
 * tfjs-backend-wasm's threaded SIMD build (XNNPACK with a pthreadpool) in Node.
 *
 * The package ships the build and Emscripten's pthread worker, and the Emscripten output supports
 * Node (worker_threads), but tfjs turns threads off in Node (its WASM_HAS_MULTITHREAD_SUPPORT flag is
 * false there) and hands the build browser-only pieces: the pthread worker's script as a `blob:` URL
 * and the main script as a Blob, neither of which worker_threads can load. This shim, active only
 * while the backend initialises:
 * - makes the `Worker` the Emscripten code constructs a worker_threads Worker that evaluates the
 *   package's own worker script (wasm-out/tfjs-backend-wasm-threaded-simd.worker.js), and rewrites
 *   its 'load' message to point at the package's threaded main script on disk;
 * - reports 2 x `threads` logical CPUs while the module starts, since the backend's C++ caps its
 *   pool at half the logical CPUs (it assumes two hardware threads per core) and a 2-vCPU machine
 *   would get one thread;
 * - turns a worker's error during initialisation into a failed initialisation (instead of the
 *   uncaught exception Emscripten throws), so the caller can fall back to the single-threaded build.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { Worker as NodeWorker, type WorkerOptions } from 'node:worker_threads';

const requireHere = createRequire(import.meta.url);

/** The package's threaded build: its main script and the source of its pthread worker. */
export interface ThreadedWasmFiles {
  mainScript: string;
  workerSource: string;
}

/** Locates the threaded build's scripts next to the package's dist folder, or throws saying what is missing. */
export function threadedWasmFiles(distDir: string): ThreadedWasmFiles {
  const out = join(dirname(distDir.replace(/\/$/, '')), 'wasm-out');
  const mainScript = join(out, 'tfjs-backend-wasm-threaded-simd.js');
  const workerScript = join(out, 'tfjs-backend-wasm-threaded-simd.worker.js');
  const wasmFile = join(distDir, 'tfjs-backend-wasm-threaded-simd.wasm');
  for (const f of [mainScript, workerScript, wasmFile]) if (!existsSync(f)) throw new Error(`threaded wasm build incomplete: ${f} is missing`);
  const src = (requireHere(workerScript) as { wasmWorkerContents?: unknown }).wasmWorkerContents;
  if (typeof src !== 'string') throw new Error(`${workerScript} does not export wasmWorkerContents`);
  return { mainScript, workerSource: src };
}

/** Why threads cannot run in this process, or null when they can. */
export function threadsUnsupportedReason(): string | null {
  if (typeof SharedArrayBuffer !== 'function') return 'no SharedArrayBuffer';
  if (typeof Atomics !== 'object') return 'no Atomics';
  try {
    // a module with a shared memory and an atomic load (wasm-feature-detect's threads test)
    const wa = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly;
    const ok = wa.validate(new Uint8Array([
      0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5,
      4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0, 26, 11,
    ]));
    return ok ? null : 'WebAssembly threads not supported';
  } catch (e) {
    return `WebAssembly threads not supported (${e instanceof Error ? e.message : String(e)})`;
  }
}

/** The shim while it is installed; `failure` holds a worker's error, if one occurred. */
export interface ThreadsShim {
  /** A worker's error during initialisation, if any. */
  failure: () => Error | null;
  /** Resolves to the error when a worker fails (never resolves otherwise). */
  failed: Promise<Error>;
  /** Removes the global `Worker` and restores os.cpus. */
  uninstall(): void;
  /** Terminates the workers it created (after a failed initialisation). */
  terminate(): void;
}

/**
 * Installs the shim for `threads` threads. Call {@link ThreadsShim.uninstall} once the backend's
 * initialisation has settled (the pool of workers is created during it).
 */
export function installThreadsShim(files: ThreadedWasmFiles, threads: number): ThreadsShim {
  let failure: Error | null = null;
  let reportFailure: (e: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (reportFailure = resolve));
  const fail = (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    if (failure == null) {
      failure = err;
      reportFailure(err);
    }
  };
  // Newlines escaped as tfjs does for its Blob: the source holds "\n" inside string literals.
  const source = files.workerSource.replace(/\n/g, '\\n');
  const workers: NodeWorker[] = [];
  class PthreadWorker extends NodeWorker {
    constructor() {
      super(source, { eval: true } satisfies WorkerOptions);
      this.unref();
      workers.push(this);
    }
    // The pool must not keep the process alive: Emscripten refs a worker while it runs a pthread,
    // and XNNPACK's pool threads run until the process exits. They synchronise with the main
    // thread through shared memory, not the event loop.
    override ref(): void {}
    override postMessage(msg: unknown, transfer?: Parameters<NodeWorker['postMessage']>[1]): void {
      const m = msg as { cmd?: string } | null;
      const out = m != null && m.cmd === 'load' ? { ...m, urlOrBlob: files.mainScript } : msg;
      super.postMessage(out, transfer);
    }
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override on(event: string | symbol, listener: (...args: any[]) => void): this {
      if (event !== 'error') return super.on(event, listener);
      // Emscripten rethrows a worker's error from its listener: record it instead of crashing.
      return super.on('error', (e: unknown) => {
        fail(e);
        try {
          listener(e);
        } catch {
          /* recorded above */
        }
      });
    }
  }
  const g = globalThis as { Worker?: unknown };
  const had = Object.getOwnPropertyDescriptor(g, 'Worker');
  // The Emscripten code assigns worker_threads' Worker to the global before creating its pool:
  // the accessor keeps ours.
  Object.defineProperty(g, 'Worker', { configurable: true, get: () => PthreadWorker, set: () => {} });
  const cpus = os.cpus;
  os.cpus = () => {
    const c = cpus();
    while (c.length < 2 * threads) c.push(c[0] ?? { model: 'unknown', speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } });
    return c.slice(0, Math.max(2 * threads, 1));
  };
  return {
    failure: () => failure,
    failed,
    uninstall() {
      os.cpus = cpus;
      if (had) Object.defineProperty(g, 'Worker', had);
      else delete g.Worker;
    },
    terminate() {
      for (const w of workers) void w.terminate();
    },
  };
}
