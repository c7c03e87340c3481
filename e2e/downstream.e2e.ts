/**
 * Downstream through the real app on a real `ctssl serve` (one data folder for the story, tests
 * in order, no mocks): a small labelled synthetic cohort made by `ctssl synth` in the test, added
 * in the Library and its RSNA-style train.csv imported in the Labels panel; a 2-step tiny masked
 * pretraining run at 32 px from the Pretrain page; fine-tuning from it on the Fine-tune page
 * (pause, resume and stop, then a run to the end with held-out AUROC, CI, sensitivity/specificity
 * and the ROC curve); a 6-run experiment grid (random + CNN + the pretrained run x fractions 0.5
 * and 1, seed 1, 3 steps) from the Experiments page, its progress, plots and tables; and the bias
 * probe (sex, 2 folds) with its chart and table.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, root, screenshotDir, startServe, stopServe, type Served } from './fixtures';
import { LibraryPage } from './pages/library-page';
import { PretrainPage } from './pages/pretrain-page';
import { FinetunePage } from './pages/finetune-page';
import { ExperimentsPage } from './pages/experiments-page';
import { ProbePage } from './pages/probe-page';
import { AppShell } from './pages/app-shell';

test.describe('fine-tuning, the experiment grid and the bias probe on a synthetic labelled cohort', () => {
  test.describe.configure({ mode: 'serial' });
  let served: Served;
  let work: string;
  let cohort: string;
  let page: Page;
  const errors: string[] = [];
  let pretrained = 0;

  test.beforeAll(async ({ browser }) => {
    work = mkdtempSync(join(tmpdir(), 'ctssl-e2e-downstream-'));
    cohort = join(work, 'cohort');
    // The cohort is made by the project's own generator: 8 patients, 60% with emboli, sex as the trait.
    execFileSync(
      process.execPath,
      [join(root, 'bin', 'ctssl.mjs'), 'synth', '--out', cohort, '--patients', '8', '--seed', '3', '--slices', '8', '--size', '64', '--pe-fraction', '0.6', '--trait', 'sex'],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CTSSL_DB: '', CTSSL_DATA_DIR: join(work, 'synth-data') } },
    );
    served = await startServe(join(work, 'data'));
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(served.openUrl);
  });
  test.afterAll(async () => {
    await page?.close();
    if (served) await stopServe(served);
    rmSync(work, { recursive: true, force: true });
  });
  test.afterEach(() => {
    expect(errors).toEqual([]);
  });

  test('adds the synthetic cohort and imports its slice labels in the Library', async () => {
    const library = new LibraryPage(page);
    await library.addFolder(cohort);
    await library.showAll();
    // 8 CT series; the 2 DICOM SEG objects (the nodule masks) are not image series: indexing
    // attaches them to the series they reference, as label sources.
    await library.expectCounts(8, 8);
    // The job's end event comes after it attached them: the list read on it shows both.
    await expect(page.locator('[data-testid="label-source"][data-kind="dicom-seg"]')).toHaveCount(2);
    await page.getByTestId('label-path').fill(join(cohort, 'train.csv'));
    await page.getByTestId('import-labels').click();
    await expect(page.getByTestId('label-report')).toHaveAttribute('data-kind', 'rsna-csv');
    await expect(page.locator('[data-testid="label-source"][data-kind="rsna-csv"]')).toHaveCount(1);
    await expect(page.getByTestId('label-source')).toHaveCount(3);
    // The fine-tune page's own cohort: CT series with labels.
    const ft = new FinetunePage(page);
    await ft.goto();
    await expect(page.getByTestId('ft-filter-labels')).toHaveValue('any');
    await expect.poll(() => ft.cohortMatching()).toBe(8);
    await page.getByTestId('ft-filter-labels').selectOption('pe');
    // Only studies with emboli have PE-positive images (3 of 8 with this seed).
    await expect.poll(() => ft.cohortMatching()).toBe(3);
    await page.getByTestId('ft-filter-labels').selectOption('any');
    await expect.poll(() => ft.cohortMatching()).toBe(8);
  });

  test('pretrains a 2-step tiny masked run at 32 px', async () => {
    const pretrain = new PretrainPage(page);
    await pretrain.goto();
    // On one patient only: the runs started from it keep that patient in training, and the 7 others are split.
    await page.getByTestId('run-filter-text').fill('SYN3-0002');
    await expect(page.getByTestId('run-cohort-matching')).toHaveText('1');
    await pretrain.fill({ task: 'masked', maskPercent: 20, preset: 'tiny', size: 32, steps: 2, batch: 4, evalEvery: 1, checkpointEvery: 2, evalBatches: 1, name: 'masked tiny 32' });
    pretrained = await pretrain.start();
    await pretrain.expectStatus('done', 90_000);
    expect(await pretrain.step()).toEqual([2, 2]);
  });

  test('fine-tunes a PE classifier from the pretrained run: pause, resume, stop, then held-out results', async () => {
    const ft = new FinetunePage(page);
    await ft.goto();
    // The pretrained run is offered; choosing it takes its preset and size.
    await ft.fill({ task: 'classification', init: pretrained });
    await expect(ft.form.getByTestId('ft-size')).toHaveValue('32');
    await expect(ft.form.getByTestId('ft-preset')).toHaveValue('tiny');
    await expect(ft.form.getByTestId('ft-model')).toHaveAttribute('data-model', 'encoder-classifier');
    await expect(ft.form.getByTestId('ft-freeze')).toBeEnabled();
    // A size the encoder was not trained at is refused before anything is sent.
    await ft.fill({ size: 48 });
    await expect(ft.form.getByTestId('ft-init-mismatch')).toContainText('tiny at 32 px');
    await expect(ft.form.getByTestId('ft-start')).toBeDisabled();
    await ft.fill({ size: 32 });
    await expect(ft.form.getByTestId('ft-init-mismatch')).toHaveCount(0);

    // A long run to drive the controls: long enough that it cannot end before Stop on a slow, loaded machine
    // (400 steps once did on CI: the Stop button went with the run's end and the click waited for it).
    await ft.fill({ steps: 100_000, batch: 4, evalEvery: 5, name: 'controls' });
    const long = await ft.start();
    // Thousands of steps before Pause, as a real run has: their live curves once left the page
    // seconds behind (charts redrawn on software-GPU canvases, a message a step), and Pause went
    // unanswered on CI.
    await expect.poll(async () => (await ft.step())[0], { timeout: 120_000 }).toBeGreaterThan(2000);
    await ft.detail.getByTestId('pause-run').click();
    await ft.expectStatus('paused');
    const [atPause] = await ft.step();
    await ft.detail.getByTestId('resume-run').click();
    await ft.expectStatus('running');
    await expect.poll(async () => (await ft.step())[0], { timeout: 30_000 }).toBeGreaterThan(atPause);
    await ft.detail.getByTestId('stop-run').click();
    await ft.expectStatus('stopped', 30_000);
    await expect(ft.row(long)).toHaveAttribute('data-status', 'stopped');
    await expect(ft.results).toHaveCount(0);

    // A short run to the end: live curves, then the held-out results.
    await ft.fill({ steps: 8, evalEvery: 2, name: 'pe from masked', fraction: 1 });
    const short = await ft.start();
    expect(short).toBeGreaterThan(long);
    await expect.poll(() => ft.chartPoints('loss'), { timeout: 60_000 }).toBeGreaterThan(0);
    await ft.expectStatus('done', 90_000);
    expect(await ft.step()).toEqual([8, 8]);
    // Its patient split: the pretrained run's patient kept in training, the others stratified (positives in every split).
    await expect(ft.splitCount('train')).toHaveAttribute('data-patients', '4');
    await expect(ft.splitCount('val')).toHaveAttribute('data-patients', '2');
    await expect(ft.splitCount('test')).toHaveAttribute('data-patients', '2');
    for (const s of ['train', 'val', 'test'] as const) await expect(ft.splitCount(s)).not.toHaveAttribute('data-positive-patients', '0');
    await expect(ft.split).toContainText('1 patient kept in training because a parent run trained on them');
    await expect(ft.split.getByTestId('split-list-train').getByTestId('split-patient').filter({ hasText: 'SYN3-0002' })).toContainText('parent');
    await ft.split.getByTestId('split-list-val').locator('summary').click();
    await expect(ft.split.getByTestId('split-list-val')).toHaveAttribute('open', '');
    await expect(ft.split.getByTestId('split-list-val').getByTestId('split-patient').first()).toBeVisible();
    await ft.split.scrollIntoViewIfNeeded();
    await ft.split.screenshot({ path: join(screenshotDir, 'finetune-split.png') });
    await expect(ft.chart('auroc')).toContainText('validation');
    await expect(ft.results).toHaveAttribute('data-kind', 'classification');
    await expect(page.getByTestId('ft-auroc')).toHaveText(/^[01]\.\d{3}$/);
    await expect(page.getByTestId('ft-auroc-ci')).toHaveText(/^95% CI \[[01]\.\d{3}, [01]\.\d{3}\]$/);
    // The interval is patient-level, and a test split of a few patients says so.
    await expect(page.getByTestId('ft-ci-method')).toContainText(/patient-level bootstrap, 2000 resamples of the \d patients?/);
    await expect(page.getByTestId('ft-warning').first()).toContainText(/the test split has \d patients? \(fewer than 10\)/);
    await expect(page.getByTestId('ft-sensitivity')).toHaveText(/^[01]\.\d{3}$/);
    await expect(page.getByTestId('ft-specificity')).toHaveText(/^[01]\.\d{3}$/);
    await expect(page.getByTestId('ft-threshold')).toContainText('Youden, chosen on val');
    expect(Number(await page.getByTestId('ft-roc').getAttribute('data-points'))).toBeGreaterThan(2);
    await page.screenshot({ path: join(screenshotDir, 'finetune-running-done.png') });
    await ft.results.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(screenshotDir, 'finetune-results.png') });
    await ft.results.screenshot({ path: join(screenshotDir, 'finetune-results-panel.png') });
    // The results are recorded with the run: a reloaded page shows the same numbers.
    const auroc = (await page.getByTestId('ft-auroc').textContent())!;
    await page.reload();
    await expect(ft.results).toHaveAttribute('data-kind', 'classification');
    await expect(page.getByTestId('ft-auroc')).toHaveText(auroc);
  });

  test('fine-tunes a U-Net on the DICOM SEG nodule masks and shows Dice and IoU', async () => {
    await page.getByTestId('nav-library').click();
    for (const f of ['SYN3-0002_study-1_seg.dcm', 'SYN3-0008_study-1_seg.dcm']) {
      await page.getByTestId('label-path').fill(join(cohort, 'seg', f));
      await page.getByTestId('import-labels').click();
      // Importing a SEG the indexer attached already replaces that source (same file).
      await expect(page.getByTestId('label-report')).toHaveAttribute('data-kind', 'dicom-seg');
      await expect(page.getByTestId('label-source')).toHaveCount(3);
    }
    await expect(page.locator('[data-testid="label-source"][data-kind="dicom-seg"]')).toHaveCount(2);
    const ft = new FinetunePage(page);
    await ft.goto();
    await ft.fill({ task: 'segmentation' });
    // The cohort follows the task: series with nodule masks, here DICOM SEG segments only (two scans).
    await expect(page.getByTestId('ft-filter-labels')).toHaveValue('nodule');
    await expect.poll(() => ft.cohortMatching()).toBe(2);
    await expect(ft.form.getByTestId('ft-init').locator('option[value="cnn"]')).toHaveCount(0);
    await ft.fill({ init: pretrained, steps: 4, batch: 4, evalEvery: 2, name: 'nodules from masked' });
    await expect(ft.form.getByTestId('ft-model')).toHaveAttribute('data-model', 'unet');
    await ft.start();
    await ft.expectStatus('done', 90_000);
    await expect(ft.chart('dice')).toBeVisible();
    await expect(ft.results).toHaveAttribute('data-kind', 'segmentation');
    await expect(page.getByTestId('ft-dice')).toHaveText(/^[01]\.\d{3}$/);
    await expect(page.getByTestId('ft-iou')).toHaveText(/^[01]\.\d{3}$/);
    // Two labelled scans cannot be split by patient into train and test: the page says so.
    await expect(page.getByTestId('ft-not-held-out')).toContainText('train split');
    await ft.results.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(screenshotDir, 'finetune-segmentation.png') });
    // Back to classification for what follows.
    await ft.fill({ task: 'classification' });
    await expect(page.getByTestId('ft-filter-labels')).toHaveValue('any');
  });

  test('runs a 6-run experiment grid from the Experiments page and shows its plots and tables', async () => {
    const ex = new ExperimentsPage(page);
    await ex.goto();
    await expect(page.getByTestId('ex-list-empty')).toBeVisible();
    await ex.fill({ name: 'e2e grid', task: 'classification', label: 'pe', inits: ['random', 'cnn', pretrained], fractions: '0.5, 1', seeds: '1', steps: 3, batch: 4, evalEvery: 1 });
    // Ticking the pretrained run took its preset and size.
    await expect(ex.form.getByTestId('ex-size')).toHaveValue('32');
    await expect(ex.form.getByTestId('ex-fractions-parsed')).toHaveText('50%, 100%');
    expect(await ex.gridCells()).toBe(6);
    const id = await ex.start();
    await expect(ex.progress).toBeVisible();
    await expect(ex.form.getByTestId('ex-start')).toBeDisabled();
    // Progress: cell k of 6 and the current run's step.
    await expect.poll(async () => (await ex.cell())[1], { timeout: 30_000 }).toBe(6);
    await expect(page.getByTestId('ex-step')).toContainText(/step \d+ \/ 3/, { timeout: 60_000 });
    await expect.poll(async () => (await ex.cell())[0], { timeout: 90_000 }).toBeGreaterThanOrEqual(2);
    // A later cell under way: its initialisation and live curve.
    await expect(page.getByTestId('ex-current')).toContainText('of training data', { timeout: 60_000 });
    await expect.poll(async () => Number(await page.getByTestId('ex-live-chart').getAttribute('data-points')), { timeout: 60_000 }).toBeGreaterThan(0);
    await expect(page.getByTestId('ex-cell-done').first()).toHaveAttribute('data-status', 'done');
    await page.screenshot({ path: join(screenshotDir, 'experiment-running.png') });

    await ex.expectReport(id, 150_000);
    await expect(page.getByTestId('ex-report-name')).toHaveText('e2e grid');
    await expect(page.getByTestId('ex-report-status')).toHaveText('done');
    // Three plots made by our SVG generator, each decoded as an image.
    await expect(ex.figures).toHaveCount(3);
    for (let i = 0; i < 3; i++) {
      await expect(ex.figures.nth(i)).toHaveAttribute('data-ok', 'true');
      await expect(ex.figures.nth(i)).toHaveAttribute('data-loaded', 'true');
      expect(await ex.figures.nth(i).locator('img').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(100);
    }
    await expect(ex.figures.nth(0)).toHaveAttribute('data-title', 'AUROC against training-set fraction');
    await expect(ex.figures.nth(2)).toHaveAttribute('data-title', 'ROC curves');
    // Mean [95% CI] per initialisation x fraction: one seed, so estimates without intervals.
    await expect(page.getByTestId('ex-summary-table').locator('th')).toHaveText(['initialisation', '50%', '100%']);
    const table = await ex.summaryTable();
    expect(table.map((r) => r[0])).toEqual(['random init', 'supervised CNN (scratch)', 'masked tiny 32']);
    // ...each with the patient-level bootstrap interval of the mean under it.
    for (const r of table) for (const c of r.slice(1)) expect(c).toMatch(/^[01]\.\d{3}patients \[[01]\.\d{3}, [01]\.\d{3}\]$/);
    // Paired comparisons: the pretrained run against random and against the CNN, at each fraction (one seed: nothing pooled),
    // each with a patient-level and a Holm-adjusted p, the slice-level DeLong p beside them; the small test split is warned about.
    await expect(page.getByTestId('ex-comparison-row')).toHaveCount(4);
    await expect(page.getByTestId('ex-comparison-row').first()).toContainText('masked tiny 32');
    await expect(page.getByTestId('ex-comparisons-table').locator('thead')).toContainText('slice-level p');
    await expect(page.getByTestId('ex-statistics-method')).toContainText('Holm');
    await expect(page.getByTestId('ex-warning').first()).toContainText(/fewer than 10/);
    // One patient split for every run, shown once.
    await expect(page.getByTestId('ex-split')).toContainText('1 patient kept in training because a parent run trained on them');
    await page.screenshot({ path: join(screenshotDir, 'experiment-report.png') });
    await page.getByTestId('ex-comparisons-table').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(screenshotDir, 'experiment-tables.png') });
  });

  test('stops a running grid; the list keeps both experiments and their reports', async () => {
    const ex = new ExperimentsPage(page);
    await ex.goto();
    const first = await ex.rows.first().getAttribute('data-id');
    await ex.fill({ name: 'stopped grid', inits: ['random'], fractions: '1', seeds: '1, 2', steps: 50_000, evalEvery: 50 });
    expect(await ex.gridCells()).toBe(2);
    const id = await ex.start();
    await expect.poll(async () => Number(await page.getByTestId('ex-live-chart').getAttribute('data-points')), { timeout: 60_000 }).toBeGreaterThan(0);
    await page.getByTestId('ex-stop').click();
    await expect(ex.progress).toHaveAttribute('data-state', 'stopped', { timeout: 30_000 });
    await expect(ex.row(id)).toHaveAttribute('data-status', 'incomplete', { timeout: 15_000 });
    await expect(page.getByTestId('ex-cells-ended')).toHaveText('1 cell ended, 0 with results');
    await expect(ex.row(id).locator('td').nth(3)).toHaveText('0/2');
    await expect(ex.rows).toHaveCount(2);
    // The stopped grid's report covers the runs it finished (none): no numbers, no plots of results.
    await expect(ex.report).toHaveAttribute('data-id', id, { timeout: 15_000 });
    await expect(page.getByTestId('ex-report-status')).toHaveText('incomplete');
    await page.screenshot({ path: join(screenshotDir, 'experiment-stopped.png') });
    // The first experiment's report is still there.
    await ex.row(first!).getByTestId('ex-select').click();
    await expect(ex.report).toHaveAttribute('data-id', first!);
    await expect(ex.figures).toHaveCount(3);
    await expect(ex.form.getByTestId('ex-start')).toBeEnabled();
    // A finished experiment has nothing to resume; the stopped one does, in its own folder.
    await expect(page.getByTestId('ex-resume')).toHaveCount(0);
    await ex.row(id).getByTestId('ex-select').click();
    await expect(ex.report).toHaveAttribute('data-id', id);
    await expect(page.getByTestId('ex-resume')).toHaveText('Resume (2 runs left)');
    await page.getByTestId('ex-resume').click();
    await expect(ex.row(id)).toHaveAttribute('data-status', 'running', { timeout: 15_000 });
    await expect(ex.progress).toHaveAttribute('data-state', 'running');
    await expect(ex.form.getByTestId('ex-start')).toBeDisabled();
    await expect(page.getByTestId('ex-resume')).toBeDisabled();
    // The cut-off run continues (its curve comes back), then Stop again leaves it incomplete.
    await expect(page.getByTestId('ex-step')).toContainText(/step [\d,]+ \/ 50,000/, { timeout: 60_000 });
    await expect(ex.rows).toHaveCount(2);
    await page.getByTestId('ex-stop').click();
    await expect(ex.progress).toHaveAttribute('data-state', 'stopped', { timeout: 30_000 });
    await expect(ex.row(id)).toHaveAttribute('data-status', 'incomplete', { timeout: 15_000 });

    // Delete it (to the trash, with its runs), Undo, delete again, then empty the trash after asking.
    await page.getByTestId('ex-delete').click();
    await expect(ex.row(id)).toHaveCount(0);
    await expect(ex.rows).toHaveCount(1);
    await expect(page.getByTestId('ex-trash-count')).toHaveText('1 experiment in the trash');
    const notice = page.getByTestId('toast-notice').filter({ hasText: 'Experiment moved to the trash' });
    await expect(notice).toContainText('stopped grid');
    await notice.getByTestId('toast-action').click();
    await expect(ex.row(id)).toHaveAttribute('data-status', 'incomplete');
    await expect(page.getByTestId('ex-trash')).toHaveCount(0);
    await ex.row(id).getByTestId('ex-select').click();
    await expect(ex.report).toHaveAttribute('data-id', id);
    await page.getByTestId('ex-delete').click();
    await expect(ex.rows).toHaveCount(1);
    await page.getByTestId('ex-empty-trash').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete for good' }).click();
    await expect(page.getByTestId('ex-trash')).toHaveCount(0);
    await expect(ex.row(first!)).toHaveCount(1);
    expect(await new AppShell(page).errorMessages()).toEqual([]);
  });

  test('runs the bias probe for sex with 2 folds and shows the chart and table', async () => {
    const probe = new ProbePage(page);
    await probe.goto();
    await expect(page.getByTestId('probe-empty')).toBeVisible();
    await probe.choose({ encoders: [pretrained], attributes: ['sex'], folds: 2 });
    await expect(page.getByTestId('probe-cohort-matching')).toHaveText('8');
    // The scan the encoder trained on (its one patient, from its run manifest) is left out, as the paper probes held-out exams.
    test.setTimeout(400_000);
    await probe.run();
    await expect(probe.result).toBeVisible({ timeout: 300_000 });
    await expect(probe.result).toHaveAttribute('data-scans', '7');
    await expect(page.getByTestId('probe-excluded')).toHaveAttribute('data-excluded', '1');
    await expect(page.getByTestId('probe-excluded')).toContainText("1 scan left out: in a chosen encoder’s training or validation split");
    await expect(probe.chart).toHaveAttribute('data-ok', 'true');
    await expect(probe.chart).toHaveAttribute('data-loaded', 'true');
    // The paper's baseline (a CNN from scratch on raw slices), the raw 16x16 logistic regression, then the encoder, for sex.
    await expect(probe.rows).toHaveCount(3);
    await expect(probe.rows.first()).toContainText('raw slice: CNN from scratch');
    await expect(probe.rows.nth(1)).toContainText('raw slice: logistic regression');
    await expect(probe.rows.nth(2)).toContainText('masked tiny 32');
    for (let i = 0; i < 3; i++) await expect(probe.rows.nth(i).locator('td').nth(2)).toHaveText(/^[01]\.\d{3}( \[[01]\.\d{3}, [01]\.\d{3}\])?$/);
    await page.screenshot({ path: join(screenshotDir, 'bias-probe.png') });
    // Listed among the earlier probes, and shown again after a reload.
    await expect(probe.historySelect.locator('option')).toHaveCount(1);
    const shown = await probe.historySelect.inputValue();
    await page.reload();
    await probe.goto();
    await expect(probe.result).toHaveAttribute('data-scans', '7');
    await expect(probe.historySelect).toHaveValue(shown);
    await expect(probe.rows).toHaveCount(3);
  });

  test('cancels a running bias probe: no error, the earlier result stays, nothing new is listed', async () => {
    const probe = new ProbePage(page);
    await probe.goto();
    await probe.choose({ encoders: [pretrained], attributes: ['sex', 'ageGroup'], folds: 2, seed: 7 });
    await probe.run();
    await expect(page.getByTestId('probe-progress')).toBeVisible();
    await page.getByTestId('probe-cancel').click();
    await expect(page.getByTestId('probe-progress')).toBeHidden({ timeout: 30_000 });
    await expect(page.getByTestId('probe-error')).toHaveCount(0);
    await expect(probe.result).toHaveAttribute('data-scans', '7');
    await expect(probe.rows).toHaveCount(3);
    await expect(probe.historySelect.locator('option')).toHaveCount(1);
    await expect(probe.form.getByTestId('probe-run')).toBeEnabled();
  });

  test('deletes a bias probe with Undo, and empties the trash after asking', async () => {
    const probe = new ProbePage(page);
    await probe.goto();
    const shown = await probe.historySelect.inputValue();
    await page.getByTestId('probe-delete').click();
    await expect(probe.result).toHaveCount(0);
    await expect(probe.historySelect).toHaveCount(0);
    await expect(page.getByTestId('probe-trash-count')).toHaveText('1 bias probe in the trash');
    await page.getByTestId('toast-notice').filter({ hasText: 'Bias probe moved to the trash' }).getByTestId('toast-action').click();
    await expect(probe.historySelect).toHaveValue(shown);
    await expect(probe.result).toHaveAttribute('data-scans', '7');
    await expect(page.getByTestId('probe-trash')).toHaveCount(0);
    await page.getByTestId('probe-delete').click();
    await page.getByTestId('probe-empty-trash').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete for good' }).click();
    await expect(page.getByTestId('probe-history')).toHaveCount(0);
    await expect(page.getByTestId('probe-empty')).toBeVisible();
    expect(await new AppShell(page).errorMessages()).toEqual([]);
  });
});
