import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../src/library/db/schema';
import { indexFolders } from '../src/library/indexing/indexer';
import { buildManifest } from '../src/library/runs/manifest';
import { initBackend } from '../src/trainer/backend';
import { createEngine } from '../src/trainer/pretrain/pretrain-engine';
import { BatchStream, SliceSource } from '../src/trainer/pretrain/pretrain-batches';
import { parsePretrainConfig } from '../src/shared/run-config';
import { fixtures, root, tempDir } from './helpers';

/**
 * Seeded golden numbers (MONAI's determinism test): a few training steps on fixed real data give
 * the losses stored in test/fixtures/golden/pretrain.json, within 1e-4. Changed only on purpose:
 * UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts rewrites the file.
 */
const goldenPath = join(root, 'test', 'fixtures', 'golden', 'pretrain.json');

describe('golden numbers', () => {
  it('masked-region and rotation pretraining give the stored losses step by step (wasm backend)', async () => {
    await initBackend({ force: 'wasm' });
    const tmp = tempDir();
    const db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    const got: Record<string, Record<string, number>[]> = {};
    try {
      await indexFolders(db, [join(fixtures, 'lidc-0001')]);
      const manifest = buildManifest(db, { filter: { modality: 'CT' }, seed: 3, fractions: { train: 1, val: 0, test: 0 } });
      for (const task of ['masked', 'rotation'] as const) {
        const config = parsePretrainConfig({ task, preset: 'tiny', size: 32, steps: 4, batchSize: 4, seed: 3, maskPercent: 10 });
        const engine = createEngine(config);
        const stream = new BatchStream(new SliceSource(manifest, { level: 50, width: 350, size: 32, scaling: 'fixed' }, null), 'train', { task, maskPercent: 10, maskDefinition: 'area', noiseFraction: 0.5, gap: 1 }, 4, 3);
        got[task] = [];
        for (let i = 0; i < 4; i++) got[task].push(await engine.step(await stream.get(0, i)));
        await engine.dispose();
      }
    } finally {
      db.close();
      tmp.cleanup();
    }
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenPath, JSON.stringify(got, null, 2) + '\n');
    if (!existsSync(goldenPath)) throw new Error(`no golden numbers at ${goldenPath}: run UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts once, and commit the file`);
    const want = JSON.parse(readFileSync(goldenPath, 'utf8')) as typeof got;
    for (const task of Object.keys(want)) {
      expect(got[task]).toHaveLength(want[task].length);
      want[task].forEach((step, i) => {
        for (const [k, v] of Object.entries(step)) expect(got[task][i][k], `${task} step ${i + 1} ${k}`).toBeCloseTo(v, 4);
      });
    }
  });
});
