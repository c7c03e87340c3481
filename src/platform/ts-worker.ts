/**
 * Starting a worker thread on one of our modules, from the TypeScript sources (CLI, tests: tsx
 * registers its loader inside the worker first, since execArgv '--import tsx' is not honoured by
 * worker threads) or from the built JavaScript (the Electron app: the module is its own entry in
 * out/main, see electron.vite.config.ts).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** The URL of a sibling worker module: `name.ts` next to the sources, `name.js` next to the bundle. */
export function siblingModule(base: string, name: string): URL {
  return new URL(`./${name}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
}

export function spawnWorker(entry: URL, workerData: unknown, options: Pick<WorkerOptions, 'resourceLimits'> = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { ...options, workerData });
  const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const api = pathToFileURL(join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href;
  const code =
    `import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(entry.href)}))` +
    `.catch((e) => { require('node:worker_threads').parentPort.postMessage({ type: 'error', id: -1, message: String((e && e.stack) || e) }); });`;
  return new Worker(code, { ...options, eval: true, workerData });
}
