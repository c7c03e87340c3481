/**
 * The viewer, twice:
 *  1. on real DICOM through a real `ctssl serve` (LIDC-IDRI-0001, 17 slices): the slice shows,
 *     scrolling and window presets change the picture, HU is read out under the cursor;
 *  2. on a synthetic DICOM series with known HU (written by e2e/support/synthetic.ts, indexed and
 *     served by a real `ctssl serve`): orientation (row 0 at the top), exact window mapping,
 *     padding black, HU readout values, slice loading order (read from the socket's frames),
 *     keys, drag, help; a missing series.
 */
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, fixtures, screenshotDir, startServe, stopServe, type Served } from './fixtures';
import { AppShell } from './pages/app-shell';
import { LibraryPage } from './pages/library-page';
import { ViewerPage } from './pages/viewer-page';
import { decodeMessage } from '../src/shared/wire';
import { lumaStats, luminance, meanAbsDiff, type Image } from './support/png';
import * as synth from './support/synthetic';
import { useSyntheticSeries } from './support/served-series';
import { cameraFor } from '../src/renderer/src/viewer/slice-geometry';
import { mkdtempSync, rmSync } from 'node:fs';
import type { WebSocketRoute } from '@playwright/test';
import { tmpdir } from 'node:os';

const LIDC = join(fixtures, 'lidc-0001');

function trackPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

/** Samples the central part of the canvas (away from the overlays' corners and edges). */
function centre(img: Image): Image {
  const x0 = Math.floor(img.width * 0.2);
  const y0 = Math.floor(img.height * 0.2);
  const w = Math.floor(img.width * 0.6);
  const h = Math.floor(img.height * 0.6);
  const data = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) data.set(img.data.subarray(((y0 + y) * img.width + x0) * 4, ((y0 + y) * img.width + x0 + w) * 4), y * w * 4);
  return { width: w, height: h, data };
}

test.describe('viewer on real DICOM (LIDC-IDRI-0001 through ctssl serve)', () => {
  test.describe.configure({ mode: 'serial' });
  let served: Served;
  let dataDir: string;

  test.beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-viewer-'));
    served = await startServe(dataDir);
  });
  test.afterAll(async () => {
    await stopServe(served);
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('opens the series from the library and shows, scrolls and windows the slice', async ({ page }) => {
    const errors = trackPageErrors(page);
    await page.goto(served.openUrl);
    const library = new LibraryPage(page);
    await library.addFolder(LIDC);
    const row = library.rowByPatient('LIDC-IDRI-0001');
    await expect(row).toHaveCount(1);
    await expect(library.cell(row, 'slices')).toHaveText('17');

    await library.open(row);
    const viewer = new ViewerPage(page);
    await expect(viewer.root).toBeVisible();
    await viewer.expectSlice(9, 17);
    await expect(viewer.metadata).toContainText('LIDC-IDRI-0001');
    await viewer.waitForSlice();

    // The slice is drawn: not blank.
    const first = await viewer.shot(join(screenshotDir, 'viewer-lidc-slice9-soft.png'));
    const stats = lumaStats(centre(first));
    expect(stats.variance, `canvas looks blank (mean ${stats.mean.toFixed(1)}, variance ${stats.variance.toFixed(1)})`).toBeGreaterThan(100);

    // Orientation labels of an axial slice in radiological display.
    await expect(page.getByTestId('label-left')).toHaveText('R');
    await expect(page.getByTestId('label-right')).toHaveText('L');
    await expect(page.getByTestId('label-top')).toHaveText('A');
    await expect(page.getByTestId('label-bottom')).toHaveText('P');

    // HU under the cursor.
    const { width, height } = await viewer.canvasSize();
    await viewer.hover(width / 2, height / 2);
    await expect(viewer.huReadout).toContainText(/-?\d+ HU/);
    await expect(viewer.huReadout).toContainText('slice 9');

    // Every slice arrives.
    await viewer.waitForVolume();

    // Scrolling changes the image.
    await viewer.wheel(100);
    await viewer.expectSlice(10, 17);
    await viewer.press('PageDown');
    await viewer.expectSlice(17, 17);
    await viewer.page.waitForTimeout(150);
    const scrolled = await viewer.shot(join(screenshotDir, 'viewer-lidc-slice17-soft.png'));
    expect(meanAbsDiff(first, scrolled), 'the picture did not change after scrolling 8 slices').toBeGreaterThan(1);

    // Window presets change the image.
    await viewer.expectWindow(350, 50);
    await viewer.preset('lung');
    await viewer.expectWindow(1500, -600);
    const lung = await viewer.shot(join(screenshotDir, 'viewer-lidc-slice17-lung.png'));
    expect(meanAbsDiff(scrolled, lung), 'the picture did not change with the lung window').toBeGreaterThan(3);
    await viewer.press('3');
    await viewer.expectWindow(1800, 400);

    await viewer.press('Home');
    await viewer.expectSlice(1, 17);
    await viewer.press('2');
    await viewer.hover(width / 2, height / 2);
    await page.screenshot({ path: join(screenshotDir, 'viewer-lidc-page.png') });
    expect(errors).toEqual([]);
  });
});

