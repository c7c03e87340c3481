/**
 * The only module that loads the native SQLite binding. Node (CLI, server, tests) uses the
 * better-sqlite3 build from node_modules; Electron needs a build for its own ABI, which the
 * packaged app ships and points to with CTSSL_SQLITE_BINDING (or the `nativeBinding` option).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';

export type Database = BetterSqlite3.Database;
export type Statement = BetterSqlite3.Statement;

const require = createRequire(import.meta.url);

export interface OpenOptions {
  readonly?: boolean;
  /** Path to a better_sqlite3.node built for the running runtime (Electron). */
  nativeBinding?: string;
}

export function openSqlite(file: string, options: OpenOptions = {}): Database {
  const Ctor = require('better-sqlite3') as typeof BetterSqlite3;
  const binding = options.nativeBinding ?? process.env.CTSSL_SQLITE_BINDING;
  if (binding && !existsSync(binding)) throw new Error(`SQLite native binding not found: ${binding}`);
  const db = new Ctor(file, { readonly: options.readonly ?? false, nativeBinding: binding || undefined });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}
