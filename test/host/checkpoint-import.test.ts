/**
 * The authors' PyTorch checkpoint through the real host service into a real library folder
 * (RunService.importPackage: the path of `ctssl import` and `packages.import`, which a server
 * upload reaches too), then our model built from the installed run compared with PyTorch's
 * outputs on the same input (test/fixtures/torch, written by Debian's python3-torch; max abs
 * difference <= 1e-4), the run accepted where runs start from (the pretraining engine of
 * eval-ssl, a fine-tuning model's encoder), hostile files refused with nothing installed, and
 * `ctssl import` on the command line. The fixtures are committed, so this needs no Python; the
 * last test regenerates them with /usr/bin/python3 and torch where present (skipped, saying so,
 * elsewhere) and checks the committed ones are what make.py writes.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLibrary } from '../../src/library/db/schema';
import { RunService } from '../../src/host/run-service';
import { importKind } from '../../src/host/checkpoint-import';
import { exportRun } from '../../src/host/export-package';
import { listRuns } from '../../src/host/runs/run-store';
import { latestCheckpointDir, readCheckpoint } from '../../src/library/runs/checkpoint';
import { parsePretrainConfig } from '../../src/shared/run-config';
import { pretrainArchitecture } from '../../src/core/ml/specs/pretrain';
import { createVqvae, decode, disposeContext, encode, inferenceContext, vectorQuantize, type VqvaeConfig } from '../../src/core/ml/vqvae';
import { disposeStore, importWeights } from '../../src/core/ml/weights';
import { createDownstreamModel, disposeDownstreamModel, loadPretrainedEncoder } from '../../src/core/ml/downstream';
import { createPretrainEngine } from '../../src/trainer/pretrain/pretrain-engine';
import { initBackend } from '../../src/trainer/backend';
import type { Database } from '../../src/library/db/sqlite';
import { readNpy } from '../core/torch/npy';
import { fakeCheckpoint, type FakeTensor } from '../core/torch/torch-writer';
import { openTorchCheckpoint, readFloat32Tensor } from '../../src/core/torch';
import { fixtures, root, tempDir } from '../helpers';
import { indexFolders } from '../../src/library/indexing/indexer';
import { importLabels } from '../../src/library/labels/label-import';
import { createFinetuneRun } from '../../src/host/runs/create-run';
import { startRun } from '../../src/host/runs/start-run';
import { globSync } from '../glob';
import { writeCohort } from '../../src/library/synth/synth-writer';
import { defaultOptions } from '../../src/core/synth/plan';
import { runBiasProbe } from '../../src/host/probe';

const fx = join(root, 'test', 'fixtures', 'torch');
const TOL = 1e-4;

const tmp = tempDir('ctssl-ckpt-');
const data = join(tmp.dir, 'data');
let db: Database;
let runs: RunService;

beforeAll(async () => {
  await initBackend({ force: 'wasm' });
  db = openLibrary(join(tmp.dir, 'lib.sqlite'));
  runs = new RunService(db, data, () => {});
});
afterAll(() => {
  db?.close();
  tmp.cleanup();
});

const maxAbsDiff = (a: tf.Tensor, b: ArrayLike<number>) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, tf.tensor(Array.from(b), a.shape)))).dataSync()[0]);

/** Our model from the installed run: its config's architecture and its checkpoint's weights. */
function modelOf(dir: string) {
  const config = parsePretrainConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const arch = pretrainArchitecture(config);
  if (arch.model !== 'vqvae') throw new Error('expected a VQ-VAE');
  const { model: _m, ...cfg } = arch;
  const model = createVqvae(cfg as VqvaeConfig, 0);
  const ck = readCheckpoint(latestCheckpointDir(dir)!);
  const r = importWeights(model, ck.weights, { strict: true });
  return { config, model, ck, loaded: r };
}

const installed = () => (existsSync(join(data, 'imported')) ? readdirSync(join(data, 'imported')).sort() : []);

