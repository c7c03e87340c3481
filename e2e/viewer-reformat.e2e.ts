/**
 * Reformats and coordinates in the viewer, on a synthetic DICOM series with known geometry (96 x 64
 * pixels of 1.0 x 1.5 mm, 40 axial slices 2.5 mm apart, ImagePositionPatient (0, 0, -2.5 k), written
 * by e2e/support/synthetic.ts, indexed and served by a real `ctssl serve`):
 *  - the 1x1 / 1x3 layout switch by button and by key L;
 *  - the coronal and sagittal views, with pixel aspect from the spacing (a click lands on the voxel
 *    computed from 1.0 x 2.5 mm pixels) and the crosshair linked across views (a click in one view
 *    moves the others; the wheel in a reformat moves its plane and the crosshair in the others);
 *  - the LPS and voxel readouts in the reformats and the slice position (IPP z);
 *  - on the real LIDC-IDRI-0001 slab with its reader XML imported, the nodule's label masks drawn in
 *    the coronal and sagittal views once the crosshair is on the nodule.
 * Screenshots of both layouts are kept in e2e/artifacts/screenshots.
 */
import { join } from 'node:path';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Locator, Page } from '@playwright/test';
import { test, expect, fixtures, screenshotDir, startServe, stopServe, type Served } from './fixtures';
import { LibraryPage } from './pages/library-page';
import { ViewerPage } from './pages/viewer-page';
import * as synth from './support/synthetic';
import { useSyntheticSeries } from './support/served-series';
import { cameraFor, type SliceLayout } from '../src/renderer/src/viewer/slice-geometry';

/** CSS pixel of voxel (u, v) of a picture of `layout` drawn to fit `box` (as the viewer's camera does). */
async function pixelOf(box: Locator, layout: SliceLayout, u: number, v: number): Promise<{ x: number; y: number }> {
  const b = (await box.boundingBox())!;
  const cam = cameraFor(layout, b.width, b.height);
  const mmPerPx = (2 * cam.parallelScale) / b.height;
  return { x: b.width / 2 + (u * layout.sx - cam.focal[0]) / mmPerPx, y: b.height / 2 + (v * layout.sy - cam.focal[1]) / mmPerPx };
}

const CORONAL: SliceLayout = { columns: synth.COLS, rows: synth.SLICES, sx: synth.SX, sy: synth.THICKNESS };
const SAGITTAL: SliceLayout = { columns: synth.ROWS, rows: synth.SLICES, sx: synth.SY, sy: synth.THICKNESS };
const AXIAL: SliceLayout = { columns: synth.COLS, rows: synth.ROWS, sx: synth.SX, sy: synth.SY };

