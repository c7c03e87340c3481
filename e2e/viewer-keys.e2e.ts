/**
 * The acquired view's renderer (canvas-slice-view.ts): the slice is drawn on a 2D canvas from the
 * first paint to the end, while the volume loads and after, so no key ever waits behind vtk.js (its
 * shader compile, its renders on software WebGL); vtk.js is loaded only for the reformat views of the
 * 1x3 layout, and draws the same voxel in the same grey. A synthetic series (known HU) through a
 * real `ctssl serve`.
 */
import { join } from 'node:path';
import type { Locator, Page } from '@playwright/test';
import { test, expect, screenshotDir } from './fixtures';
import { ViewerPage } from './pages/viewer-page';
import { decodePng, luminance, type Image } from './support/png';
import * as synth from './support/synthetic';
import { useSyntheticSeries } from './support/served-series';
import { cameraFor, type SliceLayout } from '../src/renderer/src/viewer/slice-geometry';

const AXIAL: SliceLayout = { columns: synth.COLS, rows: synth.ROWS, sx: synth.SX, sy: synth.SY };
const CORONAL: SliceLayout = { columns: synth.COLS, rows: synth.SLICES, sx: synth.SX, sy: synth.THICKNESS };

/** Where voxel (u, v) of a picture of `layout` is drawn in `box`, CSS pixels from its corner (the views' camera). */
async function pixelOf(box: Locator, layout: SliceLayout, u: number, v: number): Promise<{ x: number; y: number }> {
  const b = (await box.boundingBox())!;
  const cam = cameraFor(layout, b.width, b.height);
  const mmPerPx = (2 * cam.parallelScale) / b.height;
  return { x: b.width / 2 + (u * layout.sx - cam.focal[0]) / mmPerPx, y: b.height / 2 + (v * layout.sy - cam.focal[1]) / mmPerPx };
}

/**
 * Which context the canvas in `hostId` has: '2d', 'webgl' (getContext('2d') refuses a WebGL canvas)
 * or 'none' (no canvas). Asked only of canvases that have drawn: on a canvas without a context yet,
 * getContext('2d') would make one.
 */
const contextOf = (page: Page, hostId: string) =>
  page.evaluate(`(() => { const c = document.querySelector('[data-testid="${hostId}"] canvas'); return !c ? 'none' : c.getContext('2d') ? '2d' : 'webgl'; })()`) as Promise<string>;

/** The vtk.js measures so far (the first render of a vtk.js view, vtk-slice-view.ts) and whether its chunk was fetched. */
const vtkSeen = (page: Page) =>
  page.evaluate(
    "({ renders: performance.getEntriesByName('ctssl-vtk:first-render').length, chunk: performance.getEntriesByType('resource').some((r) => /vtk-slice-view/.test(r.name)) })",
  ) as Promise<{ renders: number; chunk: boolean }>;

