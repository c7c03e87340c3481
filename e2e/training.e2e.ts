/**
 * Pretraining, evaluation and sharing through the real app on a real `ctssl serve` (one data
 * folder for the whole story, tests run in order): index the LIDC fixtures, start a tiny masked
 * run from the form and watch its curves and samples until it finishes; pause, resume, stop and
 * resume from a checkpoint; compare runs; chain the next curriculum stage; evaluate (Table II);
 * export a package (and see the privacy refusal) and import it back by drag-and-drop.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Locator, Page } from '@playwright/test';
import { test, expect, fixtures, screenshotDir, startServe, stopServe, type Served } from './fixtures';
import { AppShell } from './pages/app-shell';
import { LibraryPage } from './pages/library-page';
import { PretrainPage } from './pages/pretrain-page';

const LIDC = join(fixtures, 'lidc-0001');
const LIDC_SMALL = join(fixtures, 'lidc-small');

/** A DataTransfer holding one file, made in the page (for drop events). */
type DataTransferCtor = new () => { items: { add(f: unknown): void } };
type FileCtor = new (parts: unknown[], name: string, opts?: { type?: string }) => unknown;

/** Mean and variance of a canvas' grey levels (read in the page). */
async function canvasStats(c: Locator): Promise<{ mean: number; variance: number; width: number }> {
  return c.evaluate((el) => {
    // The e2e tsconfig has no DOM types: describe the little used here.
    const cv = el as unknown as { width: number; height: number; getContext(k: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
    const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
    let s = 0;
    let s2 = 0;
    const n = d.length / 4;
    for (let i = 0; i < d.length; i += 4) {
      const g = (d[i] + d[i + 1] + d[i + 2]) / 3;
      s += g;
      s2 += g * g;
    }
    const mean = s / n;
    return { mean, variance: s2 / n - mean * mean, width: cv.width };
  });
}

test.describe('pretraining, evaluation and sharing on the LIDC fixtures', () => {
  test.describe.configure({ mode: 'serial' });
  let served: Served;
  let dataDir: string;
  let page: Page;
  let pretrain: PretrainPage;
  let shell: AppShell;
  const errors: string[] = [];
  let firstRun = 0;
  let stageRun = 0;

  test.beforeAll(async ({ browser }) => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-training-'));
    served = await startServe(dataDir);
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(served.openUrl);
    const library = new LibraryPage(page);
    await library.addFolder(LIDC);
    await library.addFolder(LIDC_SMALL);
    await library.expectCounts(2, 2);
    pretrain = new PretrainPage(page);
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

  test('the form starts from the paper cohort and shows the doctor’s advice', async () => {
    await pretrain.goto();
    await expect(page.getByTestId('runs-empty')).toBeVisible();
    await expect(page.getByTestId('run-filter-axial')).toBeChecked();
    await expect(page.getByTestId('run-filter-thickness')).toHaveValue('3');
    await expect(page.getByTestId('run-cohort-matching')).toHaveText('2');
    await expect(page.getByTestId('doctor-backend')).toContainText('Backend:', { timeout: 60_000 });
    await expect(pretrain.form.getByTestId('preset').locator('option[value="tiny"]')).toContainText('batch ≤');
    // The cohort filter counts change like the library's: a thickness of 2 mm keeps only lidc-small.
    await page.getByTestId('run-filter-thickness').fill('2');
    await expect(page.getByTestId('run-cohort-matching')).toHaveText('1');
    await page.getByTestId('run-paper-cohort').click();
    await expect(page.getByTestId('run-cohort-matching')).toHaveText('2');
    // An impossible batch is refused before it reaches the services.
    await pretrain.fill({ batch: 0 });
    await expect(pretrain.form.getByTestId('start-run')).toBeDisabled();
    await expect(page.getByTestId('run-form-problems')).toContainText('batchSize');
  });

  test('starts a tiny masked run and watches the curves and samples until it finishes', async () => {
    await pretrain.fill({ task: 'masked', maskPercent: 20, preset: 'tiny', size: 32, steps: 24, batch: 4, evalEvery: 4, checkpointEvery: 8, evalBatches: 1, name: '' });
    firstRun = await pretrain.start();
    await expect(pretrain.row(firstRun)).toBeVisible();
    // Live: the loss chart grows and a sample arrives while the run is going.
    await expect.poll(() => pretrain.chartPoints('loss'), { timeout: 90_000 }).toBeGreaterThan(2);
    await expect.poll(() => pretrain.sampleStep(), { timeout: 90_000 }).not.toBeNull();
    const p1 = await pretrain.chartPoints('loss');
    await expect(page.getByTestId('run-throughput')).toContainText('slices/s');
    await expect(page.getByTestId('run-memory')).toContainText('MB');
    await page.screenshot({ path: join(screenshotDir, 'pretrain-running.png') });
    await pretrain.expectStatus('done', 120_000);
    expect(await pretrain.step()).toEqual([24, 24]);
    // One point a step at the end, the last ones included. (Not "more than p1": on a fast machine the
    // 24 steps can all be done when p1 is read, and the chart cannot grow past them.)
    expect(await pretrain.chartPoints('loss')).toBe(24);
    expect(p1).toBeLessThanOrEqual(24);
    // Every loss term has a chart with train and validation lines.
    for (const name of ['loss', 'mse', 'maskedMse', 'vq', 'ssim']) await expect(pretrain.chart(name)).toBeVisible();
    await expect(pretrain.chart('mse')).toContainText('validation');
    await expect.poll(() => pretrain.sampleStep()).toBe(24);
    // The sample canvases hold pictures (input and target are CT slices, not blank).
    const input = await canvasStats(page.getByTestId('sample-input'));
    expect(input.width).toBe(32);
    expect(input.variance).toBeGreaterThan(50);
    const target = await canvasStats(page.getByTestId('sample-target'));
    expect(target.variance).toBeGreaterThan(50);
    await expect(page.getByTestId('run-backend')).toContainText('tfjs');
    await expect(pretrain.row(firstRun)).toHaveAttribute('data-status', 'done');
    await page.screenshot({ path: join(screenshotDir, 'pretrain-done.png') });
  });

  test('chains the next curriculum stage from a finished masked run after asking, on its data and patient split', async () => {
    await pretrain.select(firstRun);
    // The run's patient split: the two fixture patients, both in training (too few to hold one out), with their series.
    await expect(pretrain.splitCount('train')).toHaveAttribute('data-patients', '2');
    await expect(pretrain.splitCount('val')).toHaveAttribute('data-patients', '0');
    await expect(pretrain.splitCount('test')).toHaveAttribute('data-patients', '0');
    await expect(pretrain.splitPatients('train')).toHaveCount(2);
    await expect(pretrain.splitPatients('train').first()).toContainText('LIDC-IDRI-0001');
    await expect(page.getByTestId('next-stage')).toHaveText('Next curriculum stage: masked 33%');
    // Asked first, saying what the stage keeps; cancelling starts nothing.
    await page.getByTestId('next-stage').click();
    await expect(pretrain.dialog).toBeVisible();
    await expect(pretrain.dialog.getByTestId('next-stage-summary')).toContainText('keeps its data and patient split');
    await expect(pretrain.dialog.getByTestId('next-stage-summary')).toContainText('training 2, validation 0, held-out 0 patients');
    await page.screenshot({ path: join(screenshotDir, 'next-stage-confirm.png') });
    await pretrain.dialog.getByTestId('confirm-cancel').click();
    await expect(pretrain.dialog).toHaveCount(0);
    expect(await pretrain.selectedRun()).toBe(firstRun);
    await page.getByTestId('next-stage').click();
    await pretrain.dialog.getByTestId('confirm-ok').click();
    await expect.poll(() => pretrain.selectedRun()).toBeGreaterThan(firstRun);
    stageRun = (await pretrain.selectedRun())!;
    await expect(page.getByTestId('run-title')).toContainText('masked 33%');
    await expect(pretrain.detail).toContainText(/from \d+.*-masked20-/);
    // Its split is its parent's, and says so.
    await expect(pretrain.splitCount('train')).toHaveAttribute('data-patients', '2');
    await expect(pretrain.split.getByTestId('split-lineage').first()).toContainText('The data and patient split of the run it continues');
    // Same cohort and settings as the run it starts from (24 steps): it finishes.
    await pretrain.expectStatus('done', 120_000);
    expect(await pretrain.step()).toEqual([24, 24]);
    // The finished run is offered as an initialisation in the form.
    await expect(pretrain.form.getByTestId('init').locator('option')).toContainText([`#${firstRun}`]);
    // Continuing from it brings its window (the paper's 50/350) back over whatever the form had.
    const t = (id: string) => pretrain.form.getByTestId(id);
    const adv = t('advanced');
    if ((await adv.getAttribute('open')) === null) await adv.locator('summary').click();
    await t('window-level').fill('-600');
    await t('window-width').fill('1500');
    await t('init').selectOption({ label: (await t('init').locator('option', { hasText: `#${firstRun} ` }).textContent())!.trim() });
    await expect(t('window-level')).toHaveValue('50');
    await expect(t('window-width')).toHaveValue('350');
    await t('init').selectOption('');
    await expect(t('window-level')).toHaveValue('50');
  });

  test('compares the curves of several runs on one chart', async () => {
    await pretrain.row(firstRun).getByTestId('compare-run').check();
    await pretrain.row(stageRun).getByTestId('compare-run').check();
    const chart = page.getByTestId('compare-chart');
    await expect(chart).toBeVisible();
    await expect(chart).toContainText(`#${firstRun}`);
    await expect(chart).toContainText(`#${stageRun}`);
    await expect.poll(async () => Number(await chart.getAttribute('data-points'))).toBeGreaterThan(24);
    await page.getByTestId('compare-metric').selectOption('mse');
    await expect(chart).toHaveAttribute('data-title', 'MSE (train)');
    await page.screenshot({ path: join(screenshotDir, 'pretrain-compare.png') });
    await pretrain.row(stageRun).getByTestId('compare-run').uncheck();
    await pretrain.row(firstRun).getByTestId('compare-run').uncheck();
    await expect(chart).toBeHidden();
  });

  test('evaluates a run and shows Table II with samples', async () => {
    await page.getByTestId('nav-evaluate').click();
    await expect(page.getByTestId('evaluate-page')).toBeVisible();
    const candidate = page.locator(`[data-testid="eval-candidate"][data-run="${firstRun}"]`);
    await candidate.getByTestId('eval-select').check();
    await page.getByTestId('eval-max-slices').fill('12');
    await page.getByTestId('evaluate').click();
    await expect(page.getByTestId('eval-progress')).toBeVisible();
    await expect(page.getByTestId('eval-progress')).toContainText(`Evaluating run #${firstRun}`);
    const row = page.locator(`[data-testid="table2-row"][data-run="${firstRun}"]`);
    await expect(row).toBeVisible({ timeout: 120_000 });
    await expect(page.getByTestId('eval-progress')).toBeHidden();
    await expect(row).toContainText('masked 20% (area)');
    await expect(row.locator('[data-col="mse"]')).toHaveText(/^\d\.\d{4} ± \d\.\d{4}$/);
    await expect(row.locator('[data-col="maskedMse"]')).toHaveText(/^\d\.\d{4} ± \d\.\d{4}$/);
    await expect(row.locator('[data-col="ssim"]')).toHaveText(/^-?\d\.\d{4} ± \d\.\d{4}$/);
    await expect(row.locator('[data-col="ce"]')).toHaveText('');
    // The fixtures hold a handful of patients: the row says how many, and warns.
    await expect(row.getByTestId('table2-data')).toContainText(/^\d patients?, /);
    await expect(page.getByTestId('table2-warning').filter({ hasText: `#${firstRun}:` }).filter({ hasText: /fewer than 10/ })).toHaveCount(1);
    await expect(page.getByTestId('table2').locator('thead')).toContainText('taskdefinitionsMSEmasked MSESSIMCEAUROC');
    // The same run in the paper's definitions: masked MSE summed over a batch of 16 (16 x ours).
    const paperDef = page.locator(`[data-testid="table2-paper-def-row"][data-run="${firstRun}"]`);
    const ours = Number((await row.locator('[data-col="maskedMse"]').textContent())!.split(' ± ')[0]);
    const papers = Number((await paperDef.locator('[data-col="maskedMse"]').textContent())!.split(' ± ')[0]);
    expect(Math.abs(papers - 16 * ours)).toBeLessThanOrEqual(16 * 0.00005 + 0.00005);
    await expect(page.getByTestId('table2-legend')).toContainText('summed over a batch of 16');
    await page.getByTestId('show-paper').check();
    await expect(page.getByTestId('paper-row')).toHaveCount(8);
    // The paper's published row for the run's task, beside the run's.
    await expect(page.locator(`[data-testid="table2-paper-match"][data-run="${firstRun}"]`)).toContainText('0.0988 ± 0.0494');
    // Sample images of the run.
    await expect.poll(() => page.getByTestId('sample-panel').getAttribute('data-step')).toBe('24');
    const input = await canvasStats(page.getByTestId('sample-input'));
    expect(input.variance).toBeGreaterThan(50);
    await page.screenshot({ path: join(screenshotDir, 'evaluate-table2.png') });
  });

  test('exports a finished run (and refuses when an identifier would leak)', async () => {
    await page.getByTestId('nav-share').click();
    await expect(page.getByTestId('share-page')).toBeVisible();
    await page.getByTestId('export-run').selectOption(String(firstRun));
    await expect(page.getByTestId('export-button')).toBeDisabled();
    await page.getByTestId('export-licence').fill('CC-BY-4.0');
    // A patient ID in the author field would end up in the model card: refused, nothing written.
    await page.getByTestId('export-author').fill('LIDC-IDRI-0001');
    await page.getByTestId('export-button').click();
    const refusal = page.getByTestId('export-privacy-refusal');
    await expect(refusal).toBeVisible({ timeout: 60_000 });
    await expect(refusal).toContainText('patient identifiers');
    await expect(refusal).toContainText('model-card');
    await page.screenshot({ path: join(screenshotDir, 'share-privacy-refusal.png') });

    await page.getByTestId('export-author').fill('Test Lab');
    await page.getByTestId('export-button').click();
    await expect(page.getByTestId('export-result')).toBeVisible({ timeout: 60_000 });
    await expect(refusal).toBeHidden();
    const file = (await page.getByTestId('export-file').textContent())!.trim();
    expect(file.startsWith(join(dataDir, 'exports'))).toBe(true);
    expect(existsSync(file)).toBe(true);
    await expect(page.getByTestId('export-sha')).toHaveText(/^[0-9a-f]{64}$/);
    await expect(page.getByTestId('card-licence')).toHaveText('CC-BY-4.0');
    await expect(page.getByTestId('card-data')).toContainText('2 patients');
    await expect(page.getByTestId('model-card')).toContainText('Test Lab');
    await page.screenshot({ path: join(screenshotDir, 'share-exported.png') });
  });

  test('imports the package back by dropping it on the page (bytes over the socket)', async () => {
    const file = (await page.getByTestId('export-file').textContent())!.trim();
    const bytes = [...readFileSync(file)];
    await expect(page.getByTestId('imported-empty')).toBeVisible();
    const transfer = await page.evaluateHandle(
      ({ bytes, name }) => {
        const g = globalThis as unknown as { DataTransfer: DataTransferCtor; File: FileCtor };
        const dt = new g.DataTransfer();
        dt.items.add(new g.File([new Uint8Array(bytes)], name, { type: 'application/zip' }));
        return dt;
      },
      { bytes, name: 'colleague.ctssl.zip' },
    );
    await page.getByTestId('package-drop').dispatchEvent('dragover', { dataTransfer: transfer });
    await page.getByTestId('package-drop').dispatchEvent('drop', { dataTransfer: transfer });
    await expect(page.getByTestId('import-result')).toBeVisible({ timeout: 60_000 });
    await expect(page.getByTestId('import-result')).toContainText('masked');
    await expect(page.getByTestId('import-result')).toContainText('CC-BY-4.0');
    await expect(page.getByTestId('imported-row')).toHaveCount(1);
    await expect(page.getByTestId('imported-row')).toContainText('tiny');

    // A corrupt package is rejected with a message; the imported encoder stays.
    const bad = await page.evaluateHandle(() => {
      const g = globalThis as unknown as { DataTransfer: DataTransferCtor; File: FileCtor };
      const dt = new g.DataTransfer();
      dt.items.add(new g.File([new Uint8Array([80, 75, 3, 4, 1, 2, 3])], 'broken.ctssl.zip'));
      return dt;
    });
    await page.getByTestId('package-drop').dispatchEvent('drop', { dataTransfer: bad });
    await expect(page.getByTestId('import-error')).toBeVisible({ timeout: 30_000 });
    await expect(page.getByTestId('imported-row')).toHaveCount(1);
    await page.screenshot({ path: join(screenshotDir, 'share-imported.png') });

    // The imported encoder is offered as an initialisation on the pretrain page.
    await pretrain.goto();
    await expect(pretrain.form.getByTestId('init').locator('option', { hasText: '(imported)' })).toHaveCount(1);
    expect(await shell.errorMessages()).toEqual([]);
  });
});

test.describe('run controls on the LIDC fixtures', () => {
  test.describe.configure({ mode: 'serial' });
  let served: Served;
  let dataDir: string;
  let page: Page;
  let pretrain: PretrainPage;
  let longRun = 0;
  const errors: string[] = [];

  test.beforeAll(async ({ browser }) => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-controls-'));
    served = await startServe(dataDir);
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(served.openUrl);
    const library = new LibraryPage(page);
    await library.addFolder(LIDC);
    await library.addFolder(LIDC_SMALL);
    pretrain = new PretrainPage(page);
    await pretrain.goto();
    await pretrain.fill({ task: 'masked', preset: 'tiny', size: 32, batch: 4, evalBatches: 1 });
  });
  test.afterAll(async () => {
    await page.close();
    await stopServe(served);
    rmSync(dataDir, { recursive: true, force: true });
  });
  test.afterEach(() => {
    expect(errors).toEqual([]);
  });

  test('pauses, resumes, stops, and resumes a stopped run from its checkpoint', async () => {
    await pretrain.fill({ steps: 100_000, evalEvery: 50, checkpointEvery: 5, name: 'long run' }); // cannot end before Stop on a slow machine
    longRun = await pretrain.start();
    await expect.poll(async () => (await pretrain.step())[0], { timeout: 90_000 }).toBeGreaterThan(6);
    await page.getByTestId('pause-run').click();
    await pretrain.expectStatus('paused');
    const paused = (await pretrain.step())[0];
    await page.waitForTimeout(1500);
    expect((await pretrain.step())[0]).toBe(paused);
    await expect(page.getByTestId('run-eta')).toHaveText('paused');
    await page.getByTestId('resume-run').click();
    await pretrain.expectStatus('running');
    await expect.poll(async () => (await pretrain.step())[0], { timeout: 60_000 }).toBeGreaterThan(paused + 2);
    await page.getByTestId('stop-run').click();
    await pretrain.expectStatus('stopped', 60_000);
    const stoppedAt = (await pretrain.step())[0];
    expect(stoppedAt).toBeLessThan(100_000);
    await expect(pretrain.row(longRun)).toHaveAttribute('data-status', 'stopped');
    // A stopped (or crashed) run continues from its latest checkpoint.
    await page.getByTestId('continue-run').click();
    await pretrain.expectStatus('running');
    await expect(page.getByTestId('run-resumed')).toContainText('from step');
    await expect.poll(async () => (await pretrain.step())[0], { timeout: 60_000 }).toBeGreaterThan(stoppedAt);
    await page.getByTestId('stop-run').click();
    await pretrain.expectStatus('stopped', 60_000);
  });

  test('deletes a run with Undo, and empties the trash after asking', async () => {
    await pretrain.select(longRun);
    const runsDir = join(dataDir, 'runs');
    const folders = readdirSync(runsDir).sort();
    await page.getByTestId('delete-run').click();
    await expect(pretrain.row(longRun)).toHaveCount(0);
    // its folder moved to the trash, nothing deleted
    expect(readdirSync(runsDir).length).toBe(folders.length - 1);
    expect(readdirSync(join(dataDir, 'trash', 'runs'))).toHaveLength(1);
    const notice = page.getByTestId('toast-notice').filter({ hasText: 'Run moved to the trash' });
    await expect(notice).toContainText(`#${longRun} long run`);
    await expect(page.getByTestId('run-trash-count')).toHaveText('1 run in the trash');
    await page.screenshot({ path: join(screenshotDir, 'run-deleted-undo.png') });
    await notice.getByTestId('toast-action').click();
    await expect(pretrain.row(longRun)).toHaveAttribute('data-status', 'stopped');
    await expect(page.getByTestId('run-trash')).toHaveCount(0);
    expect(readdirSync(runsDir).sort()).toEqual(folders);
    // Deleted again, then emptied for good (after a confirmation; Cancel first keeps it).
    await pretrain.select(longRun);
    await page.getByTestId('delete-run').click();
    await expect(pretrain.row(longRun)).toHaveCount(0);
    await page.getByTestId('run-empty-trash').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await expect(page.getByTestId('run-trash-count')).toHaveText('1 run in the trash');
    await page.getByTestId('run-empty-trash').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete for good' }).click();
    await expect(page.getByTestId('run-trash')).toHaveCount(0);
    expect(readdirSync(join(dataDir, 'trash', 'runs'))).toEqual([]);
    expect(await new AppShell(page).errorMessages()).toEqual([]);
  });
});
