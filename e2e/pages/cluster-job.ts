/**
 * Page objects of the cluster job in the app: "Export as cluster job" under the pretrain form, and
 * "Import a cluster job's output" on the Share page (server mode: a folder on the server, chosen in
 * the server's folder picker).
 */
import { expect, type Locator, type Page } from '@playwright/test';

/** The server folder picker (FolderPicker.svelte): go to a path and choose it. */
export async function chooseServerFolder(page: Page, path: string): Promise<void> {
  const picker = page.getByTestId('folder-picker');
  await expect(picker).toBeVisible();
  // the folder it opens on has loaded (it sets the location field), then go where we want
  await expect(picker.getByTestId('picker-summary')).toBeVisible();
  await expect(picker.getByTestId('picker-entries')).toHaveAttribute('aria-busy', 'false');
  await picker.getByTestId('picker-location').fill(path);
  await picker.getByTestId('picker-go').click();
  await expect(picker.getByTestId('picker-location')).toHaveValue(path);
  await expect(picker.getByTestId('picker-summary')).toBeVisible();
  await picker.getByTestId('picker-choose').click();
  await expect(picker).toBeHidden();
}

export class ClusterJobExportPanel {
  readonly root: Locator;
  readonly folder: Locator;
  readonly result: Locator;
  readonly error: Locator;

  constructor(readonly page: Page) {
    this.root = page.getByTestId('cluster-job-panel');
    this.folder = this.root.getByTestId('job-folder');
    this.result = this.root.getByTestId('job-result');
    this.error = this.root.getByTestId('job-error');
  }

  /** Chooses where the job goes in the server's folder picker. */
  async chooseFolder(path: string): Promise<void> {
    await this.root.getByTestId('job-folder-browse').click();
    await chooseServerFolder(this.page, path);
    await expect(this.folder).toHaveValue(path);
  }

  /** Exports the form's configuration and waits for the result; returns the job folder. */
  async export(): Promise<string> {
    const before = (await this.result.count()) ? await this.result.getAttribute('data-job') : null;
    await this.root.getByTestId('job-export').click();
    await expect(this.result.or(this.error)).toBeVisible({ timeout: 120_000 });
    await expect(this.error).toHaveCount(0);
    // a new job, not the result of the previous export still on screen
    await expect.poll(() => this.result.getAttribute('data-job')).not.toBe(before);
    return (await this.result.getByTestId('job-dir').textContent())!.trim();
  }
}

export class JobImportSection {
  readonly result: Locator;
  readonly error: Locator;

  constructor(readonly page: Page) {
    this.result = page.getByTestId('job-import-result');
    this.error = page.getByTestId('job-import-error');
  }

  async goto(): Promise<void> {
    await this.page.getByTestId('nav-share').click();
    await expect(this.page.getByTestId('share-page')).toBeVisible();
  }

  /** Imports a job output folder on the server, chosen in the folder picker; returns the new run's id. */
  async importFolder(path: string): Promise<number> {
    await this.page.getByTestId('job-import-browse').click();
    await chooseServerFolder(this.page, path);
    await expect(this.result.or(this.error)).toBeVisible({ timeout: 60_000 });
    await expect(this.error).toHaveCount(0);
    return Number(await this.result.getAttribute('data-run'));
  }
}
