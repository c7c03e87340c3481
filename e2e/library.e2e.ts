/**
 * The library page against a real `ctssl serve` on a fresh data folder (one per file: the tests
 * below are one story, run in order): add real DICOM folders by path, watch indexing finish,
 * see the series with the right geometry, filter the cohort, list skipped files, remove a folder.
 * Then, each on its own real server: the progress bar and Cancel on a slow job (a folder of
 * thousands of hard links to the fixture files), a job that fails (the database held locked by
 * another writer), and a server restart (the app reconnects by itself and reloads the library).
 */
import { linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, fixtures, root, screenshotDir, startServe, stopServe, type Served } from './fixtures';
import { AppShell } from './pages/app-shell';
import { LibraryPage } from './pages/library-page';

const LIDC = join(fixtures, 'lidc-0001');
const COVID = join(fixtures, 'covid-slices');
const BROKEN = join(fixtures, 'pydicom-broken');

test.describe('library on real DICOM', () => {
  test.describe.configure({ mode: 'serial' });
  let served: Served;
  let dataDir: string;
  let page: Page;
  let library: LibraryPage;
  let shell: AppShell;
  const errors: string[] = [];
  let skippedBase = 0;

  test.beforeAll(async ({ browser }) => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-library-'));
    served = await startServe(dataDir);
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(served.openUrl);
    library = new LibraryPage(page);
    shell = new AppShell(page);
  });
  test.afterAll(async () => {
    await page.close();
    await stopServe(served);
    rmSync(dataDir, { recursive: true, force: true });
  });
  test.afterEach(() => {
    expect(errors).toEqual([]);
  });

  test('starts empty', async () => {
    await expect(shell.version).toContainText('(server)');
    await expect(page.getByTestId('no-folders')).toBeVisible();
    await expect(library.matching).toHaveText('0');
    await expect(page.getByTestId('series-empty')).toContainText('no series yet');
  });

  test('adds a folder by its path, shows indexing finish and the series with 17 slices', async () => {
    await library.addFolder(LIDC);
    await expect(library.progress).toContainText('Done:');
    await expect(page.getByTestId('index-progress-bar')).toHaveAttribute('aria-valuenow', '100');
    await expect(library.folder(LIDC)).toContainText(/\d+ files/);
    await library.expectCounts(1, 1);
    const row = library.rowByPatient('LIDC-IDRI-0001');
    await expect(library.cell(row, 'modality')).toHaveText('CT');
    await expect(library.cell(row, 'orientation')).toHaveText('axial');
    await expect(library.cell(row, 'slices')).toHaveText('17');
    await expect(library.cell(row, 'matrix')).toHaveText('512 x 512');
    await expect(library.cell(row, 'sliceThickness')).toHaveText('2.5');
    await expect(library.cell(row, 'spacing')).toHaveText('2.5');
    await expect(library.cell(row, 'uniformSpacing')).toHaveText('yes');
    await expect(library.cell(row, 'gantryTilt')).toHaveText('0.0');
    await expect(page.getByTestId('stats-series')).toHaveText('1');
    await page.screenshot({ path: join(screenshotDir, 'library-lidc.png') });
  });

  test('cohort filters change what qualifies', async () => {
    // Default: the paper's cohort (CT, axial, <= 3 mm).
    await expect(library.ct).toBeChecked();
    await expect(library.axial).toBeChecked();
    await expect(library.thicknessOn).toBeChecked();
    await expect(library.thickness).toHaveValue('3');
    await library.expectCounts(1, 1);

    await library.thickness.fill('2');
    await library.expectCounts(0, 1);
    await expect(page.getByTestId('count-maxThickness')).toHaveText('0');
    await expect(page.getByTestId('series-empty')).toContainText('No series match');
    await library.thickness.fill('3');
    await library.expectCounts(1, 1);

    await library.minSlices.fill('18');
    await expect(library.minSlicesOn).toBeChecked();
    await library.expectCounts(0, 1);
    await library.minSlices.fill('17');
    await library.expectCounts(1, 1);
    await library.minSlicesOn.uncheck();

    // LIDC-IDRI-0001 was scanned with IV contrast (ContrastBolusAgent "IV").
    await library.contrast.selectOption('no');
    await library.expectCounts(0, 1);
    await library.contrast.selectOption('yes');
    await library.expectCounts(1, 1);
    await expect(library.cell(library.rows.first(), 'description')).toContainText('contrast');
    await library.contrast.selectOption('any');

    await library.text.fill('no-such-patient');
    await library.expectCounts(0, 1);
    await library.text.fill('LIDC-IDRI');
    await library.expectCounts(1, 1);
    await library.text.fill('');
  });

  test('more folders: orientations, sorting, and the paper cohort versus everything', async () => {
    await library.addFolder(COVID);
    await library.showAll();
    const all = await library.counts();
    expect(all.total).toBeGreaterThan(1);
    expect(all.matching).toBe(all.total);
    await expect(library.rows).toHaveCount(all.total);
    const orientations = await library.columnTexts('orientation');
    expect(orientations).toEqual(expect.arrayContaining(['axial', 'coronal', 'sagittal']));

    await library.sortBy('slices');
    await expect(page.getByTestId('col-slices')).toHaveAttribute('aria-sort', 'ascending');
    let slices = (await library.columnTexts('slices')).map(Number);
    expect(slices).toEqual([...slices].sort((a, b) => a - b));
    await library.sortBy('slices');
    await expect(page.getByTestId('col-slices')).toHaveAttribute('aria-sort', 'descending');
    slices = (await library.columnTexts('slices')).map(Number);
    expect(slices[0]).toBe(17);
    expect(slices).toEqual([...slices].sort((a, b) => b - a));

    await library.axial.check();
    const axial = await library.counts();
    expect(axial.matching).toBeLessThan(all.total);
    expect(await library.columnTexts('orientation')).toEqual(new Array(axial.matching).fill('axial'));
    await expect(page.getByTestId('count-orientation')).toHaveText(String(axial.matching));

    await library.paperCohort();
    const paper = await library.counts();
    expect(paper.matching).toBeLessThanOrEqual(axial.matching);
    await page.screenshot({ path: join(screenshotDir, 'library-filters.png') });
  });

  test('lists skipped files with the reason', async () => {
    // LIDC and COVID folders hold a few licence and source notes, skipped as "not a DICOM file".
    skippedBase = Number(await page.getByTestId('skipped-count').textContent());
    await library.addFolder(BROKEN);
    await expect.poll(async () => Number(await page.getByTestId('skipped-count').textContent())).toBeGreaterThan(skippedBase);
    await library.skippedPanel.locator('summary').click();
    const first = page.getByTestId('skipped-row').first();
    await expect(first).toBeVisible();
    const broken = page.getByTestId('skipped-row').filter({ hasText: 'pydicom-broken' });
    expect(await broken.count()).toBeGreaterThan(0);
    expect(((await broken.first().locator('.reason').textContent()) ?? '').length).toBeGreaterThan(3);
    await expect(page.getByTestId('skipped-row').filter({ hasText: 'SOURCE.txt' }).first()).toContainText('not a DICOM file');
    await page.screenshot({ path: join(screenshotDir, 'library-skipped.png') });
  });

  test('removes a folder only after confirmation', async () => {
    const before = await library.folders.count();
    await library.removeFolder(BROKEN, false);
    await expect(library.folders).toHaveCount(before);
    await library.removeFolder(BROKEN, true);
    await expect(library.folders).toHaveCount(before - 1);
    await expect(library.folder(BROKEN)).toHaveCount(0);
    await expect(page.getByTestId('skipped-count')).toHaveText(String(skippedBase));
  });

  test('re-indexes every folder', async () => {
    const before = await library.jobId();
    await page.getByTestId('reindex').click();
    await expect.poll(() => library.jobId()).not.toBe(before);
    await library.waitForIndexing();
    await expect(library.progress).toContainText('0 parsed');
  });

  test('an invalid folder path shows an error naming the path', async () => {
    const missing = '/nonexistent/ct-folder-that-is-not-there';
    await library.typeFolder(missing);
    await expect(shell.errors).toHaveCount(1);
    await expect(shell.errors).toContainText('Add folder');
    await expect(shell.errors).toContainText(missing);
    await expect(shell.errors).toHaveAttribute('data-code', 'invalid-argument');
    await page.screenshot({ path: join(screenshotDir, 'library-invalid-path.png') });
    await shell.dismissErrors();
    await expect(shell.errors).toHaveCount(0);

    // A file, not a folder.
    const file = join(LIDC, 'SOURCE.txt');
    await library.typeFolder(file);
    await expect(shell.errors).toContainText(file);
    await shell.dismissErrors();

    // A relative path never leaves the page: the services would resolve it against their own folder.
    await library.typeFolder('test/fixtures/dicom');
    await expect(library.pathProblem).toContainText('"test/fixtures/dicom" is not an absolute path');
    await expect(shell.errors).toHaveCount(0);
    await library.pathField.fill('/');
    await expect(library.pathProblem).toHaveCount(0);
  });
});

