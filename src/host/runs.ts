/**
 * Runs: a folder per run (config.json, manifest.json, run.json ledger, metrics.jsonl,
 * checkpoints/) recorded in the library database (config, seeds, manifest hash, app and backend
 * versions, metrics per step, artifacts). Starting a run spawns the trainer process and records
 * its events; a run killed at any point resumes from its latest checkpoint.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { parseFinetuneConfig, parsePretrainConfig, parseRunConfig, type FinetuneConfig, type FinetuneConfigInput, type PretrainConfig, type PretrainConfigInput } from '../shared/run-config';
import { buildDownstreamManifest } from '../library/runs/finetune-manifest';
import { TRAINER_PROTOCOL, type HostMessage, type TrainerEvent } from '../shared/trainer-protocol';
import type { FinetuneResults, RecordedResults, RunRecord } from '../shared/results';
import { appMeta } from '../platform/app-meta';
import { latestCheckpointDir, writeJsonAtomic } from '../library/runs/checkpoint';
import { purgeFolder } from './folder-trash';
import { buildManifest } from '../library/runs/manifest';
import type { Database } from '../library/db/sqlite';
import { configHash } from '../library/runs/run-hash';

export interface TrainerChild {
  readonly pid: number | undefined;
  send(m: HostMessage): void;
  onEvent(cb: (e: TrainerEvent) => void): void;
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  kill(signal?: NodeJS.Signals): void;
}

export type SpawnTrainer = () => TrainerChild;

const here = dirname(fileURLToPath(import.meta.url));

/** The trainer as a Node child process: from the sources through tsx, or the built bundle. */
export function spawnNodeTrainer(env: NodeJS.ProcessEnv = process.env): TrainerChild {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = fromSources ? resolve(here, '../utility/trainer.ts') : join(here, 'trainer.js');
  if (!existsSync(entry)) throw new Error(`trainer entry not found: ${entry} (run "npm run build")`);
  const child: ChildProcess = fork(entry, [], {
    execArgv: fromSources ? ['--import', 'tsx'] : [],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env,
  });
  return {
    pid: child.pid,
    send: (m) => child.send(m),
    onEvent: (cb) => child.on('message', (m) => cb(m as TrainerEvent)),
    onExit: (cb) => child.on('exit', (code, signal) => cb(code, signal)),
    kill: (signal) => child.kill(signal),
  };
}

/**
 * Runs one request in a fresh trainer process (evaluation, doctor, bias probe) and resolves with
 * the answer of type `want`; other events go to `onEvent`; an error event or an early exit rejects.
 */
export function trainerRequest<T extends TrainerEvent['type']>(
  spawn: SpawnTrainer,
  msg: HostMessage,
  want: T,
  onEvent?: (e: TrainerEvent) => void,
  signal?: AbortSignal,
): Promise<Extract<TrainerEvent, { type: T }>> {
  if (signal?.aborted) return Promise.reject(new TrainerRequestError('cancelled', false, true));
  const child = spawn();
  return new Promise((resolve, reject) => {
    let settled = false;
    let exited = false;
    let cancelled = false;
    // Cancelled: the trainer process is killed; the request rejects once it has exited, so that
    // the caller can remove what it wrote without the process writing again behind it.
    signal?.addEventListener(
      'abort',
      () => {
        if (settled) return;
        settled = true;
        cancelled = true;
        if (exited) reject(new TrainerRequestError('cancelled', false, true));
        else child.kill('SIGKILL');
      },
      { once: true },
    );
    child.onEvent((e) => {
      if (settled) return;
      if (e.type === want) {
        settled = true;
        resolve(e as Extract<TrainerEvent, { type: T }>);
      } else if (e.type === 'error') {
        settled = true;
        reject(new TrainerRequestError(e.message, false));
      } else onEvent?.(e);
    });
    child.onExit((code, signal) => {
      exited = true;
      if (cancelled) reject(new TrainerRequestError('cancelled', false, true));
      else if (!settled) {
        settled = true;
        reject(new TrainerRequestError(`the trainer process exited (${signal ?? 'code ' + code}) before answering`, true));
      }
    });
    child.send(msg);
  });
}

