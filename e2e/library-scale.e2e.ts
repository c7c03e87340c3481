/**
 * The Library page over a library of hundreds of series (a small version of bench/index-scale.ts's
 * million instances, written through the indexer's own write path): the series table draws only
 * the rows on screen and a margin (virtualised), asks the server only for the pages it draws
 * (`library.seriesPage`, watched on the WebSocket), sorts in SQL when a header is clicked, holds
 * every matching series in its scroll height, and the keyboard reaches every one of them (End,
 * Home, PageDown, arrows), loading and drawing the rows it moves to.
 */
import { test, expect, type Page } from '@playwright/test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServe, stopServe, type Served } from './fixtures';
import { LibraryPage } from './pages/library-page';
import { openLibrary } from '../src/library/db/schema';
import { listSeries } from '../src/library/db/catalog';
import { FIRST_SERIES_PAGE, PAPER_COHORT } from '../src/shared/presets';
import { ROW_HEIGHT } from '../src/renderer/src/library/series-columns';
import type { SeriesPageRequest } from '../src/shared/series-page';
import { buildLibrary } from '../bench/index-scale-library';

let dataDir: string;
let served: Served;
let page: Page;
let library: LibraryPage;
/** The paper cohort's series ids in the list's own order (from the library file, not the page). */
let listed: { id: number; slices: number }[];
/** Every library.seriesPage request the page sent, in order. */
const pageRequests: SeriesPageRequest[] = [];

/** A request frame of the WebSocket bridge (src/shared/wire.ts: u32 JSON length, JSON, binary tail), when it is one. */
function requestOf(payload: string | Buffer): { channel: string; args: unknown[] } | null {
  if (typeof payload === 'string' || payload.length < 4) return null;
  const n = payload.readUInt32LE(0);
  try {
    return JSON.parse(payload.subarray(4, 4 + n).toString('utf8')) as { channel: string; args: unknown[] };
  } catch {
    return null;
  }
}

