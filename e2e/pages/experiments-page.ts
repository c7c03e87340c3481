/** Page object: the experiments page (form, progress of the running grid, list, report with plots and tables). */
import { expect, type Locator, type Page } from '@playwright/test';

export interface ExperimentFormValues {
  name?: string;
  task?: 'classification' | 'segmentation';
  label?: string;
  preset?: 'tiny' | 'small' | 'standard' | 'paper';
  size?: number;
  /** Exactly these initialisations are ticked: 'random', 'cnn', or run ids. */
  inits?: ('random' | 'cnn' | number)[];
  fractions?: string;
  seeds?: string;
  steps?: number;
  batch?: number;
  lr?: number;
  evalEvery?: number;
}

export class ExperimentsPage {
  readonly root: Locator;
  readonly form: Locator;
  readonly progress: Locator;
  readonly rows: Locator;
  readonly report: Locator;
  readonly figures: Locator;

  constructor(readonly page: Page) {
    this.root = page.getByTestId('experiments-page');
    this.form = page.getByTestId('experiment-form');
    this.progress = page.getByTestId('ex-progress');
    this.rows = page.getByTestId('ex-row');
    this.report = page.getByTestId('ex-report');
    this.figures = page.getByTestId('ex-figure');
  }

  async goto(): Promise<void> {
    await this.page.getByTestId('nav-experiments').click();
    await expect(this.root).toBeVisible();
  }

  private initBox(init: 'random' | 'cnn' | number): Locator {
    return typeof init === 'number'
      ? this.form.locator(`[data-testid="ex-init"][data-run="${init}"]`)
      : this.form.locator(`[data-testid="ex-init"][data-value="${init}"]`);
  }

  async fill(v: ExperimentFormValues): Promise<void> {
    const t = (id: string) => this.form.getByTestId(id);
    if (v.name !== undefined) await t('ex-name').fill(v.name);
    if (v.task) await t(`ex-task-${v.task}`).check();
    if (v.label !== undefined) await t('ex-label').fill(v.label);
    if (v.inits) {
      const boxes = this.form.getByTestId('ex-init');
      for (let i = 0; i < (await boxes.count()); i++) await boxes.nth(i).uncheck();
      for (const init of v.inits) await this.initBox(init).check();
    }
    if (v.preset) await t('ex-preset').selectOption(v.preset);
    if (v.size !== undefined) await t('ex-size').fill(String(v.size));
    if (v.fractions !== undefined) await t('ex-fractions').fill(v.fractions);
    if (v.seeds !== undefined) await t('ex-seeds').fill(v.seeds);
    if (v.steps !== undefined) {
      await t('ex-by-steps').check();
      await t('ex-steps').fill(String(v.steps));
    }
    if (v.batch !== undefined) await t('ex-batch').fill(String(v.batch));
    if (v.lr !== undefined) await t('ex-lr').fill(String(v.lr));
    if (v.evalEvery !== undefined) await t('ex-eval-every').fill(String(v.evalEvery));
  }

  /** Cells the form says the grid will train. */
  async gridCells(): Promise<number> {
    return Number(await this.form.getByTestId('ex-grid-size').getAttribute('data-cells'));
  }

  /** Presses Start and waits until the new experiment is in the list; returns its id. */
  async start(): Promise<string> {
    const before = new Set(await this.rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-id'))));
    await this.form.getByTestId('ex-start').click();
    let id: string | null = null;
    await expect
      .poll(
        async () => {
          const ids = await this.rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
          id = ids.find((x) => x && !before.has(x)) ?? null;
          return id;
        },
        { message: 'the new experiment did not appear in the list' },
      )
      .not.toBeNull();
    return id!;
  }

  row(id: string): Locator {
    return this.page.locator(`[data-testid="ex-row"][data-id="${id}"]`);
  }

  /** [cell, total] while the grid runs ("cell k of n"). */
  async cell(): Promise<[number, number]> {
    const c = await this.progress.getAttribute('data-cell');
    const n = await this.progress.getAttribute('data-total');
    return [Number(c ?? 0), Number(n ?? 0)];
  }

  async expectReport(id: string, timeout = 150_000): Promise<void> {
    await expect(this.row(id)).toHaveAttribute('data-status', 'done', { timeout });
    await expect(this.report).toHaveAttribute('data-id', id);
    await expect(this.report).toHaveAttribute('data-has-report', 'true', { timeout: 30_000 });
  }

  /** Texts of the summary table: [label, cells...] per row. */
  async summaryTable(): Promise<string[][]> {
    const rows = this.page.getByTestId('ex-summary-row');
    const out: string[][] = [];
    for (let i = 0; i < (await rows.count()); i++) out.push((await rows.nth(i).locator('td').allTextContents()).map((s) => s.trim()));
    return out;
  }
}
