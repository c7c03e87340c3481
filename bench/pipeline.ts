/**
 * `npm run bench:pipeline`: the pretraining input pipeline as the trainer runs it
 * (src/trainer/pretrain/pretrain-batches.ts: SliceSource -> read, decode, HU, display
 * orientation, window, resize; the masked-region transform; batches of 8 through the prefetch
 * queue), in slices per second and per CPU core, without and with the preprocessed slice cache,
 * on real DICOM (LIDC-IDRI-0001 in ../shared/data or $CTSSL_SHARED_DATA; skipped, saying so, when
 * absent) and on a synthetic cohort (`ctssl synth`), at the `standard` preset's input size and at
 * 128 px. Against a PyTorch DataLoader (bench/pipeline_torch.py: pydicom, the same files, the
 * same steps) with num_workers 0 and 1, interleaved in the same run. Then the pipeline's RSS over
 * a long pass at two cohort sizes. Results go to docs/benchmarks.md under
 * `## Pretraining input pipeline` (only that section is replaced).
 *
 * Every measurement runs in its own child process (node or python), so peak RSS and CPU time are
 * that configuration's. The OS page cache is warm for every configuration (a first, untimed pass
 * reads every file and fills the slice cache).
 *
 * usage: node --import tsx bench/pipeline.ts [--quick] [--no-write] [--runs N] [--python /usr/bin/python3] [--work DIR]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replaceSection, root } from './common';
import type { Manifest } from '../src/library/runs/manifest';

const HERE = fileURLToPath(import.meta.url);
const BATCH = 8;
const SEED = 1;

interface NodeJob {
  manifest: string;
  size: number;
  cacheDir: string | null;
  /** Untimed passes first (fill the slice cache, warm the page cache). */
  warm: boolean;
  /** Timed epochs (default 1). */
  epochs?: number;
  /** RSS sampling every 250 ms (the long pass). */
  sampleRss?: boolean;
  /** Preprocessed slices of the first N files in manifest order, for the equivalence check. */
  dump?: { count: number; out: string };
}

interface NodeResult {
  slices: number;
  seconds: number;
  cpuSeconds: number;
  peakRssMB: number;
  hits: number;
  misses: number;
  /** [seconds since start, RSS MB] every 250 ms when sampled. */
  rss?: [number, number][];
}

interface TorchResult {
  slices: number;
  seconds: number;
  cpuSeconds: number;
  peakRssMB: number;
  torch: string;
  pydicom: string;
}

type Result<T> = T | { error: string };

/** The trainer's own objects for a masked-region run of the `standard` preset at `size`. */
async function trainerPipeline(manifest: Manifest, size: number, cacheDir: string | null) {
  const { parsePretrainConfig } = await import('../src/shared/run-config');
  const { taskOptionsOf } = await import('../src/shared/pretext-tasks');
  const { runPreprocessSpec } = await import('../src/core/ssl/preprocess');
  const { modelSize } = await import('../src/core/ml/specs/pretrain');
  const { SliceSource, PretrainBatchStream } = await import('../src/trainer/pretrain/pretrain-batches');
  const config = parsePretrainConfig({ task: 'masked', preset: 'standard', size, batchSize: BATCH, seed: SEED, epochs: 1 });
  const spec = runPreprocessSpec(config, modelSize(config));
  const source = new SliceSource(manifest, spec, cacheDir);
  const stream = () => new PretrainBatchStream(source, 'train', taskOptionsOf(config), config.batchSize, config.seed);
  return { config, spec, source, stream };
}