test.beforeAll(async ({ browser }) => {
  dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-scale-'));
  const db = openLibrary(join(dataDir, 'library.sqlite'));
  const built = buildLibrary(db, { instances: 60_000, folder: join(dataDir, 'dicom') });
  listed = listSeries(db, PAPER_COHORT).map((r) => ({ id: r.id, slices: r.slices }));
  db.close();
  expect(built.paperSeries).toBeGreaterThan(200);
  served = await startServe(dataDir);
  page = await browser.newPage();
  page.on('websocket', (ws) =>
    ws.on('framesent', (f) => {
      const req = requestOf(f.payload);
      if (req?.channel === 'library.seriesPage') pageRequests.push(req.args[0] as SeriesPageRequest);
    }),
  );
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

test('the table asks for the first screenful, then the pages scrolled to, and sorts by a header in SQL', async () => {
  const { matching } = await library.counts();
  expect(matching).toBe(listed.length);
  await expect(page.getByTestId('series-table')).toHaveAttribute('data-rows', String(matching));
  await expect(library.rows.first()).toBeVisible();
  // The first request is the first page of the paper cohort by patient, the one `ctssl serve` reads
  // ahead at start (FIRST_SERIES_PAGE); nothing beyond the drawn rows was asked for.
  expect(pageRequests[0]).toEqual({ filter: PAPER_COHORT, sort: { key: 'patientId', dir: 'asc' }, offset: 0, limit: 100 });
  expect(pageRequests[0]).toEqual(FIRST_SERIES_PAGE);
  const drawnTo = Math.max(...(await library.rows.evaluateAll((rs) => rs.map((r) => Number((r as unknown as { dataset: Record<string, string> }).dataset.index)))));
  expect(drawnTo).toBeLessThan(100);
  expect(pageRequests.every((r) => r.offset === 0)).toBe(true);
  const ids = () => library.rows.evaluateAll((rs) => rs.map((r) => Number((r as unknown as { dataset: Record<string, string> }).dataset.seriesId)));
  expect((await ids()).slice(0, 20)).toEqual(listed.slice(0, 20).map((s) => s.id));

  // Scrolled to row 150: its page is asked for and drawn, with the list's row 150 in it.
  const wrap = page.getByTestId('series-table-wrap');
  await wrap.evaluate((w) => (w.scrollTop = 150 * w.querySelector('tr[data-testid="series-row"]')!.getBoundingClientRect().height));
  const at150 = page.locator('[data-testid="series-row"][data-index="150"]');
  await expect(at150).toHaveAttribute('data-series-id', String(listed[150].id));
  expect(pageRequests.some((r) => r.offset === 100)).toBe(true);
  expect(pageRequests.some((r) => r.offset >= 300)).toBe(false);

  // A row selected stays selected (by series) across a sort.
  await at150.click();
  await expect(at150).toHaveClass(/selected/);
  const selectedId = listed[150].id;

  // Sorted by slices where it is (scrolled to row 150): asked of the server, every drawn row is the
  // list's row at its index when stably sorted by slices, none left waiting.
  const drawn = () =>
    page.evaluate(`(() => [...document.querySelectorAll('[data-testid="series-row"], [data-testid="series-row-pending"]')].map((r) =>
      r.dataset.testid === 'series-row' ? [Number(r.dataset.index), Number(r.dataset.seriesId)] : [Number(r.dataset.index), null]))()`) as Promise<[number, number | null][]>;
  const expectDrawn = async (order: number[]) =>
    expect
      .poll(async () => {
        const d = await drawn();
        return d.length > 0 && d.every(([i, id]) => id === order[i]);
      })
      .toBe(true);
  await library.sortBy('slices');
  await expect(page.getByTestId('col-slices')).toHaveAttribute('aria-sort', 'ascending');
  expect(pageRequests.at(-1)).toMatchObject({ sort: { key: 'slices', dir: 'asc' } });
  const bySlices = [...listed].sort((a, b) => a.slices - b.slices).map((s) => s.id);
  await expectDrawn(bySlices);
  expect((await drawn()).some(([i]) => i === 150)).toBe(true);
  await library.sortBy('slices');
  await expect(page.getByTestId('col-slices')).toHaveAttribute('aria-sort', 'descending');
  const bySlicesDesc = [...listed].sort((a, b) => b.slices - a.slices).map((s) => s.id);
  await expectDrawn(bySlicesDesc);
  const k = bySlicesDesc.indexOf(selectedId);
  await wrap.evaluate((w, k) => (w.scrollTop = Math.max(0, (k - 5) * w.querySelector('tr[data-testid="series-row"]')!.getBoundingClientRect().height)), k);
  await expect(page.locator(`[data-testid="series-row"][data-index="${k}"]`)).toHaveAttribute('data-series-id', String(selectedId));
  await expect(page.locator(`[data-testid="series-row"][data-series-id="${selectedId}"]`)).toHaveClass(/selected/);

  // Back to the patient order for the next test.
  await wrap.evaluate((w) => (w.scrollTop = 0));
  await library.sortBy('patientId');
  await expect(page.getByTestId('col-patientId')).toHaveAttribute('aria-sort', 'ascending');
  await expect.poll(async () => (await ids()).slice(0, 20)).toEqual(listed.slice(0, 20).map((s) => s.id));
});

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

test('the first rows are drawn alone, at one fixed height, and the side panels come in the frames after', async ({ browser }) => {
  // A new page on the same server, watched from its first byte: what the page holds when its first row appears.
  const fresh = await browser.newPage();
  await fresh.addInitScript(`(() => {
    new MutationObserver((_, o) => {
      const row = document.querySelector('[data-testid="series-row"]');
      if (!row) return;
      o.disconnect();
      window.__atFirstRow = { folders: !!document.querySelector('[data-testid="folders-panel"]'), skipped: !!document.querySelector('[data-testid="skipped-panel"]'), height: row.getBoundingClientRect().height };
    }).observe(document, { subtree: true, childList: true });
  })()`);
  await fresh.goto(served.openUrl);
  const lib = new LibraryPage(fresh);
  await expect(lib.rows.first()).toBeVisible();
  expect(await fresh.evaluate('window.__atFirstRow')).toEqual({ folders: false, skipped: false, height: ROW_HEIGHT });
  // Then the side panels, and every drawn row (the margin drawn after the first frame too) at the table's one height.
  await expect(fresh.getByTestId('folders-panel')).toBeVisible();
  await expect(lib.skippedPanel).toBeAttached();
  await expect.poll(() => lib.rows.count()).toBeGreaterThan(40);
  const heights = await lib.rows.evaluateAll((rs) => [...new Set(rs.map((r) => r.getBoundingClientRect().height))]);
  expect(heights).toEqual([ROW_HEIGHT]);
  await fresh.close();
});
