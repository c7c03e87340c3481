/** Page object: the library page (folders, indexing progress, cohort filters, series table, skipped files). */
import { expect, type Locator, type Page } from '@playwright/test';

export class LibraryPage {
  readonly root: Locator;
  readonly pathField: Locator;
  readonly addButton: Locator;
  readonly pathProblem: Locator;
  readonly folders: Locator;
  readonly progress: Locator;
  readonly rows: Locator;
  readonly matching: Locator;
  readonly total: Locator;
  readonly skippedPanel: Locator;

  constructor(readonly page: Page) {
    this.root = page.getByTestId('library-page');
    this.pathField = page.getByTestId('folder-path');
    this.addButton = page.getByTestId('add-folder');
    this.pathProblem = page.getByTestId('folder-path-problem');
    this.folders = page.getByTestId('folder-row');
    this.progress = page.getByTestId('index-progress');
    this.rows = page.getByTestId('series-row');
    this.matching = page.getByTestId('cohort-matching');
    this.total = page.getByTestId('cohort-total');
    this.skippedPanel = page.getByTestId('skipped-panel');
  }

  async typeFolder(path: string): Promise<void> {
    await this.pathField.fill(path);
    await this.addButton.click();
  }

  /** Adds a folder by its absolute path and waits until indexing has finished. */
  async addFolder(path: string): Promise<void> {
    const before = await this.jobId();
    await this.typeFolder(path);
    await expect.poll(() => this.jobId(), { message: `indexing of ${path} did not start` }).not.toBe(before);
    await this.waitForIndexing();
    await expect(this.folders.filter({ has: this.page.locator(`[title="${path}"]`) })).toHaveCount(1);
  }

  /** Id of the indexing job the progress bar shows, or null. */
  async jobId(): Promise<string | null> {
    if ((await this.progress.count()) === 0) return null;
    return this.progress.getAttribute('data-job');
  }

  async waitForIndexing(): Promise<void> {
    await expect(this.progress).toHaveAttribute('data-phase', 'done', { timeout: 120_000 });
  }

  folder(path: string): Locator {
    return this.page.locator(`[data-testid="folder-row"][data-path="${path}"]`);
  }

  async removeFolder(path: string, confirm = true): Promise<void> {
    await this.folder(path).getByTestId('remove-folder').click();
    const dialog = this.page.getByTestId('confirm-dialog');
    await expect(dialog).toBeVisible();
    await expect(dialog).toContainText(path);
    await dialog.getByTestId(confirm ? 'confirm-ok' : 'confirm-cancel').click();
    await expect(dialog).toBeHidden();
  }

  /** Counts shown by the "what qualifies" line. */
  async counts(): Promise<{ matching: number; total: number }> {
    await expect(this.page.getByTestId('cohort-summary')).toHaveAttribute('data-busy', 'false');
    const n = async (l: Locator) => Number((await l.textContent())!.replace(/,/g, ''));
    return { matching: await n(this.matching), total: await n(this.total) };
  }

  async expectCounts(matching: number, total: number): Promise<void> {
    await expect(this.matching).toHaveText(String(matching));
    await expect(this.total).toHaveText(String(total));
    await expect(this.rows).toHaveCount(matching);
  }

  /** The table cell of a column for a row. */
  cell(row: Locator, column: string): Locator {
    return row.locator(`td[data-col="${column}"]`);
  }

  rowByPatient(patientId: string): Locator {
    return this.rows.filter({ has: this.page.locator(`td[data-col="patientId"]`, { hasText: patientId }) });
  }

  async columnTexts(column: string): Promise<string[]> {
    return this.page.locator(`[data-testid="series-row"] td[data-col="${column}"]`).allTextContents();
  }

  async sortBy(column: string): Promise<void> {
    await this.page.getByTestId(`col-${column}`).getByRole('button').click();
  }

  // Filters
  get ct(): Locator {
    return this.page.getByTestId('filter-ct');
  }
  get axial(): Locator {
    return this.page.getByTestId('filter-axial');
  }
  get thicknessOn(): Locator {
    return this.page.getByTestId('filter-thickness-on');
  }
  get thickness(): Locator {
    return this.page.getByTestId('filter-thickness');
  }
  get minSlicesOn(): Locator {
    return this.page.getByTestId('filter-min-slices-on');
  }
  get minSlices(): Locator {
    return this.page.getByTestId('filter-min-slices');
  }
  get contrast(): Locator {
    return this.page.getByTestId('filter-contrast');
  }
  get uniform(): Locator {
    return this.page.getByTestId('filter-uniform');
  }
  get text(): Locator {
    return this.page.getByTestId('filter-text');
  }

  async paperCohort(): Promise<void> {
    await this.page.getByTestId('paper-cohort').click();
  }

  async showAll(): Promise<void> {
    await this.page.getByTestId('clear-filters').click();
  }

  /** Opens a series in the viewer by double-clicking its row. */
  async open(row: Locator): Promise<void> {
    await row.dblclick();
  }
}
