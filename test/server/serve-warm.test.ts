/**
 * `ctssl serve` reads the pages of the Library page's first request (FIRST_SERIES_PAGE) before it
 * listens, within WARM_BUDGET_MS, so that a fresh server answers it from memory (bench/index-scale.ts:
 * first rows at a million instances). On a real library file, through the server's own start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, WARM_BUDGET_MS, type RunningServer } from '../../src/server/serve';
import { openLibrary } from '../../src/library/db/schema';
import { seriesPage } from '../../src/library/db/catalog';
import { FIRST_SERIES_PAGE } from '../../src/shared/presets';
import { buildLibrary } from '../../bench/index-scale-library';
import { tempDir } from '../helpers';

describe('ctssl serve: the first request read ahead', () => {
  const tmp = tempDir();
  let server: RunningServer;
  let tableRows = 0;
  beforeAll(async () => {
    const renderer = join(tmp.dir, 'renderer');
    mkdirSync(renderer);
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
    const dbPath = join(tmp.dir, 'library.sqlite');
    const db = openLibrary(dbPath);
    buildLibrary(db, { instances: 20_000, folder: join(tmp.dir, 'dicom') });
    tableRows = ['series', 'studies', 'patients'].reduce((a, t) => a + (db.prepare(`SELECT COUNT(*) FROM ${t}`).pluck().get() as number), 0);
    db.close();
    server = await startServer({ dataDir: tmp.dir, dbPath, rendererDir: renderer, log: () => undefined });
  });
  afterAll(async () => {
    await server?.close();
    tmp.cleanup();
  });

  it('reads the tables of the first page and answers it before it listens, within its budget', () => {
    expect(tableRows).toBeGreaterThan(0);
    expect(server.warmed).toMatchObject({ rowsRead: tableRows, complete: true, pageAnswered: true });
    expect(server.warmed.ms).toBeLessThan(WARM_BUDGET_MS + 5000);
    // The request read ahead is the one the page sends first, and it has rows.
    expect(seriesPage(server.services.db, FIRST_SERIES_PAGE).rows.length).toBeGreaterThan(0);
  });
});
