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
      expect(await page.evaluate(() => Object.keys((globalThis as unknown as { ctsslBridge: object }).ctsslBridge).sort())).toEqual(['invoke', 'on', 'pathForFile']);
      const env = await page.evaluate(() => (globalThis as unknown as { ctsslBridge: { invoke(c: string, ...a: unknown[]): Promise<unknown> } }).ctsslBridge.invoke('nope'));
      expect(env).toMatchObject({ ok: false, error: { code: 'invalid-argument' } });
    } finally {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
