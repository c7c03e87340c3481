import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServices, type Services } from '../../src/host/services';
import { ClusterJobService } from '../../src/host/cluster-job/service';
import { indexFolders } from '../../src/library/indexing/indexer';
import { writeCohort } from '../../src/library/synth/synth-writer';
import { defaultOptions } from '../../src/core/synth/plan';
import { decodeSafetensors, encodeSafetensors } from '../../src/core/ml/safetensors';
import { runMetrics } from '../../src/host/runs/run-store';
import { root, tempDir } from '../helpers';

/**
 * A cluster job end to end, on a generated cohort in a real library: `job export` writes the
 * shards and the program; two PyTorch processes train it with DDP over gloo on the CPU, started by
 * torch.multiprocessing.spawn with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT (the launch Debian's
 * torch supports: its torchrun fails on this Python), stopped after 12 steps and resumed to 20;
 * the output is imported as a run with its curves and evaluated by eval-ssl in a trainer process.
 * Hostile outputs (a foreign tensor, a wrong shape, NaN weights, a linked file, a job from another
 * library) are refused naming the file.
 */
const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0;
if (!hasTorch) console.warn(`[cluster-job-ddp] skipped: ${PYTHON} with torch and numpy is absent (Debian: apt-get install python3-torch python3-numpy)`);

