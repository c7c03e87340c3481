/**
 * Fixtures: a real `ctssl serve` process over a fresh data folder, and a page opened on it.
 */
import { test as base, expect, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const fixtures = join(root, 'test', 'fixtures', 'dicom');
export const screenshotDir = join(root, 'e2e', 'artifacts', 'screenshots');
mkdirSync(screenshotDir, { recursive: true });

export interface Served {
  url: string;
  openUrl: string;
  token: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
}

/** Starts `ctssl serve` on a data folder; a fixed port and token let a test restart the same server. */
export async function startServe(dataDir: string, opts: { port?: number; token?: string; /** Another checkout's bin/ctssl.mjs (a benchmark's earlier build). */ bin?: string } = {}): Promise<Served> {
  // CTSSL_E2E_RENDERER: a renderer built elsewhere (electron-vite build --outDir DIR -> DIR/renderer),
  // so that a build running in the shared tree cannot swap the assets under a test.
  const renderer = process.env.CTSSL_E2E_RENDERER ? ['--renderer', process.env.CTSSL_E2E_RENDERER] : [];
  const port = opts.port !== undefined ? ['--port', String(opts.port)] : [];
  const proc = spawn(process.execPath, [opts.bin ?? join(root, 'bin', 'ctssl.mjs'), 'serve', '--json', '--data-dir', dataDir, ...port, ...renderer], {
    cwd: root,
    env: { ...process.env, CTSSL_DB: '', CTSSL_DATA_DIR: dataDir, ...(opts.token ? { CTSSL_TOKEN: opts.token } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += String(d)));
  const rl = createInterface({ input: proc.stdout! });
  const first = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error('ctssl serve did not start in 60 s: ' + stderr)), 60_000);
    rl.once('line', (l) => {
      clearTimeout(timer);
      res(l);
    });
    proc.once('exit', (code) => rej(new Error(`ctssl serve exited with ${code}: ${stderr}`)));
  });
  const info = JSON.parse(first) as { url: string; openUrl: string; token: string; port: number };
  return { ...info, dataDir, proc };
}

export async function stopServe(s: Served): Promise<void> {
  if (s.proc.exitCode !== null) return;
  const done = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill('SIGTERM');
  await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
  if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
}

export const test = base.extend<{ app: Page }, { served: Served }>({
  served: [
    // eslint-disable-next-line no-empty-pattern
    async ({}, use) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-'));
      const served = await startServe(dataDir);
      await use(served);
      await stopServe(served);
      rmSync(dataDir, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
  app: async ({ page, served }, use) => {
    page.on('pageerror', (e) => console.error('[page error]', e.message));
    await page.goto(served.openUrl);
    await use(page);
  },
});

export { expect };