describe('PyTorch checkpoint import', () => {
  let dir = '';

  it("installs the authors' checkpoint as a run of the library (3 channels, the tiny preset, the module's img_size)", () => {
    const file = join(fx, 'last.pth.tar');
    expect(importKind(file)).toBe('checkpoint');
    const r = runs.importPackage(file) as ReturnType<RunService['importPackage']> & { kind?: string; channels?: number; epoch?: number; ignored?: string[] };
    dir = r.dir;
    expect(r.kind).toBe('pytorch-checkpoint');
    expect([r.preset, r.size, r.channels, r.epoch, r.task]).toEqual(['tiny', 32, 3, 5, 'masked']);
    expect(r.ignored).toEqual(['model', 'optimizer_state']);
    expect(dir.startsWith(join(data, 'imported') + '/')).toBe(true);
    expect(installed().filter((n) => n.startsWith('.'))).toEqual([]); // no staging left
    const row = listRuns(db).find((x) => x.dir === dir)!;
    expect(row.kind).toBe('imported');
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect([config.preset, config.size, config.channels, config.scaling, config.maskDefinition]).toEqual(['tiny', 32, 3, 'minmax', 'side']);
    const ledger = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    expect(ledger.importedFrom).toBe('last.pth.tar');
    expect(ledger.source.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(ledger.source.opaqueClasses).toContain('VAE.models.vq_vae.VQVAE');
  });

  it("our encoder and decoder give PyTorch's outputs on the same input (max abs difference <= 1e-4)", () => {
    const { model, loaded } = modelOf(dir);
    expect(loaded.missing).toEqual([]);
    expect(loaded.unexpected).toEqual([]);
    const x = readNpy(join(fx, 'input.npy'));
    const zRef = readNpy(join(fx, 'encoder-out.npy'));
    const qRef = readNpy(join(fx, 'quantized.npy'));
    const codes = readNpy(join(fx, 'codes.npy'));
    const outRef = readNpy(join(fx, 'decoder-out.npy'));
    const ctx = inferenceContext();
    try {
      const d = tf.tidy(() => {
        // the grey input: the model repeats it into its 3 channels, as the reference's input is made
        const z = encode(model, model.config, tf.tensor4d(x.data as Float32Array, x.shape as [number, number, number, number]), ctx);
        const vq = vectorQuantize(z, model.params.get('vq.codebook') as unknown as tf.Tensor2D, model.config.commitment);
        const out = decode(model, model.config, vq.q, ctx);
        const outFromTheirs = decode(model, model.config, tf.tensor4d(qRef.data as Float32Array, qRef.shape as [number, number, number, number]), ctx);
        return { z: maxAbsDiff(z, zRef.data), q: maxAbsDiff(vq.q, qRef.data), out: maxAbsDiff(out, outRef.data), outFromTheirs: maxAbsDiff(outFromTheirs, outRef.data), codes: Array.from(vq.indices.dataSync()), shape: out.shape };
      });
      console.log(`[torch equivalence] encoder ${d.z.toExponential(2)}, quantised ${d.q.toExponential(2)}, decoder ${d.out.toExponential(2)} (from PyTorch's latent ${d.outFromTheirs.toExponential(2)})`);
      expect(d.shape).toEqual([2, 32, 32, 3]);
      expect(d.codes).toEqual(Array.from(codes.data));
      expect(d.z).toBeLessThanOrEqual(TOL);
      expect(d.q).toBeLessThanOrEqual(TOL);
      expect(d.out).toBeLessThanOrEqual(TOL);
      expect(d.outFromTheirs).toBeLessThanOrEqual(TOL);
      // the outputs are not trivially small: a wrong layout would show
      expect(tf.tidy(() => tf.max(tf.abs(tf.tensor(Array.from(outRef.data)))).dataSync()[0])).toBeGreaterThan(0.1);
    } finally {
      disposeContext(ctx);
      disposeStore(model);
    }
  });

  it('a 1-channel bare state_dict: same equivalence', () => {
    const r = runs.importPackage(join(fx, 'one-channel.pth'));
    const { model } = modelOf(r.dir);
    const x = readNpy(join(fx, 'input.npy'));
    const ctx = inferenceContext();
    try {
      const d = tf.tidy(() => {
        const z = encode(model, model.config, tf.tensor4d(x.data as Float32Array, x.shape as [number, number, number, number]), ctx);
        const vq = vectorQuantize(z, model.params.get('vq.codebook') as unknown as tf.Tensor2D, model.config.commitment);
        return { z: maxAbsDiff(z, readNpy(join(fx, 'one-channel-encoder-out.npy')).data), out: maxAbsDiff(decode(model, model.config, vq.q, ctx), readNpy(join(fx, 'one-channel-decoder-out.npy')).data) };
      });
      expect(model.config.channels).toBe(1);
      expect(d.z).toBeLessThanOrEqual(TOL);
      expect(d.out).toBeLessThanOrEqual(TOL);
    } finally {
      disposeContext(ctx);
      disposeStore(model);
    }
  });

  it('the run is one runs start from: the pretraining engine (eval-ssl, curriculum) and a fine-tuning encoder take its weights', async () => {
    const config = parsePretrainConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
    const ck = readCheckpoint(latestCheckpointDir(dir)!);
    const engine = createPretrainEngine(config);
    try {
      const r = await engine.setWeights(ck.weights, true);
      expect([r.missing, r.unexpected]).toEqual([[], []]);
      const x = readNpy(join(fx, 'input.npy'));
      const out = await engine.predict({ kind: 'recon', shape: [2, 32, 32, 1], input: x.data as Float32Array, target: x.data as Float32Array } as never);
      // the grey prediction is the mean of PyTorch's 3 output channels
      const ref = readNpy(join(fx, 'decoder-out.npy')).data;
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - (ref[3 * i] + ref[3 * i + 1] + ref[3 * i + 2]) / 3));
      expect(out.length).toBe(2 * 32 * 32);
      expect(worst).toBeLessThanOrEqual(TOL);
    } finally {
      await engine.dispose();
    }
    const ft = createDownstreamModel({ kind: 'encoder-classifier', preset: 'tiny', size: 32, classes: 2 }, 1);
    try {
      const rep = loadPretrainedEncoder(ft, ck.weights);
      expect(rep.missing).toEqual([]);
      expect(rep.loaded).toContain('encoder.e1.conv.weight'); // the 3-channel E1 folded for grey input
    } finally {
      disposeDownstreamModel(ft);
    }
  });

  it('export takes the imported run (trained elsewhere: no manifest), and its package imports back with 3 channels', async () => {
    const pkg = join(tmp.dir, 'authors.ctssl.zip');
    const e = await exportRun(db, dir, pkg, { licence: 'CC-BY-NC-ND-4.0', author: 'Test' });
    expect(e.files).toContain('tfjs/encoder/model.json');
    expect(importKind(pkg)).toBe('package');
    const back = runs.importPackage(pkg);
    expect(back.dir).not.toBe(dir);
    const config = JSON.parse(readFileSync(join(back.dir, 'config.json'), 'utf8'));
    expect([config.preset, config.size, config.channels]).toEqual(['tiny', 32, 3]);
    const a = readCheckpoint(latestCheckpointDir(dir)!).weights;
    const b = new Map(readCheckpoint(latestCheckpointDir(back.dir)!).weights.map((w) => [w.name, w]));
    for (const w of a) expect(Array.from(b.get(w.name)!.data), w.name).toEqual(Array.from(w.data));
  }, 180_000);

  it("eval-ssl evaluates the imported run on this library's cohort, every patient held out (it has no manifest)", async () => {
    await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
    const id = listRuns(db).find((x) => x.dir === dir)!.id;
    const e = await runs.evaluate(id, { maxSlices: 6, backend: 'wasm' });
    expect(e.task).toBe('masked');
    expect(e.split).toBe('test');
    expect(e.images).toBe(6);
    expect(Number.isFinite(e.perImage.mse.mean) && Number.isFinite(e.perImage.ssim.mean)).toBe(true);
    expect(existsSync(join(dir, 'manifest.json'))).toBe(false); // the run stays one trained elsewhere
    const cohort = JSON.parse(readFileSync(join(dir, 'eval', 'manifest.json'), 'utf8'));
    expect(cohort.counts.train.patients + cohort.counts.val.patients).toBe(0);
    expect(cohort.counts.test.patients).toBeGreaterThan(0);
  }, 180_000);

  it('fine-tuning starts from the imported run: its encoder loaded (the 3-channel filter folded for grey slices), its window and scaling taken', async () => {
    await importLabels(db, globSync(join(fixtures, 'lidc-0001'), /069\.xml$/)[0]);
    await importLabels(db, join(fixtures, 'lidc-small', 'xml', '71.xml'));
    const run = createFinetuneRun(
      db,
      { kind: 'finetune', task: 'classification', model: 'encoder-classifier', label: { kind: 'nodule' }, preset: 'tiny', size: 32, init: dir, steps: 2, batchSize: 2, useCache: false, filter: { modality: 'CT' } },
      { dataDir: data, dir: join(tmp.dir, 'ft') },
    );
    expect(run.config).toMatchObject({ scaling: 'minmax', windowLevel: 50, windowWidth: 350 });
    const events: string[] = [];
    const done = await startRun(db, run, { backend: 'wasm', onEvent: (e) => void events.push(JSON.stringify(e).slice(0, 300)) }).done;
    expect(done.status, events.filter((e) => /error|fail/i.test(e)).join('\n')).toBe('done');
    // the fine-tuned encoder started from the import: E3's filter (not touched by the fold) moved from it, by little in 2 steps
    const before = readCheckpoint(latestCheckpointDir(dir)!).weights.find((w) => w.name === 'encoder.e3.conv.weight')!.data;
    const after = readCheckpoint(latestCheckpointDir(run.dir)!).weights.find((w) => w.name === 'encoder.e3.conv.weight')!.data;
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < before.length; i++) {
      diff += (after[i] - before[i]) ** 2;
      norm += before[i] ** 2;
    }
    expect(Math.sqrt(diff / norm)).toBeLessThan(0.2);
    const split = JSON.parse(readFileSync(join(run.dir, 'manifest.json'), 'utf8')).split;
    expect(split.parents[0]).toMatchObject({ kind: 'imported', trainPatients: null });
  }, 300_000);

  it('the bias probe embeds scans with the imported 3-channel encoder (its own library: a synthetic cohort with a sex trait)', async () => {
    const cohort = join(tmp.dir, 'cohort');
    await writeCohort({ ...defaultOptions(10, 5), slices: 8, size: 64, trait: 'sex', traitValue: 'F', traitStrength: 4 }, cohort, { jobs: 1 });
    const db2 = openLibrary(join(tmp.dir, 'probe.sqlite'));
    try {
      await indexFolders(db2, [cohort]);
      // a short CNN baseline: this test is about the encoder's row
      const opts = { encoders: [dir], attributes: ['sex'], folds: 2, outDir: join(tmp.dir, 'probe'), backend: 'wasm', cnn: { steps: 5 } };
      const r = await runBiasProbe(db2, opts as Parameters<typeof runBiasProbe>[1]);
      const row = r.scores.find((x) => x.features.endsWith('(tiny)'));
      expect(row, JSON.stringify(r.scores.map((x) => x.features))).toBeDefined();
      expect(row!.n).toBe(10);
      expect(row!.auroc).toBeGreaterThanOrEqual(0);
      expect(row!.auroc).toBeLessThanOrEqual(1);
    } finally {
      db2.close();
    }
  }, 300_000);

  it('the same file again (its path, or a copy in another folder, as a server upload writes it) is the run already installed', () => {
    const before = installed();
    expect(runs.importPackage(join(fx, 'last.pth.tar')).dir).toBe(dir);
    const upload = tempDir('upload');
    try {
      copyFileSync(join(fx, 'last.pth.tar'), join(upload.dir, 'last.pth.tar'));
      expect(runs.importPackage(join(upload.dir, 'last.pth.tar')).dir).toBe(dir);
    } finally {
      upload.cleanup();
    }
    expect(installed()).toEqual(before);
  });

  it('refuses hostile and foreign files naming the problem, installing nothing', () => {
    const before = installed();
    const real = new Uint8Array(readFileSync(join(fx, 'last.pth.tar')));
    const access = { size: real.length, read: (p: number, l: number) => real.subarray(p, p + l) };
    const ck = openTorchCheckpoint(access);
    const tensors: [string, FakeTensor][] = ck.tensors.map((t) => [t.key, { shape: t.shape, data: t.dtype === 'float32' ? readFloat32Tensor(access, ck, t) : new Float32Array(1) }]);
    const write = (name: string, bytes: Uint8Array) => {
      const p = join(tmp.dir, name);
      writeFileSync(p, bytes);
      return p;
    };
    const cases: [string, RegExp][] = [
      [write('missing.pth.tar', fakeCheckpoint(tensors.filter(([k]) => k !== 'encoder.3.resblock.2.running_mean'))), /missing key encoder\.3\.resblock\.2\.running_mean/],
      [write('unknown.pth.tar', fakeCheckpoint([...tensors, ['encoder.99.weight', { shape: [1] }]])), /unknown key encoder\.99\.weight/],
      [write('misshaped.pth.tar', fakeCheckpoint(tensors.map(([k, v]): [string, FakeTensor] => [k, k === 'decoder.0.1.running_var' ? { shape: [8] } : v]))), /key decoder\.0\.1\.running_var has shape \[8\], the reference model of this checkpoint expects \[16\]/],
      [write('truncated.pth.tar', real.subarray(0, real.length >> 1)), /corrupt or truncated zip/],
      [join(fx, 'legacy.pth.tar'), /legacy PyTorch format/],
    ];
    for (const [file, why] of cases) {
      expect(importKind(file)).toBe('checkpoint');
      let msg = '';
      try {
        runs.importPackage(file);
      } catch (err) {
        msg = (err as Error).message;
      }
      expect(msg).toMatch(why);
      expect(msg.startsWith(file)).toBe(true); // names the file
    }
    expect(installed()).toEqual(before);
  });

  it('ctssl import FILE.pth.tar installs it through the same service', () => {
    const env = { ...process.env, CTSSL_DATA_DIR: data };
    const res = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'import', join(fx, 'last.pth.tar'), '--db', join(tmp.dir, 'lib.sqlite'), '--json'], { env, encoding: 'utf8', timeout: 120_000 });
    expect(res.status, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).dir).toBe(dir);
    const bad = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'import', join(fx, 'legacy.pth.tar'), '--db', join(tmp.dir, 'lib.sqlite')], { env, encoding: 'utf8', timeout: 120_000 });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/legacy PyTorch format/);
  }, 180_000);

  const python = '/usr/bin/python3';
  const hasTorch = existsSync(python) && spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!hasTorch)('make.py regenerates the committed fixtures (with /usr/bin/python3 and torch)', () => {
    const out = join(tmp.dir, 'regen');
    const res = spawnSync(python, [join(fx, 'make.py'), out], { encoding: 'utf8', timeout: 300_000 });
    expect(res.status, res.stderr).toBe(0);
    for (const f of ['input.npy', 'encoder-out.npy', 'decoder-out.npy', 'codes.npy', 'one-channel-decoder-out.npy']) {
      const a = readNpy(join(out, f)).data;
      const b = readNpy(join(fx, f)).data;
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      expect(a.length, f).toBe(b.length);
      expect(worst, f).toBeLessThanOrEqual(1e-6);
    }
  }, 300_000);
  if (!hasTorch) console.warn('[checkpoint-import] /usr/bin/python3 has no torch: the fixtures are not regenerated (the committed ones are used)');
});
