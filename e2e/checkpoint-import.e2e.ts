/**
 * The authors' PyTorch checkpoint dropped on the Share page of the real app (`ctssl serve`,
 * Chromium): uploaded to the server (POST /files/packages), then the same host service as `ctssl import`,
 * which tells it from a weights package and installs it as a run; the legacy format is refused
 * with its message.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, expect, root, screenshotDir } from './fixtures';
import { AppShell } from './pages/app-shell';

type DataTransferCtor = new () => { items: { add(f: unknown): void } };
type FileCtor = new (parts: unknown[], name: string, opts?: { type?: string }) => unknown;
const torchFixtures = join(root, 'test', 'fixtures', 'torch');

test("a dropped PyTorch checkpoint becomes an imported run; the legacy format is refused", async ({ app }) => {
  const shell = new AppShell(app);
  await app.getByTestId('nav-share').click();
  await expect(app.getByTestId('share-page')).toBeVisible();
  await expect(app.getByTestId('package-drop')).toContainText('.pth.tar');
  const drop = async (file: string, name: string) => {
    const bytes = [...readFileSync(join(torchFixtures, file))];
    const transfer = await app.evaluateHandle(
      ({ bytes, name }) => {
        const g = globalThis as unknown as { DataTransfer: DataTransferCtor; File: FileCtor };
        const dt = new g.DataTransfer();
        dt.items.add(new g.File([new Uint8Array(bytes)], name));
        return dt;
      },
      { bytes, name },
    );
    await app.getByTestId('package-drop').dispatchEvent('dragover', { dataTransfer: transfer });
    await app.getByTestId('package-drop').dispatchEvent('drop', { dataTransfer: transfer });
  };
  await drop('last.pth.tar', 'last.pth.tar');
  await expect(app.getByTestId('import-result')).toBeVisible({ timeout: 60_000 });
  await expect(app.getByTestId('import-result')).toContainText('PyTorch checkpoint last.pth.tar');
  await expect(app.getByTestId('import-result')).toContainText('tiny');
  await expect(app.getByTestId('import-result')).toContainText('32px');
  await expect(app.getByTestId('imported-row')).toHaveCount(1);
  await app.screenshot({ path: join(screenshotDir, 'share-imported-checkpoint.png') });

  await drop('legacy.pth.tar', 'legacy.pth.tar');
  await expect(app.getByTestId('import-error')).toContainText('legacy PyTorch format', { timeout: 30_000 });
  await expect(app.getByTestId('imported-row')).toHaveCount(1);
  expect(await shell.errorMessages()).toEqual([]);
});