describe.skipIf(!hasTorch)('cluster job: export, 2-process DDP on CPU, import, eval-ssl', () => {
  const tmp = tempDir();
  const cohort = join(tmp.dir, 'cohort');
  const jobDir = join(tmp.dir, 'job');
  let services: Services;
  let jobs: ClusterJobService;

  beforeAll(async () => {
    await writeCohort({ ...defaultOptions(6, 3), slices: 8, size: 64, peFraction: 0 }, cohort, { jobs: 1 });
    services = createServices({ mode: 'server', dataDir: join(tmp.dir, 'data'), dbPath: join(tmp.dir, 'lib.sqlite'), emit: () => {} });
    await indexFolders(services.db, [cohort]);
    jobs = new ClusterJobService(services.db, join(tmp.dir, 'data'));
  }, 120_000);

  afterAll(async () => {
    await services?.close();
    tmp.cleanup();
  });

  /** `ctssl ... --json` in a process of its own, on this library and data folder. */
  function ctssl(...args: string[]): unknown {
    const r = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), ...args, '--db', join(tmp.dir, 'lib.sqlite'), '--json'], {
      env: { ...process.env, CTSSL_DATA_DIR: join(tmp.dir, 'data') },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, `ctssl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as unknown;
  }

  function train(args: string[]) {
    const r = spawnSync(PYTHON, [join(jobDir, 'train.py'), '--spawn', '2', '--device', 'cpu', ...args], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, OMP_NUM_THREADS: '1' } });
    if (r.status !== 0) throw new Error(`train.py failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  it('exports, trains 20 steps in 2 processes (stopped at 12, resumed), imports and evaluates', async () => {
    // through the CLI, as a user would: ctssl job export, later ctssl import
    const config = join(tmp.dir, 'pretrain.json');
    writeFileSync(config, JSON.stringify({ task: 'masked', preset: 'tiny', steps: 20, batchSize: 4, evalEvery: 10, checkpointEvery: 10, evalBatches: 2, seed: 2, filter: { modality: 'CT' }, fractions: { train: 0.5, val: 0.17, test: 0.33 } }));
    const exported = ctssl('job', 'export', '--config', config, '--out', jobDir) as { slices: { train: number; val: number }; heldOut: number; seconds: number; jobId: string };
    expect(exported.slices.train).toBeGreaterThan(0);
    expect(exported.slices.val).toBeGreaterThan(0);
    expect(exported.heldOut).toBeGreaterThan(0);
    for (const f of ['train.py', 'model.py', 'README.md', 'slurm.sbatch', 'config.json', 'job.json', 'init.safetensors', 'data/manifest.json', 'data/index.npy', 'data/shard-00000.npy']) expect(existsSync(join(jobDir, f)), f).toBe(true);
    // the data carries no identifiers or paths of the library
    const dataManifest = readFileSync(join(jobDir, 'data', 'manifest.json'), 'utf8');
    expect(dataManifest).not.toContain(cohort);
    expect(dataManifest).not.toMatch(/SYN\d/);
    // numpy reads the shards and index without our code: the slices are the windowed [0, 1] images
    const check = spawnSync(PYTHON, ['-c', `
import json, numpy as np
m = json.load(open('${jobDir}/data/manifest.json'))
idx = np.load('${jobDir}/data/index.npy')
a = np.load('${jobDir}/data/' + m['shards'][0]['file'], mmap_mode='r')
x = a[int(idx[0, 3])] / m['scale']
print(json.dumps({'n': int(idx.shape[0]), 'shape': list(a.shape), 'dtype': str(a.dtype), 'min': float(x.min()), 'max': float(x.max())}))
`], { encoding: 'utf8' });
    const info = JSON.parse(check.stdout) as { n: number; shape: number[]; dtype: string; min: number; max: number };
    expect(info.n).toBe(exported.slices.train + exported.slices.val);
    expect(info.shape.slice(1)).toEqual([64, 64]);
    expect(info.dtype).toBe('int16');
    expect(info.min).toBeGreaterThanOrEqual(0);
    expect(info.max).toBeLessThanOrEqual(1);
    expect(info.max).toBeGreaterThan(info.min);

    // 2 processes, gloo; leave after 12 steps (a checkpoint), then continue to 20
    const first = train(['--workers', '0', '--max-steps', '12']);
    expect(first).toMatch(/2 process\(es\) on cpu/);
    expect(JSON.parse(readFileSync(join(jobDir, 'output', 'checkpoints', 'latest.json'), 'utf8')).step).toBe(12);
    const second = train(['--workers', '1']); // and data loader worker processes
    expect(second).toMatch(/resuming from .*step-0000012/);
    expect(second).toMatch(/done: 20 steps/);
    const lines = readFileSync(join(jobDir, 'output', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; split: string; loss?: number; ssim?: number });
    const trainSteps = lines.filter((l) => l.split === 'train').map((l) => l.step);
    expect(trainSteps).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(lines.filter((l) => l.split === 'val').map((l) => l.step)).toEqual([10, 20]);
    expect(lines.every((l) => l.split !== 'train' || Number.isFinite(l.loss))).toBe(true);

    // home: the output folder alone is a run of the library, with its curves
    const r = ctssl('import', join(jobDir, 'output')) as { existing: boolean; step: number; runId: number; run: never };
    expect(r.existing).toBe(false);
    expect(r.step).toBe(20);
    const run = services.runs.get(r.runId);
    expect(run.status).toBe('done');
    expect(run.kind).toBe('pretrain');
    const curve = runMetrics(services.db, r.runId);
    expect(curve.filter((p) => p.split === 'train' && p.name === 'loss').map((p) => p.step)).toEqual(trainSteps);
    expect(curve.some((p) => p.split === 'val' && p.name === 'ssim')).toBe(true);
    // the same output again is the same run
    const again = jobs.import(jobDir);
    expect(again.existing).toBe(true);
    expect(again.run.id).toBe(r.runId);

    // eval-ssl on the held-out patients, in a trainer process, as the app does
    const ev = await services.runs.evaluate(r.runId, { split: 'test', backend: 'wasm' });
    expect(ev.task).toBe('masked');
    expect(ev.checkpointStep).toBe(20);
    expect(ev.images).toBeGreaterThan(0);
    expect(Number.isFinite(ev.perImage.mse.mean)).toBe(true);
    expect(Number.isFinite(ev.perImage.ssim.mean)).toBe(true);
    console.log(`[cluster-job-ddp] exported ${exported.slices.train}+${exported.slices.val} slices in ${exported.seconds.toFixed(1)} s; eval-ssl on ${ev.images} held-out images: MSE ${ev.perImage.mse.mean.toFixed(4)}, SSIM ${ev.perImage.ssim.mean.toFixed(3)}`);

    // hostile outputs, each refused naming the file and the reason
    const ck = JSON.parse(readFileSync(join(jobDir, 'output', 'checkpoints', 'latest.json'), 'utf8')).dir as string;
    const refused = (name: string, tamper: (dir: string) => void, message: RegExp) => {
      const d = join(tmp.dir, `hostile-${name}`);
      cpSync(join(jobDir, 'output'), d, { recursive: true });
      tamper(d);
      expect(() => jobs.import(d), name).toThrow(message);
    };
    const weights = (d: string) => join(d, 'checkpoints', ck, 'weights.safetensors');
    const rewrite = (d: string, f: (t: ReturnType<typeof decodeSafetensors>['tensors']) => ReturnType<typeof decodeSafetensors>['tensors']) =>
      writeFileSync(weights(d), encodeSafetensors(f(decodeSafetensors(new Uint8Array(readFileSync(weights(d)))).tensors)));
    refused('foreign-tensor', (d) => rewrite(d, (t) => [...t, { name: 'evil.payload', shape: [1], data: new Float32Array(1) }]), /weights\.safetensors holds tensor "evil\.payload"/);
    refused('shape', (d) => rewrite(d, (t) => t.map((x) => (x.name === 'vq.codebook' ? { ...x, shape: [x.shape[1], x.shape[0]] } : x))), /vq\.codebook has shape/);
    refused('nan', (d) => rewrite(d, (t) => t.map((x, i) => (i === 0 ? { ...x, data: Float32Array.from(x.data, () => NaN) } : x))), /NaN or infinity/);
    refused('linked-state', (d) => {
      rmSync(join(d, 'checkpoints', ck, 'state.json'));
      symlinkSync('/etc/passwd', join(d, 'checkpoints', ck, 'state.json'));
    }, /state\.json is a symbolic link/);
    refused('other-job', (d) => {
      const j = JSON.parse(readFileSync(join(d, 'job.json'), 'utf8'));
      writeFileSync(join(d, 'job.json'), JSON.stringify({ ...j, jobId: '00000000-0000-4000-8000-000000000000' }));
    }, /was not exported from this library's data folder/);
    const optimizerJson = (d: string) => join(d, 'checkpoints', ck, 'optimizer.json');
    refused('optimizer-name', (d) => {
      const o = JSON.parse(readFileSync(optimizerJson(d), 'utf8'));
      writeFileSync(optimizerJson(d), JSON.stringify({ ...o, names: [...o.names, 'evil.payload'] }));
    }, /optimizer\.json names "evil\.payload", not a parameter of the model/);
    refused('optimizer-not-json', (d) => writeFileSync(optimizerJson(d), '{"kind": "radam",'), /optimizer\.json is not JSON/);
    refused('path-in-latest', (d) => writeFileSync(join(d, 'checkpoints', 'latest.json'), JSON.stringify({ step: 20, dir: '../../../etc' })), /latest\.json: dir/);
    // garbage lines in metrics.jsonl are left out, not trusted
    const messy = join(tmp.dir, 'messy');
    cpSync(join(jobDir, 'output'), messy, { recursive: true });
    writeFileSync(join(messy, 'metrics.jsonl'), readFileSync(join(messy, 'metrics.jsonl'), 'utf8') + 'not json\n{"step": 999, "split": "train", "loss": 1}\n{"step": 3, "split": "train", "loss": "x", "__proto__": 5}\n');
    rmSync(join(tmp.dir, 'data', 'runs', readdirSync(join(tmp.dir, 'data', 'runs')).find((n) => n.startsWith('cluster-'))!), { recursive: true });
    services.db.prepare('DELETE FROM runs WHERE id = ?').run(r.runId);
    const m = jobs.import(messy);
    expect(m.metrics.skippedLines).toBe(2);
  }, 300_000);

  it('resumes after kill -9 to the same weights as a run that was never killed (one process)', async () => {
    const killJob = join(tmp.dir, 'kill-job');
    let progress = 0;
    const e = await jobs.export({ config: { task: 'rotation', preset: 'tiny', steps: 30, batchSize: 4, evalEvery: 1000, checkpointEvery: 5, seed: 4, filter: { modality: 'CT' }, fractions: { train: 0.5, val: 0.17, test: 0.33 } } }, { out: killJob, dtype: 'uint8', workers: 2, onProgress: (p) => (progress = p.done) });
    expect(progress).toBe(e.slices.train + e.slices.val);
    // the worker threads write the shards the main thread writes, byte for byte
    const inProcess = join(tmp.dir, 'kill-job-inline');
    await jobs.export({ config: JSON.parse(readFileSync(join(killJob, 'config.json'), 'utf8')) }, { out: inProcess, dtype: 'uint8', workers: 0 });
    for (const f of ['shard-00000.npy', 'index.npy']) expect(Buffer.compare(readFileSync(join(killJob, 'data', f)), readFileSync(join(inProcess, 'data', f))), f).toBe(0);
    const args = (out: string) => [join(killJob, 'train.py'), '--device', 'cpu', '--workers', '0', '--out', out];
    const env = { ...process.env, OMP_NUM_THREADS: '1' };
    const whole = spawnSync(PYTHON, args(join(tmp.dir, 'whole')), { encoding: 'utf8', env, timeout: 120_000 });
    expect(whole.status, whole.stderr).toBe(0);
    // the same job, killed (SIGKILL, no chance to save) once its first checkpoint is there
    const killedOut = join(tmp.dir, 'killed');
    const child = spawn(PYTHON, args(killedOut), { env, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const latest = join(killedOut, 'checkpoints', 'latest.json');
    let killedAt = -1;
    for (let i = 0; i < 3000 && killedAt < 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      if (existsSync(latest)) {
        child.kill('SIGKILL');
        killedAt = JSON.parse(readFileSync(latest, 'utf8')).step as number;
      }
    }
    await exited;
    expect(killedAt).toBeGreaterThanOrEqual(5);
    expect(killedAt).toBeLessThan(30);
    const resumed = spawnSync(PYTHON, args(killedOut), { encoding: 'utf8', env, timeout: 120_000 });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resuming from/);
    const weights = (out: string) => readFileSync(join(out, 'checkpoints', 'step-0000030', 'weights.safetensors'));
    expect(Buffer.compare(weights(killedOut), weights(join(tmp.dir, 'whole')))).toBe(0);
    const steps = readFileSync(join(killedOut, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; split: string }).filter((l) => l.split === 'train').map((l) => l.step);
    expect(steps).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  }, 240_000);
});
