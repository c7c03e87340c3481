/**
 * Labels by the folder through the real app and a real `ctssl serve`: a folder as downloaded
 * (the LIDC-IDRI tree with its images and reader XML, plus files that are not labels) typed on the
 * library page, imported with progress, and a summary that says what happened to every file and
 * why; then the labelled slices in the viewer.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, fixtures, screenshotDir, startServe, stopServe, type Served } from './fixtures';
import { LibraryPage } from './pages/library-page';
import { ViewerPage } from './pages/viewer-page';

test.describe('labels by the folder', () => {
  test.describe.configure({ mode: 'serial' });
  let served: Served;
  let dataDir: string;
  let folder: string;
  let page: Page;
  let library: LibraryPage;
  let viewer: ViewerPage;
  const errors: string[] = [];

  test.beforeAll(async ({ browser }) => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-labels-folder-'));
    folder = join(dataDir, 'LIDC-download');
    cpSync(join(fixtures, 'lidc-0001'), folder, { recursive: true });
    mkdirSync(join(folder, 'more'));
    cpSync(join(fixtures, 'lidc-small', 'xml', '71.xml'), join(folder, 'more', '71.xml'));
    writeFileSync(join(folder, 'more', 'notes.txt'), 'reading notes\n');
    served = await startServe(dataDir);
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(served.openUrl);
    library = new LibraryPage(page);
    viewer = new ViewerPage(page);
    await library.addFolder(folder);
  });
  test.afterAll(async () => {
    await page?.close();
    if (served) await stopServe(served);
    rmSync(dataDir, { recursive: true, force: true });
  });
  test.afterEach(() => {
    expect(errors).toEqual([]);
  });

  test('imports every label file under a typed server folder, with progress and a summary of every file', async () => {
    await expect(page.getByTestId('labels-panel')).toBeVisible();
    await page.getByTestId('label-folder-path').fill('LIDC-download');
    await page.getByTestId('import-label-folder').click();
    await expect(page.getByTestId('label-path-problem')).toContainText('not an absolute path');
    await page.getByTestId('label-folder-path').fill(folder);
    await page.getByTestId('import-label-folder').click();
    const summary = page.getByTestId('folder-summary');
    await expect(summary).toBeVisible({ timeout: 60_000 });
    await expect(summary).toHaveAttribute('data-imported', '2');
    await expect(summary).toHaveAttribute('data-failed', '0');
    await expect(page.getByTestId('folder-summary-headline')).toContainText('2 of');
    await expect(page.getByTestId('folder-kind')).toHaveText(['2']);
    // The images and the notes are not label files: each listed with its reason.
    await summary.getByTestId('folder-skipped').locator('summary').click();
    const skipped = page.getByTestId('folder-skipped-row');
    await expect(skipped.filter({ hasText: 'notes.txt' })).toContainText('not a label file');
    await expect(skipped.filter({ hasText: '.dcm' }).first()).toContainText('(CT image), not a DICOM SEG');
    expect(await skipped.filter({ hasText: '.dcm' }).count()).toBe(17);
    await expect(page.getByTestId('label-source')).toHaveCount(2);
    await page.getByTestId('labels-panel').screenshot({ path: join(screenshotDir, 'labels-folder-summary.png') });
    await page.screenshot({ path: join(screenshotDir, 'labels-folder-page.png') });
  });

  test('a folder chosen in the browser: its label files sent, every other file named with the reason the services give', async () => {
    await page.getByTestId('nav-library').click();
    await expect(page.getByTestId('choose-label-folder')).toBeVisible();
    // what a user's pick of the folder gives the page (Playwright sets the directory's files with their relative paths)
    await page.getByTestId('label-folder-input').setInputFiles(folder);
    const summary = page.getByTestId('folder-summary');
    await expect(summary).toHaveAttribute('data-imported', '2', { timeout: 60_000 });
    await expect(summary).toHaveAttribute('data-failed', '0');
    await summary.getByTestId('folder-skipped').locator('summary').click();
    const skipped = page.getByTestId('folder-skipped-row');
    await expect(skipped.filter({ hasText: 'notes.txt' })).toContainText('not a label file');
    await expect(skipped.filter({ hasText: '.dcm' }).first()).toContainText('(CT image), not a DICOM SEG');
    expect(await skipped.filter({ hasText: '.dcm' }).count()).toBe(17);
    // sent copies are sources of their own (kept under the data folder), beside the two imported by server path
    await expect(page.getByTestId('label-source')).toHaveCount(4);
    await page.getByTestId('labels-panel').screenshot({ path: join(screenshotDir, 'labels-folder-from-browser.png') });
  });

  test('the labelled slices of the folder import in the viewer, N/P between them', async () => {
    await library.showAll();
    await library.open(library.rowByPatient('LIDC-IDRI-0001'));
    await viewer.waitForSlice();
    await expect(page.getByTestId('viewer-labels')).toBeVisible();
    const badges = await page.getByTestId('slice-badge').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-index'))));
    expect(badges.length).toBeGreaterThan(2);
    await viewer.press('Home');
    await viewer.press('n');
    await viewer.expectSlice(Math.min(...badges.filter((b) => b > 0)) + 1, 17);
    await page.screenshot({ path: join(screenshotDir, 'labels-folder-viewer.png') });
  });
});
