/**
 * The synthetic series of e2e/support/synthetic.ts (known HU and geometry) written to a fresh data
 * folder, indexed by a real `ctssl serve` through the Library page, and opened once: the viewer
 * specs start from its id.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from '@playwright/test';
import { expect, startServe, stopServe, test, type Served } from '../fixtures';
import { LibraryPage } from '../pages/library-page';
import * as synth from './synthetic';

export interface ServedSeries {
  served: Served;
  dataDir: string;
  seriesId: number;
  /** The address that opens the viewer on the series. */
  viewerUrl: string;
}

/** `name` names the temporary folder (ctssl-e2e-NAME-*). */
export async function serveSyntheticSeries(browser: Browser, name: string): Promise<ServedSeries> {
  const dataDir = mkdtempSync(join(tmpdir(), `ctssl-e2e-${name}-`));
  const folder = synth.writeSyntheticSeries(join(dataDir, 'phantom'));
  const served = await startServe(join(dataDir, 'app'));
  const page = await browser.newPage();
  await page.goto(served.openUrl);
  const library = new LibraryPage(page);
  await library.showAll();
  await library.addFolder(folder);
  const row = library.rowByPatient(synth.PATIENT_ID);
  await expect(library.cell(row, 'slices')).toHaveText(String(synth.SLICES));
  await expect(library.cell(row, 'matrix')).toHaveText(`${synth.COLS} x ${synth.ROWS}`);
  await library.open(row);
  await expect(page).toHaveURL(/#\/viewer\/\d+/);
  const seriesId = Number(/#\/viewer\/(\d+)/.exec(page.url())![1]);
  await page.close();
  return { served, dataDir, seriesId, viewerUrl: served.openUrl.replace('#', `#/viewer/${seriesId}&`) };
}

/**
 * In the calling `test.describe`: a beforeAll that serves the synthetic series and an afterAll that
 * stops it. The returned object's fields are set once the beforeAll has run.
 */
export function useSyntheticSeries(name: string): ServedSeries {
  const s = {} as ServedSeries;
  test.beforeAll(async ({ browser }) => {
    Object.assign(s, await serveSyntheticSeries(browser, name));
  });
  test.afterAll(() => stopSyntheticSeries(s.served ? s : undefined));
  return s;
}

export async function stopSyntheticSeries(s: ServedSeries | undefined): Promise<void> {
  if (!s) return;
  await stopServe(s.served);
  rmSync(s.dataDir, { recursive: true, force: true });
}