/** Child process: one configuration, one JSON line. */
async function child(job: NodeJob): Promise<void> {
  const manifest = JSON.parse(readFileSync(job.manifest, 'utf8')) as Manifest;
  const { source, stream, spec } = await trainerPipeline(manifest, job.size, job.cacheDir);
  if (job.dump) {
    const { readModelSlice } = await import('../src/library/volumes/model-slice');
    const refs = manifest.series.flatMap((s) => s.slices.map((sl) => ({ sl, t: s.transform }))).slice(0, job.dump.count);
    const out = new Float32Array(refs.length * job.size * job.size);
    for (let i = 0; i < refs.length; i++) out.set(await readModelSlice(refs[i].sl.path, refs[i].sl.frame, refs[i].t, spec), i * job.size * job.size);
    writeFileSync(job.dump.out, new Uint8Array(out.buffer));
    process.stdout.write(`RESULT ${JSON.stringify({ dumped: refs.length })}\n`);
    return;
  }
  // One stream for the timed epochs, as the trainer has one: its prefetch runs on into the next epoch.
  const pass = async (s: ReturnType<typeof stream>, epoch: number) => {
    let n = 0;
    for (let i = 0; i < s.batchesPerEpoch; i++) n += (await s.get(epoch, i)).refs.length;
    return n;
  };
  if (job.warm) await pass(stream(), 0);
  // Let the warm pass's prefetches into the next epoch finish outside the timed part.
  await new Promise((r) => setTimeout(r, 300));
  source.hits = 0;
  source.misses = 0;
  const rss: [number, number][] = [];
  const t0 = performance.now();
  const timer = job.sampleRss ? setInterval(() => rss.push([(performance.now() - t0) / 1000, process.memoryUsage.rss() / 2 ** 20]), 250) : null;
  const c0 = process.cpuUsage();
  let slices = 0;
  const timed = stream();
  for (let e = 1; e <= (job.epochs ?? 1); e++) slices += await pass(timed, e);
  const seconds = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(c0);
  if (timer) clearInterval(timer);
  const r: NodeResult = {
    slices,
    seconds,
    cpuSeconds: (cu.user + cu.system) / 1e6,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    hits: source.hits,
    misses: source.misses,
    ...(job.sampleRss && { rss }),
  };
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

function runNode(job: NodeJob, extraArgs: string[] = []): Result<NodeResult> {
  const r = spawnSync(process.execPath, [...extraArgs, '--import', 'tsx', HERE, '--child', JSON.stringify(job)], {
    cwd: root, encoding: 'utf8', timeout: 20 * 60 * 1000, maxBuffer: 64 << 20,
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
  if (line == null) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).split('\n').slice(-6).join(' ') };
  return JSON.parse(line.slice(7)) as NodeResult;
}

function runTorch(python: string, list: string, size: number, workers: number, mask: { percent: number; definition: string }, extra: string[] = []): Result<TorchResult> {
  const r = spawnSync(python, [join(root, 'bench', 'pipeline_torch.py'), '--list', list, '--size', String(size), '--batch', String(BATCH), '--workers', String(workers), '--mask-percent', String(mask.percent), '--mask-definition', mask.definition, '--seed', String(SEED), '--warm', ...extra], {
    encoding: 'utf8', timeout: 20 * 60 * 1000, maxBuffer: 64 << 20,
  });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).split('\n').slice(-4).join(' ') };
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult;
}

/** Runs `ctssl synth` unless the folder already holds the same cohort (same arguments). */
function synth(out: string, args: string[]): number {
  const stamp = join(out, '.bench-args.json');
  const want = JSON.stringify(args);
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return 0;
  rmSync(out, { recursive: true, force: true });
  process.stderr.write(`[bench:pipeline] ctssl synth --out ${out} ${args.join(' ')} ...\n`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'synth', '--out', out, ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`ctssl synth failed (exit ${r.status})`);
  writeFileSync(stamp, want);
  return (performance.now() - t0) / 1000;
}

/**
 * Indexes a folder into its own library (incremental: a re-run reads nothing again) and writes the
 * run manifest the trainer would get (every CT series, all slices in training) plus the file list
 * for PyTorch (the same files in the same order, with their display transforms).
 */
async function prepare(name: string, folders: string[], work: string, maxSeries?: number, library = name): Promise<{ manifest: string; list: string; slices: number }> {
  const { openLibrary } = await import('../src/library/db/schema');
  const { indexFolders } = await import('../src/library/indexing/indexer');
  const { buildManifest } = await import('../src/library/runs/manifest');
  const { listSeries } = await import('../src/library/db/catalog');
  const db = openLibrary(join(work, `${library}.sqlite`));
  try {
    await indexFolders(db, folders);
    const ids = listSeries(db, { modality: 'CT' }).map((s) => s.id).sort((a, b) => a - b);
    const m = buildManifest(db, { seriesIds: maxSeries ? ids.slice(0, maxSeries) : ids, seed: SEED, fractions: { train: 1, val: 0, test: 0 } });
    const manifest = join(work, `${name}.manifest.json`);
    writeFileSync(manifest, JSON.stringify(m));
    const list = join(work, `${name}.files.json`);
    writeFileSync(list, JSON.stringify(m.series.flatMap((s) => s.slices.map((sl) => ({ path: sl.path, frame: sl.frame, transform: s.transform })))));
    return { manifest, list, slices: m.counts.train.slices };
  } finally {
    db.close();
  }
}

