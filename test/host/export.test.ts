import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { strToU8, unzipSync, zipSync } from 'fflate';
import { createHash } from 'node:crypto';
import { openLibrary } from '../../src/library/db/schema';
import { indexFolders } from '../../src/library/indexing/indexer';
import { createRun } from '../../src/host/runs/create-run';
import { startRun } from '../../src/host/runs/start-run';
import { exportRun, PrivacyError, scanForIdentifiers } from '../../src/host/export-package';
import { importPackage } from '../../src/host/package-import';
import { latestCheckpointDir, readCheckpoint } from '../../src/library/runs/checkpoint';
import { initBackend } from '../../src/trainer/backend';
import { buildEncoderModel, loadLayersModelFromArtifacts, setEncoderWeights } from '../../src/core/ml/encoder-layers';
import { createVqvae, encode, inferenceContext, vqvaePreset } from '../../src/core/ml/vqvae';
import { importWeights } from '../../src/core/ml/weights';
import { decodeSafetensors } from '../../src/core/ml/safetensors';
import type { Database } from '../../src/library/db/sqlite';
import { fixtures, root, tempDir } from '../helpers';

describe('sharing weights: export and import packages', () => {
  const tmp = tempDir();
  let db: Database;
  let runDir: string;
  let pkg: string;
  beforeAll(async () => {
    await initBackend({ force: 'wasm' });
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
    const run = createRun(
      db,
      { task: 'masked', preset: 'tiny', size: 32, steps: 2, batchSize: 2, checkpointEvery: 2, evalEvery: 2, evalBatches: 1, useCache: false, filter: { modality: 'CT' } },
      { dataDir: tmp.dir, dir: join(tmp.dir, 'run') },
    );
    runDir = run.dir;
    expect((await startRun(db, run).done).status).toBe('done');
    pkg = join(tmp.dir, 'enc.ctssl.zip');
  }, 180_000);
  afterAll(() => {
    db.close();
    tmp.cleanup();
  });

  it('writes one file with weights, TF.js encoder, model card, ledger and checksums, and no identifiers', async () => {
    const r = await exportRun(db, runDir, pkg, { licence: 'CC-BY-4.0', author: 'Test Lab' });
    expect(r.files).toEqual(
      expect.arrayContaining(['weights/model.safetensors', 'tfjs/encoder/model.json', 'tfjs/encoder/weights.bin', 'model-card.md', 'model-card.json', 'ledger.json', 'checksums.json', 'README.md']),
    );
    const files = unzipSync(new Uint8Array(readFileSync(pkg)));
    const card = JSON.parse(Buffer.from(files['model-card.json']).toString()) as Record<string, any>;
    expect(card.licence).toBe('CC-BY-4.0');
    expect(card.data.patients).toBe(2);
    expect(card.data.scanners.length).toBeGreaterThan(0);
    expect(card.ledger.manifestHash).toMatch(/^[0-9a-f]{64}$/);
    expect(card.ledger.trainedWith.backend).toMatch(/wasm/);
    const all = Object.values(files).map((b) => Buffer.from(b).toString('latin1')).join('\n');
    for (const forbidden of ['LIDC-IDRI-0001', 'LIDC-IDRI-0002', '1.3.6.1.4.1.14519', '20000101', fixtures]) expect(all).not.toContain(forbidden);
  });

  it('imports into a fresh data folder with identical weights and identical predictions', async () => {
    const fresh = tempDir();
    try {
      const r = importPackage(pkg, join(fresh.dir, 'imported'));
      const a = readCheckpoint(latestCheckpointDir(runDir)!).weights;
      const b = readCheckpoint(latestCheckpointDir(r.dir)!).weights;
      expect(b.map((w) => w.name)).toEqual(a.map((w) => w.name));
      b.forEach((w, i) => expect(Buffer.from(w.data.buffer).equals(Buffer.from(a[i].data.buffer))).toBe(true));
      // predictions of the encoder: original weights vs imported weights vs the TF.js layers model in the package
      const cfg = vqvaePreset('tiny', { size: 32 });
      const x = tf.randomUniform([2, 32, 32, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
      const predict = (entries: typeof a) => {
        const m = createVqvae(cfg, 0);
        importWeights(m, entries, { strict: true });
        const y = encode(m, cfg, x, inferenceContext()).dataSync().slice();
        return y;
      };
      const ya = predict(a);
      const yb = predict(b);
      expect(Buffer.from(yb.buffer).equals(Buffer.from(ya.buffer))).toBe(true);
      const files = unzipSync(new Uint8Array(readFileSync(pkg)));
      const layers = await loadLayersModelFromArtifacts(Buffer.from(files['tfjs/encoder/model.json']).toString(), files['tfjs/encoder/weights.bin']);
      const yl = (layers.predict(x) as tf.Tensor).dataSync();
      let maxDiff = 0;
      for (let i = 0; i < ya.length; i++) maxDiff = Math.max(maxDiff, Math.abs(yl[i] - ya[i]));
      expect(maxDiff).toBeLessThan(1e-4);
      // importing the same file again is idempotent
      expect(importPackage(pkg, join(fresh.dir, 'imported')).dir).toBe(r.dir);
    } finally {
      fresh.cleanup();
    }
  });

  it('loads in Python by the published safetensors layout (numpy only)', () => {
    const py = '/usr/bin/python3';
    if (!existsSync(py)) return console.warn('python3 absent: skipped');
    const files = unzipSync(new Uint8Array(readFileSync(pkg)));
    const st = join(tmp.dir, 'model.safetensors');
    writeFileSync(st, files['weights/model.safetensors']);
    const outp = execFileSync(py, [join(root, 'test', 'host', 'safetensors_check.py'), st], { encoding: 'utf8' });
    const fromPy = JSON.parse(outp) as Record<string, { shape: number[]; sum: number; first: number }>;
    const ours = decodeSafetensors(files['weights/model.safetensors']).tensors;
    expect(Object.keys(fromPy).sort()).toEqual(ours.map((t) => t.name).sort());
    for (const t of ours) {
      expect(fromPy[t.name].shape).toEqual(t.shape);
      expect(fromPy[t.name].first).toBe(t.data[0]);
      expect(fromPy[t.name].sum).toBeCloseTo(t.data.reduce((s, v) => s + v, 0), 3);
    }
  });

  it('refuses to export when an identifier would slip in, saying what and where', async () => {
    const cfgPath = join(runDir, 'config.json');
    const original = readFileSync(cfgPath, 'utf8');
    try {
      writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(original), name: 'encoder of LIDC-IDRI-0001' }));
      // the config hash changes with the name: write a checkpoint-independent export
      await expect(exportRun(db, runDir, join(tmp.dir, 'leak.zip'), { licence: 'CC0-1.0' })).rejects.toThrow(PrivacyError);
      await expect(exportRun(db, runDir, join(tmp.dir, 'leak.zip'), { licence: 'CC0-1.0' })).rejects.toThrow(/model-card\.json: patient-id/);
      expect(existsSync(join(tmp.dir, 'leak.zip'))).toBe(false);
    } finally {
      writeFileSync(cfgPath, original);
    }
    expect(scanForIdentifiers({ 'a.txt': strToU8('seen 1.2.840.99999.1 here') }, { values: [{ value: '1.2.840.99999.1', kind: 'uid' }] })).toEqual([
      { file: 'a.txt', kind: 'uid', excerpt: '1.2.84...99.1' },
    ]);
  });

  it('rejects corrupt, truncated, altered or incompatible packages without touching existing runs', () => {
    const into = join(tmp.dir, 'imports');
    const good = importPackage(pkg, into);
    const before = readdirSync(into).sort();
    const bytes = readFileSync(pkg);
    const truncated = join(tmp.dir, 'truncated.zip');
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    expect(() => importPackage(truncated, into)).toThrow(/truncated\.zip: not a readable package/);

    const files = unzipSync(new Uint8Array(bytes));
    const altered = { ...files, 'weights/model.safetensors': files['weights/model.safetensors'].slice() };
    altered['weights/model.safetensors'][200] ^= 0xff;
    const alteredPath = join(tmp.dir, 'altered.zip');
    writeFileSync(alteredPath, zipSync(altered));
    expect(() => importPackage(alteredPath, into)).toThrow(/checksum mismatch for weights\/model\.safetensors/);

    // A package built for another architecture, with valid checksums.
    const cfg = JSON.parse(Buffer.from(files['config.json']).toString());
    cfg.architecture.widths = [16, 32];
    const other: Record<string, Uint8Array> = { ...files, 'config.json': strToU8(JSON.stringify(cfg)) };
    const sums = JSON.parse(Buffer.from(files['checksums.json']).toString());
    sums.sha256['config.json'] = createHash('sha256').update(other['config.json']).digest('hex');
    other['checksums.json'] = strToU8(JSON.stringify(sums));
    const otherPath = join(tmp.dir, 'other.zip');
    writeFileSync(otherPath, zipSync(other));
    expect(() => importPackage(otherPath, into)).toThrow(/incompatible weights: .* has shape/);

    expect(readdirSync(into).sort()).toEqual(before);
    expect(existsSync(join(good.dir, 'checkpoints', 'latest.json'))).toBe(true);
  });

  it('offers an imported encoder as the initialisation of a new run', async () => {
    const r = importPackage(pkg, join(tmp.dir, 'imports'));
    const run = createRun(db, { task: 'rotation', preset: 'tiny', size: 32, steps: 1, batchSize: 2, init: r.dir, useCache: false, filter: { modality: 'CT' } }, { dataDir: tmp.dir });
    expect(run.parentDir).toBe(r.dir);
    expect((await startRun(db, run).done).status).toBe('done');
  });
});
