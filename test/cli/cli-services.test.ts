/**
 * The CLI is a client of the app's services (issue 12): a run trained and evaluated with `ctssl`
 * is recorded, stored and listed exactly as one the app trained and evaluated, and `ctssl runs`
 * lists what the app lists. Real `ctssl` processes, real trainer processes, one library.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServices } from '../../src/host/services';
import { indexFolders } from '../../src/library/indexing/indexer';
import type { RunSummary } from '../../src/shared/types';
import { fixtures, root, tempDir } from '../helpers';

const keys = (o: object | undefined) => Object.keys(o ?? {}).sort();

describe('ctssl and the app, through the same services', () => {
  it('stores and lists a CLI evaluation as the app stores and lists its own', async () => {
    const tmp = tempDir('ctssl-cli-services-');
    const dataDir = join(tmp.dir, 'data');
    const dbPath = join(tmp.dir, 'lib.sqlite');
    const ctssl = (...args: string[]) => {
      const r = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), ...args, '--db', dbPath], {
        // From a folder outside the project, as a user runs it from a data folder: the trainer it
        // starts must find its loader from the project, not from this folder.
        cwd: tmp.dir,
        env: { ...process.env, CTSSL_DATA_DIR: dataDir },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(r.status, `ctssl ${args.join(' ')}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout) as unknown;
    };
    const services = createServices({ mode: 'server', dataDir, dbPath, emit: () => {} });
    const h = services.handlers;
    try {
      await indexFolders(services.db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
      const tiny = { task: 'denoise', preset: 'tiny', size: 32, steps: 2, batchSize: 2, useCache: false } as const;

      // The app: runs.create, runs.start, then runs.evaluate.
      const app = await h['runs.create']({ ...tiny, evalEvery: 2, checkpointEvery: 2 } as never);
      await h['runs.start'](app.id);
      expect((await services.runs.wait(app.id)).status).toBe('done');
      const appEval = await h['runs.evaluate'](app.id, { maxSlices: 4 });

      // The CLI: ctssl pretrain, then ctssl eval-ssl on its folder.
      const trained = ctssl('pretrain', '--task', 'denoise', '--preset', 'tiny', '--size', '32', '--steps', '2', '--batch', '2', '--eval-every', '2', '--checkpoint-every', '2', '--no-cache', '--json') as { id: number; run: string; status: string };
      expect(trained.status).toBe('done');
      const cliEval = ctssl('eval-ssl', '--run', trained.run, '--max-slices', '4', '--json') as Record<string, unknown>;

      const listed = await h['runs.list']();
      const a = listed.find((r) => r.id === app.id)!;
      const c = listed.find((r) => r.id === trained.id)!;
      // Listed the same: the same fields, down to the stored evaluation's.
      expect(keys(c)).toEqual(keys(a));
      expect(keys(c.summary)).toEqual(keys(a.summary));
      expect(keys(c.summary.eval)).toEqual(keys(a.summary.eval));
      expect(keys(c.summary.eval)).toEqual(expect.arrayContaining(['task', 'checkpointStep', 'split', 'perVolume', 'perImage', 'table']));
      expect(c.summary.eval).toMatchObject({ task: 'denoise', checkpointStep: 2, images: 4 });
      expect(a.summary.eval).toEqual(appEval);
      // What the CLI printed is what it stored, as the app returns what it stores.
      expect(c.summary.eval).toEqual(cliEval);
      for (const [k, v] of Object.entries(a.summary.eval!)) if (v !== null) expect(typeof (c.summary.eval as unknown as Record<string, unknown>)[k], k).toBe(typeof v);
      expect(keys(c.summary.eval!.perVolume)).toEqual(keys(a.summary.eval!.perVolume));
      // The eval file in the run folder: one shape.
      const table2 = (dir: string) => JSON.parse(readFileSync(join(dir, 'eval', 'table2.json'), 'utf8')) as Record<string, unknown>;
      expect(keys(table2(c.dir))).toEqual(keys(table2(a.dir)));
      expect(table2(c.dir)).toEqual(cliEval);

      // ctssl runs lists what the app lists.
      expect(ctssl('runs', '--json') as RunSummary[]).toEqual(await h['runs.list']());
    } finally {
      await services.close();
      tmp.cleanup();
    }
  }, 300_000);
});