test.describe('viewer: the acquired slice on a 2D canvas, vtk.js for the reformats only', () => {
  const synthetic = useSyntheticSeries('keys');

  test('keys while the volume loads and after it are drawn on the 2D canvas; vtk.js never loads in 1x1, and in 1x3 its reformat shows the same grey', async ({ page }) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(synthetic.viewerUrl);
    const v = new ViewerPage(page);
    await v.waitForSlice();
    await v.expectSlice(20, synth.SLICES);

    /** The stage as the user sees it: the view's canvas under the overlay canvas, text overlays hidden. */
    const seen = async (name: string): Promise<Image> =>
      decodePng(
        await v.stage.screenshot({
          path: join(screenshotDir, name),
          animations: 'disabled',
          style:
            '[data-testid="viewer-stage"] > :not([data-testid="viewer-canvas"]):not([data-testid="label-overlay"]) { visibility: hidden !important; } [data-testid="viewer-stage"] { outline: none !important; }',
        }),
      );
    const greyAt = async (img: Image, i: number, j: number) => {
      const p = await pixelOf(v.canvas, AXIAL, i, j);
      return luminance(img, p.x, p.y);
    };

    // Slice 20 (k 19): the disc at (20, 40) has radius 3 + 9, so voxel (28, 40) is in it (300 HU: white in W 350 L 50).
    const first = await seen('viewer-keys-slice20.png');
    expect(await greyAt(first, 28, 40)).toBeGreaterThan(240);
    expect(Math.abs((await greyAt(first, 48, 32)) - synth.expectedGrey(119, 350, 50))).toBeLessThan(4);

    // Three keys at once: slice 23 (k 22), disc radius 5, voxel (28, 40) now on the ramp (-410 HU: black).
    for (let n = 0; n < 3; n++) {
      await page.keyboard.press('ArrowDown');
      await v.expectSlice(21 + n, synth.SLICES);
    }
    const moved = await seen('viewer-keys-slice23.png');
    expect(await greyAt(moved, 28, 40), 'the 2D canvas did not draw the slice the keys moved to').toBeLessThan(15);
    expect(Math.abs((await greyAt(moved, 48, 32)) - synth.expectedGrey(122, 350, 50))).toBeLessThan(4);

    // The whole volume in, then quiet for longer than any warm-up waited (400 ms) and took: the
    // slice is still drawn on the 2D canvas, the keys too, and vtk.js was never fetched nor run.
    await v.waitForVolume();
    await page.waitForTimeout(2500);
    await page.keyboard.press('ArrowUp');
    await v.expectSlice(22, synth.SLICES);
    await page.keyboard.press('ArrowDown');
    await v.expectSlice(23, synth.SLICES);
    const later = await seen('viewer-keys-slice23-later.png');
    expect(await contextOf(page, 'viewer-canvas'), 'the acquired view is no longer drawn on a 2D canvas').toBe('2d');
    expect(await vtkSeen(page)).toEqual({ renders: 0, chunk: false });
    for (const [i, j] of [
      [28, 40],
      [48, 32],
      [8, 6],
      [70, 20],
    ])
      expect(Math.abs((await greyAt(later, i, j)) - (await greyAt(moved, i, j)))).toBeLessThan(3);

    // The 1x3 layout: the reformat views draw with vtk.js (loaded now), the acquired view stays on
    // its 2D canvas, and both show voxel (44, 32) of slice 23 (the centre block, 122 HU) alike: the
    // coronal view's row plane is row 32 (the crosshair's), its rows the slices.
    await v.stage.focus();
    await page.keyboard.press('l');
    await expect(page.getByTestId('viewer-layout')).toHaveAttribute('data-layout', '1x3');
    await expect.poll(() => vtkSeen(page).then((s) => s.renders), { timeout: 30_000 }).toBe(2);
    expect(await contextOf(page, 'reformat-canvas-row')).toBe('webgl');
    expect(await contextOf(page, 'viewer-canvas')).toBe('2d');
    await page.waitForTimeout(300);
    const coronalBox = page.getByTestId('reformat-canvas-row');
    const coronal = decodePng(
      await page.getByTestId('reformat-row').screenshot({
        path: join(screenshotDir, 'viewer-keys-1x3-coronal.png'),
        animations: 'disabled',
        style: '[data-testid="reformat-row"] > :not([data-testid="reformat-canvas-row"]) { visibility: hidden !important; } [data-testid="reformat-row"] { outline: none !important; }',
      }),
    );
    // The acquired view without its overlay: the crosshair's row line runs through row 32.
    const axial = await v.shot(join(screenshotDir, 'viewer-keys-1x3-axial.png'));
    const c = await pixelOf(coronalBox, CORONAL, 44, 22);
    const vtkGrey = luminance(coronal, c.x, c.y);
    expect(Math.abs(vtkGrey - synth.expectedGrey(122, 350, 50))).toBeLessThan(4);
    expect(Math.abs((await greyAt(axial, 44, 32)) - vtkGrey), 'the 2D canvas and vtk.js map the window differently').toBeLessThan(3);
    expect(errors).toEqual([]);
  });
});
