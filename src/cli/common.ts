/** Options and output helpers shared by every command. */
import { InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import type { Database } from '../library/db/sqlite';
import { defaultDbPath } from '../platform/paths';

export function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
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

export const dbOption = () => new Option('--db <file>', 'library database (default: $CTSSL_DB or the app data folder)');

export function dbPathOf(o: { db?: string }): string {
  return o.db ? resolve(o.db) : defaultDbPath();
}

/** Opens the library database named by --db, runs fn, closes it. */
export async function withLibrary<T>(o: { db?: string }, fn: (db: Database, path: string) => Promise<T> | T): Promise<T> {
  const path = dbPathOf(o);
  const { openLibrary } = await import('../library/db/schema');
  const db = openLibrary(path);
  try {
    return await fn(db, path);
  } finally {
    db.close();
  }
}

/** Prints JSON (for --json) or the human rendering on stdout. */
export function out(json: boolean | undefined, data: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : human() + '\n');
}