/** Records the slice requests the page and its volume worker send (start, count), read from the sockets' frames. */
function recordSliceRequests(page: Page): [number, number][] {
  const calls: [number, number][] = [];
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => {
      if (typeof f.payload === 'string') return;
      const m = decodeMessage<{ channel?: string; args?: unknown[] }>(new Uint8Array(f.payload));
      if (m.channel === 'viewer.slices' || m.channel === 'viewer.packed') calls.push([m.args![1] as number, m.args![2] as number]);
    });
  });
  // blocks the volume worker fetches over HTTP (the default transport)
  page.context().on('request', (r) => {
    const u = new URL(r.url());
    if (/^\/files\/series\/\d+\/packed$/.test(u.pathname)) calls.push([Number(u.searchParams.get('start')), Number(u.searchParams.get('count'))]);
  });
  return calls;
}

test.describe('viewer on a synthetic DICOM series (real ctssl serve)', () => {
  test.describe.configure({ mode: 'serial' });
  let viewer: ViewerPage;
  let errors: string[];
  let sliceCalls: [number, number][];

  const synthetic = useSyntheticSeries('synthetic');

  test.beforeEach(async ({ page }) => {
    errors = trackPageErrors(page);
    sliceCalls = recordSliceRequests(page);
    await page.goto(synthetic.served.openUrl);
    const library = new LibraryPage(page);
    await expect(library.rowByPatient(synth.PATIENT_ID)).toHaveCount(1);
    await library.rowByPatient(synth.PATIENT_ID).focus();
    await page.keyboard.press('Enter');
    viewer = new ViewerPage(page);
    await viewer.waitForSlice();
  });

  test.afterEach(() => {
    expect(errors).toEqual([]);
  });

  /** Where voxel (i, j) is drawn, in canvas CSS pixels. */
  async function screenOf(i: number, j: number): Promise<{ x: number; y: number }> {
    const { width, height } = await viewer.canvasSize();
    const cam = cameraFor({ columns: synth.COLS, rows: synth.ROWS, sx: synth.SX, sy: synth.SY }, width, height);
    const mmPerPx = (2 * cam.parallelScale) / height;
    return { x: width / 2 + (i * synth.SX - cam.focal[0]) / mmPerPx, y: height / 2 + (j * synth.SY - cam.focal[1]) / mmPerPx };
  }

  async function greyAt(img: Image, i: number, j: number): Promise<number> {
    const p = await screenOf(i, j);
    return luminance(img, p.x, p.y);
  }

  test('loads the middle slice first, then blocks of at most 16, every slice once', async ({ page }) => {
    await viewer.waitForVolume();
    // Cross-origin isolated: the worker writes the blocks into a volume it shares with the page.
    expect(await page.evaluate('crossOriginIsolated')).toBe(true);
    // Each block's way is measured (volume-fetcher.ts; the benchmark reads them).
    expect(await page.evaluate("performance.getEntriesByName('ctssl-block').length")).toBe(sliceCalls.length - 1);
    expect(sliceCalls[0]).toEqual([19, 1]);
    const seen = new Array<number>(synth.SLICES).fill(0);
    for (const [start, count] of sliceCalls) {
      expect(count).toBeLessThanOrEqual(16);
      for (let k = start; k < start + count; k++) seen[k]++;
    }
    expect(seen).toEqual(new Array(synth.SLICES).fill(1));
    await expect(viewer.loadProgress).toHaveText('40 slices loaded');
  });

  test('draws row 0 at the top and column 0 at the left, padding black, with the exact window mapping', async ({ page }) => {
    await viewer.expectSlice(20, 40);
    await viewer.expectWindow(350, 50);
    const soft = await viewer.shot(join(screenshotDir, 'viewer-synthetic-soft.png'));
    // The 1000 HU marker is top-left; the opposite corner holds padding.
    expect(await greyAt(soft, 8, 6)).toBeGreaterThan(240);
    expect(await greyAt(soft, 88, 6)).toBeGreaterThan(240); // ramp at +1000 HU on the right
    expect(await greyAt(soft, 8, 60)).toBeLessThan(15); // ramp at about -830 HU on the left
    expect(await greyAt(soft, 88, 58)).toBeLessThan(5); // padding
    // Centre block: 100 + 19 HU in W 350 L 50.
    expect(Math.abs((await greyAt(soft, 48, 32)) - synth.expectedGrey(119, 350, 50))).toBeLessThan(10);
    // Aspect: 96 x 64 pixels of 1.0 x 1.5 mm is square on screen.
    const tl = await screenOf(0, 0);
    const br = await screenOf(synth.COLS - 1, synth.ROWS - 1);
    expect(Math.abs(br.x - tl.x - (br.y - tl.y) * ((synth.COLS - 1) / ((synth.ROWS - 1) * 1.5)))).toBeLessThan(2);

    // Lung window: the ramp maps linearly.
    await viewer.press('2');
    await viewer.expectWindow(1500, -600);
    const lung = await viewer.shot(join(screenshotDir, 'viewer-synthetic-lung.png'));
    for (const i of [30, 50, 70]) {
      const hu = synth.huAt(i, 50, 19)!;
      expect(Math.abs((await greyAt(lung, i, 50)) - synth.expectedGrey(hu, 1500, -600)), `grey at HU ${hu}`).toBeLessThan(12);
    }
    expect(await greyAt(lung, 88, 58)).toBeLessThan(5);

    // The widest window the drag allows still keeps padding black.
    await viewer.drag(600, 0);
    const wide = await viewer.shot();
    expect(await greyAt(wide, 88, 58)).toBeLessThan(5);
    await page.screenshot({ path: join(screenshotDir, 'viewer-synthetic-page.png') });
  });

  test('reads out HU, position and padding under the cursor, following the slice', async () => {
    const c = await screenOf(48, 32);
    await viewer.hover(c.x, c.y);
    await expect(viewer.huReadout).toContainText('119 HU');
    // Voxel indices as stored (column, row, slice) and patient coordinates (LPS, mm) from
    // ImagePositionPatient (0, 0, -2.5 k), identity orientation, PixelSpacing 1.5 (rows) x 1.0 (columns).
    await expect(viewer.huReadout).toContainText('i 48 j 32 k 19');
    await expect(viewer.huReadout).toContainText('LPS 48.0, 48.0, -47.5 mm');
    await expect(viewer.huReadout).toContainText('slice 20');
    await expect(viewer.page.getByTestId('position-readout')).toHaveText('z -47.50 mm');
    await viewer.page.keyboard.press('ArrowDown');
    await viewer.expectSlice(21, 40);
    await expect(viewer.huReadout).toContainText('120 HU');
    const p = await screenOf(90, 60);
    await viewer.hover(p.x, p.y);
    await expect(viewer.huReadout).toContainText('padding');
    const t = await screenOf(3, 2);
    await viewer.hover(t.x, t.y);
    await expect(viewer.huReadout).toContainText('1000 HU');
    await expect(viewer.huReadout).toContainText('i 3 j 2 k 20');
    await expect(viewer.huReadout).toContainText('LPS 3.0, 3.0, -50.0 mm');
    await viewer.hover(2, 2); // outside the slice (letterbox)
    await expect(viewer.huReadout).toContainText('HU —');
  });

  test('scrolls by wheel, keys and slider, and the picture follows', async ({ page }) => {
    const before = await viewer.shot();
    await viewer.wheel(100);
    await viewer.expectSlice(21, 40);
    await viewer.wheel(-100);
    await viewer.wheel(-100);
    await viewer.expectSlice(19, 40);
    await viewer.press('ArrowUp');
    await viewer.expectSlice(18, 40);
    await viewer.press('PageDown');
    await viewer.expectSlice(28, 40);
    await viewer.press('PageUp');
    await viewer.press('PageUp');
    await viewer.press('PageUp');
    await viewer.expectSlice(1, 40);
    await viewer.press('End');
    await viewer.expectSlice(40, 40);
    await viewer.press('ArrowDown');
    await viewer.expectSlice(40, 40);
    await viewer.press('Home');
    await viewer.expectSlice(1, 40);
    await viewer.slider.fill('4');
    await viewer.expectSlice(5, 40);
    // Display slice 4 lies 10 mm below the first along the stack.
    const first = Number(/(-?\d+\.\d+) mm/.exec((await page.getByTestId('position-readout').textContent()) ?? '')![1]);
    await viewer.press('Home');
    const top = Number(/(-?\d+\.\d+) mm/.exec((await page.getByTestId('position-readout').textContent()) ?? '')![1]);
    expect(Math.abs(first - top)).toBeCloseTo(4 * synth.THICKNESS, 2);
    await viewer.slider.fill('4');
    const after = await viewer.shot();
    expect(meanAbsDiff(before, after)).toBeGreaterThan(0.5);
  });

  test('window presets by button and key, free window by left-drag', async () => {
    await viewer.preset('bone');
    await viewer.expectWindow(1800, 400);
    await expect(viewer.page.getByTestId('preset-bone')).toHaveAttribute('aria-pressed', 'true');
    await viewer.press('1');
    await viewer.expectWindow(350, 50);
    await viewer.drag(100, 0);
    const wider = Number(/W (\d+)/.exec((await viewer.windowReadout.textContent())!)![1]);
    expect(wider).toBeGreaterThan(350);
    await viewer.drag(0, 80);
    const level = Number(/L (-?\d+)/.exec((await viewer.windowReadout.textContent())!)![1]);
    expect(level).toBeGreaterThan(50);
    await expect(viewer.page.getByTestId('preset-soft')).toHaveAttribute('aria-pressed', 'false');
    await viewer.press('r');
    await viewer.expectWindow(350, 50);
  });

  test('Ctrl+wheel zooms about the pointer, Shift+drag pans, R resets', async ({ page }) => {
    const column = async (x: number, y: number) => {
      await viewer.hover(x, y);
      const m = /i (\d+) j (\d+)/.exec((await viewer.huReadout.textContent()) ?? '');
      return m ? [Number(m[1]), Number(m[2])] : null;
    };
    const c = await screenOf(48, 32);
    const [i1] = (await column(c.x + 150, c.y))!;
    await viewer.hover(c.x, c.y);
    await page.keyboard.down('Control');
    await page.mouse.wheel(0, -500);
    await page.keyboard.up('Control');
    expect(await column(c.x, c.y)).toEqual([48, 32]);
    const [i2] = (await column(c.x + 150, c.y))!;
    expect(i2 - 48).toBeLessThan((i1 - 48) / 2);
    await viewer.expectSlice(20, 40); // the wheel with Ctrl did not scroll

    await page.keyboard.down('Shift');
    await viewer.drag(-100, 0);
    await page.keyboard.up('Shift');
    await viewer.expectWindow(350, 50); // panning leaves the window alone
    const [i3] = (await column(c.x + 150, c.y))!;
    expect(i3).toBeGreaterThan(i2);

    await viewer.press('r');
    expect((await column(c.x + 150, c.y))![0]).toBe(i1);
  });

  test('shows orientation labels, metadata and the shortcut help', async ({ page }) => {
    await expect(page.getByTestId('label-left')).toHaveText('R');
    await expect(page.getByTestId('label-top')).toHaveText('A');
    await expect(viewer.metadata).toContainText(synth.PATIENT_ID);
    await expect(viewer.metadata).toContainText(synth.DESCRIPTION);
    await expect(viewer.metadata).toContainText('96 x 64 x 40');
    await viewer.press('?');
    await expect(viewer.help).toBeVisible();
    await expect(viewer.help).toContainText('Lung window (W 1500 L -600)');
    await expect(viewer.help).toContainText('next slice with labels');
    await page.keyboard.press('Escape');
    await expect(viewer.help).toBeHidden();
    await page.getByTestId('help-button').click();
    await expect(viewer.help).toBeVisible();
    await page.screenshot({ path: join(screenshotDir, 'viewer-help.png') });
  });

  test('back to the library and in again through the nav keeps the series', async ({ page }) => {
    const shell = new AppShell(page);
    await shell.gotoLibrary();
    await shell.gotoViewer();
    await viewer.waitForSlice();
    await viewer.expectSlice(20, 40);
  });

  test('scrolling ahead of the download loads the slice on screen first', async ({ browser }) => {
    // A fresh page whose socket passes through a gate: the real server answers every request, but
    // answers to blocks of slices wait until the test has jumped to the end.
    const page = await browser.newPage();
    const errs = trackPageErrors(page);
    // Blocks over the page's own socket (the volume worker only decodes them, as in Electron), so
    // that the route below can hold them back; the worker's own socket is not routable.
    await page.addInitScript("localStorage.setItem('ctssl-viewer-transport', 'page')");
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const starts: number[] = [];
    await page.routeWebSocket(/\/api\?/, (ws: WebSocketRoute) => {
      const server = ws.connectToServer();
      const blocks = new Set<number>();
      ws.onMessage((m) => {
        if (typeof m !== 'string') {
          const msg = decodeMessage<{ id: number; channel: string; args: unknown[] }>(new Uint8Array(m));
          if (msg.channel === 'viewer.slices' || msg.channel === 'viewer.packed') {
            starts.push(msg.args[1] as number);
            if ((msg.args[2] as number) > 1) blocks.add(msg.id);
          }
        }
        server.send(m);
      });
      server.onMessage(async (m) => {
        if (typeof m !== 'string') {
          const msg = decodeMessage<{ id?: number }>(new Uint8Array(m));
          if (msg.id !== undefined && blocks.has(msg.id)) await gate;
        }
        ws.send(m);
      });
    });
    await page.goto(synthetic.viewerUrl);
    const v = new ViewerPage(page);
    await v.waitForSlice();
    await expect.poll(() => starts.length).toBe(3); // the middle slice, then two blocks in flight
    await v.press('End');
    await v.expectSlice(40, 40);
    await expect(page.getByTestId('viewer-slice-loading')).toHaveText('Loading slice 40…');
    release();
    await v.waitForSlice();
    await v.waitForVolume();
    expect(starts.slice(0, 3), `requests: ${starts.join(', ')}`).toEqual([19, 20, 16]);
    expect(starts[3], `requests: ${starts.join(', ')}`).toBe(32);
    expect(errs).toEqual([]);
    await page.close();
  });

  test('a missing series shows the error in the viewer and the banner', async ({ page }) => {
    await page.goto(synthetic.served.openUrl.replace('#', '#/viewer/99&'));
    const v = new ViewerPage(page);
    await expect(v.error).toContainText('no series with id 99');
    const shell = new AppShell(page);
    await expect(shell.errors).toContainText('no series with id 99');
    await expect(shell.errors).toHaveAttribute('data-code', 'not-found');
  });
});
