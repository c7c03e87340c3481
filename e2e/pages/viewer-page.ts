/**
 * Page object: the viewer. State is read from the DOM only (readouts such as "slice 12 / 133" and
 * "W 350 L 50"); the picture is read from screenshots of the canvas.
 */
import { expect, type Locator, type Page } from '@playwright/test';
import { join } from 'node:path';
import { decodePng, type Image } from '../support/png';

export class ViewerPage {
  readonly root: Locator;
  readonly stage: Locator;
  readonly canvas: Locator;
  readonly sliceReadout: Locator;
  readonly windowReadout: Locator;
  readonly huReadout: Locator;
  readonly loadProgress: Locator;
  readonly slider: Locator;
  readonly metadata: Locator;
  readonly error: Locator;
  readonly help: Locator;

  constructor(readonly page: Page) {
    this.root = page.getByTestId('viewer-page');
    this.stage = page.getByTestId('viewer-stage');
    this.canvas = page.getByTestId('viewer-canvas');
    this.sliceReadout = page.getByTestId('slice-readout');
    this.windowReadout = page.getByTestId('wl-readout');
    this.huReadout = page.getByTestId('hu-readout');
    this.loadProgress = page.getByTestId('load-progress');
    this.slider = page.getByTestId('slice-slider');
    this.metadata = page.getByTestId('metadata-panel');
    this.error = page.getByTestId('viewer-error');
    this.help = page.getByTestId('shortcut-help');
  }

  /**
   * Waits until the slice on screen has arrived, or fails at once with the viewer's own error
   * message (e.g. when `viewer.slices` is not available).
   */
  async waitForSlice(timeout = 60_000): Promise<void> {
    const ready = this.page.locator('[data-testid="viewer-stage"][data-slice-ready="true"]');
    await expect(ready.or(this.error).or(this.page.getByTestId('viewer-render-error')).first()).toBeVisible({ timeout });
    if (await this.error.isVisible()) throw new Error(`the viewer could not show the slice: ${await this.error.textContent()}`);
    const renderError = this.page.getByTestId('viewer-render-error');
    if (await renderError.isVisible()) throw new Error(`the slice renderer failed: ${await renderError.textContent()}`);
    // The draw happens on the next animation frame.
    await this.page.waitForTimeout(150);
  }

  /** Waits until every slice of the series has loaded. */
  async waitForVolume(timeout = 120_000): Promise<void> {
    await expect(this.loadProgress.or(this.error).first()).toHaveAttribute('data-done', 'true', { timeout });
  }

  /** [current (1-based), total] from the "slice a / b" readout. */
  async slice(): Promise<[number, number]> {
    const m = /slice (\d+) \/ (\d+)/.exec((await this.sliceReadout.textContent()) ?? '');
    if (!m) throw new Error(`no slice readout: ${await this.sliceReadout.textContent()}`);
    return [Number(m[1]), Number(m[2])];
  }

  async expectSlice(current: number, total?: number): Promise<void> {
    await expect(this.sliceReadout).toHaveText(new RegExp(`slice ${current} / ${total ?? '\\d+'}$`));
  }

  async expectWindow(width: number, level: number): Promise<void> {
    await expect(this.windowReadout).toHaveText(`W ${width} L ${level}`);
  }

  async preset(id: 'soft' | 'lung' | 'bone'): Promise<void> {
    await this.page.getByTestId(`preset-${id}`).click();
  }

  /** Keys go to the page; the stage is focused first so that no text field swallows them. */
  async press(key: string): Promise<void> {
    await this.stage.focus();
    await this.page.keyboard.press(key);
  }

  async wheel(deltaY: number): Promise<void> {
    const box = (await this.canvas.boundingBox())!;
    await this.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await this.page.mouse.wheel(0, deltaY);
  }

  /** Moves the pointer to (x, y) CSS pixels from the canvas' top-left corner. */
  async hover(x: number, y: number): Promise<void> {
    const box = (await this.canvas.boundingBox())!;
    await this.page.mouse.move(box.x + x, box.y + y);
  }

  async canvasSize(): Promise<{ width: number; height: number }> {
    const box = (await this.canvas.boundingBox())!;
    return { width: box.width, height: box.height };
  }

  /** Left-drag on the canvas by (dx, dy) from its centre. */
  async drag(dx: number, dy: number): Promise<void> {
    const box = (await this.canvas.boundingBox())!;
    const x = box.x + box.width / 2;
    const y = box.y + box.height / 2;
    await this.page.mouse.move(x, y);
    await this.page.mouse.down();
    await this.page.mouse.move(x + dx / 2, y + dy / 2, { steps: 3 });
    await this.page.mouse.move(x + dx, y + dy, { steps: 3 });
    await this.page.mouse.up();
  }

  /** Screenshot of the slice as the view draws it (overlays hidden), decoded; saved too when a path is given. */
  async shot(savePath?: string): Promise<Image> {
    await this.page.waitForTimeout(100);
    // Overlays (labels, readouts) are hidden so that only the rendered slice is compared.
    const buf = await this.canvas.screenshot({
      path: savePath,
      animations: 'disabled',
      style: '[data-testid="viewer-stage"] > :not([data-testid="viewer-canvas"]) { visibility: hidden !important; }',
    });
    return decodePng(buf);
  }

  /** Screenshot of the slice (see shot) with the label overlay (text overlays and focus ring hidden), decoded. */
  async shotWithLabels(savePath?: string): Promise<Image> {
    await this.page.waitForTimeout(150);
    const buf = await this.stage.screenshot({
      path: savePath,
      animations: 'disabled',
      style:
        '[data-testid="viewer-stage"] > :not([data-testid="viewer-canvas"]):not([data-testid="label-overlay"]) { visibility: hidden !important; } [data-testid="viewer-stage"] { outline: none !important; }',
    });
    return decodePng(buf);
  }

  /** Voxel bounding box of what the label overlay draws on the slice on screen, or null. */
  async overlayBox(): Promise<{ i0: number; j0: number; i1: number; j1: number } | null> {
    const v = await this.page.getByTestId('label-overlay').getAttribute('data-box');
    if (!v) return null;
    const [i0, j0, i1, j1] = v.split(',').map(Number);
    return { i0, j0, i1, j1 };
  }

  /** Voxel (column, row) the HU readout names for a point of the canvas, or null outside the slice. */
  async voxelAt(x: number, y: number): Promise<{ i: number; j: number } | null> {
    await this.hover(x, y);
    await this.page.waitForTimeout(50);
    // The readout gives the stored voxel indices (i column, j row, k slice); x/y where no geometry maps them.
    const m = /(?:\bi|\bx) (\d+) (?:j|y) (\d+)/.exec((await this.huReadout.textContent()) ?? '');
    return m ? { i: Number(m[1]), j: Number(m[2]) } : null;
  }

  async saveScreenshot(dir: string, name: string): Promise<void> {
    await this.page.screenshot({ path: join(dir, name) });
  }
}
