/**
 * `--recipe reference` end to end on the committed fixtures: a run created with recipe
 * 'reference' (the app's runs.create and `ctssl pretrain --recipe` both parse it in
 * src/shared/run-config.ts) trains a few real steps in a trainer process with the public code's
 * batch, mask, codebook, 8-bit min-max input and 3 channels, records the recipe in config.json,
 * passes it to its next curriculum stage, and its model card says which recipe; a flag that
 * contradicts the recipe is refused by the CLI naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { openLibrary } from '../../src/library/db/schema';
import { indexFolders } from '../../src/library/indexing/indexer';
import { createRun } from '../../src/host/runs/create-run';
import { startRun } from '../../src/host/runs/start-run';
import { exportRun } from '../../src/host/export-package';
import { latestCheckpointDir, readCheckpoint } from '../../src/library/runs/checkpoint';
import type { Database } from '../../src/library/db/sqlite';
import { fixtures, root, tempDir } from '../helpers';

describe('the reference recipe', () => {
  const tmp = tempDir();
  let db: Database;
  let runDir: string;
  beforeAll(async () => {
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
  }, 120_000);
  afterAll(() => {
    db.close();
    tmp.cleanup();
  });

  it('trains a few steps as the public code does and records the recipe in the config', async () => {
    const run = createRun(
      db,
      { task: 'masked', maskPercent: 20, recipe: 'reference', preset: 'tiny', size: 32, steps: 2, checkpointEvery: 2, evalEvery: 2, evalBatches: 1, useCache: false, filter: { modality: 'CT' } },
      { dataDir: tmp.dir, dir: join(tmp.dir, 'ref') },
    );
    runDir = run.dir;
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ recipe: 'reference', batchSize: 16, maskDefinition: 'side', codebookInit: 'uniform', scaling: 'minmax', optimizer: 'radam', lr: 1e-3, channels: 3 });
    const r = await startRun(db, run).done;
    expect(r.status).toBe('done');
    expect(r.step).toBe(2);
    for (const v of Object.values(r.finalLosses)) expect(Number.isFinite(v)).toBe(true);
    // 3 input channels: E1's filter is [4, 4, 3, w1]; the codebook started uniform in +-1/K.
    const w = readCheckpoint(latestCheckpointDir(runDir)!).weights;
    expect(w.find((e) => e.name === 'encoder.e1.conv.weight')!.shape[2]).toBe(3);
    const metrics = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(metrics.length).toBeGreaterThan(0);
  }, 300_000);

  it("a curriculum stage from it stays 'reference' unless told otherwise", () => {
    const next = createRun(db, { task: 'masked', maskPercent: 33, init: runDir, steps: 1, useCache: false }, { dataDir: tmp.dir, dir: join(tmp.dir, 'ref33') });
    expect(JSON.parse(readFileSync(join(next.dir, 'config.json'), 'utf8'))).toMatchObject({ recipe: 'reference', batchSize: 16, maskDefinition: 'side', channels: 3 });
    const ours = createRun(db, { task: 'masked', maskPercent: 33, init: runDir, recipe: 'ours', steps: 1, useCache: false }, { dataDir: tmp.dir, dir: join(tmp.dir, 'ours33') });
    expect(JSON.parse(readFileSync(join(ours.dir, 'config.json'), 'utf8'))).toMatchObject({ recipe: 'ours', batchSize: 8, maskDefinition: 'area' });
    // A run that names no recipe and has no reference parent records 'ours'.
    const plain = createRun(db, { task: 'rotation', steps: 1, useCache: false, filter: { modality: 'CT' } }, { dataDir: tmp.dir, dir: join(tmp.dir, 'plain') });
    expect(JSON.parse(readFileSync(join(plain.dir, 'config.json'), 'utf8')).recipe).toBe('ours');
  });

  it('says which recipe in the model card', async () => {
    const pkg = join(tmp.dir, 'ref.ctssl.zip');
    await exportRun(db, runDir, pkg, { licence: 'CC-BY-4.0' });
    const files = unzipSync(new Uint8Array(readFileSync(pkg)));
    const card = JSON.parse(Buffer.from(files['model-card.json']).toString()) as { training: { recipe: string; batchSize: number } };
    expect(card.training).toMatchObject({ recipe: 'reference', batchSize: 16 });
    expect(Buffer.from(files['model-card.md']).toString()).toMatch(/\| recipe \| reference \(the authors' public code\) \|/);
  }, 300_000);

  it('is refused by ctssl pretrain with a flag that contradicts it, naming the field', () => {
    const r = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'pretrain', '--recipe', 'reference', '--batch', '8', '--task', 'masked', '--steps', '1', '--db', join(tmp.dir, 'lib.sqlite')], {
      encoding: 'utf8',
      env: { ...process.env, CTSSL_DATA_DIR: tmp.dir },
      timeout: 120_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/batchSize: the reference recipe uses batchSize 16 \(got 8\)/);
  }, 150_000);
});
