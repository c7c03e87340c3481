/** Page object: the bias probe page (encoders, cohort, attributes, folds; progress; chart and table). */
import { expect, type Locator, type Page } from '@playwright/test';

export class ProbePage {
  readonly root: Locator;
  readonly form: Locator;
  readonly result: Locator;
  readonly chart: Locator;
  readonly rows: Locator;
  readonly historySelect: Locator;

  constructor(readonly page: Page) {
    this.root = page.getByTestId('probe-page');
    this.form = page.getByTestId('probe-form');
    this.result = page.getByTestId('probe-result');
    this.chart = page.getByTestId('probe-chart');
    this.rows = page.getByTestId('probe-row');
    this.historySelect = page.getByTestId('probe-history-select');
  }

  async goto(): Promise<void> {
    await this.page.getByTestId('nav-probe').click();
    await expect(this.root).toBeVisible();
  }

  async choose(o: { encoders: number[]; attributes: ('sex' | 'ethnicGroup' | 'ageGroup')[]; folds?: number; seed?: number }): Promise<void> {
    const boxes = this.form.getByTestId('probe-encoder');
    for (let i = 0; i < (await boxes.count()); i++) {
      const run = Number(await boxes.nth(i).getAttribute('data-run'));
      await boxes.nth(i).setChecked(o.encoders.includes(run));
    }
    for (const a of ['sex', 'ethnicGroup', 'ageGroup'] as const) await this.form.getByTestId(`probe-attr-${a}`).setChecked(o.attributes.includes(a));
    if (o.folds !== undefined) await this.form.getByTestId('probe-folds').fill(String(o.folds));
    if (o.seed !== undefined) await this.form.getByTestId('probe-seed').fill(String(o.seed));
  }

  async run(): Promise<void> {
    await this.form.getByTestId('probe-run').click();
  }
}
