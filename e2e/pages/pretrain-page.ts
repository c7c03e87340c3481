/** Page object: the pretrain page (new-run form, run list, selected run with curves and samples). */
import { expect, type Locator, type Page } from '@playwright/test';

export interface RunFormValues {
  task?: 'masked' | 'next-slice' | 'denoise' | 'rotation' | 'flip';
  maskPercent?: 5 | 10 | 20 | 33;
  preset?: 'tiny' | 'small' | 'standard' | 'paper';
  size?: number;
  steps?: number;
  batch?: number;
  lr?: number;
  name?: string;
  evalEvery?: number;
  checkpointEvery?: number;
  evalBatches?: number;
  seed?: number;
}

export class PretrainPage {
  readonly root: Locator;
  readonly form: Locator;
  readonly rows: Locator;
  readonly detail: Locator;
  readonly status: Locator;
  readonly progress: Locator;
  readonly sample: Locator;

  constructor(readonly page: Page) {
    this.root = page.getByTestId('pretrain-page');
    this.form = page.getByTestId('run-form');
    this.rows = page.getByTestId('run-row');
    this.detail = page.getByTestId('run-detail');
    this.status = page.getByTestId('run-status');
    this.progress = page.getByTestId('run-progress');
    this.sample = page.getByTestId('sample-panel');
  }

  async goto(): Promise<void> {
    await this.page.getByTestId('nav-pretrain').click();
    await expect(this.root).toBeVisible();
  }

  async fill(v: RunFormValues): Promise<void> {
    const t = (id: string) => this.form.getByTestId(id);
    if (v.task) await t(`task-${v.task}`).check();
    if (v.maskPercent) await t('mask-percent').selectOption(String(v.maskPercent));
    if (v.preset) await t('preset').selectOption(v.preset);
    if (v.size !== undefined) await t('size').fill(String(v.size));
    if (v.steps !== undefined) {
      await t('by-steps').check();
      await t('steps').fill(String(v.steps));
    }
    if (v.batch !== undefined) await t('batch').fill(String(v.batch));
    if (v.lr !== undefined) await t('lr').fill(String(v.lr));
    if (v.name !== undefined) await t('run-name').fill(v.name);
    if (v.evalEvery !== undefined || v.checkpointEvery !== undefined || v.evalBatches !== undefined || v.seed !== undefined) {
      const adv = t('advanced');
      if ((await adv.getAttribute('open')) === null) await adv.locator('summary').click();
      if (v.evalEvery !== undefined) await t('eval-every').fill(String(v.evalEvery));
      if (v.checkpointEvery !== undefined) await t('checkpoint-every').fill(String(v.checkpointEvery));
      if (v.evalBatches !== undefined) await t('eval-batches').fill(String(v.evalBatches));
      if (v.seed !== undefined) await t('seed').fill(String(v.seed));
    }
  }

  /** Presses Start and waits until the new run is selected; returns its id. */
  async start(): Promise<number> {
    const before = await this.selectedRun();
    await this.form.getByTestId('start-run').click();
    await expect.poll(() => this.selectedRun(), { message: 'the new run was not selected' }).not.toBe(before);
    return (await this.selectedRun())!;
  }

  /** Id of the run shown in detail, or null (read at once, no waiting). */
  async selectedRun(): Promise<number | null> {
    if ((await this.detail.count()) === 0) return null;
    const v = await this.detail.getAttribute('data-run');
    return v ? Number(v) : null;
  }

  row(id: number): Locator {
    return this.page.locator(`[data-testid="run-row"][data-run="${id}"]`);
  }

  async select(id: number): Promise<void> {
    await this.row(id).getByTestId('select-run').click();
    await expect(this.detail).toHaveAttribute('data-run', String(id));
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

  chart(name: string): Locator {
    return this.detail.getByTestId(`chart-${name}`);
  }

  /** The selected run's "Patient split" panel (its counts carry data-patients). */
  get split(): Locator {
    return this.detail.getByTestId('split-panel');
  }

  splitCount(split: 'train' | 'val' | 'test'): Locator {
    return this.split.getByTestId(`split-count-${split}`);
  }

  /** The patients listed under one split (the list is folded, the entries are there). */
  splitPatients(split: 'train' | 'val' | 'test'): Locator {
    return this.split.getByTestId(`split-list-${split}`).getByTestId('split-patient');
  }

  /** The confirmation dialog that is open (the next curriculum stage asks before it starts). */
  get dialog(): Locator {
    return this.page.locator('dialog[open]');
  }

  /** Points drawn by a chart (every line together). */
  async chartPoints(name: string): Promise<number> {
    return Number((await this.chart(name).getAttribute('data-points')) ?? 0);
  }

  async sampleStep(): Promise<number | null> {
    const s = await this.sample.getAttribute('data-step');
    return s ? Number(s) : null;
  }
}