test.describe('reformats, crosshair and patient coordinates (synthetic series, real ctssl serve)', () => {
  test.describe.configure({ mode: 'serial' });

  const synthetic = useSyntheticSeries('reformat');

  async function open(page: Page): Promise<ViewerPage> {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(synthetic.viewerUrl);
    const v = new ViewerPage(page);
    await v.waitForSlice();
    await v.waitForVolume();
    (page as unknown as { errors: string[] }).errors = errors;
    return v;
  }

  test('switches between one view and three by button and by key L', async ({ page }) => {
    const v = await open(page);
    const layout = page.getByTestId('viewer-layout');
    await expect(layout).toHaveAttribute('data-layout', '1x1');
    await expect(page.getByTestId('reformat-row')).toHaveCount(0);
    await page.screenshot({ path: join(screenshotDir, 'viewer-layout-1x1.png') });

    await page.getByTestId('layout-1x3').click();
    await expect(layout).toHaveAttribute('data-layout', '1x3');
    await expect(page.getByTestId('layout-1x3')).toHaveAttribute('aria-pressed', 'true');
    await expect(page.getByTestId('reformat-name-row')).toHaveText(/coronal · 33\/64/i);
    await expect(page.getByTestId('reformat-name-column')).toHaveText(/sagittal · 49\/96/i);
    // The three views share the width.
    const a = (await v.stage.boundingBox())!;
    const c = (await page.getByTestId('reformat-row').boundingBox())!;
    expect(Math.abs(a.width - c.width)).toBeLessThan(4);
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(screenshotDir, 'viewer-layout-1x3.png') });

    await v.stage.focus();
    await page.keyboard.press('l');
    await expect(layout).toHaveAttribute('data-layout', '1x1');
    await page.keyboard.press('L');
    await expect(layout).toHaveAttribute('data-layout', '1x3');
    expect((page as unknown as { errors: string[] }).errors).toEqual([]);
  });

  test('a click in one view moves the crosshair in the others, with the pixel aspect of the spacing', async ({ page }) => {
    const v = await open(page);
    await page.getByTestId('layout-1x3').click();
    const coronal = page.getByTestId('reformat-canvas-row');
    const sagittal = page.getByTestId('reformat-canvas-column');
    await expect(page.getByTestId('reformat-row')).toHaveAttribute('data-plane-index', '32');

    // Coronal view, voxel x = 30 of slice k = 10 (pixels 1.0 x 2.5 mm): the axial view goes to
    // slice 11 and the sagittal plane to column 30.
    const p = await pixelOf(coronal, CORONAL, 30, 10);
    await coronal.click({ position: p });
    await v.expectSlice(11, synth.SLICES);
    await expect(page.getByTestId('reformat-column')).toHaveAttribute('data-plane-index', '30');
    await expect(page.getByTestId('reformat-row')).toHaveAttribute('data-plane-index', '32');
    await expect(page.getByTestId('position-readout')).toHaveText('z -25.00 mm');

    // Sagittal view, voxel y = 12 of slice k = 25: axial slice 26, coronal plane row 12.
    const s = await pixelOf(sagittal, SAGITTAL, 12, 25);
    await sagittal.click({ position: s });
    await v.expectSlice(26, synth.SLICES);
    await expect(page.getByTestId('reformat-row')).toHaveAttribute('data-plane-index', '12');
    await expect(page.getByTestId('reformat-column')).toHaveAttribute('data-plane-index', '30');

    // Axial view, voxel (70, 50): the reformats go to column 70 and row 50; the slice stays.
    const q = await pixelOf(v.canvas, AXIAL, 70, 50);
    await v.canvas.click({ position: q });
    await expect(page.getByTestId('reformat-column')).toHaveAttribute('data-plane-index', '70');
    await expect(page.getByTestId('reformat-row')).toHaveAttribute('data-plane-index', '50');
    await v.expectSlice(26, synth.SLICES);

    // Linked scrolling: the wheel over the coronal view moves its plane (row 50 -> 52), which the
    // readout of the crosshair's row in the axial view follows.
    await coronal.hover({ position: p });
    await page.mouse.wheel(0, 100);
    await page.mouse.wheel(0, 100);
    await expect(page.getByTestId('reformat-row')).toHaveAttribute('data-plane-index', '52');
    await expect(page.getByTestId('reformat-name-row')).toHaveText(/coronal · 53\/64/i);
    await v.expectSlice(26, synth.SLICES);
    await page.screenshot({ path: join(screenshotDir, 'viewer-crosshair-linked.png') });
  });

  test('each reformat zooms at the pointer and pans on its own; R fits them all again', async ({ page }) => {
    await open(page);
    await page.getByTestId('layout-1x3').click();
    const coronal = page.getByTestId('reformat-canvas-row');
    const stage = page.getByTestId('reformat-row');
    const readout = page.getByTestId('reformat-readout-row');
    await expect(stage).toHaveAttribute('data-zoom', '1.000');
    const p = await pixelOf(coronal, CORONAL, 48, 19);
    await coronal.hover({ position: p });
    await expect(readout).toContainText('i 48 j 32 k 19');
    // Ctrl+wheel zooms in at the pointer: the voxel under it stays where it was
    await page.keyboard.down('Control');
    await page.mouse.wheel(0, -200);
    await page.mouse.wheel(0, -200);
    await page.keyboard.up('Control');
    await expect.poll(async () => Number(await stage.getAttribute('data-zoom'))).toBeGreaterThan(1.5);
    await coronal.hover({ position: { x: p.x + 2, y: p.y } });
    await coronal.hover({ position: p });
    await expect(readout).toContainText('i 48 j 32 k 19');
    await expect(page.getByTestId('reformat-column')).toHaveAttribute('data-zoom', '1.000');
    // Shift+drag pans: 60 CSS pixels to the right brings voxels from the left under the pointer
    const box = (await coronal.boundingBox())!;
    await page.keyboard.down('Shift');
    await page.mouse.move(box.x + p.x, box.y + p.y);
    await page.mouse.down();
    await page.mouse.move(box.x + p.x + 60, box.y + p.y, { steps: 4 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await coronal.hover({ position: p });
    await expect.poll(async () => Number(/i (\d+) j 32/.exec((await readout.textContent()) ?? '')?.[1] ?? NaN)).toBeLessThan(48);
    // the crosshair did not move: a pan is not a click
    await expect(page.getByTestId('reformat-row')).toHaveAttribute('data-plane-index', '32');
    await page.keyboard.press('r');
    await expect(stage).toHaveAttribute('data-zoom', '1.000');
    await coronal.hover({ position: { x: p.x + 2, y: p.y } });
    await coronal.hover({ position: p });
    await expect(readout).toContainText('i 48 j 32 k 19');
    await page.screenshot({ path: join(screenshotDir, 'viewer-reformat-zoom.png') });
  });

  test('reformat readouts give voxel indices and LPS millimetres', async ({ page }) => {
    await open(page);
    await page.getByTestId('layout-1x3').click();
    const coronal = page.getByTestId('reformat-canvas-row');
    // The coronal plane is row 32 (y = 48 mm); voxel x = 48 of slice 19 lies at (48, 48, -47.5).
    const p = await pixelOf(coronal, CORONAL, 48, 19);
    await coronal.hover({ position: p });
    const readout = page.getByTestId('reformat-readout-row');
    await expect(readout).toContainText('i 48 j 32 k 19');
    await expect(readout).toContainText('LPS 48.0, 48.0, -47.5 mm');
    await expect(readout).toContainText('119 HU');
    // Sagittal plane column 48: voxel y = 10 of slice 0 lies at (48, 15, 0).
    const sagittal = page.getByTestId('reformat-canvas-column');
    await sagittal.hover({ position: await pixelOf(sagittal, SAGITTAL, 10, 0) });
    await expect(page.getByTestId('reformat-readout-column')).toContainText('i 48 j 10 k 0');
    await expect(page.getByTestId('reformat-readout-column')).toContainText('LPS 48.0, 15.0, 0.0 mm');
  });
});

