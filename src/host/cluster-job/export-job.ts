/**
 * Exporting a pretraining configuration as a cluster job: a self-contained folder that PyTorch
 * trains with DistributedDataParallel and no code of ours (see resources/cluster-job/README.md).
 *
 *   config.json        the run config (src/shared/run-config.ts), as a run folder has it
 *   job.json           the job's id, the config and manifest hashes, the model's architecture
 *   init.safetensors   the app's initial weights for the run's seed (or the init run's weights)
 *   train.py, model.py, README.md, slurm.sbatch   the program (resources/cluster-job)
 *   data/manifest.json the slices' format (size, dtype, scale, window), the shards, and every
 *                      series as {split, patient number, slices, first index row}: no UIDs, no
 *                      patient identifiers, no paths
 *   data/index.npy     int32 [N, 4]: series number, position in the series, shard, row
 *   data/shard-NNNNN.npy  int16 (or uint8) [n, S, S]: windowed, resized slices x scale (the
 *                      reference recipe's 8-bit slices: uint8, exactly)
 *
 * Only the training and validation splits are exported: held-out patients stay home, where
 * `ctssl eval-ssl` measures the imported run on them. The run's own manifest (paths, patient keys)
 * stays home too, in <data>/cluster-jobs/<jobId>/, where `ctssl import` finds it.
 *
 * Shards are written to a temporary name and renamed, and an export into a folder that holds the
 * same job continues where it stopped (existing shards of the right size are kept).
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parsePretrainConfig, type PretrainConfig, type PretrainConfigInput } from '../../shared/run-config';
import type { ClusterJobExport } from '../../shared/results';
import { architectureSpecs, modelSize } from '../../core/ml/specs/pretrain';
import { encodeSafetensors } from '../../core/ml/safetensors';
import { runPreprocessSpec } from '../../core/ssl/preprocess';
import { initialWeights, type WeightEntry } from '../../core/ml/specs/params';
import type { Database } from '../../library/db/sqlite';
import { latestCheckpointDir, readCheckpoint, writeJsonAtomic } from '../../library/runs/checkpoint';
import type { Manifest, Split } from '../../library/runs/manifest';
import { planPretrainRun } from '../runs/create-run';
import { JOB_DATA_FORMAT, JOB_FORMAT, jobDescription, PROGRAM_FILES, programDir, type JobDescription } from './job-files';
import { encodeNpy, npyHeader, type NpyDtype } from './npy';
import { slicePool } from './slice-pool';

export type ShardDtype = 'int16' | 'uint8';

/** Stored value = round(x * scale) for x in [0, 1]. */
export const SHARD_SCALE: Record<ShardDtype, number> = { int16: 32767, uint8: 255 };

export interface ExportJobOptions {
  /** The job folder to write (new, empty, or an earlier export of the same job to complete). */
  out: string;
  /** The app data folder: the job's home record goes to <dataDir>/cluster-jobs/<jobId>/. */
  dataDir: string;
  dtype?: ShardDtype;
  /** Bytes of slices per shard (default 256 MiB). */
  shardBytes?: number;
  /** Worker threads decoding slices (default: the machine's cores less one, at most 8, none on 2 cores; 0 = in process). */
  workers?: number;
  onProgress?: (p: { done: number; total: number }) => void;
  signal?: AbortSignal;
}

/** What an export wrote (src/shared/results.ts ClusterJobExport). */
export type ExportJobResult = ClusterJobExport;

