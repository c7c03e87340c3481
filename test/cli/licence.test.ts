/**
 * A licence that is not an SPDX identifier or expression is refused by the export service, so
 * `ctssl export` and the app's runs.export refuse it alike, before any work, with the same message.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createServices } from '../../src/host/services';
import { indexFolders } from '../../src/library/indexing/indexer';
import { fixtures, root, tempDir } from '../helpers';

describe('licences of exported weights', () => {
  it('refuses "banana" in ctssl export and in runs.export, saying why', async () => {
    const tmp = tempDir('ctssl-licence-');
    const dataDir = join(tmp.dir, 'data');
    const dbPath = join(tmp.dir, 'lib.sqlite');
    const services = createServices({ mode: 'server', dataDir, dbPath, emit: () => {} });
    try {
      await indexFolders(services.db, [join(fixtures, 'lidc-small')]);
      const run = await services.handlers['runs.create']({ task: 'denoise', preset: 'tiny', size: 32, steps: 2, batchSize: 2, useCache: false } as never);
      await expect(services.handlers['runs.export'](run.id, { licence: 'banana' })).rejects.toThrow(/licence "banana": "banana" is not on the SPDX licence list/);
      await expect(services.handlers['runs.export'](run.id, { licence: 'mit' })).rejects.toThrow(/write "MIT"/);

      const out = join(tmp.dir, 'x.ctssl.zip');
      const r = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'export', '--run', run.dir, '--out', out, '--licence', 'banana', '--db', dbPath], {
        env: { ...process.env, CTSSL_DATA_DIR: dataDir },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/"banana" is not on the SPDX licence list/);
      expect(existsSync(out)).toBe(false);
    } finally {
      await services.close();
      tmp.cleanup();
    }
  }, 120_000);
});
