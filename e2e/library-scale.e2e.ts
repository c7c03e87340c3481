/**
 * The Library page over a library of hundreds of series (a small version of bench/index-scale.ts's
 * million instances, written through the indexer's own write path): the series table draws only
 * the rows on screen and a margin (virtualised), holds every matching series in its scroll height,
 * and the keyboard reaches every one of them (End, Home, PageDown, arrows), drawing the rows it
 * moves to.
 */
import { test, expect, type Page } from '@playwright/test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServe, stopServe, type Served } from './fixtures';
import { LibraryPage } from './pages/library-page';
import { openLibrary } from '../src/library/db/schema';
import { buildLibrary } from '../bench/index-scale-library';

let dataDir: string;
let served: Served;
let page: Page;
let library: LibraryPage;

test.beforeAll(async ({ browser }) => {
  dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-scale-'));
  const db = openLibrary(join(dataDir, 'library.sqlite'));
  const built = buildLibrary(db, { instances: 60_000, folder: join(dataDir, 'dicom') });
  db.close();
  expect(built.paperSeries).toBeGreaterThan(200);
  served = await startServe(dataDir);
  page = await browser.newPage();
  await page.goto(served.openUrl);
  library = new LibraryPage(page);
});

test.afterAll(async () => {
  await page?.close();
  if (served) await stopServe(served);
  rmSync(dataDir, { recursive: true, force: true });
});

/** The focused series row's index in the sorted list and its patient, or null (evaluated in the page). */
const focused = (p: Page) =>
  p.evaluate(`(() => {
    const el = document.activeElement;
    return el && el.dataset.testid === 'series-row'
      ? { index: Number(el.dataset.index), patient: el.querySelector('[data-col="patientId"]')?.textContent?.trim() }
      : null;
  })()`) as Promise<{ index: number; patient?: string } | null>;

test('the series table draws the rows on screen, not every series, and the keyboard reaches them all', async () => {
  const { matching } = await library.counts();
  expect(matching).toBeGreaterThan(200);
  const table = page.getByTestId('series-table');
  await expect(table).toHaveAttribute('data-rows', String(matching));
  await expect(library.rows.first()).toBeVisible();
  const drawn = await library.rows.count();
  expect(drawn, `${drawn} rows drawn of ${matching}`).toBeLessThan(matching / 2);
  // The scroll height holds every series (the spacer rows stand for the rows not drawn).
  const { scrollHeight, rowHeight } = await page.getByTestId('series-table-wrap').evaluate((w) => ({
    scrollHeight: w.scrollHeight,
    rowHeight: w.querySelector('tr[data-testid="series-row"]')!.getBoundingClientRect().height,
  }));
  expect(scrollHeight).toBeGreaterThan(matching * rowHeight * 0.95);

  // Sorted by patient: SCALE-000000 first, the last patient last.
  await library.rows.first().focus();
  expect(await focused(page)).toEqual({ index: 0, patient: 'SCALE-000000' });
  await page.keyboard.press('End');
  await expect.poll(() => focused(page)).toMatchObject({ index: matching - 1 });
  const lastPatient = (await focused(page))!.patient!;
  expect(lastPatient > 'SCALE-000200').toBe(true);
  await page.keyboard.press('ArrowUp');
  await expect.poll(() => focused(page)).toMatchObject({ index: matching - 2 });
  await page.keyboard.press('Home');
  await expect.poll(() => focused(page)).toEqual({ index: 0, patient: 'SCALE-000000' });
  await page.keyboard.press('PageDown');
  await expect.poll(async () => (await focused(page))?.index ?? 0).toBeGreaterThan(5);
  await page.keyboard.press('ArrowDown');
  const after = (await focused(page))!.index;
  await page.keyboard.press('Enter'); // opens the viewer on the focused series
  await expect(page).toHaveURL(/#\/viewer/);
  expect(after).toBeGreaterThan(6);

  // Sorted the other way (patient is the sort already: one click reverses it), the last patient's series come first.
  await page.goBack();
  await library.sortBy('patientId');
  await expect(library.cell(library.rows.first(), 'patientId')).toHaveText(lastPatient);
  // Scrolled to the bottom, the last rows are drawn.
  await page.getByTestId('series-table-wrap').evaluate((w) => (w.scrollTop = w.scrollHeight));
  await expect(library.cell(library.rows.last(), 'patientId')).toHaveText('SCALE-000000');
});