/** The LIDC reader XML beside the committed slab. */
function findXml(dir: string): string {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const f = findXml(p);
      if (f) return f;
    } else if (e.name === '069.xml') return p;
  }
  return '';
}

test.describe('label masks in the reformats (real LIDC-IDRI-0001 slab and reader XML)', () => {
  let served: Served;
  let dataDir: string;
  test.beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-reformat-labels-'));
    served = await startServe(dataDir);
  });
  test.afterAll(async () => {
    await stopServe(served);
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the nodule under the crosshair is drawn in the coronal and sagittal views', async ({ page }) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const lidc = join(fixtures, 'lidc-0001');
    await page.goto(served.openUrl);
    const library = new LibraryPage(page);
    await library.addFolder(lidc);
    await page.getByTestId('label-path').fill(findXml(lidc));
    await page.getByTestId('import-labels').click();
    await expect(page.getByTestId('label-source')).toContainText('069.xml');
    await page.getByTestId('series-row').first().dblclick();
    const v = new ViewerPage(page);
    await v.waitForSlice();
    await v.waitForVolume();
    await page.getByTestId('layout-1x3').click();
    // To the first labelled slice, then a click on the centre of the drawn mask.
    await v.stage.focus();
    await page.keyboard.press('n');
    const overlay = page.getByTestId('label-overlay');
    await expect(overlay).not.toHaveAttribute('data-box', '');
    const [i0, j0, i1, j1] = ((await overlay.getAttribute('data-box')) ?? '').split(',').map(Number);
    const square: SliceLayout = { columns: 512, rows: 512, sx: 1, sy: 1 };
    await v.canvas.click({ position: await pixelOf(v.canvas, square, Math.round((i0 + i1) / 2), Math.round((j0 + j1) / 2)) });
    await expect(page.getByTestId('reformat-column')).toHaveAttribute('data-plane-index', String(Math.round((i0 + i1) / 2)));
    await expect.poll(async () => Number(await page.getByTestId('reformat-row').getAttribute('data-mask-pixels'))).toBeGreaterThan(0);
    await expect.poll(async () => Number(await page.getByTestId('reformat-column').getAttribute('data-mask-pixels'))).toBeGreaterThan(0);
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(screenshotDir, 'viewer-reformat-labels.png') });
    // Hidden labels (key O) leave the reformats empty too.
    await page.keyboard.press('o');
    await expect(page.getByTestId('reformat-row')).toHaveAttribute('data-mask-pixels', '0');
    expect(errors).toEqual([]);
  });
});
