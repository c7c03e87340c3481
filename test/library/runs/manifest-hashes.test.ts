import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { buildManifest, splitPatients, splitPatientsConstrained } from '../../../src/library/runs/manifest';
import { writeCohort } from '../../../src/library/synth/synth-writer';
import { defaultOptions } from '../../../src/core/synth/plan';
import { fixtures, root, tempDir } from '../../helpers';

/**
 * Pretraining manifests of a seed do not change when splits learn about parents and classes: the
 * hashes in test/fixtures/golden/manifest-hashes.json were computed with the split as it was before
 * (commit 999d49b), over the committed DICOM fixtures and a generated 12-patient cohort, for five
 * seeds and three sets of split fractions. Changed only on purpose. The fixtures' totalseg series
 * is left out: its UIDs are empty, so its identity is derived from its folder (where the clone is).
 */
const fixtureFolders = () =>
  readdirSync(fixtures)
    .filter((d) => d !== 'totalseg' && statSync(join(fixtures, d)).isDirectory())
    .map((d) => join(fixtures, d));
const golden = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'golden', 'manifest-hashes.json'), 'utf8')) as Record<'fixtures' | 'synthetic', Record<string, string>>;
const FRACTIONS = { default: undefined, '0.6,0.2,0.2': { train: 0.6, val: 0.2, test: 0.2 }, '0.5,0,0.5': { train: 0.5, val: 0, test: 0.5 } } as const;

describe('pretraining manifests keep their split', () => {
  const tmp = tempDir();
  const cohort = join(tmp.dir, 'cohort');
  beforeAll(async () => {
    await writeCohort({ ...defaultOptions(12, 7), slices: 4, size: 32, peFraction: 1 / 3 }, cohort, { jobs: 1 });
  }, 120_000);
  afterAll(() => tmp.cleanup());

  for (const which of ['fixtures', 'synthetic'] as const)
    it(`gives the stored hashes on the ${which}`, async () => {
      const db = openLibrary(join(tmp.dir, `${which}.sqlite`));
      try {
        await indexFolders(db, which === 'fixtures' ? fixtureFolders() : [cohort]);
        const got: Record<string, string> = {};
        for (const seed of [1, 2, 3, 7, 42])
          for (const [name, fractions] of Object.entries(FRACTIONS)) got[`seed ${seed}, fractions ${name}`] = buildManifest(db, { filter: { modality: 'CT' }, seed, ...(fractions && { fractions }) }).hash;
        expect(got).toEqual(golden[which]);
        // a parent that trained on none of these patients changes nothing either
        expect(buildManifest(db, { filter: { modality: 'CT' }, seed: 3, keepInTrain: new Set(['not-in-this-library']) }).hash).toBe(golden[which]['seed 3, fractions default']);
      } finally {
        db.close();
      }
    }, 120_000);

  it('the constrained split without constraints is the seeded split', () => {
    const keys = Array.from({ length: 37 }, (_, i) => `P${i}`);
    for (const seed of [0, 1, 5, 99]) expect(splitPatientsConstrained(keys, seed, { train: 0.7, val: 0.15, test: 0.15 }).splits).toEqual(splitPatients(keys, seed, { train: 0.7, val: 0.15, test: 0.15 }));
  });
});
