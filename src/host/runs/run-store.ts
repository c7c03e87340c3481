/**
 * The runs recorded in the library database: their rows as the services see them, look-ups and
 * curves, and registering run folders made elsewhere (copied from another machine, or installed
 * from a weights package).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parsePretrainConfig, parseRunConfig, type FinetuneConfig, type PretrainConfig } from '../../shared/run-config';
import type { RunRecord } from '../../shared/results';
import { appMeta } from '../../platform/app-meta';
import type { Database } from '../../library/db/sqlite';
import { configHash } from '../../library/runs/run-hash';

export interface RunRow {
  id: number;
  uid: string;
  name: string;
  kind: string;
  task: string;
  status: 'created' | 'running' | 'paused' | 'done' | 'stopped' | 'failed' | 'crashed';
  dir: string;
  config: PretrainConfig | FinetuneConfig;
  configHash: string;
  manifestHash: string;
  seed: number;
  appVersion: string;
  backend: string;
  parentDir: string;
  createdAt: string;
  updatedAt: string;
  step: number;
  totalSteps: number;
  summary: RunRecord;
  error: string;
  /** When the run was moved to the trash ('' while it is not). */
  deletedAt: string;
}

/** A row of the runs table as SQLite returns it. */
export interface RunDbRow {
  id: number;
  uid: string;
  name: string;
  kind: string;
  task: string;
  status: RunRow['status'];
  dir: string;
  config: string;
  config_hash: string;
  manifest_hash: string;
  seed: number;
  app_version: string;
  backend: string;
  parent_dir: string;
  created_at: string;
  updated_at: string;
  step: number;
  total_steps: number;
  summary: string;
  error: string;
  deleted_at: string;
  original_dir: string;
}

/** A runs table row as the services hand it out (config parsed, names in camelCase). */
export function toRun(r: RunDbRow): RunRow {
  return {
    id: r.id,
    uid: r.uid,
    name: r.name,
    kind: r.kind,
    task: r.task,
    status: r.status,
    dir: r.dir,
    config: parseRunConfig(JSON.parse(r.config)),
    configHash: r.config_hash,
    manifestHash: r.manifest_hash,
    seed: r.seed,
    appVersion: r.app_version,
    backend: r.backend,
    parentDir: r.parent_dir,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    step: r.step,
    totalSteps: r.total_steps,
    summary: JSON.parse(r.summary) as RunRecord,
    error: r.error,
    deletedAt: r.deleted_at ?? '',
  };
}

export function listRuns(db: Database): RunRow[] {
  return (db.prepare("SELECT * FROM runs WHERE deleted_at = '' ORDER BY id DESC").all() as RunDbRow[]).map(toRun);
}

export function getRun(db: Database, idOrDir: number | string): RunRow | null {
  const r =
    typeof idOrDir === 'number'
      ? (db.prepare('SELECT * FROM runs WHERE id = ?').get(idOrDir) as RunDbRow | undefined)
      : (db.prepare("SELECT * FROM runs WHERE dir = ? AND deleted_at = ''").get(resolve(idOrDir)) as RunDbRow | undefined);
  return r ? toRun(r) : null;
}

export function runMetrics(db: Database, runId: number, split?: string): { step: number; split: string; name: string; value: number }[] {
  return db
    .prepare(`SELECT step, split, name, value FROM run_metrics WHERE run_ref = ? ${split ? 'AND split = ?' : ''} ORDER BY split, name, step`)
    .all(...(split ? [runId, split] : [runId])) as { step: number; split: string; name: string; value: number }[];
}

/** Registers an existing run folder (e.g. after copying it from another machine) in this database. */
export function adoptRun(db: Database, dir: string): RunRow {
  const abs = resolve(dir);
  const existing = getRun(db, abs);
  if (existing) return existing;
  if (!existsSync(join(abs, 'config.json'))) throw new Error(`${abs} is not a run folder (no config.json)`);
  const config = parsePretrainConfig(JSON.parse(readFileSync(join(abs, 'config.json'), 'utf8')));
  const ledger = JSON.parse(readFileSync(join(abs, 'run.json'), 'utf8')) as { uid: string; manifestHash: string; configHash: string; createdAt: string };
  db.prepare(
    `INSERT INTO runs (uid, name, kind, task, status, dir, config, config_hash, manifest_hash, seed, app_version, parent_dir, created_at, updated_at)
     VALUES (?, ?, 'pretrain', ?, 'stopped', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(ledger.uid, config.name, config.task, abs, JSON.stringify(config), ledger.configHash, ledger.manifestHash, config.seed, appMeta().version, config.init ?? '', ledger.createdAt, new Date().toISOString());
  return getRun(db, abs)!;
}

/** Records an imported weights package (its installed folder) as a finished run that can seed others. */
export function registerImportedRun(db: Database, dir: string): RunRow {
  const abs = resolve(dir);
  const existing = getRun(db, abs);
  if (existing) return existing;
  const config = parsePretrainConfig(JSON.parse(readFileSync(join(abs, 'config.json'), 'utf8')));
  const now = new Date().toISOString();
  db.prepare(
    `INSERT INTO runs (uid, name, kind, task, status, dir, config, config_hash, manifest_hash, seed, app_version, created_at, updated_at, step, total_steps)
     VALUES (?, ?, 'imported', ?, 'done', ?, ?, ?, '', ?, ?, ?, ?, ?, ?)`,
  ).run(randomUUID(), config.name, config.task, abs, JSON.stringify(config), configHash(config), config.seed, appMeta().version, now, now, config.steps ?? 0, config.steps ?? 0);
  return getRun(db, abs)!;
}
