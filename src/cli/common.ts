/** Options and output helpers shared by every command. */
import { InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import type { Services } from '../host/services';
import { backendNames } from '../shared/backends';
import { defaultDataDir, defaultDbPath } from '../platform/paths';
import { ConsoleSink } from './console-sink';

export function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}
export function finiteNumber(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
}
export function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** `--backend`: one of the registered compute backends (src/shared/backends.ts). */
export const backendOption = () => new Option('--backend <b>', 'force a compute backend').choices(backendNames());

export const dbOption = () => new Option('--db <file>', 'library database (default: $CTSSL_DB or the app data folder)');

export function dbPathOf(o: { db?: string }): string {
  return o.db ? resolve(o.db) : defaultDbPath();
}

/**
 * The host services in process (the ones Electron main and `ctssl serve` call), over the library
 * named by --db and the data folder, with their events printed as progress on stderr; closed after
 * `fn` (a run or job still going is stopped, as when the app quits).
 */
export async function withServices<T>(o: { db?: string }, fn: (services: Services, sink: ConsoleSink) => Promise<T> | T): Promise<T> {
  const { createServices } = await import('../host/services');
  const sink = new ConsoleSink();
  const services = createServices({ mode: 'cli', dataDir: defaultDataDir(), dbPath: dbPathOf(o), emit: sink.emit });
  try {
    return await fn(services, sink);
  } finally {
    sink.line.done();
    await services.close();
  }
}

/**
 * The library database of the services (as `withServices`), for the commands with no app
 * equivalent that use the library directly (src/cli/README.md).
 */
export function withLibrary<T>(o: { db?: string }, fn: (db: Services['db'], path: string) => Promise<T> | T): Promise<T> {
  return withServices(o, (s) => fn(s.db, dbPathOf(o)));
}

/** Prints JSON (for --json) or the human rendering on stdout. */
export function out(json: boolean | undefined, data: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : human() + '\n');
}