/** A folder of `copies` x 17 real DICOM files: hard links to the LIDC slab, in subfolders (as test/index-crash.test.ts). */
function manyFiles(dir: string, copies: number): number {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.dcm')) found.push(join(d, e.name));
    }
  };
  walk(LIDC);
  let n = 0;
  for (let c = 0; c < copies; c++) {
    const sub = join(dir, `copy-${String(c).padStart(4, '0')}`);
    mkdirSync(sub, { recursive: true });
    for (const f of found) linkSync(f, join(sub, `${n++}.dcm`));
  }
  return n;
}

test.describe('indexing progress, failure and reconnection (real servers)', () => {
  let served: Served;
  let dataDir: string;

  test.beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-progress-'));
    served = await startServe(join(dataDir, 'app'));
  });
  test.afterEach(async () => {
    await stopServe(served);
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a slow job shows files/s, ETA and Cancel, then what was indexed before the cancel', async ({ page }) => {
    const big = join(dataDir, 'many');
    const total = manyFiles(big, 2400); // 40,800 files: some seconds of work even on a fast machine
    await page.goto(served.openUrl);
    const library = new LibraryPage(page);
    await expect(library.matching).toHaveText('0');
    await library.typeFolder(big);
    await expect(library.progress).toHaveAttribute('data-phase', 'parsing', { timeout: 30_000 });
    await expect(page.getByTestId('index-progress-label')).toHaveText(new RegExp(`^Parsing headers: [\\d,]+ / ${total.toLocaleString('en-US')} files`));
    await expect(page.getByTestId('index-rate')).toHaveText(/^[\d,.]+ files\/s$/);
    await expect(page.getByTestId('index-eta')).toHaveText(/^ETA \d+( min \d+)? s$/);
    const bar = page.getByTestId('index-progress-bar');
    await expect.poll(async () => Number(await bar.getAttribute('aria-valuenow'))).toBeGreaterThan(0);
    expect(Number(await bar.getAttribute('aria-valuenow'))).toBeLessThan(100);
    await expect(page.getByTestId('add-folder')).toBeDisabled();
    await expect(page.getByTestId('nav-indexing')).toBeVisible();
    await page.screenshot({ path: join(screenshotDir, 'library-progress.png') });

    await page.getByTestId('cancel-index').click();
    await expect(library.progress).toHaveAttribute('data-phase', 'cancelled', { timeout: 30_000 });
    await expect(page.getByTestId('index-progress-label')).toHaveText(/^Cancelled: [\d,]+ files \([\d,]+ parsed\), \d+ instances, \d series in /);
    const parsed = Number(/\(([\d,]+) parsed\)/.exec((await page.getByTestId('index-progress-label').textContent())!)![1].replace(/,/g, ''));
    expect(parsed).toBeGreaterThan(0);
    expect(parsed).toBeLessThan(total);
    await expect(page.getByTestId('cancel-index')).toHaveCount(0);
    await expect(page.getByTestId('add-folder')).toBeEnabled();
    await expect(page.getByTestId('nav-indexing')).toBeHidden();
    // The page reloads the library once the job has ended: what was committed stays.
    await expect(library.folder(big)).toHaveCount(1);
    await expect(library.matching).toHaveText('1');
  });

  test('a job that fails shows its message', async ({ page }) => {
    await page.goto(served.openUrl);
    const library = new LibraryPage(page);
    await expect(library.matching).toHaveText('0');
    // Another program holds the library database with a write lock: the job cannot write.
    const db = new Database(join(dataDir, 'app', 'library.sqlite'));
    try {
      db.exec('BEGIN EXCLUSIVE');
      await library.typeFolder(LIDC);
      const shell = new AppShell(page);
      await expect(shell.errors).toContainText('database is locked', { timeout: 30_000 });
      if ((await library.progress.count()) > 0) {
        await expect(library.progress).toHaveAttribute('data-phase', 'error');
        await expect(library.progress).toContainText('database is locked');
      }
    } finally {
      db.exec('ROLLBACK');
      db.close();
    }
    // Once the lock is gone, the same folder indexes.
    await new AppShell(page).dismissErrors();
    await library.addFolder(LIDC);
    await library.expectCounts(1, 1);
  });

  test('a restarted server: banner while down, then reconnects by itself and reloads the library', async ({ page }) => {
    await page.goto(served.openUrl);
    const library = new LibraryPage(page);
    await expect(library.matching).toHaveText('0');
    const { port, token } = served;
    await stopServe(served);
    await expect(page.getByTestId('connection-lost')).toBeVisible();
    await page.screenshot({ path: join(screenshotDir, 'connection-lost.png') });
    // While it is down, the library changes on disk (the CLI indexes a folder into the same database).
    const r = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'index', LIDC, '--db', join(dataDir, 'app', 'library.sqlite')], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    served = await startServe(join(dataDir, 'app'), { port, token });
    await expect(page.getByTestId('connection-lost')).toBeHidden({ timeout: 20_000 });
    // No reload of the page: the app fetched the library again by itself.
    await expect(library.matching).toHaveText('1');
    await expect(library.folders).toHaveCount(1);
  });
});
