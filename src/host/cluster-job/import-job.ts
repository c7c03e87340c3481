/**
 * Bringing a cluster job home: the program's output (a checkpoint and metrics.jsonl, written on a
 * machine we do not control) becomes a run of the library with its curves, which eval-ssl,
 * fine-tuning, experiments, the probe and export use like any pretraining run.
 *
 * The output is hostile until checked, as a weights package is (src/host/package-import.ts):
 *  - what we trust comes from home: the job's config and manifest (with the DICOM paths) from
 *    <data>/cluster-jobs/<jobId>/, written by the export; the output only names its job id, and
 *    its job.json must carry the same config and manifest hashes;
 *  - every file is a regular file (never a link) read with a size cap: job.json, latest.json,
 *    state.json and optimizer.json 1 MiB each, checked by schemas; weights and optimizer moments
 *    2 GiB each, their safetensors headers (16 MiB) checked against this app's model before the
 *    data is read: exactly its tensor names and shapes, float32, non-overlapping offsets inside
 *    the file, no NaN or infinity; metrics.jsonl 256 MiB, streamed in 1 MiB chunks, only lines
 *    {step (up to the checkpoint's), split train|val, finite numbers under short names} kept;
 *  - the run is written into a fresh staging folder under <data>/runs/ and appears by one rename;
 *    the same checkpoint imported again is the run already there.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { parsePretrainConfig, type PretrainConfig } from '../../shared/run-config';
import type { ClusterJobImport } from '../../shared/results';
import { appMeta } from '../../platform/app-meta';
import { decodeSafetensors } from '../../core/ml/safetensors';
import { architectureSpecs } from '../../core/ml/specs/pretrain';
import type { Database } from '../../library/db/sqlite';
import { writeJsonAtomic } from '../../library/runs/checkpoint';
import type { Manifest } from '../../library/runs/manifest';
import { configHash } from '../../library/runs/run-hash';
import { backfillMetrics } from '../runs/record-events';
import { getRun, type RunRow } from '../runs/run-store';
import { jobHome } from './export-job';
import { JOB_FORMAT, type JobDescription } from './job-files';
import { readRegularCapped } from './regular-file';

const MiB = 2 ** 20;
export const JOB_IMPORT_LIMITS = { jsonBytes: 1 * MiB, tensorsBytes: 2 * 2 ** 30, headerBytes: 16 * MiB, metricsBytes: 256 * MiB };

export class JobImportError extends Error {
  constructor(
    readonly folder: string,
    message: string,
  ) {
    super(`cluster job output ${folder}: ${message}`);
  }
}

/** The imported run (the library's row) and what was imported (src/shared/results.ts ClusterJobImport). */
export interface JobImportResult extends ClusterJobImport {
  run: RunRow;
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const outputJobSchema = z.object({ format: z.literal(JOB_FORMAT), version: z.literal(1), jobId: z.string().regex(/^[0-9a-f-]{36}$/), configHash: hex64, manifestHash: hex64 }).passthrough();
const latestSchema = z.object({ step: z.number().int().nonnegative(), dir: z.string().regex(/^step-\d{7}$/) }).strict();
const finite = z.number().finite();
const lossesSchema = z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/), finite).refine((r) => Object.keys(r).length <= 64, 'more than 64 loss terms');
const stateSchema = z
  .object({
    step: z.number().int().nonnegative(),
    epoch: z.number().int().nonnegative(),
    batch: z.number().int().nonnegative(),
    configHash: hex64,
    manifestHash: hex64,
    losses: lossesSchema,
    savedAt: z.string().max(64),
  })
  .strict();
const optimizerSchema = z
  .object({
    kind: z.enum(['adam', 'radam']),
    step: z.number().int().nonnegative(),
    options: z.object({ lr: finite.positive(), beta1: finite, beta2: finite, eps: finite, weightDecay: finite }).strict(),
    names: z.array(z.string().max(200)).max(10_000),
  })
  .strict();

/** A regular file (not a link, FIFO or device) of at most `max` bytes, read whole; refused through `fail`. */
function readCapped(fail: (m: string) => never, path: string, what: string, max: number): Buffer {
  try {
    return readRegularCapped(path, what, max);
  } catch (err) {
    return fail((err as Error).message);
  }
}

function readJson<T>(fail: (m: string) => never, path: string, what: string, schema: z.ZodType<T>): T {
  return parseJson(fail, readCapped(fail, path, what, JOB_IMPORT_LIMITS.jsonBytes), what, schema);
}

/** Bytes read once, checked by a schema: what is checked is what gets installed. */
function parseJson<T>(fail: (m: string) => never, bytes: Buffer, what: string, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    return fail(`${what} is not JSON (${(err as Error).message})`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    return fail(`${what}: ${i.path.join('.') || 'value'}: ${i.message}`);
  }
  return r.data;
}

