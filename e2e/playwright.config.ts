import { defineConfig } from '@playwright/test';

/**
 * End-to-end tests drive the real renderer in Debian's Chromium against `ctssl serve` (real
 * services, real SQLite, real DICOM). Electron-only tests skip where the Electron binary is absent.
 */
export default defineConfig({
  testDir: '.',
  testMatch: '**/*.e2e.ts',
  timeout: 180_000,
  expect: { timeout: 30_000 },
  workers: 1,
  retries: 0,
  outputDir: 'artifacts/results',
  reporter: [['list'], ['html', { outputFolder: 'artifacts/report', open: 'never' }]],
  use: {
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1400, height: 900 },
    screenshot: 'on',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
        // WebGL (vtk.js' reformat views) on SwiftShader, software WebGL: this machine has no GPU.
        '--use-gl=angle',
        '--use-angle=swiftshader',
        '--enable-unsafe-swiftshader',
        // ...but 2D canvases (charts, the acquired slice) rasterised in software, as Chromium does
        // on a machine without a GPU: with the flags above alone it treats SwiftShader as a GPU and
        // sends every canvas through it, and a run's live charts redrawn a few times a second left
        // the GPU process behind; the page then waited 10-20 s for frames (timer drift 10-13 s,
        // the CI failure of the fine-tune controls test: Pause clicked, "paused" never shown).
        '--disable-accelerated-2d-canvas',
        '--disable-gpu-rasterization',
      ],
    },
  },
});