/**
 * A failed trainer request: `crashed` when the process died rather than reporting an error,
 * `cancelled` when the caller aborted it.
 */
export class TrainerRequestError extends Error {
  constructor(
    message: string,
    readonly crashed: boolean,
    readonly cancelled = false,
  ) {
    super(message);
    this.name = 'TrainerRequestError';
  }
}

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

interface RunDbRow {
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

function toRun(r: RunDbRow): RunRow {
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

/** Runs in the trash on their own (not with a deleted experiment), newest deletion first. */
export function listTrashedRuns(db: Database): RunRow[] {
  return (db.prepare(`SELECT * FROM runs WHERE deleted_at != '' AND deleted_at NOT LIKE '${WITH_EXPERIMENT}%' ORDER BY deleted_at DESC`).all() as RunDbRow[]).map(toRun);
}

/** `deleted_at` prefix of runs that went to the trash with their experiment's folder. */
const WITH_EXPERIMENT = 'experiment:';
/** SQL: runs whose folder is inside the folder given twice as (prefix, prefix). */
const UNDER = 'substr(dir, 1, length(?)) = ?';

/**
 * The runs of an experiment whose folder moved from `from` to `to` (trash or back): their folders
 * follow; to the trash they leave the run lists with the experiment, back they return to them.
 */
export function moveExperimentRuns(db: Database, from: string, to: string, toTrash: boolean): number {
  const prefix = resolve(from) + sep;
  const dest = resolve(to) + sep;
  const r = toTrash
    ? db
        .prepare(`UPDATE runs SET deleted_at = ?, original_dir = dir, dir = ? || substr(dir, ?) WHERE deleted_at = '' AND ${UNDER}`)
        .run(WITH_EXPERIMENT + new Date().toISOString(), dest, prefix.length + 1, prefix, prefix)
    : db
        .prepare(`UPDATE runs SET deleted_at = '', original_dir = '', dir = ? || substr(dir, ?) WHERE deleted_at LIKE '${WITH_EXPERIMENT}%' AND ${UNDER}`)
        .run(dest, prefix.length + 1, prefix, prefix);
  return r.changes;
}

/** Forgets the runs of an experiment folder in the trash (when the trash is emptied). */
export function forgetExperimentRuns(db: Database, trashedDir: string): number {
  const prefix = resolve(trashedDir) + sep;
  return db.prepare(`DELETE FROM runs WHERE deleted_at LIKE '${WITH_EXPERIMENT}%' AND ${UNDER}`).run(prefix, prefix).changes;
}

/**
 * Moves a run to the trash: its folder goes to `<dataRoot>/trash/runs` (nothing is deleted;
 * `restoreRun` undoes it) and it leaves the run lists. Only folders inside the app's data folder move (the
 * app made them); a run folder elsewhere (`--out` anywhere, which may hold other files) or on
 * another file system stays where it is, and emptying the trash never deletes it.
 * Refused while a trainer works in it.
 */
export function trashRun(db: Database, id: number, dataRoot: string): { run: RunRow; movedTo: string | null } {
  const run = getRun(db, id);
  if (!run || run.deletedAt) throw new Error(`no run with id ${id}`);
  if (isTraining(run.dir)) throw new Error(`run ${id} is training: stop it first`);
  // A grid's run belongs to its experiment (report, resume): not deleted on its own.
  const experiments = resolve(dataRoot, 'experiments') + sep;
  if (resolve(run.dir).startsWith(experiments)) throw new Error(`run ${id} is part of the experiment in ${run.dir.slice(experiments.length).split(sep)[0]}: its report and resume need it`);
  let target: string | null = null;
  if (resolve(run.dir).startsWith(resolve(dataRoot) + sep)) {
    const trashRoot = join(dataRoot, 'trash', 'runs');
    mkdirSync(trashRoot, { recursive: true });
    target = join(trashRoot, `${id}-${basename(run.dir)}`);
    for (let n = 2; existsSync(target); n++) target = join(trashRoot, `${id}-${basename(run.dir)}-${n}`);
    try {
      renameSync(run.dir, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'ENOENT') throw new Error(`could not move ${run.dir} to the trash: ${(err as Error).message}`);
      target = null;
    }
  }
  db.prepare("UPDATE runs SET deleted_at = ?, original_dir = dir, dir = ? WHERE id = ?").run(new Date().toISOString(), target ?? run.dir, id);
  return { run: getRun(db, id)!, movedTo: target };
}

/** Brings a run back from the trash to its folder. */
export function restoreRun(db: Database, id: number): RunRow {
  const r = db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunDbRow | undefined;
  if (!r || !r.deleted_at) throw new Error(`run ${id} is not in the trash`);
  if (r.deleted_at.startsWith(WITH_EXPERIMENT)) throw new Error(`run ${id} went to the trash with its experiment: restore the experiment`);
  const back = r.original_dir || r.dir;
  if (back !== r.dir) {
    if (existsSync(back)) throw new Error(`cannot restore run ${id}: ${back} exists again`);
    mkdirSync(dirname(back), { recursive: true });
    renameSync(r.dir, back);
  }
  db.prepare("UPDATE runs SET deleted_at = '', dir = ?, original_dir = '' WHERE id = ?").run(back, id);
  return getRun(db, id)!;
}

/**
 * Deletes runs in the trash for good (all of them, or the given ids, e.g. those a confirmation
 * showed): the folders the trash moved, records and curves. A run whose folder stayed where it was
 * (outside the data folder) is only forgotten; one that is training is skipped; a folder that
 * cannot be removed keeps its run in the trash and is reported.
 */
export function emptyTrash(db: Database, ids?: readonly number[]): { removed: number; failed: { id: number; error: string }[] } {
  const want = ids ? new Set(ids) : null;
  const rows = db.prepare(`SELECT * FROM runs WHERE deleted_at != '' AND deleted_at NOT LIKE '${WITH_EXPERIMENT}%'`).all() as RunDbRow[];
  let removed = 0;
  const failed: { id: number; error: string }[] = [];
  for (const r of rows) {
    if (want && !want.has(r.id)) continue;
    if (isTraining(r.dir)) {
      failed.push({ id: r.id, error: 'training' });
      continue;
    }
    try {
      // Moved by the trash (its folder is no longer where the run was made): delete that folder.
      if (r.original_dir && r.original_dir !== r.dir && existsSync(r.dir)) purgeFolder(r.dir);
      db.prepare('DELETE FROM runs WHERE id = ?').run(r.id);
      removed++;
    } catch (err) {
      failed.push({ id: r.id, error: (err as Error).message });
    }
  }
  return { removed, failed };
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

export interface CreateRunOptions {
  /** Run folder; default <dataDir>/runs/<date>-<task>-<short uid>. */
  dir?: string;
  dataDir: string;
}

/** An absolute run folder with a checkpoint (for `init`), or an error naming it. */
function checkInit(init: string): string {
  const abs = resolve(init);
  if (!latestCheckpointDir(abs)) throw new Error(`init ${abs}: not a run folder with a checkpoint`);
  return abs;
}

/** A new run folder name under the data folder (or the one asked for), refusing an existing run. */
function newRunDir(o: CreateRunOptions, label: string, uid: string): string {
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '').replace(/-/g, '');
  const dir = resolve(o.dir ?? join(o.dataDir, 'runs', `${stamp}-${label}-${uid.slice(0, 8)}`));
  if (existsSync(join(dir, 'config.json'))) throw new Error(`${dir} already holds a run: use --resume to continue it, or choose another folder`);
  return dir;
}

/** Writes config.json, manifest.json and the ledger run.json, and records the run. */
function recordRun(
  db: Database,
  kind: 'pretrain' | 'finetune',
  uid: string,
  dir: string,
  config: PretrainConfig | FinetuneConfig,
  manifest: { hash: string; counts: unknown },
  splitSeed: number,
): RunRow {
  writeJsonAtomic(join(dir, 'config.json'), config);
  writeJsonAtomic(join(dir, 'manifest.json'), manifest);
  const now = new Date().toISOString();
  const ledger = {
    uid,
    app: appMeta().productName,
    appVersion: appMeta().version,
    createdAt: now,
    configHash: configHash(config),
    manifestHash: manifest.hash,
    seeds: { run: config.seed, split: splitSeed, weights: config.seed },
    parent: config.init ?? null,
    counts: manifest.counts,
  };
  writeJsonAtomic(join(dir, 'run.json'), ledger);
  db.prepare(
    `INSERT INTO runs (uid, name, kind, task, status, dir, config, config_hash, manifest_hash, seed, app_version, parent_dir, created_at, updated_at)
     VALUES (?, ?, ?, ?, 'created', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(uid, config.name, kind, config.task, dir, JSON.stringify(config), ledger.configHash, manifest.hash, config.seed, appMeta().version, config.init ?? '', now, now);
  return getRun(db, dir)!;
}

/** Builds the manifest and writes the run folder; records the run. */
export function createRun(db: Database, input: PretrainConfigInput, o: CreateRunOptions): RunRow {
  // A curriculum stage keeps the previous stage's window and scaling unless told otherwise.
  const config = parsePretrainConfig(withInitPreprocessing(input));
  if (config.init) config.init = checkInit(config.init);
  const uid = randomUUID();
  const dir = newRunDir(o, `${config.task}${config.task === 'masked' ? config.maskPercent : ''}`, uid);
  const manifest = buildManifest(db, {
    filter: config.filter,
    seriesIds: config.seriesIds,
    seed: config.seed,
    fractions: config.fractions,
    sliceStride: config.sliceStride,
  });
  if (manifest.counts.train.slices === 0) throw new Error('the training split is empty: the cohort needs more patients');
  mkdirSync(dir, { recursive: true });
  return recordRun(db, 'pretrain', uid, dir, config, manifest, config.seed);
}

/** Builds the labelled-data manifest (and masks) and the run folder of a fine-tuning run; records it. */
/**
 * The preprocessing (window level and width, scaling) a pretrained run's encoder was trained on,
 * from its config.json; null when the folder has none. Fine-tuning from that encoder takes it
 * unless told otherwise: another window would feed the encoder inputs it has never seen.
 */
export function initPreprocessing(init: string): { windowLevel: number; windowWidth: number; scaling: 'fixed' | 'minmax' } | null {
  try {
    const c = JSON.parse(readFileSync(join(resolve(init), 'config.json'), 'utf8')) as { windowLevel?: unknown; windowWidth?: unknown; scaling?: unknown };
    if (typeof c.windowLevel !== 'number' || typeof c.windowWidth !== 'number') return null;
    return { windowLevel: c.windowLevel, windowWidth: c.windowWidth, scaling: c.scaling === 'minmax' ? 'minmax' : 'fixed' };
  } catch {
    return null;
  }
}

/**
 * The input with each of window level, window width and scaling that it leaves unset taken from
 * its init run (field by field: `--window-level -600` alone keeps the init's width and scaling).
 */
export function withInitPreprocessing<T extends { init?: string; windowLevel?: number; windowWidth?: number; scaling?: 'fixed' | 'minmax' }>(input: T): T {
  const inherited = input.init ? initPreprocessing(input.init) : null;
  if (!inherited) return input;
  return {
    ...input,
    windowLevel: input.windowLevel ?? inherited.windowLevel,
    windowWidth: input.windowWidth ?? inherited.windowWidth,
    scaling: input.scaling ?? inherited.scaling,
  };
}

export function createFinetuneRun(db: Database, input: FinetuneConfigInput, o: CreateRunOptions): RunRow {
  // Window and scaling not given: a pretrained encoder's own (see initPreprocessing).
  const config = parseFinetuneConfig(withInitPreprocessing(input));
  if (config.init) config.init = checkInit(config.init);
  const uid = randomUUID();
  const dir = newRunDir(o, `finetune-${config.task}`, uid);
  const existed = existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const splitSeed = config.splitSeed ?? config.seed;
  const fail = (err: unknown): never => {
    if (!existed) rmSync(dir, { recursive: true, force: true });
    throw err;
  };
  let manifest;
  try {
    manifest = buildDownstreamManifest(db, dir, {
    task: config.task,
    label: config.label,
    filter: config.filter,
    seriesIds: config.seriesIds,
    seed: splitSeed,
    fractions: config.fractions,
    negativesPerPositive: config.negativesPerPositive,
    sliceStride: config.sliceStride,
  });
  } catch (err) {
    return fail(err);
  }
  if (manifest.counts.train.slices === 0) fail(new Error('the training split has no labelled slices: the cohort needs more patients'));
  return recordRun(db, 'finetune', uid, dir, config, manifest, splitSeed);
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

export interface RunHandle {
  run: RunRow;
  child: TrainerChild;
  pause(): void;
  resume(): void;
  stop(): void;
  /** Resolves when the trainer exits, with the final status. */
  done: Promise<{ status: RunRow['status']; step: number; finalLosses: Record<string, number>; error?: string }>;
}

export interface StartOptions {
  resume?: boolean;
  cacheDir?: string | null;
  backend?: string;
  spawn?: SpawnTrainer;
  onEvent?: (e: TrainerEvent) => void;
}

/**
 * Held-out results as kept in the run's summary (listed with every run): the numbers and a ROC
 * curve of at most 256 points for the plot; the per-slice scores and labels stay in results.json.
 */
export function summaryResults(results: FinetuneResults): RecordedResults {
  if (results.task !== 'classification' || 'error' in results) return results;
  const { scores: _scores, labels: _labels, ...rest } = results;
  const max = 256;
  const n = rest.roc.fpr.length;
  if (n > max && rest.roc.tpr.length === n) {
    const keep = Array.from({ length: max }, (_, i) => Math.round((i * (n - 1)) / (max - 1)));
    rest.roc = Object.fromEntries(Object.entries(rest.roc).map(([k, v]) => [k, v.length === n ? keep.map((i) => v[i]) : v])) as typeof rest.roc;
  }
  return rest;
}

/** Run folders whose trainer this host process drives (run service and experiment grids alike). */
const training = new Set<string>();
const LOCK = 'trainer.lock';
/** The host touches the lock this often while it trains; a lock not touched for LOCK_STALE_MS is stale. */
const LOCK_HEARTBEAT_MS = 20_000;
const LOCK_STALE_MS = 90_000;

/**
 * Whether a trainer is working in this run folder: driven by this process, or by another live
 * process (the CLI, another `ctssl serve` or app window) whose trainer.lock is fresh. A lock goes
 * stale when its host stops touching it (killed, crashed, machine rebooted) or its pid is gone, so
 * a reused pid cannot hold a run for ever.
 */
export function isTraining(dir: string): boolean {
  const abs = resolve(dir);
  if (training.has(abs)) return true;
  return lockHolder(abs) !== null;
}

/** The live host holding the folder's lock, or null (no lock, stale, or this process's own). */
function lockHolder(abs: string): number | null {
  try {
    const path = join(abs, LOCK);
    if (Date.now() - statSync(path).mtimeMs > LOCK_STALE_MS) return null;
    const { pid } = JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown };
    if (typeof pid !== 'number' || pid === process.pid) return null;
    process.kill(pid, 0); // throws when no such process
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? -1 : null;
  }
}

/**
 * Takes the folder's lock atomically (create-exclusive; a stale lock is replaced once). False when
 * another live host holds it. A folder that cannot hold a lock (read-only, vanished) is not
 * refused: the trainer reports what is wrong with it.
 */
function takeLock(abs: string): boolean {
  const path = join(abs, LOCK);
  const body = JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, body, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return true;
      if (lockHolder(abs) !== null) return false;
      rmSync(path, { force: true });
    }
  }
  return false;
}

/**
 * Records the points of `metrics.jsonl` up to `upToStep` in the run's curve (INSERT OR REPLACE:
 * points already recorded stay as they are). Reads the file in 1 MiB chunks, so a long run's file
 * costs no more memory than one chunk; a malformed line is skipped. Returns the points written.
 */
export function backfillMetrics(db: Database, runId: number, path: string, upToStep: number): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return 0;
  }
  const metric = db.prepare('INSERT OR IGNORE INTO run_metrics (run_ref, step, split, name, value) VALUES (?, ?, ?, ?, ?)');
  let written = 0;
  const record = (line: string) => {
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      return;
    }
    if (!row || typeof row !== 'object') return;
    const { step, split, ...values } = row as Record<string, unknown>;
    if (typeof step !== 'number' || !Number.isInteger(step) || step > upToStep || (split !== 'train' && split !== 'val')) return;
    for (const [k, v] of Object.entries(values)) {
      if (typeof v === 'number' && Number.isFinite(v) && k.length <= 64) written += metric.run(runId, step, split, k, v).changes;
    }
  };
  try {
    db.transaction(() => {
      const buf = Buffer.alloc(1 << 20);
      const decoder = new StringDecoder('utf8');
      let rest = '';
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n <= 0) break;
        const lines = (rest + decoder.write(buf.subarray(0, n))).split('\n');
        rest = lines.pop() ?? '';
        // A line longer than a chunk is not ours: drop it rather than grow without bound.
        if (rest.length > buf.length) rest = '';
        for (const l of lines) if (l) record(l);
      }
      if (rest) record(rest);
    })();
  } finally {
    closeSync(fd);
  }
  return written;
}

/** Starts (or resumes) a run in a trainer process and records its events in the database. */
export function startRun(db: Database, run: RunRow, o: StartOptions = {}): RunHandle {
  const abs = resolve(run.dir);
  // Two trainers in one folder would write the same checkpoints, metrics and results.
  if (training.has(abs) || !takeLock(abs)) throw new Error(`run "${run.name}" is already training (${abs})`);
  training.add(abs);
  const heartbeat = setInterval(() => {
    try {
      const t = new Date();
      utimesSync(join(abs, LOCK), t, t);
    } catch {
      // the folder went away; the trainer reports it
    }
  }, LOCK_HEARTBEAT_MS);
  heartbeat.unref?.();
  const release = () => {
    clearInterval(heartbeat);
    training.delete(abs);
    try {
      const held = JSON.parse(readFileSync(join(abs, LOCK), 'utf8')) as { pid?: unknown };
      if (held.pid === process.pid) rmSync(join(abs, LOCK), { force: true });
    } catch {
      // already gone
    }
  };
  let child: TrainerChild;
  try {
    child = (o.spawn ?? spawnNodeTrainer)();
  } catch (err) {
    release();
    throw err;
  }
  const setStatus = db.prepare('UPDATE runs SET status = ?, updated_at = ?, error = ? WHERE id = ?');
  const setProgress = db.prepare('UPDATE runs SET step = ?, total_steps = ?, updated_at = ? WHERE id = ?');
  const setBackend = db.prepare('UPDATE runs SET backend = ? WHERE id = ?');
  const setSummary = db.prepare('UPDATE runs SET summary = ? WHERE id = ?');
  const metric = db.prepare('INSERT OR REPLACE INTO run_metrics (run_ref, step, split, name, value) VALUES (?, ?, ?, ?, ?)');
  const artifact = db.prepare('INSERT OR REPLACE INTO run_artifacts (run_ref, kind, path, step, created_at) VALUES (?, ?, ?, ?, ?)');
  const now = () => new Date().toISOString();
  let total = run.totalSteps;
  let step = run.step;
  let finalLosses: Record<string, number> = {};
  let results: FinetuneResults | undefined;
  let terminal: { status: RunRow['status']; error?: string } | null = null;
  setStatus.run('running', now(), '', run.id);
  const done = new Promise<Awaited<RunHandle['done']>>((resolveDone) => {
    child.onEvent((e) => {
      try {
        switch (e.type) {
          case 'ready':
            setBackend.run(`${e.backend.package}@${e.backend.version} (${e.backend.name}${e.backend.simd ? ', SIMD' : ''})`, run.id);
            break;
          case 'started':
            total = e.totalSteps;
            step = e.step;
            setProgress.run(step, total, now(), run.id);
            if (e.resumedFrom !== null) {
              db.prepare('DELETE FROM run_metrics WHERE run_ref = ? AND step > ?').run(run.id, e.resumedFrom);
              // Points the trainer wrote before a killed host could record them are in metrics.jsonl.
              backfillMetrics(db, run.id, join(abs, 'metrics.jsonl'), e.resumedFrom);
            }
            break;
          case 'step':
            step = e.step;
            db.transaction(() => {
              for (const [k, v] of Object.entries(e.losses)) if (Number.isFinite(v)) metric.run(run.id, e.step, 'train', k, v);
              metric.run(run.id, e.step, 'train', 'slicesPerSecond', e.slicesPerSecond);
              setProgress.run(e.step, total, now(), run.id);
            })();
            break;
          case 'eval':
            db.transaction(() => {
              for (const [k, v] of Object.entries(e.metrics)) if (Number.isFinite(v)) metric.run(run.id, e.step, 'val', k, v);
            })();
            break;
          case 'checkpoint':
            artifact.run(run.id, 'checkpoint', e.dir, e.step, now());
            break;
          case 'paused':
            setStatus.run('paused', now(), '', run.id);
            break;
          case 'resumed':
            setStatus.run('running', now(), '', run.id);
            break;
          case 'results':
            // Fine-tuning's held-out results, kept with the run so the app shows them later.
            results = e.results;
            break;
          case 'done':
            finalLosses = e.finalLosses;
            terminal = { status: e.stopped ? 'stopped' : 'done' };
            setSummary.run(JSON.stringify({ finalLosses: e.finalLosses, step: e.step, ...(results && { results: summaryResults(results) }) }), run.id);
            break;
          case 'error':
            terminal = { status: 'failed', error: e.message };
            break;
        }
      } catch {
        /* recording must never kill the run */
      }
      o.onEvent?.(e);
    });
    child.onExit((code, signal) => {
      release();
      const t = terminal ?? { status: 'crashed' as const, error: `trainer exited (${signal ?? 'code ' + code}) without finishing: resume the run to continue` };
      setStatus.run(t.status, now(), t.error ?? '', run.id);
      resolveDone({ status: t.status, step, finalLosses, error: t.error });
    });
  });
  child.send({ v: TRAINER_PROTOCOL, type: 'start', runDir: run.dir, resume: o.resume ?? true, cacheDir: o.cacheDir ?? null, backend: o.backend });
  return {
    run,
    child,
    pause: () => child.send({ v: 1, type: 'pause' }),
    resume: () => child.send({ v: 1, type: 'resume' }),
    stop: () => child.send({ v: 1, type: 'stop' }),
    done,
  };
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