/** Safetensors bytes checked against expected names and shapes before decoding; every value finite. */
function checkTensors(fail: (m: string) => never, bytes: Buffer, what: string, expected: Map<string, number[]>, exact: boolean): ReturnType<typeof decodeSafetensors>['tensors'] {
  if (bytes.length < 8) fail(`${what} is shorter than a safetensors header`);
  const len = Number(bytes.readBigUInt64LE(0));
  if (len > JOB_IMPORT_LIMITS.headerBytes || 8 + len > bytes.length) fail(`${what}: header length ${len} is over the cap or past the end of the file`);
  let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + len).toString('utf8'));
  } catch {
    return fail(`${what}: the header is not JSON`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail(`${what}: the header is not an object`);
  const ranges: [number, number, string][] = [];
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  for (const name of names) {
    const t = header[name];
    const shape = expected.get(name);
    if (!shape) fail(`${what} holds tensor ${JSON.stringify(name.slice(0, 120))}, which this app's model does not have`);
    if (t.dtype !== 'F32') fail(`${what}: ${name} has dtype ${JSON.stringify(t.dtype)}; float32 (F32) expected`);
    if (!Array.isArray(t.shape) || t.shape.join(',') !== shape!.join(',')) fail(`${what}: ${name} has shape ${JSON.stringify(t.shape)}, the model [${shape}]`);
    const off = t.data_offsets;
    const n = shape!.reduce((a, b) => a * b, 1);
    if (!Array.isArray(off) || off.length !== 2 || !off.every((v) => Number.isSafeInteger(v)) || off[1] - off[0] !== 4 * n || off[0] < 0 || 8 + len + off[1] > bytes.length)
      fail(`${what}: ${name} has data offsets ${JSON.stringify(off)} that do not fit its shape or the file`);
    ranges.push([off[0], off[1], name]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) if (ranges[i][0] < ranges[i - 1][1]) fail(`${what}: ${ranges[i][2]} overlaps ${ranges[i - 1][2]}`);
  if (exact) {
    const missing = [...expected.keys()].filter((n) => !(n in header));
    if (missing.length) fail(`${what} lacks ${missing.length} tensor(s) of the model: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  }
  const tensors = decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
  for (const t of tensors) {
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) fail(`${what}: ${t.name} holds NaN or infinity (the training diverged?)`);
  }
  return tensors;
}

/** metrics.jsonl: the valid lines up to `upTo`, streamed in 1 MiB chunks. */
function cleanMetrics(fail: (m: string) => never, path: string, upTo: number): { text: string; kept: number; skipped: number } {
  if (!existsSync(path)) return { text: '', kept: 0, skipped: 0 };
  const st = lstatSync(path);
  if (!st.isFile() || st.isSymbolicLink()) fail(`metrics.jsonl is not a regular file (${path})`);
  if (st.size > JOB_IMPORT_LIMITS.metricsBytes) fail(`metrics.jsonl is ${st.size} bytes, over its ${JOB_IMPORT_LIMITS.metricsBytes}-byte cap`);
  const out: string[] = [];
  let kept = 0;
  let skipped = 0;
  const name = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
  const line = (l: string) => {
    if (!l.trim()) return;
    let row: unknown;
    try {
      row = JSON.parse(l);
    } catch {
      skipped++;
      return;
    }
    if (!row || typeof row !== 'object' || Array.isArray(row)) return void skipped++;
    const { step, split, ...values } = row as Record<string, unknown>;
    if (typeof step !== 'number' || !Number.isInteger(step) || step < 1 || step > upTo || (split !== 'train' && split !== 'val')) return void skipped++;
    const clean: Record<string, number> = {};
    for (const [k, v] of Object.entries(values)) if (name.test(k) && typeof v === 'number' && Number.isFinite(v) && Object.keys(clean).length < 64) clean[k] = v;
    out.push(JSON.stringify({ step, split, ...clean }));
    kept++;
  };
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(MiB);
    let rest = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const parts = (rest + buf.subarray(0, n).toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      if (rest.length > MiB) fail('metrics.jsonl has a line longer than 1 MiB');
      parts.forEach(line);
    }
    line(rest);
  } finally {
    closeSync(fd);
  }
  return { text: out.map((l) => l + '\n').join(''), kept, skipped };
}

/** The output folder: the folder given, or its output/ (the job folder itself). */
function outputFolder(folder: string): string {
  const hasCk = (d: string) => existsSync(join(d, 'checkpoints', 'latest.json'));
  if (hasCk(folder)) return folder;
  if (hasCk(join(folder, 'output'))) return join(folder, 'output');
  throw new JobImportError(folder, 'no checkpoint: neither checkpoints/latest.json nor output/checkpoints/latest.json is there (has the job run?)');
}

/**
 * Imports the output of a cluster job (the job folder, or the program's --out folder) as a run
 * under <dataDir>/runs, recorded in the library with its curves.
 */
export function importJobOutput(db: Database, folder: string, dataDir: string): JobImportResult {
  const given = resolve(folder);
  const out = outputFolder(given);
  const fail = (m: string): never => {
    throw new JobImportError(out, m);
  };
  const outJob = readJson(fail, existsSync(join(out, 'job.json')) ? join(out, 'job.json') : join(given, 'job.json'), 'job.json', outputJobSchema);
  const home = jobHome(dataDir, outJob.jobId);
  if (!existsSync(join(home, 'job.json'))) {
    fail(`job ${outJob.jobId} was not exported from this library's data folder (${home} is missing): import it where \`ctssl job export\` made it`);
  }
  // Trusted: what the export kept at home.
  const job = JSON.parse(readFileSync(join(home, 'job.json'), 'utf8')) as JobDescription;
  const config: PretrainConfig = parsePretrainConfig(JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')));
  const manifest = JSON.parse(readFileSync(join(home, 'manifest.json'), 'utf8')) as Manifest;
  if (outJob.configHash !== job.configHash || outJob.manifestHash !== job.manifestHash) fail(`job.json does not match job ${job.jobId} as exported (config or data hash differs)`);

  const latest = readJson(fail, join(out, 'checkpoints', 'latest.json'), 'checkpoints/latest.json', latestSchema);
  const ckDir = join(out, 'checkpoints', latest.dir);
  const ckSt = existsSync(ckDir) ? lstatSync(ckDir) : null;
  if (!ckSt || ckSt.isSymbolicLink() || !ckSt.isDirectory()) fail(`checkpoints/${latest.dir} is not a folder`);
  const state = readJson(fail, join(ckDir, 'state.json'), `checkpoints/${latest.dir}/state.json`, stateSchema);
  if (state.step !== latest.step) fail(`checkpoints/latest.json says step ${latest.step}, its state.json ${state.step}`);
  if (state.configHash !== job.configHash || state.manifestHash !== job.manifestHash) fail(`checkpoints/${latest.dir} was written for another job`);
  if (state.step === 0) fail('the checkpoint is at step 0: nothing was trained');

  const specs = architectureSpecs(job.architecture);
  const shapes = new Map(specs.map((s) => [s.name, s.shape]));
  const weightsBytes = readCapped(fail, join(ckDir, 'weights.safetensors'), 'weights.safetensors', JOB_IMPORT_LIMITS.tensorsBytes);
  checkTensors(fail, weightsBytes, 'weights.safetensors', shapes, true);
  let optimizer: { meta: Buffer; tensors: Buffer } | null = null;
  if (existsSync(join(ckDir, 'optimizer.json'))) {
    const metaBuf = readCapped(fail, join(ckDir, 'optimizer.json'), 'optimizer.json', JOB_IMPORT_LIMITS.jsonBytes);
    const meta = parseJson(fail, metaBuf, 'optimizer.json', optimizerSchema);
    const trainable = new Map(specs.filter((s) => s.trainable).map((s) => [s.name, s.shape]));
    const unknown = meta.names.find((n) => !trainable.has(n));
    if (unknown !== undefined) fail(`optimizer.json names ${JSON.stringify(unknown.slice(0, 120))}, not a parameter of the model`);
    const slotShapes = new Map(meta.names.flatMap((n) => [[`${n}:m`, trainable.get(n)!] as [string, number[]], [`${n}:v`, trainable.get(n)!] as [string, number[]]]));
    const tensors = readCapped(fail, join(ckDir, 'optimizer.safetensors'), 'optimizer.safetensors', JOB_IMPORT_LIMITS.tensorsBytes);
    checkTensors(fail, tensors, 'optimizer.safetensors', slotShapes, true);
    optimizer = { meta: metaBuf, tensors };
  }
  const metrics = cleanMetrics(fail, join(out, 'metrics.jsonl'), state.step);
  const weightsSha = createHash('sha256').update(weightsBytes).digest('hex');
  const totalSteps = config.steps ?? state.step;

  // Install: a staging folder under <data>/runs, one rename; the same checkpoint again is that run.
  const runsDir = join(resolve(dataDir), 'runs');
  mkdirSync(runsDir, { recursive: true });
  const task = config.task.replace(/[^a-z0-9-]/g, '');
  const final = join(runsDir, `cluster-${task}-${job.jobId.slice(0, 8)}-step${state.step}`);
  const existing = sameImport(final, weightsSha);
  if (existing) {
    const run = getRun(db, final) ?? register(db, final, config, job, state.step, totalSteps, state.losses);
    return { run, dir: final, jobId: job.jobId, task: config.task, preset: config.preset, step: state.step, totalSteps, metrics: { points: 0, skippedLines: metrics.skipped }, existing: true };
  }
  if (existsSync(final)) fail(`${final} exists and holds something else: move it away first`);
  removeStaleStaging(runsDir);
  const staging = mkdtempSync(join(runsDir, '.import-job-'));
  try {
    const ck = join(staging, 'checkpoints', latest.dir);
    mkdirSync(ck, { recursive: true });
    writeFileSync(join(ck, 'weights.safetensors'), weightsBytes, { flag: 'wx' });
    if (optimizer) {
      writeFileSync(join(ck, 'optimizer.safetensors'), optimizer.tensors, { flag: 'wx' });
      writeFileSync(join(ck, 'optimizer.json'), optimizer.meta, { flag: 'wx' });
    }
    writeJsonAtomic(join(ck, 'state.json'), state);
    writeJsonAtomic(join(staging, 'checkpoints', 'latest.json'), { step: state.step, dir: latest.dir });
    writeJsonAtomic(join(staging, 'config.json'), config);
    writeJsonAtomic(join(staging, 'manifest.json'), manifest);
    writeFileSync(join(staging, 'metrics.jsonl'), metrics.text, { flag: 'wx' });
    writeJsonAtomic(join(staging, 'run.json'), {
      uid: job.jobId,
      app: appMeta().productName,
      appVersion: appMeta().version,
      createdAt: job.createdAt,
      configHash: configHash(config),
      manifestHash: manifest.hash,
      seeds: { run: config.seed, split: manifest.seed, weights: config.seed },
      parent: config.init ?? null,
      counts: manifest.counts,
      split: null,
      trainedBy: { engine: 'PyTorch DistributedDataParallel (cluster job)', jobId: job.jobId, exportedAt: job.createdAt, importedAt: new Date().toISOString(), weightsSha256: weightsSha },
    });
    renameSync(staging, final);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    if (err instanceof JobImportError) throw err;
    fail(`could not install: ${(err as Error).message}`);
  }
  const run = register(db, final, config, job, state.step, totalSteps, state.losses);
  const points = backfillMetrics(db, run.id, join(final, 'metrics.jsonl'), state.step);
  return { run: getRun(db, final)!, dir: final, jobId: job.jobId, task: config.task, preset: config.preset, step: state.step, totalSteps, metrics: { points, skippedLines: metrics.skipped }, existing: false };
}

/** Records the installed run: a pretraining run trained elsewhere, done (or stopped before its last step). */
function register(db: Database, dir: string, config: PretrainConfig, job: JobDescription, step: number, totalSteps: number, losses: Record<string, number>): RunRow {
  const now = new Date().toISOString();
  db.prepare(
    `INSERT INTO runs (uid, name, kind, task, status, dir, config, config_hash, manifest_hash, seed, app_version, backend, parent_dir, created_at, updated_at, step, total_steps, summary)
     VALUES (?, ?, 'pretrain', ?, ?, ?, ?, ?, ?, ?, ?, 'pytorch-ddp (cluster job)', ?, ?, ?, ?, ?, ?)`,
  ).run(
    `${job.jobId}-${step}`,
    config.name || `cluster job ${job.jobId.slice(0, 8)}`,
    config.task,
    step >= totalSteps ? 'done' : 'stopped',
    dir,
    JSON.stringify(config),
    configHash(config),
    job.manifestHash,
    config.seed,
    appMeta().version,
    config.init ?? '',
    job.createdAt,
    now,
    step,
    totalSteps,
    JSON.stringify({ finalLosses: losses, step }),
  );
  return getRun(db, dir)!;
}

/** Whether `dir` is this very checkpoint imported before (same weights). */
function sameImport(dir: string, weightsSha: string): boolean {
  try {
    if (!lstatSync(dir).isDirectory()) return false;
    const ledger = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { trainedBy?: { weightsSha256?: string } };
    return ledger.trainedBy?.weightsSha256 === weightsSha;
  } catch {
    return false;
  }
}

/** Staging folders of imports that died a day or more ago. */
function removeStaleStaging(into: string): void {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const name of readdirSync(into)) {
    if (!/^\.import-job-[A-Za-z0-9]{6}$/.test(name)) continue;
    try {
      const st = lstatSync(join(into, name));
      if (st.isDirectory() && st.mtimeMs < dayAgo) rmSync(join(into, name), { recursive: true, force: true });
    } catch {
      /* gone meanwhile */
    }
  }
}
