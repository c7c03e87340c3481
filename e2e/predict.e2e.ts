/**
 * Inference through the real app and a real `ctssl serve`: fine-tuned runs (a classifier and a
 * U-Net, a few steps on the committed LIDC slices, trained by the CLI on the served library), then
 * in the viewer: Predict (a trainer process, progress), the score strip under the slider (click a
 * bar, T to the top-scoring slice), and a U-Net's mask drawn over the slice.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, fixtures, screenshotDir, startServe, stopServe, type Served } from './fixtures';
import { AppShell } from './pages/app-shell';
import { LibraryPage } from './pages/library-page';
import { ViewerPage } from './pages/viewer-page';
import { ctssl } from './support/cli';

test.describe('predict in the viewer', () => {
  test.describe.configure({ mode: 'serial' });
  let served: Served;
  let dataDir: string;
  let page: Page;
  let library: LibraryPage;
  let viewer: ViewerPage;
  let cls: { id: number };
  let seg: { id: number };
  const errors: string[] = [];

  test.beforeAll(async ({ browser }) => {
    test.setTimeout(600_000);
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-predict-'));
    ctssl(dataDir, ['index', join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
    // The reader XMLs of both patients, by the folder.
    ctssl(dataDir, ['labels', 'import', join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small', 'xml')]);
    const common = ['--preset', 'tiny', '--size', '64', '--batch', '4', '--window-level', '-600', '--window-width', '1500', '--json'];
    cls = ctssl(dataDir, ['finetune', '--task', 'classification', '--model', 'encoder-classifier', '--steps', '4', '--lr', '0.01', ...common], 300_000) as { id: number };
    seg = ctssl(dataDir, ['finetune', '--task', 'segmentation', '--model', 'unet', '--steps', '12', '--lr', '0.01', '--eval-every', '12', ...common], 300_000) as { id: number };
    served = await startServe(dataDir);
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(served.openUrl);
    library = new LibraryPage(page);
    viewer = new ViewerPage(page);
  });
  test.afterAll(async () => {
    await page?.close();
    if (served) await stopServe(served);
    rmSync(dataDir, { recursive: true, force: true });
  });
  test.afterEach(() => {
    expect(errors).toEqual([]);
  });

  test('a classifier scores every slice: the strip under the slider, click to jump, T to the top slice', async () => {
    await library.showAll();
    await library.open(library.rowByPatient('LIDC-IDRI-0001'));
    await viewer.waitForSlice();
    await viewer.waitForVolume();
    const panel = page.getByTestId('predict-panel');
    await expect(panel).toBeVisible();
    await page.getByTestId('predict-run').selectOption(String(cls.id));
    await expect(page.getByTestId('score-strip')).toHaveCount(0);
    await page.getByTestId('predict-button').click();
    await expect(panel).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
    await expect(page.getByTestId('predict-summary')).toContainText('17 slices, scored');
    const strip = page.getByTestId('score-strip');
    await expect(strip).toHaveAttribute('data-slices', '17');
    await expect(page.getByTestId('score-bar')).toHaveCount(17);
    const scores = await page.getByTestId('score-bar').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-score'))));
    expect(scores.every((s) => s >= 0 && s <= 1)).toBe(true);
    const top = (await strip.getAttribute('data-top'))!.split(',').map(Number);
    expect(top[0]).toBe(scores.indexOf(Math.max(...scores)));

    // A click on the strip goes to the slice under the pointer (here: the 4th of 17 bars).
    const box = (await page.getByTestId('score-strip-chart').boundingBox())!;
    await page.mouse.click(box.x + (box.width * 3.5) / 17, box.y + box.height / 2);
    await viewer.expectSlice(4, 17);
    // T: the top-scoring slice; again: the next best.
    await viewer.press('t');
    await viewer.expectSlice(top[0] + 1, 17);
    await viewer.press('t');
    await viewer.expectSlice(top[1] + 1, 17);
    await viewer.press('Shift+T');
    await viewer.expectSlice(top[0] + 1, 17);
    // The top slices are buttons too.
    await page.getByTestId('predict-top-slice').nth(2).click();
    await viewer.expectSlice(top[2] + 1, 17);
    await page.screenshot({ path: join(screenshotDir, 'predict-classifier-strip.png') });
    await strip.screenshot({ path: join(screenshotDir, 'predict-score-strip.png') });
  });

  test('a U-Net draws its mask over the slice, hidden with its toggle, kept when the series is opened again', async () => {
    await page.getByTestId('predict-run').selectOption(String(seg.id));
    await expect(page.getByTestId('predict-threshold')).toBeVisible();
    await page.getByTestId('predict-button').click();
    const panel = page.getByTestId('predict-panel');
    await expect(panel).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
    // A model this short-trained may call nothing at 0.5: lower the threshold under its most confident pixel.
    const maxProb = Math.max(...(await page.getByTestId('score-bar').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-score'))))));
    const summary = page.getByTestId('predict-summary');
    if (/mask on 0\b/.test((await summary.textContent()) ?? '')) {
      await page.getByTestId('predict-threshold').fill((Math.floor(maxProb * 0.98 * 1000) / 1000).toString());
      await page.getByTestId('predict-button').click();
      await expect(summary).not.toContainText('mask on 0', { timeout: 120_000 });
    }
    await expect(panel).toHaveAttribute('data-status', 'done');
    const top = Number((await page.getByTestId('score-strip').getAttribute('data-top'))!.split(',')[0]);
    await viewer.press('t');
    await viewer.expectSlice(top + 1, 17);
    const on = await viewer.shotWithLabels(join(screenshotDir, 'predict-unet-mask.png'));
    await page.getByTestId('predict-mask-toggle').uncheck();
    const off = await viewer.shotWithLabels();
    let changed = 0;
    for (let i = 0; i < on.data.length; i += 4) if (Math.abs(on.data[i] - off.data[i]) + Math.abs(on.data[i + 1] - off.data[i + 1]) + Math.abs(on.data[i + 2] - off.data[i + 2]) > 30) changed++;
    expect(changed, 'the predicted mask changed no pixel').toBeGreaterThan(10);
    await page.getByTestId('predict-mask-toggle').check();
    await page.screenshot({ path: join(screenshotDir, 'predict-unet-page.png') });
    // Export as DICOM SEG: written into the data folder's exports and downloaded by the browser.
    const download = page.waitForEvent('download');
    await page.getByTestId('predict-export-seg').click();
    const d = await download;
    expect(d.suggestedFilename()).toMatch(new RegExp(`^prediction-run${seg.id}-series\\d+\\.dcm$`));
    const saved = join(screenshotDir, '..', d.suggestedFilename());
    await d.saveAs(saved);
    expect(readFileSync(saved).subarray(128, 132).toString('latin1')).toBe('DICM');

    // The prediction is kept with the run: back in the viewer, it is there without predicting again.
    await new AppShell(page).gotoLibrary();
    await library.open(library.rowByPatient('LIDC-IDRI-0001'));
    await viewer.waitForSlice();
    await page.getByTestId('predict-run').selectOption(String(seg.id));
    await expect(page.getByTestId('score-strip')).toHaveAttribute('data-slices', '17');
  });
});