const fmt = (x: number, d = 0) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
/** Best of the runs (same slices each): the shortest clock time, the least CPU time, the largest peak RSS. */
const better = <T extends { slices: number; seconds: number; cpuSeconds: number; peakRssMB: number }>(a: Result<T> | undefined, b: Result<T>): Result<T> =>
  a == null || 'error' in a ? b : 'error' in b ? a : { ...a, seconds: Math.min(a.seconds, b.seconds), cpuSeconds: Math.min(a.cpuSeconds, b.cpuSeconds), peakRssMB: Math.max(a.peakRssMB, b.peakRssMB) };
const perCore = (r: { slices: number; cpuSeconds: number }) => r.slices / r.cpuSeconds;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const ci = args.indexOf('--child');
  if (ci >= 0) return child(JSON.parse(args[ci + 1]) as NodeJob);
  const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
  const quick = args.includes('--quick');
  const write = !args.includes('--no-write') && !quick;
  const python = opt('--python', '/usr/bin/python3');
  const runs = Number(opt('--runs', quick ? '1' : '2'));
  const work = opt('--work', join(tmpdir(), 'ctssl-bench-pipeline'));
  mkdirSync(work, { recursive: true });
  const log = (s: string) => process.stderr.write(`[bench:pipeline] ${s}\n`);
  const started = new Date();
  const load0 = loadavg();
  const t0 = performance.now();

  // Cohorts.
  const shared = process.env.CTSSL_SHARED_DATA ?? join(root, '..', 'shared', 'data');
  const lidc = join(shared, 'lidc-c2c-full', 'tests', 'assets', 'LIDC-IDRI-0001');
  const cohorts: { name: string; label: string; manifest: string; list: string; slices: number }[] = [];
  let skipped = '';
  if (existsSync(lidc)) cohorts.push({ name: 'lidc', label: 'real: LIDC-IDRI-0001 (512 x 512, int16)', ...(await prepare('lidc', [lidc], work)) });
  else {
    skipped = `Real DICOM skipped: ${lidc} does not exist (set CTSSL_SHARED_DATA to the shared data folder).`;
    log(skipped);
  }
  const synthSmall = join(work, 'synth-512');
  const synthArgs = ['--patients', quick ? '2' : '4', '--seed', '1', '--slices', '64', '--size', '512'];
  synth(synthSmall, synthArgs);
  cohorts.push({ name: 'synth', label: `synthetic: \`ctssl synth ${synthArgs.join(' ')}\``, ...(await prepare('synth', [synthSmall], work)) });

  const { config } = await trainerPipeline({ series: [] } as unknown as Manifest, 256, null);
  const maskPercent = config.maskPercent;
  const mask = { percent: config.maskPercent, definition: config.maskDefinition };
  const sizes = [256, 128];

  // Equivalence: the app's preprocessed slices and the PyTorch reference's, same files.
  const equivalence: string[] = [];
  for (const c of cohorts) {
    for (const size of sizes) {
      const a = join(work, `dump-${c.name}-${size}-node.f32`);
      const b = join(work, `dump-${c.name}-${size}-torch.f32`);
      const rn = runNode({ manifest: c.manifest, size, cacheDir: null, warm: false, dump: { count: 3, out: a } });
      const rt = runTorch(python, c.list, size, 0, mask, ['--dump', b, '--dump-count', '3']);
      if ('error' in rn || 'error' in rt) {
        equivalence.push(`${c.name} ${size} px: not compared (${'error' in rn ? rn.error : (rt as { error: string }).error})`);
        continue;
      }
      const x = new Float32Array(readFileSync(a).buffer.slice(0));
      const y = new Float32Array(readFileSync(b).buffer.slice(0));
      let max = 0;
      for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]));
      equivalence.push(`${c.name} ${size} px: max |app - PyTorch| = ${max.toExponential(1)} over the first 3 slices`);
      log(equivalence[equivalence.length - 1]);
    }
  }

  // Throughput, interleaved: app without cache, app with cache, DataLoader 0 and 1 workers.
  type Row = { cohort: string; size: number; engine: string; r: Result<NodeResult | TorchResult> };
  const rows: Row[] = [];
  for (const c of cohorts) {
    for (const size of sizes) {
      const cacheDir = join(work, `cache-${c.name}`);
      rmSync(cacheDir, { recursive: true, force: true });
      const best: Record<string, Result<NodeResult | TorchResult> | undefined> = {};
      const epochs = Math.max(1, Math.ceil((quick ? 200 : 400) / c.slices));
      for (let rep = 0; rep < runs; rep++) {
        const jobs: [string, () => Result<NodeResult | TorchResult>][] = [
          ['app, no slice cache', () => runNode({ manifest: c.manifest, size, cacheDir: null, warm: true, epochs })],
          ['app, slice cache', () => runNode({ manifest: c.manifest, size, cacheDir, warm: true, epochs })],
          ['PyTorch DataLoader, num_workers 0', () => runTorch(python, c.list, size, 0, mask, ['--epochs', String(epochs)])],
          ['PyTorch DataLoader, num_workers 1', () => runTorch(python, c.list, size, 1, mask, ['--epochs', String(epochs)])],
        ];
        for (const [engine, run] of jobs) {
          log(`${c.name} ${size} px: ${engine} (run ${rep + 1}/${runs}) ...`);
          const r = run();
          log(`  ${JSON.stringify(r)}`);
          best[engine] = better(best[engine], r);
        }
      }
      for (const [engine, r] of Object.entries(best)) rows.push({ cohort: c.label, size, engine, r: r! });
    }
  }

  // RSS over a long pass at two cohort sizes (one synthetic cohort; the smaller is its first series).
  const rssPatients = quick ? 8 : 40;
  const rssSlices = 250;
  const rssSmallSeries = Math.max(1, Math.round(rssPatients / 10));
  const synthBig = join(work, 'synth-rss');
  const rssArgs = ['--patients', String(rssPatients), '--seed', '2', '--slices', String(rssSlices), '--size', '256'];
  let free = Infinity;
  try {
    const st = statfsSync(work);
    free = st.bavail * st.bsize;
  } catch { /* unknown */ }
  const needBytes = rssPatients * rssSlices * 256 * 256 * 2 * 1.3 + rssPatients * rssSlices * 256 * 256 * 2;
  const rssRows: { slices: number; r: Result<NodeResult> }[] = [];
  if (free < needBytes) log(`RSS part skipped: ${fmt(needBytes / 2 ** 30, 1)} GiB needed in ${work}, ${fmt(free / 2 ** 30, 1)} free`);
  else {
    synth(synthBig, rssArgs);
    for (const [name, maxSeries] of [['rss-small', rssSmallSeries], ['rss-big', undefined]] as const) {
      const p = await prepare(name, [synthBig], work, maxSeries, 'rss');
      const cacheDir = join(work, `cache-${name}`);
      rmSync(cacheDir, { recursive: true, force: true });
      log(`RSS: ${p.slices} slices, one pass filling the slice cache ...`);
      const r = runNode({ manifest: p.manifest, size: 256, cacheDir, warm: false, sampleRss: true });
      log(`  ${JSON.stringify({ ...r, rss: undefined })}`);
      rssRows.push({ slices: p.slices, r });
      rmSync(cacheDir, { recursive: true, force: true });
    }
  }
  const load1 = loadavg();
  const minutes = (performance.now() - t0) / 60000;

  // Report.
  const torchVer = rows.map((x) => x.r).find((r): r is TorchResult => !('error' in r) && 'torch' in r);
  const lines: string[] = [];
  lines.push(`Measured ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC by \`npm run bench:pipeline\` on ${cpus().length} x ${cpus()[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}${torchVer ? `; PyTorch ${torchVer.torch}, pydicom ${torchVer.pydicom} (${python})` : ''}; ${fmt(minutes, 1)} min.`);
  lines.push('');
  lines.push(`Load average (1 / 5 / 15 min) at start ${load0.map((x) => x.toFixed(2)).join(' / ')}, at end ${load1.map((x) => x.toFixed(2)).join(' / ')}. **The machine was shared** with other engineers' builds, tests and benchmarks: absolute rates are low and noisy; each row is the best of ${runs} run(s) interleaved with PyTorch (slices/s from the shortest clock time, per core from the least CPU time, the largest peak RSS), and the per-core rate (slices per CPU second, all threads and worker processes) is less sensitive to load.`);
  lines.push('');
  lines.push(`What is timed: shuffled epochs (at least ${quick ? 200 : 400} slices) of the trainer's own code (src/trainer/pretrain/pretrain-batches.ts: \`SliceSource\` -> readModelSlice: read, decode, HU, display orientation, window ${'level 50 / width 350'}, square resize; the masked-region transform (${maskPercent} %, definition '${mask.definition}', the \`standard\` preset's defaults); \`PretrainBatchStream\` batches of ${BATCH} with its prefetch queue), each configuration in its own process after one untimed pass (the OS page cache is warm; with the slice cache, the pass filled it, so the timed passes read only cached 16-bit slices; PyTorch too reads every file once untimed). PyTorch: bench/pipeline_torch.py, a \`torch.utils.data.DataLoader\` (shuffled, batch ${BATCH}, torch 1 thread) over the same files in the same manifest order: \`pydicom.dcmread\`, \`pixel_array\` x RescaleSlope + RescaleIntercept, the manifest's display transform, clamp and scale, \`F.interpolate\` (mode area: the same k x k block mean as the app), the same masked square, default collate. CPU time: \`process.cpuUsage()\` for the app, \`getrusage\` of the process and its reaped workers for PyTorch.`);
  lines.push('');
  if (skipped) lines.push(skipped, '');
  lines.push(`Same pixels: ${equivalence.join('; ')}.`);
  lines.push('');
  lines.push('| cohort | size | engine | slices | slices/s | slices/s per core | per core vs DataLoader (best per core) | peak RSS MB |');
  lines.push('|---|---:|---|---:|---:|---:|---:|---:|');
  const verdicts: string[] = [];
  for (const c of cohorts) {
    for (const size of sizes) {
      const group = rows.filter((x) => x.cohort === c.label && x.size === size);
      const torchBest = Math.max(...group.filter((x) => x.engine.startsWith('PyTorch') && !('error' in x.r)).map((x) => perCore(x.r as TorchResult)));
      for (const x of group) {
        if ('error' in x.r) {
          lines.push(`| ${c.label} | ${size} | ${x.engine} | error: ${x.r.error.replace(/\|/g, '/').slice(0, 200)} | | | | |`);
          continue;
        }
        const pc = perCore(x.r);
        lines.push(`| ${c.label} | ${size} | ${x.engine} | ${x.r.slices} | ${fmt(x.r.slices / x.r.seconds)} | ${fmt(pc)} | ${Number.isFinite(torchBest) ? fmt(pc / torchBest, 2) : '-'} | ${fmt(x.r.peakRssMB)} |`);
      }
      const app = group.find((x) => x.engine === 'app, no slice cache')?.r;
      const cached = group.find((x) => x.engine === 'app, slice cache')?.r;
      if (app && !('error' in app) && Number.isFinite(torchBest))
        verdicts.push(`${c.name} ${size} px: ${fmt(perCore(app) / torchBest, 2)}x the DataLoader per core without the slice cache${cached && !('error' in cached) ? `, ${fmt(perCore(cached) / torchBest, 2)}x with it` : ''} (target >= 2x)`);
    }
  }
  lines.push('');
  lines.push(`Per core against the better of the two DataLoaders: ${verdicts.join('; ')}.`);
  lines.push('');
  const std = rows.filter((x) => x.size === 256 && x.engine.startsWith('app') && !('error' in x.r)).map((x) => x.r as NodeResult);
  const slowest = std.length ? Math.min(...std.map((r) => r.slices / r.seconds)) : NaN;
  const noCache256 = rows.filter((x) => x.size === 256 && x.engine === 'app, no slice cache' && !('error' in x.r)).map((x) => x.r as NodeResult);
  const perCore256 = noCache256.length ? Math.min(...noCache256.map(perCore)) : NaN;
  lines.push(`Feeding a GPU: no GPU step time of the \`standard\` preset is measured or documented in this project (there is no GPU here), so none is assumed. The pipeline runs in the trainer's main thread, on one core. At 256 px it delivered at least ${fmt(slowest)} slices/s by the clock on this loaded machine (the slowest app row above), a batch of ${BATCH} every ${fmt((1000 * BATCH) / slowest, 1)} ms, and ${fmt(perCore256)} slices per CPU second without the slice cache (what one free core gives; a batch every ${fmt((1000 * BATCH) / perCore256, 1)} ms). A \`standard\` step on a GPU at batch ${BATCH} would wait for input only if it took less than that, i.e. ran above ${fmt(slowest)} images/s here (${fmt(perCore256)} on a free core); that GPU rate is unmeasured here. The prefetch queue builds the next two batches while a step runs.`);
  lines.push('');
  lines.push('Where the time went, and what changed (profiled with `node --cpu-prof` on the child process): the first version of this benchmark measured the app at 85 slices per CPU second on LIDC at 256 px without the cache, 0.33x the DataLoader (255). Per slice it allocated a file copy, a pixel copy, three float images (HU, display orientation, windowed) and the resized one, then the example arrays and the batch: the allocations (page faults on fresh memory, garbage collection), not the arithmetic, were most of the time. Now (bit for bit the same batches: test/core/ssl/preprocess-stored.test.ts, test/core/ssl/recon-batch.test.ts, the golden losses) a file is read into a reused buffer and its pixels viewed in place (src/library/volumes/pixels.ts withFrameStored), stored values go through a window table computed once per rescale and window and are summed straight into the output blocks in display order (src/core/ssl/preprocess.ts preprocessStored; 512 to 256 and 128 px are whole 2 x 2 and 4 x 4 block means), the slices of a batch go into a buffer the stream reuses, and the masked task writes its examples into the batch arrays (src/trainer/pretrain/pretrain-batches.ts, src/core/ssl/tasks.ts reconBatch). What remains per slice is the block mean over 512 x 512 values, the file read, the DICOM parse, and the three fresh batch arrays handed to the model.');
  lines.push('');
  if (rssRows.length) {
    lines.push(`RSS over a long pass (what a cohort larger than memory needs: nothing held per slice): \`ctssl synth ${rssArgs.join(' ')}\` (256 x 256 slices), the smaller cohort its first ${rssSmallSeries} series (a tenth); one epoch at 256 px filling the slice cache (the trainer's default: every slice read, preprocessed and written), RSS sampled every 250 ms.`);
    lines.push('');
    lines.push('| slices | seconds | slices/s | RSS MB after 10 % of the pass | RSS MB at the end | peak RSS MB |');
    lines.push('|---:|---:|---:|---:|---:|---:|');
    for (const { slices, r } of rssRows) {
      if ('error' in r) {
        lines.push(`| ${slices} | error: ${r.error.slice(0, 200)} | | | | |`);
        continue;
      }
      const s = r.rss ?? [];
      const at10 = s.find(([t]) => t >= r.seconds * 0.1)?.[1] ?? NaN;
      lines.push(`| ${slices} | ${fmt(r.seconds, 1)} | ${fmt(r.slices / r.seconds)} | ${fmt(at10)} | ${fmt(s.length ? s[s.length - 1][1] : NaN)} | ${fmt(r.peakRssMB)} |`);
    }
  } else lines.push('RSS part skipped (not enough free disk for the cohort).');
  lines.push('');
  lines.push(`Command: \`npm run bench:pipeline\` (about ${Math.ceil(minutes)} min here; \`-- --quick\` for a smaller run that does not write this file). Cohorts and their libraries are kept in ${'`$TMPDIR/ctssl-bench-pipeline`'} between runs.`);
  const body = lines.join('\n');
  process.stdout.write(body + '\n');
  if (write) replaceSection('Pretraining input pipeline', body);
}

await main();
