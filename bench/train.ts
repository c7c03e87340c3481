/**
 * `npm run bench:train`: training throughput of the VQ-VAE (masked-region composite loss, Adam,
 * batch 8) per backend and preset, against the same model, batch and optimiser in PyTorch on the
 * CPU (bench/train_torch.py, /usr/bin/python3 with torch, four thread settings), in the same run. Results go
 * to docs/benchmarks.md under `## Training throughput` (only that section is replaced).
 *
 * Each measurement runs in its own child process so that peak RSS is per configuration.
 *
 * usage: node --import tsx bench/train.ts [--quick] [--no-write] [--python /usr/bin/python3]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trainerExecArgv } from '../src/platform/trainer-flags';
import { busyBefore, loadSentence, QUIET_BUSY, replaceSection } from './common';
import { maskedBatch, profileTable, type StepProfile } from './train-profile';

interface Job {
  /** Label in the table. */
  label: string;
  preset: 'tiny' | 'small' | 'standard';
  backend: 'wasm' | 'cpu';
  /** wasm: threads of the threaded build (1: the single-threaded SIMD build). */
  threads?: number;
  /** Data-parallel: each batch in 2 shards, the second in a helper thread (src/trainer/data-parallel.ts). */
  dataParallel?: boolean;
  batch: number;
  warmup: number;
  steps: number;
}

interface JobResult {
  imagesPerSecond: number;
  msPerStep: number;
  /** Process CPU time (all threads) per image over the timed steps. */
  cpuMsPerImage: number;
  peakRssMB: number;
  params: number;
  firstLoss: number;
  lastLoss: number;
  backend: string;
  /** Threads the backend computed with (wasm: its pool's size). */
  threadCount: number;
  /** Why the threaded build was not used, when it was asked for and fell back. */
  fallback?: string;
  numTensorsStable: boolean;
}

interface TorchResult {
  torch: string;
  threads: number;
  params: number;
  imagesPerSecond: number;
  msPerStep: number;
  cpuMsPerImage: number;
  peakRssMB: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

/** Child process: run one job, print one JSON line. */
async function child(job: Job): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const { vqvaePreset, vqvaeParamCount, createVqvae } = await import('../src/core/ml/vqvae');
  const { createOptimizer } = await import('../src/core/ml/optim');
  const { trainStepRecon } = await import('../src/core/ml/train-step');
  const { initBackend } = await import('../src/trainer/backend');
  const { GradientHelper, ShardedStep } = await import('../src/trainer/data-parallel');
  const cfg = vqvaePreset(job.preset);
  const batch = () => maskedBatch(job.batch, cfg.size, 1);
  const losses: number[] = [];
  const counts: number[] = [];
  const info = await initBackend({ force: job.backend, wasmThreads: job.threads ?? 1 });
  const model = createVqvae(cfg, 1);
  const opt = createOptimizer('adam', { lr: 1e-3 });
  const sharded = job.dataParallel ? new ShardedStep(2, await GradientHelper.start({ model: { kind: 'vqvae', config: cfg } })) : null;
  const run = async () => {
    losses.push(sharded != null ? (await sharded.step(model, opt, batch())).loss : trainStepRecon(model, opt, batch()).loss);
    counts.push(tf.memory().numTensors);
  };
  for (let i = 0; i < job.warmup; i++) await run();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < job.steps; i++) await run();
  const dt = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(c0);
  const stable = new Set(counts.slice(1)).size <= 1;
  const result: JobResult = {
    imagesPerSecond: (job.batch * job.steps) / dt,
    msPerStep: (1000 * dt) / job.steps,
    cpuMsPerImage: (cu.user + cu.system) / 1000 / (job.batch * job.steps),
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    params: vqvaeParamCount(cfg),
    firstLoss: losses[0],
    lastLoss: losses[losses.length - 1],
    backend: info.name,
    threadCount: sharded != null ? 2 : info.threadCount,
    fallback: info.skipped.find((x) => x.package.includes('threaded'))?.reason,
    numTensorsStable: stable,
  };
  await sharded?.close();
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

/** The small step on one wasm thread by kernel and by what runs outside the kernels (bench/train-profile.ts), in a child. */
function runProfile(): StepProfile | { error: string } {
  const r = spawnSync(process.execPath, [...trainerExecArgv(), '--import', 'tsx', fileURLToPath(import.meta.url), '--profile-child'], {
    cwd: root, encoding: 'utf8', timeout: 15 * 60 * 1000, maxBuffer: 64 << 20,
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('PROFILE '));
  if (line == null) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).split('\n').slice(-5).join(' ') };
  return JSON.parse(line.slice(8)) as StepProfile;
}

function runChild(job: Job): JobResult | { error: string } {
  const r = spawnSync(process.execPath, [...trainerExecArgv(), '--import', 'tsx', fileURLToPath(import.meta.url), '--child', JSON.stringify(job)], {
    cwd: root, encoding: 'utf8', timeout: 15 * 60 * 1000, maxBuffer: 64 << 20,
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
  if (line == null) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).split('\n').slice(-5).join(' ') };
  return JSON.parse(line.slice(7)) as JobResult;
}

