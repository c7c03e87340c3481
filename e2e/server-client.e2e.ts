/**
 * Server mode as a full client (issue 13), in Chromium on a real `ctssl serve`: a folder chosen in
 * the folder picker that browses the server's folders (no typing), a package exported on the
 * server and downloaded to the browser, and the same package uploaded back from the browser and
 * imported through the app's checked import.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, fixtures, screenshotDir, startServe, stopServe, type Served } from './fixtures';
import { LibraryPage } from './pages/library-page';
import { trainTinyRun } from './support/cli';

test.describe('server mode as a full client', () => {
  test.describe.configure({ mode: 'serial' });
  let served: Served;
  let dataDir: string;
  let page: Page;
  let library: LibraryPage;
  let exported = '';
  let downloaded = '';

  test.beforeAll(async ({ browser }) => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-server-client-'));
    served = await startServe(dataDir);
    page = await browser.newPage({ acceptDownloads: true });
    page.on('pageerror', (e) => console.error('[page error]', e.message));
    await page.goto(served.openUrl);
    library = new LibraryPage(page);
  });

  test.afterAll(async () => {
    await page?.close();
    if (served) await stopServe(served);
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('adds a folder chosen in the folder picker that browses the server', async () => {
    // The page holds two pickers (folders, label folders): each dialog is named by its own heading.
    await page.getByTestId('browse-label-folder').click();
    const labelPicker = page.getByRole('dialog', { name: 'Import every label file under a folder on the server' });
    await expect(labelPicker).toBeVisible();
    await labelPicker.getByTestId('picker-cancel').click();
    await expect(labelPicker).toBeHidden();
    await page.getByTestId('browse-folder').click();
    await expect(page.getByRole('dialog', { name: 'Add a folder of CT studies on the server' })).toBeVisible();
    const picker = page.getByTestId('folder-picker').filter({ hasText: 'Add a folder of CT studies' });
    await expect(picker).toBeVisible();
    // starts at the home folder; go to the fixtures by the location field, then pick by clicking
    await picker.getByTestId('picker-location').fill(fixtures);
    await picker.getByTestId('picker-go').click();
    await expect(picker.locator('[data-testid="picker-entry"][data-name="lidc-0001"]')).toBeVisible();
    await expect(picker.getByTestId('picker-summary')).toContainText('folders');
    // a folder that cannot be opened says why and keeps the listing
    await picker.getByTestId('picker-location').fill('/proc');
    await picker.getByTestId('picker-go').click();
    await expect(picker.getByTestId('picker-problem')).toContainText('pseudo file system');
    await expect(picker.locator('[data-testid="picker-entry"][data-name="lidc-0001"]')).toBeVisible();
    // up one folder and back in by double-click
    await picker.getByTestId('picker-up').click();
    await expect(picker.getByTestId('picker-location')).toHaveValue(join(fixtures, '..'));
    await picker.locator('[data-testid="picker-entry"][data-name="dicom"]').dblclick();
    await expect(picker.getByTestId('picker-location')).toHaveValue(fixtures);
    await picker.locator('[data-testid="picker-entry"][data-name="lidc-0001"]').click();
    await page.screenshot({ path: join(screenshotDir, 'server-client-folder-picker.png') });
    await picker.getByTestId('picker-choose').click();
    await expect(picker).toBeHidden();
    await library.waitForIndexing();
    await expect(library.folder(join(fixtures, 'lidc-0001'))).toHaveCount(1);
    await expect(library.rows).not.toHaveCount(0);
  });

  test('imports the label files of a folder chosen in the folder picker', async () => {
    await page.getByTestId('browse-label-folder').click();
    const picker = page.getByTestId('folder-picker').filter({ hasText: 'label file' });
    await expect(picker).toBeVisible();
    await picker.getByTestId('picker-location').fill(join(fixtures, 'lidc-0001'));
    await picker.getByTestId('picker-go').click();
    await expect(picker.getByTestId('picker-location')).toHaveValue(join(fixtures, 'lidc-0001'));
    await picker.getByTestId('picker-choose').click();
    await expect(picker).toBeHidden();
    const summary = page.getByTestId('folder-summary');
    await expect(summary).toBeVisible({ timeout: 60_000 });
    await expect(summary).toHaveAttribute('data-imported', /^[1-9]/);
    await expect(summary).toHaveAttribute('data-failed', '0');
  });

  test('downloads an exported package to the browser', async () => {
    await library.addFolder(join(fixtures, 'lidc-small'));
    const run = trainTinyRun(dataDir);
    await page.getByTestId('nav-share').click();
    await page.getByTestId('export-run').selectOption(String(run.id));
    await page.getByTestId('export-licence').fill('CC-BY-4.0');
    await page.getByTestId('export-button').click();
    await expect(page.getByTestId('export-result')).toBeVisible({ timeout: 90_000 });
    exported = (await page.getByTestId('export-file').textContent())!.trim();
    expect(existsSync(exported)).toBe(true);
    const link = page.getByTestId('export-download');
    await expect(link).toHaveText(/^Download run-\d+-masked\.ctssl\.zip$/);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    expect(download.suggestedFilename()).toBe(exported.split('/').pop());
    downloaded = join(dataDir, 'downloaded-' + download.suggestedFilename());
    await download.saveAs(downloaded);
    expect(readFileSync(downloaded).equals(readFileSync(exported))).toBe(true);
    await page.screenshot({ path: join(screenshotDir, 'server-client-download.png') });
  });

  test('uploads a package from the browser, streamed, imported by the checked import', async () => {
    await expect(page.getByTestId('imported-empty')).toBeVisible();
    await page.getByTestId('package-file').setInputFiles(downloaded);
    await expect(page.getByTestId('import-result')).toBeVisible({ timeout: 60_000 });
    await expect(page.getByTestId('import-result')).toContainText('licence CC-BY-4.0');
    await expect(page.getByTestId('imported-row')).toHaveCount(1);
    await page.screenshot({ path: join(screenshotDir, 'server-client-upload.png') });
    // a file that is not a package is refused with the import's reason, naming the file
    await page.getByTestId('package-file').setInputFiles({ name: 'notes.ctssl.zip', mimeType: 'application/zip', buffer: Buffer.from('not a zip at all') });
    await expect(page.getByTestId('import-error')).toContainText('notes.ctssl.zip');
    await expect(page.getByTestId('imported-row')).toHaveCount(1);
  });

  test('cancels an upload in progress: nothing imported, nothing kept on the server', async () => {
    // a slow link (Chromium's network emulation: 256 KiB/s up) so that the upload is still going
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
    try {
      await page.getByTestId('package-file').setInputFiles({ name: 'big.ctssl.zip', mimeType: 'application/zip', buffer: Buffer.alloc(8 * 2 ** 20, 7) });
      await expect(page.getByTestId('upload-progress')).toBeVisible();
      await page.getByTestId('cancel-upload').click();
      await expect(page.getByTestId('import-error')).toContainText('big.ctssl.zip: upload cancelled; nothing was imported');
      await expect(page.getByTestId('cancel-upload')).toHaveCount(0);
    } finally {
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
      await cdp.detach();
    }
    await expect(page.getByTestId('imported-row')).toHaveCount(1);
    // the server removed the part it received (a cut-off upload is not kept)
    await expect.poll(() => (existsSync(join(dataDir, 'uploads')) ? readdirSync(join(dataDir, 'uploads')).length : 0), { timeout: 30_000 }).toBe(0);
  });
});
