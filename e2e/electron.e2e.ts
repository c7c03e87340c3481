/**
 * Electron-only checks: the real desktop app, where the Electron binary exists. Here (no binary
 * can be downloaded) they are skipped with the reason; on a workstation they run with the rest.
 */
import { test, expect, _electron as electron } from '@playwright/test';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from './fixtures';

function electronBinary(): string | null {
  const dir = join(root, 'node_modules', 'electron');
  const pathFile = join(dir, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const bin = join(dir, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(bin) ? bin : null;
}

const bin = electronBinary();

test.describe('the Electron app', () => {
  test.skip(!bin, 'the Electron binary is not installed here (node_modules/electron/dist is missing)');

  test('opens a sandboxed, context-isolated window whose renderer reaches the services only through the bridge', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ctssl-electron-'));
    const app = await electron.launch({ executablePath: bin!, args: [root], env: { ...process.env, CTSSL_DATA_DIR: dataDir } });
    try {
      const page = await app.firstWindow();
      await expect(page.getByTestId('app-version')).toContainText('(electron)', { timeout: 60_000 });
      const prefs = await app.evaluate(({ BrowserWindow }) => (BrowserWindow.getAllWindows()[0].webContents as unknown as { getLastWebPreferences(): object }).getLastWebPreferences());
      expect(prefs).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false });
      expect(await page.evaluate(() => typeof (globalThis as unknown as { require?: unknown }).require)).toBe('undefined');
      expect(await page.evaluate(() => Object.keys((globalThis as unknown as { ctsslBridge: object }).ctsslBridge).sort())).toEqual(['grantFile', 'invoke', 'on']);
      const env = await page.evaluate(() => (globalThis as unknown as { ctsslBridge: { invoke(c: string, ...a: unknown[]): Promise<unknown> } }).ctsslBridge.invoke('nope'));
      expect(env).toMatchObject({ ok: false, error: { code: 'invalid-argument' } });
      // A file path the page makes up is refused: files are imported only when picked or dropped in this window.
      const typed = await page.evaluate(() => (globalThis as unknown as { ctsslBridge: { invoke(c: string, ...a: unknown[]): Promise<unknown> } }).ctsslBridge.invoke('labels.import', '/etc/passwd'));
      expect(typed).toMatchObject({ ok: false, error: { code: 'invalid-argument', message: expect.stringMatching(/was not chosen in this window/) } });
      // and a File the page makes itself has no path to grant
      const made = await page.evaluate(() =>
        (globalThis as unknown as { ctsslBridge: { grantFile(f: File): Promise<unknown> } }).ctsslBridge.grantFile(new File(['x'], 'made.csv')),
      );
      expect(made).toMatchObject({ ok: false, error: { code: 'invalid-argument', message: expect.stringMatching(/made\.csv: not a file on this computer/) } });
    } finally {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
