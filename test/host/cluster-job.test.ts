import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/trainer/backend';
import { createClassifier } from '../../src/core/ml/classifier';
import { createVqvae, initCodebookFromData } from '../../src/core/ml/vqvae';
import { createOptimizer } from '../../src/core/ml/optim';
import { trainStepClassifier, trainStepRecon } from '../../src/core/ml/train-step';
import { recipeLossOptions } from '../../src/core/ml/losses';
import { disposeStore, exportWeights, type WeightEntry } from '../../src/core/ml/weights';
import { decodeSafetensors, encodeSafetensors } from '../../src/core/ml/safetensors';
import { initialWeights } from '../../src/core/ml/specs/params';
import { architectureSpecs } from '../../src/core/ml/specs/pretrain';
import { makeExample, stackClass, stackRecon, type ClassExample, type ReconExample } from '../../src/core/ssl/tasks';
import { Rng } from '../../src/core/random';
import { parsePretrainConfig, type PretrainConfig } from '../../src/shared/run-config';
import { taskOptionsOf } from '../../src/shared/pretext-tasks';
import { encodeNpy } from '../../src/host/cluster-job/npy';
import { jobDescription, programDir } from '../../src/host/cluster-job/job-files';
import { tempDir } from '../helpers';

/**
 * The cluster job's PyTorch program (resources/cluster-job) against the app, with Debian's
 * python3-torch as the independent engine: one step from the same weights on the same batch gives
 * the same losses and weights for every pretext task.
 */