/** A path as a POSIX shell word (quoted when it holds anything but plain characters). */
const shellWord = (p: string): string => (/^[\w./:@%+=,-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`);

/** The job README's commands for a job folder (one node, one process, Slurm) and the way home. */
export function jobCommands(dir: string): ClusterJobExport['commands'] {
  const cd = `cd ${shellWord(dir)} && `;
  return {
    oneNode: `${cd}torchrun --nproc_per_node=N train.py`,
    oneProcess: `${cd}python3 train.py`,
    slurm: `${cd}sbatch --nodes=2 --gres=gpu:4 slurm.sbatch`,
    importBack: `ctssl import ${shellWord(`${dir}/output`)}`,
  };
}

/** Where a job's home record (config, manifest with paths, job.json) is kept. */
export function jobHome(dataDir: string, jobId: string): string {
  if (!/^[0-9a-f-]{36}$/.test(jobId)) throw new Error(`job id ${JSON.stringify(jobId.slice(0, 64))} is not a job id`);
  return join(resolve(dataDir), 'cluster-jobs', jobId);
}

/** The config and manifest of a job: planned from a config (as a new run would be), or an existing run's. */
export function jobSource(db: Database, from: { config: PretrainConfigInput } | { runDir: string }): { config: PretrainConfig; manifest: Manifest } {
  if ('config' in from) return planPretrainRun(db, from.config);
  const dir = resolve(from.runDir);
  const read = (f: string) => {
    try {
      return JSON.parse(readFileSync(join(dir, f), 'utf8')) as unknown;
    } catch (err) {
      throw new Error(`${join(dir, f)}: ${(err as Error).message}`);
    }
  };
  const raw = read('config.json') as { kind?: string };
  if (raw?.kind !== undefined && raw.kind !== 'pretrain') throw new Error(`${dir} is a ${raw.kind} run: a cluster job pretrains`);
  return { config: parsePretrainConfig(raw), manifest: read('manifest.json') as Manifest };
}

/** The weights the job starts from: the init run's (over the seeded ones, as the app's engine loads them) or the seeded ones. */
function startWeights(config: PretrainConfig, job: JobDescription): WeightEntry[] {
  const seeded = initialWeights(architectureSpecs(job.architecture), config.seed);
  if (!config.init) return seeded;
  const ck = latestCheckpointDir(config.init);
  if (!ck) throw new Error(`init run ${config.init} has no checkpoint to start from`);
  const from = new Map(readCheckpoint(ck).weights.map((w) => [w.name, w]));
  let loaded = 0;
  const out = seeded.map((w) => {
    const f = from.get(w.name);
    if (!f) return w;
    if (f.shape.join(',') !== w.shape.join(',')) throw new Error(`init run ${config.init}: ${w.name} has shape [${f.shape}], this model [${w.shape}]`);
    loaded++;
    return { ...w, data: f.data };
  });
  if (loaded === 0) throw new Error(`init run ${config.init}: no weights match this model (different preset?)`);
  return out;
}

/** The job folder: created, or an earlier export of the same job (config and manifest), or refused. */
function prepareOut(out: string, job: JobDescription): string | null {
  if (!existsSync(out)) {
    mkdirSync(out, { recursive: true });
    return null;
  }
  const st = lstatSync(out);
  if (!st.isDirectory()) throw new Error(`${out} exists and is not a folder`);
  const names = readdirSync(out);
  if (names.length === 0) return null;
  try {
    const prev = JSON.parse(readFileSync(join(out, 'job.json'), 'utf8')) as Partial<JobDescription>;
    if (prev.format === JOB_FORMAT && prev.configHash === job.configHash && prev.manifestHash === job.manifestHash && typeof prev.jobId === 'string') return prev.jobId;
  } catch {
    /* not a job */
  }
  throw new Error(`${out} is not empty and holds no export of this job: choose a new folder`);
}

/** Exports a pretraining job. Long (reads every training and validation slice): progress and cancel. */
export async function exportClusterJob(db: Database, from: { config: PretrainConfigInput } | { runDir: string }, o: ExportJobOptions): Promise<ExportJobResult> {
  const t0 = Date.now();
  const { config, manifest } = jobSource(db, from);
  const out = resolve(o.out);
  // The slices as the run's trainer reads them (src/core/ssl/preprocess.ts runPreprocessSpec); a
  // recipe of 8-bit slices (the reference's) is held exactly by uint8 shards.
  const size = modelSize(config);
  const spec = runPreprocessSpec(config, size);
  const eightBit = spec.bits === 8;
  if (eightBit && o.dtype === 'int16') throw new Error('the reference recipe trains on 8-bit slices: export it with --dtype uint8 (its default)');
  const dtype: ShardDtype = o.dtype ?? (eightBit ? 'uint8' : 'int16');
  if (!(dtype in SHARD_SCALE)) throw new Error(`--dtype must be int16 or uint8 (got ${String(dtype)})`);
  const draft = jobDescription(config, manifest.hash, randomUUID());
  const previous = prepareOut(out, draft);
  const job: JobDescription = previous ? { ...draft, jobId: previous, createdAt: (JSON.parse(readFileSync(join(out, 'job.json'), 'utf8')) as JobDescription).createdAt } : draft;

  // Home first: the import needs it, and a job folder without one could never come back.
  const home = jobHome(o.dataDir, job.jobId);
  mkdirSync(home, { recursive: true });
  writeJsonAtomic(join(home, 'config.json'), config);
  writeJsonAtomic(join(home, 'manifest.json'), manifest);
  writeJsonAtomic(join(home, 'job.json'), { ...job, exportedTo: out });

  writeJsonAtomic(join(out, 'config.json'), config);
  writeJsonAtomic(join(out, 'job.json'), job);
  writeFileSync(join(out, 'init.safetensors'), encodeSafetensors(startWeights(config, job), { format: 'ctssl-weights', jobId: job.jobId }));
  const program = programDir();
  for (const f of PROGRAM_FILES) writeFileSync(join(out, f), readFileSync(join(program, f)));

  // The slices: training and validation series, in manifest order, each series' slices contiguous.
  const scale = SHARD_SCALE[dtype];
  const exported = manifest.series.map((s, i) => ({ s, i })).filter(({ s }) => s.split === 'train' || s.split === 'val');
  const patients = new Map<string, number>();
  const series: { number: number; patient: number; split: Split; slices: number; first: number }[] = [];
  let first = 0;
  for (const { s } of exported) {
    if (!patients.has(s.patientKey)) patients.set(s.patientKey, patients.size + 1);
    series.push({ number: series.length, patient: patients.get(s.patientKey)!, split: s.split, slices: s.slices.length, first });
    first += s.slices.length;
  }
  const total = first;
  if (total === 0) throw new Error('the cohort has no training slices to export');
  const itemBytes = dtype === 'int16' ? 2 : 1;
  const perShard = Math.max(1, Math.floor((o.shardBytes ?? 256 * 2 ** 20) / (size * size * itemBytes)));
  const shardCount = Math.ceil(total / perShard);
  const index = new Int32Array(total * 4);
  const shards: { file: string; slices: number }[] = [];
  const dataDir = join(out, 'data');
  mkdirSync(dataDir, { recursive: true });

  let done = 0;
  // A cursor over the exported slices (no per-slice objects: 17.5 M slices would not fit).
  let cn = 0;
  let cp = 0;
  const next = () => {
    while (exported[cn].s.slices.length <= cp) {
      cn++;
      cp = 0;
    }
    const s = exported[cn].s;
    const r = { series: cn, position: cp, slice: s.slices[cp], transform: s.transform };
    cp++;
    return r;
  };
  // Decoding in worker threads pays on a workstation's cores; on 2 cores the main thread does it.
  const workers = o.workers ?? (availableParallelism() > 2 ? Math.min(8, availableParallelism() - 1) : 0);
  const pool = slicePool(workers);
  const window = Math.max(4, 4 * workers);
  try {
    for (let sh = 0; sh < shardCount; sh++) {
      const from0 = sh * perShard;
      const count = Math.min(perShard, total - from0);
      const file = `shard-${String(sh).padStart(5, '0')}.npy`;
      shards.push({ file, slices: count });
      const refs = Array.from({ length: count }, (_, r) => {
        const ref = next();
        index.set([ref.series, ref.position, sh, r], (from0 + r) * 4);
        return ref;
      });
      const header = npyHeader(dtype as NpyDtype, [count, size, size]);
      const expected = header.length + count * size * size * itemBytes;
      const path = join(dataDir, file);
      if (existsSync(path) && statSync(path).size === expected) {
        done += count;
        o.onProgress?.({ done, total });
        continue;
      }
      const tmp = `${path}.tmp-${process.pid}`;
      const fd = openSync(tmp, 'w');
      // Converted by the pool's workers in order of submission, written in order, a bounded window ahead.
      const inflight: Promise<Uint8Array>[] = [];
      const submit = (r: number) => {
        const ref = refs[r];
        const p = pool.convert({ path: ref.slice.path, frame: ref.slice.frame, transform: ref.transform, spec, dtype, scale });
        p.catch(() => undefined); // surfaced when awaited
        inflight.push(p);
      };
      try {
        writeSync(fd, header);
        let sent = 0;
        for (let r = 0; r < count; r++) {
          while (sent < count && inflight.length < window) submit(sent++);
          if (o.signal?.aborted) throw new Error('cancelled');
          const bytes = await inflight.shift()!;
          writeSync(fd, bytes);
          done++;
          if (done % 16 === 0 || done === total) o.onProgress?.({ done, total });
        }
      } catch (err) {
        await Promise.allSettled(inflight);
        closeSync(fd);
        rmSync(tmp, { force: true });
        throw err;
      }
      closeSync(fd);
      renameSync(tmp, path);
    }
  } finally {
    await pool.close();
  }
  writeFileSync(join(dataDir, 'index.npy'), encodeNpy('int32', [total, 4], index));
  const counts = { train: 0, val: 0 };
  for (const s of series) counts[s.split as 'train' | 'val'] += s.slices;
  writeJsonAtomic(join(dataDir, 'manifest.json'), {
    format: JOB_DATA_FORMAT,
    version: 1,
    size,
    dtype,
    scale,
    preprocessing: { windowLevel: config.windowLevel, windowWidth: config.windowWidth, scaling: config.scaling, note: 'value / scale = the slice windowed to [0, 1] (display orientation, bilinear square resize), as the app feeds its models' },
    index: { file: 'index.npy', columns: ['series', 'position', 'shard', 'row'] },
    shards,
    counts: { train: { slices: counts.train, patients: countPatients(series, 'train') }, val: { slices: counts.val, patients: countPatients(series, 'val') } },
    series: series.map(({ number, ...s }) => ({ series: number, ...s })),
    manifestHash: manifest.hash,
  });
  const bytes = shards.reduce((a, s) => a + statSync(join(dataDir, s.file)).size, 0);
  return {
    dir: out,
    jobId: job.jobId,
    task: config.task,
    preset: config.preset,
    size,
    dtype,
    slices: counts,
    heldOut: manifest.counts.test.slices,
    shards: shards.length,
    bytes,
    seconds: (Date.now() - t0) / 1000,
    files: [...PROGRAM_FILES, 'config.json', 'job.json', 'init.safetensors', 'data/manifest.json', 'data/index.npy', `data/shard-*.npy (${shards.length})`],
    commands: jobCommands(out),
  };
}

function countPatients(series: { patient: number; split: Split }[], split: Split): number {
  return new Set(series.filter((s) => s.split === split).map((s) => s.patient)).size;
}
