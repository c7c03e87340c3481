/**
 * The viewer while vtk.js gets ready (viewer-state.svelte.ts, input-quiet.ts): the first slice is
 * drawn on the 2D overlay at once; keys pressed before vtk.js has taken over are drawn there too,
 * and vtk.js' warm-up steps and its takeover wait until the keys have been quiet for a while, so
 * that no key waits behind a step. A synthetic series (known HU) through a real `ctssl serve`.
 */
import { join } from 'node:path';
import { test, expect, screenshotDir } from './fixtures';
import { ViewerPage } from './pages/viewer-page';
import { decodePng, luminance, type Image } from './support/png';
import * as synth from './support/synthetic';
import { useSyntheticSeries } from './support/served-series';
import { cameraFor } from '../src/renderer/src/viewer/slice-geometry';

/** Quiet input the warm-up waits for in this test (localStorage ctssl-viewer-warmup-quiet): long, so that a loaded machine's slow key presses still come sooner. */
const QUIET_MS = 4000;

test.describe('viewer: keys while vtk.js gets ready', () => {

  const synthetic = useSyntheticSeries('warmup');

  test('a key before vtk.js has taken over is drawn on the 2D overlay at once; vtk.js takes over once the keys stop, showing the same slice', async ({ page }) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.addInitScript(`localStorage.setItem('ctssl-viewer-warmup-quiet', '${QUIET_MS}')`);
    // Each keydown's time on the page's clock.
    await page.addInitScript(`window.__keys = []; addEventListener('keydown', (e) => window.__keys.push(e.timeStamp), { capture: true })`);
    await page.goto(synthetic.viewerUrl);
    const v = new ViewerPage(page);
    await v.waitForSlice();
    await v.expectSlice(20, synth.SLICES);
    await expect(v.stage).toHaveAttribute('data-renderer', '2d');

    /** Where voxel (i, j) is drawn, CSS pixels from the stage's corner (the same camera as vtk.js'). */
    const screenOf = async (i: number, j: number) => {
      const { width, height } = await v.canvasSize();
      const cam = cameraFor({ columns: synth.COLS, rows: synth.ROWS, sx: synth.SX, sy: synth.SY }, width, height);
      const mmPerPx = (2 * cam.parallelScale) / height;
      return { x: width / 2 + (i * synth.SX - cam.focal[0]) / mmPerPx, y: height / 2 + (j * synth.SY - cam.focal[1]) / mmPerPx };
    };
    /** The stage as the user sees it: vtk.js' canvas under the 2D overlay, text overlays hidden. */
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
      const p = await screenOf(i, j);
      return luminance(img, p.x, p.y);
    };

    // Slice 20 (k 19): the disc at (20, 40) has radius 3 + 9, so voxel (28, 40) is in it (300 HU: white in W 350 L 50).
    const before = await seen('viewer-warmup-2d-slice20.png');
    expect(await greyAt(before, 28, 40)).toBeGreaterThan(240);
    expect(Math.abs((await greyAt(before, 48, 32)) - synth.expectedGrey(119, 350, 50))).toBeLessThan(10);

    // Three keys, well inside the quiet time of each other: slice 23 (k 22), disc radius 5, voxel
    // (28, 40) now on the ramp (-410 HU: black). Each is drawn on the 2D overlay.
    for (let n = 0; n < 3; n++) {
      await page.keyboard.press('ArrowDown');
      await v.expectSlice(21 + n, synth.SLICES);
    }
    const after = await seen('viewer-warmup-2d-slice23.png');
    expect(await greyAt(after, 28, 40), 'the 2D overlay did not draw the slice the keys moved to').toBeLessThan(15);
    expect(Math.abs((await greyAt(after, 48, 32)) - synth.expectedGrey(122, 350, 50))).toBeLessThan(10);
    // vtk.js has not taken over, nor compiled its shaders, while the keys came.
    await expect(v.stage).toHaveAttribute('data-renderer', '2d');
    expect(await page.evaluate("performance.getEntriesByName('ctssl-vtk:shaders').length")).toBe(0);

    // Once the keys stop, vtk.js gets ready and takes over, no sooner than the quiet time after the last key.
    await expect(v.stage).toHaveAttribute('data-renderer', 'vtk', { timeout: QUIET_MS * 4 + 20_000 });
    const lastKey = (await page.evaluate('Math.max(...window.__keys)')) as number;
    const ready = (await page.evaluate("performance.getEntriesByName('ctssl-viewer:vtk-ready')[0].startTime")) as number;
    const shaders = (await page.evaluate("performance.getEntriesByName('ctssl-vtk:shaders')[0].startTime")) as number;
    expect(shaders - lastKey, 'the shaders were compiled before the keys had been quiet long enough').toBeGreaterThanOrEqual(QUIET_MS - 20);
    expect(ready).toBeGreaterThan(shaders);

    // vtk.js' picture of the same slice agrees with the 2D overlay's.
    const vtk = await v.shot(join(screenshotDir, 'viewer-warmup-vtk-slice23.png'));
    await v.expectSlice(23, synth.SLICES);
    expect(await greyAt(vtk, 28, 40)).toBeLessThan(15);
    expect(Math.abs((await greyAt(vtk, 48, 32)) - (await greyAt(after, 48, 32)))).toBeLessThan(6);
    expect(Math.abs((await greyAt(vtk, 8, 6)) - (await greyAt(after, 8, 6)))).toBeLessThan(6);
    expect(errors).toEqual([]);
  });
});