const PYTHON = '/usr/bin/python3';
const torchCheck = spawnSync(PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
const hasTorch = torchCheck.status === 0;
if (!hasTorch) console.warn(`[cluster-job] skipped: ${PYTHON} with torch and numpy is absent (Debian: apt-get install python3-torch python3-numpy)`);

const TASKS = ['masked', 'next-slice', 'denoise', 'rotation', 'flip'] as const;
/** Every task in our recipe, and the masked task in the reference recipe (3 channels, the public code's masked and SSIM terms). */
const CASES = [...TASKS, 'masked-reference'] as const;
type Case = (typeof CASES)[number];
const SIZE = 64;

/** Smooth, varied test images in [0, 1] (a body-like ellipse with texture), one per seed. */
function image(k: number): Float32Array {
  const out = new Float32Array(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      const dx = (x - 32 - k) / 26;
      const dy = (y - 30 + k) / 20;
      const body = dx * dx + dy * dy < 1 ? 0.5 : 0;
      out[y * SIZE + x] = Math.min(1, Math.max(0, body + 0.25 * Math.sin((x * (k + 2)) / 7) * Math.cos((y * (k + 1)) / 5) + 0.2));
    }
  return out;
}

function python(args: string[], timeout = 120_000) {
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', timeout });
  if (r.status !== 0) throw new Error(`python ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}

/**
 * Largest |a - b| over a tensor relative to its scale: its largest |b|, or one step's size (lr) when
 * that is larger. A tensor that starts at zero (a BatchNorm bias) holds after one step nothing but
 * lr times a gradient summed over the batch, often a sum that nearly cancels (5e-5 where lr is
 * 1e-3), whose last float32 digits differ between engines; measured against its own tiny values
 * that rounding would read as a 0.3 % difference.
 */
function relMax(a: Float32Array, b: Float32Array, step: number): number {
  let d = 0;
  let m = step;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1e-12);
}

/** The relative L2 distance of two updates (after - before). */
function relUpdate(after: Float32Array, ref: Float32Array, before: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < after.length; i++) {
    const u = ref[i] - before[i];
    d += (after[i] - before[i] - u) ** 2;
    n += u * u;
  }
  return n === 0 ? Math.sqrt(d) : Math.sqrt(d / n);
}

interface Prepared {
  dir: string;
  config: PretrainConfig;
  before: WeightEntry[];
  after: WeightEntry[];
  losses: Record<string, number>;
}

/** One app step of a task from the seeded weights on a batch made by the app's transforms; the program's inputs written to `dir`. */
function prepare(name: Case, dir: string): Prepared {
  const reference = name === 'masked-reference';
  const task = reference ? 'masked' : name;
  // (the reference recipe fixes the batch at 16: the step below is on 4 examples all the same)
  const config: PretrainConfig = parsePretrainConfig({ task, preset: 'tiny', steps: 1, ...(reference ? { recipe: 'reference' as const } : { batchSize: 4 }), seed: 5, maskPercent: 20, noiseFraction: 0.2, lr: 1e-3, optimizer: task === 'denoise' ? 'adam' : 'radam' });
  const job = jobDescription(config, 'test', 'equivalence');
  const arch = job.architecture;
  const rng = new Rng(11);
  const opts = taskOptionsOf(config);
  const examples = [0, 1, 2, 3].map((k) => makeExample(opts, image(k), SIZE, rng, image(k + 1)));
  mkdirSync(dir);
  const { model: _m, ...c } = arch;
  void _m;
  const model = arch.model === 'vqvae' ? createVqvae(c as Parameters<typeof createVqvae>[0], config.seed) : createClassifier(c as Parameters<typeof createClassifier>[0], config.seed);
  // the host's initial weights (what a job starts from) are the app's createStore, value for value
  const host = initialWeights(architectureSpecs(arch), config.seed);
  const app = exportWeights(model);
  expect(host.map((e) => e.name)).toEqual(app.map((e) => e.name));
  for (let i = 0; i < app.length; i++) expect(Buffer.from(host[i].data.buffer).equals(Buffer.from(app[i].data.buffer)), app[i].name).toBe(true);

  const optimizer = createOptimizer(config.optimizer, { lr: config.lr });
  let losses: Record<string, number>;
  let before: WeightEntry[];
  if (arch.model === 'vqvae') {
    const batch = stackRecon(examples as ReconExample[], SIZE);
    const vq = model as ReturnType<typeof createVqvae>;
    // codes spread over the data (the app's data start), so nearest codes are not near-ties
    tf.tidy(() => initCodebookFromData(vq, tf.tensor4d(batch.input, batch.shape), config.seed));
    writeFileSync(join(dir, 'input.npy'), encodeNpy('float32', batch.shape, batch.input));
    writeFileSync(join(dir, 'target.npy'), encodeNpy('float32', batch.shape, batch.target));
    if (batch.mask) writeFileSync(join(dir, 'mask.npy'), encodeNpy('float32', batch.shape, batch.mask));
    before = exportWeights(model);
    losses = { ...trainStepRecon(vq, optimizer, batch, config.lossWeights, recipeLossOptions(config)) };
  } else {
    const batch = stackClass(examples as ClassExample[], SIZE);
    writeFileSync(join(dir, 'input.npy'), encodeNpy('float32', batch.shape, batch.input));
    writeFileSync(join(dir, 'labels.npy'), encodeNpy('int32', [batch.labels.length], batch.labels));
    before = exportWeights(model);
    losses = { ...trainStepClassifier(model as ReturnType<typeof createClassifier>, optimizer, batch) };
  }
  writeFileSync(join(dir, 'init.safetensors'), encodeSafetensors(before));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'job.json'), JSON.stringify(job));
  const after = exportWeights(model);
  optimizer.dispose();
  disposeStore(model);
  return { dir, config, before, after, losses };
}

describe.skipIf(!hasTorch)('cluster job: the PyTorch program equals the app', () => {
  const tmp = tempDir();
  const prepared = new Map<string, Prepared>();

  beforeAll(async () => {
    await initBackend({ force: 'wasm' });
    for (const c of CASES) prepared.set(c, prepare(c, join(tmp.dir, c)));
    // one Python process steps every case (torch starts once)
    python([join(programDir(), 'train.py'), '--check-step', ...CASES.map((t) => join(tmp.dir, t))]);
  }, 180_000);

  afterAll(() => tmp.cleanup());

  it.each(CASES)('one step of %s (tiny preset): same losses (1e-4) and weights (1e-3 relative)', (task) => {
    const { dir, config, before, after, losses } = prepared.get(task)!;
    const torchLosses = JSON.parse(readFileSync(join(dir, 'losses.json'), 'utf8')) as Record<string, number>;
    const torchAfter = new Map(decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'after.safetensors')))).tensors.map((t) => [t.name, t]));
    for (const [k, v] of Object.entries(losses)) {
      expect(torchLosses[k], `loss term ${k}`).toBeDefined();
      expect(Math.abs(torchLosses[k] - v), `${task} ${k}: torch ${torchLosses[k]} vs app ${v}`).toBeLessThan(1e-4);
    }
    const worst = { weights: 0, update: 0, name: '', loss: 0 };
    for (const [k, v] of Object.entries(losses)) worst.loss = Math.max(worst.loss, Math.abs(torchLosses[k] - v));
    const names = new Set(after.map((e) => e.name));
    expect(new Set(torchAfter.keys())).toEqual(names);
    for (let i = 0; i < after.length; i++) {
      const name = after[i].name;
      const t = torchAfter.get(name)!;
      expect(t.shape).toEqual(after[i].shape);
      const r = relMax(t.data, after[i].data, config.lr);
      // A convolution's bias followed by BatchNorm has a zero gradient in exact arithmetic (the
      // normalisation removes it): both engines move it by rounding noise, which Adam scales up to
      // +-lr. Such biases may differ by at most the two steps' size; every other tensor is compared.
      if (/\.(conv|convt)\.bias$/.test(name) && names.has(name.replace(/\.(conv|convt)\.bias$/, '.bn.weight'))) {
        const limit = 2 * config.lr * 1.001;
        for (let j = 0; j < t.data.length; j++) expect(Math.abs(t.data[j] - after[i].data[j]), `${task} ${name}[${j}]`).toBeLessThanOrEqual(limit);
        continue;
      }
      const u = relUpdate(t.data, after[i].data, before[i].data);
      if (u > worst.update) Object.assign(worst, { update: u, name });
      worst.weights = Math.max(worst.weights, r);
      expect(r, `${task} ${name}: weights differ by ${r} (relative)`).toBeLessThan(1e-3);
      // and the step itself (weights move by about lr): the updates agree, so a wrong gradient fails
      expect(u, `${task} ${name}: update differs by ${u} (relative L2)`).toBeLessThan(1e-2);
    }
    console.log(`[cluster-job] ${task}: worst loss difference ${worst.loss.toExponential(2)}, weight difference ${worst.weights.toExponential(2)}, update difference ${worst.update.toExponential(2)} (${worst.name})`);
  });
});
