/** Page object: the app shell (navigation, error banner). */
import { expect, type Locator, type Page } from '@playwright/test';

export class AppShell {
  readonly version: Locator;
  readonly errors: Locator;

  constructor(readonly page: Page) {
    this.version = page.getByTestId('app-version');
    this.errors = page.getByTestId('toast-error');
  }

  async gotoLibrary(): Promise<void> {
    await this.page.getByTestId('nav-library').click();
    await expect(this.page.getByTestId('library-page')).toBeVisible();
  }

  async gotoViewer(): Promise<void> {
    await this.page.getByTestId('nav-viewer').click();
  }

  /** The error banner's messages, newest last. */
  async errorMessages(): Promise<string[]> {
    return this.errors.getByTestId('toast-message').allTextContents();
  }

  async dismissErrors(): Promise<void> {
    while ((await this.errors.count()) > 0) await this.errors.first().getByRole('button', { name: 'Dismiss' }).click();
  }
}