const TORCH_ARGS: Record<string, string[]> = {
  tiny: ['--size', '64', '--w1', '8', '--w2', '16', '--blocks', '1', '--latent', '8', '--codes', '32'],
  small: ['--size', '128', '--w1', '32', '--w2', '64', '--blocks', '2', '--latent', '64', '--codes', '512'],
  standard: ['--size', '256', '--w1', '128', '--w2', '256', '--blocks', '6', '--latent', '64', '--codes', '512'],
};

/**
 * `threads`: torch.set_num_threads (OpenMP). `blasThreads`: OPENBLAS_NUM_THREADS; unset, Debian's
 * OpenBLAS (pthreads build) starts one thread per core whatever torch's setting, and runs the
 * matrix products (the VQ distances) and the im2col convolutions (transposed ones) on them.
 */
function runTorch(python: string, preset: string, batch: number, steps: number, warmup: number, threads: number, blasThreads?: number): TorchResult | { error: string } {
  try {
    const env = blasThreads == null ? process.env : { ...process.env, OPENBLAS_NUM_THREADS: String(blasThreads) };
    const out = execFileSync(python, [join(here, 'train_torch.py'), ...TORCH_ARGS[preset], '--batch', String(batch), '--steps', String(steps), '--warmup', String(warmup), '--threads', String(threads), '--optim', 'adam'], { encoding: 'utf8', timeout: 15 * 60 * 1000, env });
    return JSON.parse(out.trim().split('\n').pop()!) as TorchResult;
  } catch (e) {
    return { error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'absent';
  }
}


async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const ci = args.indexOf('--child');
  if (ci >= 0) {
    await child(JSON.parse(args[ci + 1]) as Job);
    return;
  }
  if (args.includes('--profile-child')) {
    const { profileStep } = await import('./train-profile');
    process.stdout.write(`PROFILE ${JSON.stringify(await profileStep('small', 5))}\n`);
    return;
  }
  const quick = args.includes('--quick');
  const write = !args.includes('--no-write');
  const pi = args.indexOf('--python');
  const python = pi >= 0 ? args[pi + 1] : '/usr/bin/python3';
  const s = (n: number) => (quick ? Math.max(2, Math.round(n / 4)) : n);

  // small decides the parity target: 5 interleaved rounds (PyTorch's 2-thread row moved 21.7-34.5
  // images/s between quiet runs), tiny 3
  const roundsOf = (preset: 'small' | 'tiny') => (quick ? 1 : preset === 'small' ? 5 : 3);
  const tf = (preset: Job['preset'], label: string, backend: Job['backend'], batch: number, warmup: number, steps: number, threads = 1, dataParallel = false): Job =>
    ({ label, preset, backend, threads, batch, warmup, steps, ...(dataParallel ? { dataParallel } : {}) });
  const DP = 'tfjs wasm, 2 threads (data-parallel: 2 shards of 4)';
  // The machine may be shared: every configuration runs several rounds, interleaved with PyTorch;
  // the best and the median run are reported; CPU time per image too (less sensitive to load).
  const plan: { preset: 'small' | 'tiny'; jobs: Job[]; torchSteps: number }[] = [
    { preset: 'small', torchSteps: s(30), jobs: [
      tf('small', 'tfjs wasm, 1 thread', 'wasm', 8, quick ? 2 : 6, s(12)),
      tf('small', 'tfjs wasm, 2 threads (threaded build)', 'wasm', 8, quick ? 2 : 6, s(12), 2),
      tf('small', DP, 'wasm', 8, quick ? 2 : 6, s(12), 1, true),
    ] },
    { preset: 'tiny', torchSteps: s(60), jobs: [
      tf('tiny', 'tfjs wasm, 1 thread', 'wasm', 8, quick ? 3 : 10, s(40)),
      tf('tiny', 'tfjs wasm, 2 threads (threaded build)', 'wasm', 8, quick ? 3 : 10, s(40), 2),
      tf('tiny', DP, 'wasm', 8, quick ? 3 : 10, s(40), 1, true),
      tf('tiny', 'tfjs cpu (pure JS), 1 thread', 'cpu', 8, 1, s(4)),
    ] },
  ];
  const cpuSmall = tf('small', 'tfjs cpu (pure JS), 1 thread, batch 2', 'cpu', 2, 0, 1);
  type Run<T> = T | { error: string };
  const ips = (r: Run<{ imagesPerSecond: number }>) => ('error' in r ? NaN : r.imagesPerSecond);
  /** The best run of a configuration (its row), or its first failure when every run failed. */
  const bestOf = <T extends { imagesPerSecond: number }>(all: Run<T>[]): Run<T> =>
    all.filter((r) => !('error' in r)).sort((a, b) => ips(b) - ips(a))[0] ?? all[0];
  const medianOf = (all: Run<{ imagesPerSecond: number }>[]): number => {
    const v = all.map(ips).filter(Number.isFinite).sort((a, b) => a - b);
    if (v.length === 0) return NaN;
    return v.length % 2 === 1 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  const rows: { job: Job; r: JobResult | { error: string }; all: Run<JobResult>[] }[] = [];
  /** PyTorch's configurations: OpenMP threads (torch.set_num_threads) and OpenBLAS's (unset: one per core). */
  const TORCH_CONFIGS = [
    { key: 't2', name: 'PyTorch CPU, 2 threads', threads: 2 },
    { key: 't2s', name: 'PyTorch CPU, 2 threads, OPENBLAS_NUM_THREADS=1', threads: 2, blas: 1 },
    { key: 't1', name: 'PyTorch CPU, 1 thread (OpenBLAS: 2)', threads: 1 },
    { key: 't1s', name: 'PyTorch CPU, 1 thread, OPENBLAS_NUM_THREADS=1', threads: 1, blas: 1 },
  ] as const;
  type TorchKey = (typeof TORCH_CONFIGS)[number]['key'];
  const torchRuns: Record<string, Record<TorchKey, Run<TorchResult>[]>> = {};
  const busy0 = await busyBefore();
  const quiet = busy0 != null && busy0 < QUIET_BUSY;
  const load0 = loadavg();
  for (const { preset, jobs, torchSteps } of plan) {
    const all = new Map<Job, Run<JobResult>[]>(jobs.map((j) => [j, []]));
    const tr = Object.fromEntries(TORCH_CONFIGS.map((c) => [c.key, [] as Run<TorchResult>[]])) as Record<TorchKey, Run<TorchResult>[]>;
    const rounds = roundsOf(preset);
    for (let rep = 0; rep < rounds; rep++) {
      for (const job of jobs) {
        process.stderr.write(`[bench:train] ${preset} ${job.label} (run ${rep + 1}/${rounds}) ...\n`);
        const r = runChild(job);
        process.stderr.write(`[bench:train]   ${JSON.stringify(r)}\n`);
        all.get(job)!.push(r);
      }
      for (const c of TORCH_CONFIGS) {
        process.stderr.write(`[bench:train] ${c.name}, ${preset} (run ${rep + 1}/${rounds}) ...\n`);
        const r = runTorch(python, preset, 8, torchSteps, jobs[0].warmup, c.threads, 'blas' in c ? c.blas : undefined);
        process.stderr.write(`[bench:train]   ${JSON.stringify(r)}\n`);
        tr[c.key].push(r);
      }
    }
    for (const job of jobs) rows.push({ job, r: bestOf(all.get(job)!), all: all.get(job)! });
    torchRuns[preset] = tr;
  }
  process.stderr.write(`[bench:train] small ${cpuSmall.label} ...\n`);
  const cpuRun = runChild(cpuSmall);
  rows.splice(1, 0, { job: cpuSmall, r: cpuRun, all: [cpuRun] });
  process.stderr.write('[bench:train] small: profile of one wasm thread ...\n');
  const profile = runProfile();
  const load1 = loadavg();

  const cpu = cpus();
  const fmt = (v: number, d = 1) => v.toFixed(d);
  const lines: string[] = [];
  lines.push(`Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`npm run bench:train\`${quick ? ' (--quick)' : ''} on ${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, ${fmt(totalmem() / 2 ** 30, 0)} GiB RAM; Node ${process.versions.node}, @tensorflow/tfjs ${pkgVersion('@tensorflow/tfjs')}, tfjs-backend-wasm ${pkgVersion('@tensorflow/tfjs-backend-wasm')} (SIMD build; its threaded SIMD build started in Node by src/trainer/wasm-threads.ts for the 2-thread rows), tfjs-node ${pkgVersion('@tensorflow/tfjs-node')}, tfjs-node-gpu ${pkgVersion('@tensorflow/tfjs-node-gpu')}.`);
  lines.push('');
  lines.push(`Task: masked-region VQ-VAE step (composite loss 0.2 MSE + 0.2 masked MSE + 0.8 VQ - 0.1 SSIM), Adam lr 1e-3, batch 8, 1 input channel, random images; each configuration in its own process (peak RSS is that process's), started with the trainer's V8 flags (src/platform/trainer-flags.ts; in this run: ${trainerExecArgv().join(' ') || 'none'}). \`small\` is the probe configuration of issue 4 (128x128, widths 32/64, 2 residual blocks, latent 64, 512 codes); \`tiny\` is 64x64, widths 8/16, 1 block, latent 8, 32 codes. PyTorch: bench/train_torch.py, same modules, loss and optimiser, \`/usr/bin/python3\` (Debian python3-torch).`);
  lines.push('');
  lines.push(`${loadSentence(load0, load1, busy0)} Each configuration ran ${roundsOf('small')} round(s) for small and ${roundsOf('tiny')} for tiny, every round interleaving all of them (tfjs and PyTorch, each in a fresh process); a row shows its best run (ms/step, CPU ms/image and peak RSS are that run's) and the median over its runs; CPU ms/image (all threads) is less sensitive to load. Timed steps follow warm-up steps (small 6, tiny 10, for tfjs and PyTorch alike: V8 compiles the step's code and our generated WebAssembly in tiers while it runs): the rows are steady-state throughput, as in a long run.`);
  lines.push('');
  lines.push('| preset | engine | images/s (best) | images/s (median) | ms/step | CPU ms/image | peak RSS MB | best vs best PyTorch | median vs best PyTorch median |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  /** Per preset: PyTorch's best run over its configurations and the best of its configurations' medians. */
  const ptRef = (preset: string) => {
    const tr = torchRuns[preset];
    const best = Math.max(...TORCH_CONFIGS.map((c) => ips(bestOf(tr[c.key]))).filter(Number.isFinite));
    const medians = TORCH_CONFIGS.map((c) => ({ c, m: medianOf(tr[c.key]) })).filter((x) => Number.isFinite(x.m)).sort((x, y) => y.m - x.m);
    return { best, median: medians[0]?.m ?? NaN, medianName: medians[0]?.c.name ?? 'none' };
  };
  const rel = (v: number, to: number) => (Number.isFinite(to) && Number.isFinite(v) ? fmt(v / to, 2) : 'n/a');
  for (const preset of ['small', 'tiny']) {
    const ref = ptRef(preset);
    const row = (label: string, r: Run<{ imagesPerSecond: number; msPerStep: number; cpuMsPerImage: number; peakRssMB: number }>, all: Run<{ imagesPerSecond: number }>[]) => {
      if ('error' in r) return `| ${preset} | ${label} | failed: ${r.error.replace(/\|/g, '/')} | | | | | | |`;
      const med = medianOf(all);
      return `| ${preset} | ${label} | ${fmt(r.imagesPerSecond, 2)} | ${all.length > 1 ? fmt(med, 2) : ''} | ${fmt(r.msPerStep, 0)} | ${fmt(r.cpuMsPerImage, 0)} | ${fmt(r.peakRssMB, 0)} | ${rel(r.imagesPerSecond, ref.best)} | ${all.length > 1 ? rel(med, ref.median) : ''} |`;
    };
    for (const { job, r, all } of rows.filter((x) => x.job.preset === preset)) {
      const label = 'error' in r ? job.label : r.fallback ? `${job.label}: fell back to 1 thread (${r.fallback})` : (job.threads ?? 1) > 1 && r.threadCount !== job.threads ? `${job.label}: ran ${r.threadCount}` : job.label;
      lines.push(row(label, r, all));
    }
    for (const c of TORCH_CONFIGS) {
      const all = torchRuns[preset][c.key];
      const b = bestOf(all);
      lines.push(row('error' in b ? c.name : `${c.name} (torch ${b.torch})`, b, all));
    }
  }
  lines.push('');
  const smallWasm = rows.filter((x) => x.job.preset === 'small' && x.job.backend === 'wasm');
  const tfBest = Math.max(...smallWasm.map((x) => ips(x.r)).filter(Number.isFinite));
  const tfMedians = smallWasm.map((x) => ({ label: x.job.label, m: medianOf(x.all), runs: x.all })).filter((x) => Number.isFinite(x.m)).sort((x, y) => y.m - x.m);
  const ref = ptRef('small');
  if (Number.isFinite(tfBest) && Number.isFinite(ref.best)) {
    const tm = tfMedians[0];
    const runsOf = (all: Run<{ imagesPerSecond: number }>[]) => all.map((r) => ('error' in r ? 'failed' : fmt(r.imagesPerSecond, 1))).join(', ');
    const ptMedianRuns = torchRuns.small[TORCH_CONFIGS.find((c) => c.name === ref.medianName)?.key ?? 't2'];
    const byBest = tfBest / ref.best;
    const byMedian = tm != null ? tm.m / ref.median : NaN;
    const verdict = byBest >= 1 && byMedian >= 1 ? 'parity reached by both measures'
      : byMedian >= 1 ? 'parity reached by the medians, not by the single best runs'
        : byBest >= 1 ? 'parity reached by the single best runs, not by the medians'
          : 'parity not reached';
    lines.push(`Probe configuration (small): best tfjs run ${fmt(tfBest, 1)} images/s against PyTorch's best run ${fmt(ref.best, 1)} (any of its ${TORCH_CONFIGS.length} configurations): **${fmt(byBest, 2)}x**; by medians, ${tm == null ? 'n/a' : `${tm.label} ${fmt(tm.m, 1)} images/s (runs ${runsOf(tm.runs)})`} against ${ref.medianName} ${fmt(ref.median, 1)} (runs ${runsOf(ptMedianRuns)}): **${fmt(byMedian, 2)}x** (issue 14's target: >= 1.0; ${verdict} in this run${!quiet ? ', on a machine under load, where one run may meet a quieter moment than another: no parity claim; a run on a quiet machine decides' : ''}).`);
    lines.push('');
  }
  if ('error' in profile) lines.push(`Where a step's CPU goes: the profile failed (${profile.error}).`);
  else {
    const k = (name: string) => profile.kernels.find((x) => x.name === name)?.ms ?? 0;
    const o = (re: RegExp) => profile.outside.filter((x) => re.test(x.part)).reduce((a, x) => a + x.ms, 0);
    const conv = k('Conv2D');
    const fg = o(/^filter gradient/);
    const wg = o(/^Winograd/);
    const elementwise = ['Multiply', 'Add', 'Sub', 'AvgPool', 'Step', 'Square', 'Rsqrt', 'Relu', 'SquaredDifference', 'RealDiv', 'Neg', 'Sigmoid', 'Mean', 'Sum', 'Maximum'].reduce((a, n) => a + k(n), 0);
    const pct = (ms: number) => `${((100 * ms) / profile.cpuMsPerStep).toFixed(0)} %`;
    lines.push(`Where a step's CPU goes (\`npm run bench:train-profile\`, bench/train-profile.ts, run by this benchmark: the small step, batch 8, on one wasm thread, ${profile.steps} steps in one process; each tfjs kernel wrapped to add up its CPU time, the rest split by V8's sampling profiler; ${profile.cpuMsPerStep.toFixed(0)} CPU ms per step in this run, the wrappers and the sampler included):`);
    lines.push('');
    lines.push(...profileTable(profile));
    lines.push('');
    lines.push(`So the convolutions' arithmetic is ${pct(conv + fg + wg)} of the step: XNNPACK's (the remaining forward convolutions and input gradients: the 4x4 stride-2, sub-pixel and 1x1 ones) ${pct(conv)}, our Winograd kernels for the 3x3 stride-1 convolutions (forward, input and filter gradients, with their transforms and copies) ${pct(wg)}, our direct filter-gradient kernel with its copies ${pct(fg)}. Everything else together is ${pct(profile.cpuMsPerStep - conv - fg - wg)}: element-wise kernels and channel sums ${pct(elementwise)} (BatchNorm, LeakyReLU, biases, losses), matrix products ${pct(k('BatchMatMul'))} (VQ distances and the SSIM blur), the engine, garbage collection, and our loops (VQ, Adam, sub-pixel phases). tfjs-backend-wasm's own \`Conv2DBackpropInput\` (a scalar C++ loop, not XNNPACK) and its missing \`Conv2DBackpropFilter\` never run in this step (no such kernel above): the layers' hand-written gradients replace both.`);
    lines.push('');
  }
  const smallRow = (pred: (j: Job) => boolean) => {
    const r = rows.find((x) => x.job.preset === 'small' && x.job.backend === 'wasm' && pred(x.job))?.r;
    return r == null || 'error' in r ? null : r;
  };
  const w1 = smallRow((j) => (j.threads ?? 1) === 1 && !j.dataParallel);
  const wt = smallRow((j) => (j.threads ?? 1) > 1);
  const wdp = smallRow((j) => j.dataParallel === true);
  const tfFastest = rows.filter((x) => x.job.preset === 'small' && x.job.backend === 'wasm' && !('error' in x.r)).sort((x, y) => (y.r as JobResult).imagesPerSecond - (x.r as JobResult).imagesPerSecond)[0];
  const ok = <T extends object>(t: T | { error: string }): T | null => ('error' in t ? null : (t as T));
  const pt1 = ok(bestOf(torchRuns.small.t1));
  const pt1s = ok(bestOf(torchRuns.small.t1s));
  lines.push(`How the tfjs numbers are obtained (src/core/ml/layers.ts, winograd.ts, winograd-f43.ts, winograd-s2.ts, bn-act.ts, blur.ts, vq-kernel.ts, adam-kernel.ts, wasm-kernels.ts, optim.ts, backend.ts, src/trainer/data-parallel.ts, src/platform/trainer-flags.ts): hand-assembled WebAssembly SIMD working in tfjs-backend-wasm's own heap (src/core/ml/wasm-heap.ts) for the 3x3 stride-1 convolutions with >= 32 channels (forward and input gradient by Winograd F(4x4, 3x3), see 13 below; filter gradient by F(2x2, 3x3), see 6), the 4x4 stride-2 ones and the transposed ones by Winograd F(3x3, 2x2) (see 8), BatchNorm fused with its activation (see 7), SSIM's blur (see 9), the VQ arg-min and Adam (see 10); the remaining convolutions (the 1x1 ones, the first and last layers with 1 channel) are XNNPACK's, their filter gradients a hand-assembled SIMD kernel (wasm-kernels.ts); the VQ gather/scatter are plain loops, and the wasm Identity kernel (the engine clones every tensor a gradient saves) shares data instead of copying it. The 2-thread rows use the second core in two ways. The threaded build: tfjs-backend-wasm's threaded SIMD build (XNNPACK with a 2-thread pool) in Node through src/trainer/wasm-threads.ts; only XNNPACK's kernels use the second thread (the filter-gradient kernel, the loops and the engine stay on one); same losses bit for bit as one thread (test/trainer/wasm-threads.test.ts). Data-parallel, as PyTorch DistributedDataParallel on two processes: each batch of 8 is split into 2 shards of 4, this thread computes the first while a helper worker thread with its own single-threaded wasm backend computes the second (it gets the weights with each shard), the gradients are averaged and Adam applied once; BatchNorm normalises each shard by its own statistics, as DDP without SyncBatchNorm does, so its losses are not those of the whole-batch rows; they equal bit for bit the same 2 shards computed one after the other in one thread (test/trainer/data-parallel.test.ts). **The trainer pretrains data-parallel by default on wasm** (2 shards, in one thread on a one-core machine, so a run's numbers do not depend on the machine's cores), except the \`tiny\` preset, one thread measured faster there (WHOLE_BATCH_PRESETS in src/trainer/data-parallel.ts); \`CTSSL_WASM_THREADS=1\` trains the whole batch in one thread, \`CTSSL_WASM_THREADS=N\` with the threaded build's N threads; fine-tuning trains the whole batch as before. The fastest tfjs row of the small preset in this run: ${tfFastest == null ? 'none' : tfFastest.job.label}${wdp != null && w1 != null ? ` (data-parallel at ${fmt(wdp.imagesPerSecond / w1.imagesPerSecond, 2)}x one thread${wt != null ? `, the threaded build at ${fmt(wt.imagesPerSecond / w1.imagesPerSecond, 2)}x` : ''})` : ''}. A first data-parallel pool, before the per-step work below, was measured on 2026-11-26 on a loaded machine and removed (small 5.47 vs 5.67 images/s for one thread, tiny 161 vs 236). Parameter counts are equal in both engines (small: 342,467; tiny: 13,595).`);
  lines.push('');
  lines.push(`The PyTorch rows: \`torch.set_num_threads(N)\` sets its OpenMP threads, but Debian's torch hands matrix products and im2col convolutions to OpenBLAS (its pthreads build), which starts a thread per core whatever torch's setting and keeps them spinning between calls: in torch's profiler of this step, aten::mm (the VQ distances), slow_conv_transpose2d (the transposed convolutions) and _slow_conv2d run there. So "1 thread (OpenBLAS: 2)" uses both cores${pt1 != null ? ` (small: ${fmt(pt1.cpuMsPerImage, 0)} CPU ms per image at ${fmt(1000 / pt1.imagesPerSecond, 0)} ms of wall time per image in this run)` : ''}, and \`OPENBLAS_NUM_THREADS=1\` is PyTorch on one core${pt1s != null ? ` (${fmt(pt1s.cpuMsPerImage, 0)} CPU ms per image)` : ''}; 2 OpenMP threads plus OpenBLAS's 2 oversubscribe 2 cores and slow down most when the machine is busy; \`2 threads, OPENBLAS_NUM_THREADS=1\` gives each core one thread. The target is against the best of the four.`);
  lines.push('');
  lines.push('What was tried on 2026-12-05 and 06 for the parity target (issue 14: small preset >= 1.0x PyTorch on the CPU in the same run; on a quiet machine before this work, 18.2 against PyTorch\'s 26.3 images/s with 2 threads), each measured interleaved with its baseline on this shared machine:');
  lines.push('');
  lines.push('1. tfjs-backend-wasm\'s threaded SIMD build in Node (the "threaded build" rows). It runs: the package\'s own Emscripten pthread worker under worker_threads, with a shim for what tfjs hands it in browser form (a blob: worker URL and a Blob main script) and for the backend\'s C++ capping its pool at half the logical CPUs (one thread on a 2-vCPU machine); same losses bit for bit as one thread. On the quiet machine at 15:19 it gave 20.3 against 14.7 images/s for one thread (small; 1.38x): only the convolutions are split, everything else waits on one core. Where threads fail to start the trainer falls back to one thread and `ctssl doctor` says why.');
  lines.push(`2. Data parallelism over 2 threads (the "data-parallel" rows, src/trainer/data-parallel.ts): both cores run the whole step, each on half the batch, so only the gradient average, Adam and the weights sent to the helper (1.4 MB a step for small) are serial. Split in 2 shards computed in one thread, a small step costs what the whole batch costs (82-87 against 85-87 CPU ms/image, interleaved pairs at load 7-13); with the helper thread 103-112 under that load (two threads of one process contending with a dozen others). Under load it gains only when the second core is free often enough: at load 9 -> 16 (one run each, --quick) 5.7 images/s against 3.9 for one thread and 2.5 for the threaded build, but at load 6 -> 13 (two interleaved rounds) 3.2 and 2.8 against 4.3 and 3.6; tiny, whose steps are short, lost at load 9 -> 16 (39 against 53). On the quiet machine (2026-12-05 16:41) it was the fastest small row, 22.7 images/s against 13.6 for one thread and 19.2 for the threaded build, so it stays the trainer\'s default for the presets above tiny (one constant, DEFAULT_WASM_DATA_PARALLEL in src/trainer/data-parallel.ts); tiny lost there (286 against 343), see 5 (d).`);
  lines.push('3. Per-step overheads, from node --cpu-prof and per-kernel timing of the small step: the engine clones every tensor a gradient saves and the wasm Identity kernel copied them (190 copies a step); the filter-gradient kernel and the VQ loops read tensors through dataSync\'s fresh copies; Adam ran ~13 kernels per parameter (~500 kernel calls a step); flipping filters used the wasm Gather and Transpose kernels (2-5 ms each for a 3x3x64x64 filter). Identity now shares data (as the cpu and webgl backends\' does), tensors are read as views of the wasm heap, Adam is one float32-exact loop per parameter (same bits as the kernels, tested), and filters are flipped and split into sub-pixel phases by loops. Interleaved pairs before/after on this machine: small 105-124 -> 81-91 CPU ms/image (-15 to -32 %), tiny 5.8 -> 5.0, losses identical bit for bit.');
  lines.push('4. Threading our own filter-gradient SIMD kernel (and the VQ and Adam loops) with a shared-memory worker: not done. With data parallelism each core already runs them on its own shard; within the threaded build they are about 15 % of a small step\'s CPU (node --cpu-prof), so a perfect second thread would take at most that off.');
  lines.push('5. After the profile above (2026-12-05, evening, on the shared machine under load; each compared in interleaved runs): (a) the filter-gradient kernel broadcast its x values by one load and 4 lane shuffles, which compete with the multiplies and adds for the same execution ports; a splatting load (\`v128.load32_splat\`, vbroadcastss) per value instead: 3x3 64->64 on 8x32x32 from 16.4-16.7 to 13.7-13.8 CPU ms (36 -> 44 GFLOPS, XNNPACK\'s forward convolution of the same size 16.7), the small step 86 -> 81 and 77 -> 74 CPU ms per image in two interleaved pairs; by bench:train-profile before -> after at equal load (XNNPACK\'s Conv2D 360 and 359 CPU ms a step in both): the filter-gradient kernel 161 -> 132 CPU ms a step, the step 773 -> 722; the same arithmetic in the same order (losses identical bit for bit). (b) The same register block (4 output pixels x 8 output channels, splatting loads) as a forward convolution to replace XNNPACK\'s: bit for bit equal to XNNPACK (it sums in the same order) but not faster (3x3 64->64: 24 against 22 CPU ms with our copies in and out, the kernel alone about equal), so not used: XNNPACK\'s convolutions are already at what 4-wide SIMD gives here. (c) WebAssembly relaxed SIMD: Node 20 (V8 11.3) validates \`f32x4.relaxed_madd\` only with \`--experimental-wasm-relaxed-simd\` (also settable at run time by v8.setFlagsFromString); tfjs-backend-wasm 4.22 ships a plain, a SIMD and a threaded SIMD build, none using relaxed SIMD (XNNPACK\'s relaxed kernels would need the backend built from source). Our filter-gradient kernel with \`relaxed_madd\` (fused multiply-add on this CPU) in place of multiply + add: 13.6-14.1 against 13.7-14.1 CPU ms, no gain: 4-wide multiplies and adds already issue on separate pipes, so fusing them halves the instructions, not the cycles; what PyTorch has over us is the width (8 lanes with AVX2), not the fusion. Not adopted (it would also make the numbers depend on the CPU). (d) The \`tiny\` preset pretrains the whole batch in one thread by default (src/trainer/data-parallel.ts, WHOLE_BATCH_PRESETS): data-parallel lost there on the quiet machine (286 against 343 images/s).');
  lines.push('6. Winograd F(2x2, 3x3) for the twelve 3x3 stride-1 convolutions and their six filter gradients (2026-12-05, 21:20-21:50 UTC, the shared machine under load 8-11; src/core/ml/winograd.ts): 2.25x fewer multiplications. Our SIMD module imports tfjs-backend-wasm\'s WebAssembly.Memory, so the input transform (B^T d B of each 4x4 tile, 4 channels a vector), the 16 products ([tiles, inC] x [inC, outC], a 4x8 register block with splatting loads) and the output transform (A^T M A) read and write the backend\'s tensors where they are, with no copy in or out; the filter gradient is dU_k = V_k^T dM_k summed over tiles (dM = A dY A^T) then G^T dU G. CPU ms per call, 3x3 64->64 on 8x32x32, interleaved: forward 8.6 against XNNPACK\'s direct 16.5 (the 16 products by tf.matMul instead: 10-11; our product loop unrolled 2-16 steps a pass was 1.4-2.7x slower than not unrolled), input gradient the same path with the flipped filter folded into its transform, filter gradient 9.5-11.7 against 14-17 for our direct kernel. The small step by bench:train-profile under load: 555 CPU ms against 690 with Winograd for the forward only and 653 (quiet) before; interleaved whole steps 610-683 -> 432-619. Not bit for bit the direct convolution (other sums; transform coefficients 0, +-1, 0.5): the first loss equal to 1e-7, later losses within 3e-3 after 6 steps (the VQ arg-min turns on ties); the PyTorch equivalence tests (1e-4 loss, 1e-3 weights) pass. Fewer than 32 channels (the tiny preset) stays on XNNPACK: not faster there (29-38 against 31-40 CPU ms a step).');
  lines.push('7. BatchNorm + activation fused (2026-12-06, src/core/ml/bn-act.ts). In plain JavaScript loops over the wasm heap (2026-12-05 22:05, loaded) it was slower than the tensor version (27-32 against 7-16 CPU ms forward + backward for 8x32x32x64), so it is now WebAssembly SIMD in the heap: forward a pass of per-channel shifted sums (float32 4-wide over 64 rows, then float64) and a pass writing act(gamma * invstd * (x - mean) + beta); backward a pass of the sums of dz and dz * xhat (the mask recomputed from x) and a pass writing dx; only x is saved. Interleaved, one wasm thread, LOADED: BatchNorm + LeakyReLU on 8x64x64x32 forward + backward 6.91 -> 1.67 CPU ms, on 8x32x32x64 2.99 -> 0.83, the 1-channel D4 BatchNorm 3.34 -> 1.10; kernel calls a step 1053 -> 491 with the activation alone as one pass too; whole small steps (20 pairs) median 405 -> 357 CPU ms. Within float32 rounding of the tensor version (test/core/ml/bn-act.test.ts), which other backends keep.');
  lines.push('8. Winograd F(3x3, 2x2) for the 4x4 stride-2 pad-1 convolutions with >= 32 channels (2026-12-06, src/core/ml/winograd-s2.ts): the forward (E2, and D3\'s input gradient) is a 2x2 stride-1 convolution of the space-to-depth input, read straight from the padded input; the transposed convolution (E2\'s input gradient, D3\'s forward) one F(3x3, 2x2) per output phase, each phase\'s pixels written 2 apart; the filter gradients by the same transform and winograd.ts\' summed products. 16 multiplications per 9 outputs against 36. CPU ms per call, interleaved, one wasm thread, LOADED: forward 32->64 on 8x64x64 8.8 against XNNPACK\'s 14.7; transposed 64->32 from 8x32x32 8.4 against 22.2 (four XNNPACK 2x2 convolutions and the phase loops); filter gradient 8.5 against 11.7 for the direct SIMD kernel.');
  lines.push('9. SSIM\'s separable Gaussian blur (2026-12-06, src/core/ml/blur.ts) as two SIMD filtering passes in the heap (4 outputs a vector, the 11 taps as constants; gradient: the same pass with the window reversed over the zero-padded output gradient) instead of two products by banded 128x118 matrices and a transpose per blur: ~11 multiply-adds an output instead of 128. SSIM forward + backward on 8x128x128, LOADED: 19.5 -> 5.1 CPU ms.');
  lines.push('10. Adam and the VQ arg-min as SIMD passes in the heap (2026-12-06, adam-kernel.ts, vq-kernel.ts): the same float32 operations in the same order as before (same bits; the same code chosen: the first minimum). Adam over the small model\'s 342,467 parameters 6.8-9.9 -> 2.8-4.0 CPU ms (serial in a data-parallel step: the helper waits for it); nearestCode for 8192 x 64 against 512 codes 21-23 -> 17-19 (the product, ~15 ms, is left).');
  lines.push('11. Garbage collection on the allocating thread where no core is free for V8\'s GC threads (2026-12-06, src/platform/trainer-flags.ts: the trainer process starts with --single-threaded-gc on 2 cores or fewer; it cannot be set in a running process). On this 2-core machine with every other process stopped, a data-parallel small step (2 shards of 4, this thread and the helper thread) took 260.4 and 260.8 ms with V8\'s default, 208.6 ms with it: the main thread\'s shard 204 -> 162 ms against 153-168 alone. The helper thread\'s shard still runs 20-27 % slower beside the main thread\'s than alone (two helper threads with the main thread idle: the same), so the main thread waits 30-40 ms a step for it; two separate processes slowed each other by ~14 %, PyTorch\'s 2 threads pay 24 % more CPU per image than its 1 (same machine, same moment).');
  lines.push('13. Winograd F(4x4, 3x3) for the 3x3 stride-1 convolutions and their input gradients (2026-12-06, src/core/ml/winograd-f43.ts): 6x6 tiles every 4 pixels, 36 products per 4x4 output tile (winograd.ts\' product kernel), 2.25 multiplications an output against F(2x2, 3x3)\'s 4; input, output and filter transforms as SIMD passes in the heap; the 36 buffers spaced one cache line apart beyond 128 KB each (exactly 128 KB apart they fell into the same L1 sets: the input transform was 4x slower). CPU ms per call, 64->64 on 8x32x32, interleaved (60 rounds), LOADED: forward 4.9 against 8.1, flipped (input gradient) 4.6 against 7.6; bench:train-profile steps (6 interleaved pairs) median 363 -> 331 CPU ms. Error against a float64 direct convolution 3.8e-6 to 8.5e-6 of the output\'s largest value (F(2x2, 3x3): about 6e-6 from it). The filter gradient stays on F(2x2, 3x3); sizes not a multiple of 4 and fewer than 32 channels fall back.');
  lines.push('12. The reference: PyTorch in a fourth setting, 2 OpenMP threads with OPENBLAS_NUM_THREADS=1 (2026-12-06): without OpenBLAS\'s own spinning pool beside torch\'s two threads it is PyTorch\'s fastest setting here (quick quiet run: 42.8 images/s against 19.9 for the oversubscribed default; with every other process stopped 36.1). The parity figures of earlier runs (0.77-1.02) compared with the oversubscribed settings only.');
  lines.push('');
  const cpuCompare = w1 == null || pt1s == null
    ? 'not available in this run'
    : `one wasm thread ${fmt(w1.cpuMsPerImage, 0)} against PyTorch on one core (OPENBLAS_NUM_THREADS=1) ${fmt(pt1s.cpuMsPerImage, 0)} CPU ms per image in this run: PyTorch does ${fmt(w1.cpuMsPerImage / pt1s.cpuMsPerImage, 2)}x the work per CPU second`;
  lines.push(`What limits parity: CPU time per image, ${cpuCompare}. That is compute: the convolutions on 4-wide WebAssembly SIMD (XNNPACK's and our filter-gradient kernel, both at 35-45 GFLOPS per core here) against im2col and OpenBLAS's 8-wide AVX2 matrix products in PyTorch (its \`_slow_conv2d\` and \`slow_conv_transpose2d\`, see the profile above and the PyTorch rows). At equal cores, matching PyTorch's best therefore needs tfjs to keep both cores busy with the whole step, which only data parallelism does; how close it comes is the ratio above, measured in the same run, and moves with the machine's load (hence the best and the median of several rounds; CPU ms/image is the steadier figure). Never a GPU figure here: no GPU on this machine.`);
  lines.push('');
  lines.push('What is left (estimates from the profile above, not measured): the Winograd products are still most of the step, at about 45 GFLOPS per core, near what 4-wide multiplies and adds give (16 flops a cycle at best); the 3x3 filter gradients could take F(4x4, 3x3) too; the tfjs engine\'s per-kernel bookkeeping and the 1x1 convolutions (XNNPACK) follow; in a data-parallel step, the helper thread\'s slower shard (see 11). Beyond that: 4-wide WebAssembly SIMD against 8-wide AVX2 with fused multiply-add in OpenBLAS.');
  const body = lines.join('\n');
  process.stdout.write(`${body}\n`);
  if (write) {
    replaceSection('Training throughput', body);
    process.stderr.write('[bench:train] wrote docs/benchmarks.md\n');
  }
}

await main();
