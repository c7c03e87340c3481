/** Creating a run where the library already lists one whose folder was removed by hand: a clear refusal. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../src/library/db/schema';
import { indexFolders } from '../../src/library/indexing/indexer';
import { createRun } from '../../src/host/runs/create-run';
import type { Database } from '../../src/library/db/sqlite';
import { fixtures, tempDir } from '../helpers';

describe('createRun', () => {
  const tmp = tempDir();
  let db: Database;
  beforeAll(async () => {
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    await indexFolders(db, [join(fixtures, 'lidc-small')]);
  });
  afterAll(() => {
    db.close();
    tmp.cleanup();
  });

  it('refuses a folder the library still lists after the folder was deleted, naming the run and what to do', () => {
    const config = { task: 'denoise', preset: 'tiny', size: 32, steps: 2, batchSize: 2, useCache: false, filter: { modality: 'CT' } } as const;
    const dir = join(tmp.dir, 'runs', 'mine');
    const first = createRun(db, config, { dataDir: tmp.dir, dir });
    rmSync(dir, { recursive: true });
    expect(() => createRun(db, config, { dataDir: tmp.dir, dir })).toThrow(`the library already lists run ${first.id} in ${dir} (its folder was removed?): move it to the trash (ctssl runs --delete ${first.id}) or choose another folder`);
  });
});
