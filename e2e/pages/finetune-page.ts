/** Page object: the fine-tune page (new-run form with its labelled cohort, run list, selected run with curves and held-out results). */
import { expect, type Locator, type Page } from '@playwright/test';

export interface FinetuneFormValues {
  task?: 'classification' | 'segmentation';
  label?: string;
  /** 'random', 'cnn', or a run id (a pretrained run offered as initialisation). */
  init?: 'random' | 'cnn' | number;
  preset?: 'tiny' | 'small' | 'standard' | 'paper';
  size?: number;
  fraction?: number;
  freezeEpochs?: number;
  steps?: number;
  batch?: number;
  lr?: number;
  name?: string;
  evalEvery?: number;
  seed?: number;
}

export class FinetunePage {
  readonly root: Locator;
  readonly form: Locator;
  readonly detail: Locator;
  readonly status: Locator;
  readonly progress: Locator;
  readonly results: Locator;

  constructor(readonly page: Page) {
    this.root = page.getByTestId('finetune-page');
    this.form = page.getByTestId('finetune-form');
    this.detail = page.getByTestId('ft-detail');
    this.status = this.detail.getByTestId('run-status');
    this.progress = this.detail.getByTestId('run-progress');
    this.results = page.getByTestId('ft-results');
  }

  async goto(): Promise<void> {
    await this.page.getByTestId('nav-finetune').click();
    await expect(this.root).toBeVisible();
  }

  /** Series the form's cohort counts (waits for the count query to settle). */
  async cohortMatching(): Promise<number> {
    await expect(this.page.getByTestId('ft-cohort-summary')).toHaveAttribute('data-busy', 'false');
    return Number((await this.page.getByTestId('ft-cohort-matching').textContent())!.replace(/,/g, ''));
  }

  async fill(v: FinetuneFormValues): Promise<void> {
    const t = (id: string) => this.form.getByTestId(id);
    if (v.task) await t(`ft-task-${v.task}`).check();
    if (v.label !== undefined) await t('ft-label').fill(v.label);
    if (v.init !== undefined) {
      const select = t('ft-init');
      if (typeof v.init === 'number') {
        const label = (await select.locator('option', { hasText: new RegExp(`^#${v.init} `) }).textContent())!;
        await select.selectOption({ label });
      } else await select.selectOption(v.init);
    }
    if (v.preset) await t('ft-preset').selectOption(v.preset);
    if (v.size !== undefined) await t('ft-size').fill(String(v.size));
    if (v.fraction !== undefined) await t('ft-fraction').fill(String(v.fraction));
    if (v.freezeEpochs !== undefined) await t('ft-freeze').fill(String(v.freezeEpochs));
    if (v.steps !== undefined) {
      await t('ft-by-steps').check();
      await t('ft-steps').fill(String(v.steps));
    }
    if (v.batch !== undefined) await t('ft-batch').fill(String(v.batch));
    if (v.lr !== undefined) await t('ft-lr').fill(String(v.lr));
    if (v.name !== undefined) await t('ft-name').fill(v.name);
    if (v.evalEvery !== undefined || v.seed !== undefined) {
      const adv = t('ft-advanced');
      if ((await adv.getAttribute('open')) === null) await adv.locator('summary').click();
      if (v.evalEvery !== undefined) await t('ft-eval-every').fill(String(v.evalEvery));
      if (v.seed !== undefined) await t('ft-seed').fill(String(v.seed));
    }
  }

  /** Presses Start and waits until the new run is selected; returns its id. */
  async start(): Promise<number> {
    const before = await this.selectedRun();
    await this.form.getByTestId('ft-start').click();
    await expect.poll(() => this.selectedRun(), { message: 'the new fine-tuning run was not selected' }).not.toBe(before);
    return (await this.selectedRun())!;
  }

  async selectedRun(): Promise<number | null> {
    if ((await this.detail.count()) === 0) return null;
    const v = await this.detail.getAttribute('data-run');
    return v ? Number(v) : null;
  }

  row(id: number): Locator {
    return this.page.locator(`[data-testid="run-row"][data-run="${id}"]`);
  }

  async expectStatus(status: string, timeout = 30_000): Promise<void> {
    await expect(this.detail).toHaveAttribute('data-status', status, { timeout });
  }

  /** [step, total] from "step a / b". */
  async step(): Promise<[number, number]> {
    const m = /step ([\d,]+) \/ ([\d,]+)/.exec((await this.progress.textContent()) ?? '');
    if (!m) return [0, 0];
    return [Number(m[1].replace(/,/g, '')), Number(m[2].replace(/,/g, ''))];
  }

  /** The selected run's "Patient split" panel (its counts carry data-patients and data-positive-patients). */
  get split(): Locator {
    return this.detail.getByTestId('split-panel');
  }

  splitCount(split: 'train' | 'val' | 'test'): Locator {
    return this.split.getByTestId(`split-count-${split}`);
  }

  chart(name: string): Locator {
    return this.detail.getByTestId(`chart-${name}`);
  }

  async chartPoints(name: string): Promise<number> {
    if ((await this.chart(name).count()) === 0) return 0;
    return Number((await this.chart(name).getAttribute('data-points')) ?? 0);
  }
}
