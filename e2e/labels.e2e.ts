/**
 * Labels through the real app and a real `ctssl serve`: import the real LIDC-IDRI-0001 reader XML
 * from the library page (report: what matched and what did not, and why), filter the cohort by
 * labels, and see the nodule outlines over the right pixels in the viewer — per reader, union or
 * consensus, with colour and opacity — under zoom, with per-slice badges and N/P to jump.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, fixtures, screenshotDir, startServe, stopServe, type Served } from './fixtures';
import { AppShell } from './pages/app-shell';
import { LibraryPage } from './pages/library-page';
import { ViewerPage } from './pages/viewer-page';
import type { Image } from './support/png';

const LIDC = join(fixtures, 'lidc-0001');

function findXml(dir: string): string {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) {
      const f = findXml(p);
      if (f) return f;
    } else if (e === '069.xml') return p;
  }
  return '';
}
const XML = findXml(LIDC);

/** Bounding box of each nodule ROI's edge points in the XML, by SOP Instance UID (read independently of the app). */
function roiBoxes(xml: string): Map<string, { x0: number; y0: number; x1: number; y1: number }[]> {
  const out = new Map<string, { x0: number; y0: number; x1: number; y1: number }[]>();
  for (const roi of xml.match(/<roi>[\s\S]*?<\/roi>/g) ?? []) {
    const sop = /<imageSOP_UID>\s*([^<\s]+)\s*<\/imageSOP_UID>/.exec(roi)?.[1];
    const xs = [...roi.matchAll(/<xCoord>\s*(\d+)\s*<\/xCoord>/g)].map((m) => Number(m[1]));
    const ys = [...roi.matchAll(/<yCoord>\s*(\d+)\s*<\/yCoord>/g)].map((m) => Number(m[1]));
    if (!sop || xs.length < 3) continue; // small nodules are a single point: not drawn as masks
    const list = out.get(sop) ?? [];
    list.push({ x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) });
    out.set(sop, list);
  }
  return out;
}

/** Pixels whose colour changed between two screenshots: count, centroid and bounding box. */
function changed(a: Image, b: Image, threshold = 30): { n: number; cx: number; cy: number; x0: number; y0: number; x1: number; y1: number } {
  let n = 0;
  let sx = 0;
  let sy = 0;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let y = 0; y < a.height; y++)
    for (let x = 0; x < a.width; x++) {
      const o = (y * a.width + x) * 4;
      const d = Math.abs(a.data[o] - b.data[o]) + Math.abs(a.data[o + 1] - b.data[o + 1]) + Math.abs(a.data[o + 2] - b.data[o + 2]);
      if (d < threshold) continue;
      n++;
      sx += x;
      sy += y;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  return { n, cx: n ? sx / n : NaN, cy: n ? sy / n : NaN, x0, y0, x1, y1 };
}

test.describe('labels on real LIDC-IDRI-0001', () => {
  test.describe.configure({ mode: 'serial' });
  let served: Served;
  let dataDir: string;
  let page: Page;
  let library: LibraryPage;
  let viewer: ViewerPage;
  const errors: string[] = [];
  const boxes = roiBoxes(readFileSync(XML, 'utf8'));

  test.beforeAll(async ({ browser }) => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-labels-'));
    served = await startServe(dataDir);
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(served.openUrl);
    library = new LibraryPage(page);
    viewer = new ViewerPage(page);
    await library.addFolder(LIDC);
  });
  test.afterAll(async () => {
    await page.close();
    await stopServe(served);
    rmSync(dataDir, { recursive: true, force: true });
  });
  test.afterEach(() => {
    expect(errors).toEqual([]);
  });

  test('imports the reader XML by path and shows what matched and what did not, and why', async () => {
    await expect(page.getByTestId('labels-panel')).toBeVisible();
    // A relative path never leaves the page; a missing file is reported by the services.
    await page.getByTestId('label-path').fill('069.xml');
    await page.getByTestId('import-labels').click();
    await expect(page.getByTestId('label-path-problem')).toContainText('not an absolute path');
    await page.getByTestId('label-path').fill('/nonexistent/labels.xml');
    await page.getByTestId('import-labels').click();
    await expect(page.getByTestId('label-report-error')).toContainText('/nonexistent/labels.xml');

    await page.getByTestId('label-path').fill(XML);
    await page.getByTestId('import-labels').click();
    const report = page.getByTestId('label-report');
    await expect(report).toHaveAttribute('data-kind', 'lidc-xml');
    // The fixture is a 17-slice slab of the scan: 32 of the 41 ROIs fall on indexed slices.
    await expect(page.getByTestId('label-report-headline')).toHaveText('32 of 41 ROIs matched indexed slices');
    await expect(report.locator('[data-name="readers"]')).toHaveText('4');
    await expect(report.locator('[data-name="ROIs"]')).toHaveText('41');
    await report.getByTestId('label-unmatched').locator('summary').click();
    await expect(page.getByTestId('label-unmatched-row')).toHaveCount(9);
    await expect(page.getByTestId('label-unmatched-row').first()).toContainText('no indexed image has this SOP Instance UID');
    await expect(page.getByTestId('label-source')).toHaveCount(1);
    await expect(page.getByTestId('label-source')).toContainText('069.xml');
    await page.screenshot({ path: join(screenshotDir, 'labels-import-report.png') });
  });

  test('filters the cohort by kind of label', async () => {
    await library.showAll();
    await library.expectCounts(1, 1);
    const filter = page.getByTestId('filter-labels');
    await filter.selectOption('nodule');
    await library.expectCounts(1, 1);
    await expect(page.getByTestId('count-labels')).toHaveText('1');
    await filter.selectOption('pe');
    await library.expectCounts(0, 1);
    await filter.selectOption('segment');
    await library.expectCounts(0, 1);
    await filter.selectOption('any');
    await library.expectCounts(1, 1);
    await filter.selectOption('off');
  });

  test('shows badges on labelled slices and jumps between them with N and P', async () => {
    await library.open(library.rowByPatient('LIDC-IDRI-0001'));
    await viewer.waitForSlice();
    await viewer.waitForVolume();
    const badges = page.getByTestId('slice-badge');
    await expect(page.getByTestId('viewer-labels')).toBeVisible();
    const indices = (await badges.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-index'))))).sort((a, b) => a - b);
    expect(indices.length).toBeGreaterThan(2);
    // Every badge names a slice the XML has an ROI on.
    for (const sop of await badges.evaluateAll((els) => els.map((e) => e.getAttribute('data-sop')))) expect(readFileSync(XML, 'utf8')).toContain(sop!);
    await expect(page.getByTestId('labelled-count')).toContainText(`${indices.length} labelled slices`);

    await viewer.press('Home');
    await viewer.expectSlice(1, 17);
    await viewer.press('n');
    await viewer.expectSlice(indices.find((k) => k > 0)! + 1, 17);
    await viewer.press('End');
    await viewer.press('p');
    await viewer.expectSlice([...indices].reverse().find((k) => k < 16)! + 1, 17);
    // A badge is a button to its slice.
    await page.locator(`[data-testid="slice-badge"][data-index="${indices[0]}"]`).click();
    await viewer.expectSlice(indices[0] + 1, 17);
  });

  test('draws the nodule where the readers outlined it, and keeps it there under zoom', async () => {
    // The labelled slice whose ROIs span the largest area.
    const candidates = await page.getByTestId('slice-badge').evaluateAll((els) => els.map((e) => ({ index: Number(e.getAttribute('data-index')), sop: e.getAttribute('data-sop')! })));
    const area = (sop: string) => (boxes.get(sop) ?? []).reduce((a, b) => a + (b.x1 - b.x0) * (b.y1 - b.y0), 0);
    const target = candidates.sort((a, b) => area(b.sop) - area(a.sop))[0];
    expect(area(target.sop)).toBeGreaterThan(0);
    await viewer.slider.fill(String(target.index));
    await viewer.expectSlice(target.index + 1, 17);
    await expect.poll(() => viewer.overlayBox()).not.toBeNull();
    await page.getByTestId('overlay-opacity').fill('0.6');

    const inXml = (v: { i: number; j: number } | null, margin = 2) =>
      v !== null && (boxes.get(target.sop) ?? []).some((b) => v.i >= b.x0 - margin && v.i <= b.x1 + margin && v.j >= b.y0 - margin && v.j <= b.y1 + margin);

    const check = async (name: string, maxFraction: number) => {
      const on = await viewer.shotWithLabels(join(screenshotDir, `labels-overlay-${name}.png`));
      await viewer.press('o');
      await expect(page.getByTestId('label-overlay')).toHaveAttribute('data-visible', 'false');
      const off = await viewer.shotWithLabels();
      await viewer.press('o');
      await expect(page.getByTestId('label-overlay')).toHaveAttribute('data-visible', 'true');
      const d = changed(on, off);
      expect(d.n, `${name}: the overlay changed no pixel`).toBeGreaterThan(10);
      // The change is a small region (a nodule), not the whole picture.
      expect(d.n).toBeLessThan(on.width * on.height * maxFraction);
      // Where it changed, the picture shows the voxels the readers outlined (read back through the HU readout).
      const dpr = on.width / (await viewer.canvasSize()).width;
      const centre = await viewer.voxelAt(d.cx / dpr, d.cy / dpr);
      expect(inXml(centre), `${name}: overlay centre at voxel ${JSON.stringify(centre)}, XML boxes ${JSON.stringify(boxes.get(target.sop))}`).toBe(true);
      const corner = await viewer.voxelAt(d.x0 / dpr, d.y0 / dpr);
      expect(inXml(corner, 3), `${name}: overlay corner at voxel ${JSON.stringify(corner)}`).toBe(true);
      return d;
    };
    const fit = await check('fit', 0.03);

    // Zoom in about the nodule: the overlay grows with the picture and stays on it.
    const size = await viewer.canvasSize();
    const dpr = (await viewer.shotWithLabels()).width / size.width;
    await viewer.hover(fit.cx / dpr, fit.cy / dpr);
    await page.keyboard.down('Control');
    await page.mouse.wheel(0, -700);
    await page.keyboard.up('Control');
    const zoomed = await check('zoom', 0.25);
    expect(zoomed.n).toBeGreaterThan(fit.n * 2);
    await page.screenshot({ path: join(screenshotDir, 'labels-viewer-zoomed.png') });
    await viewer.press('r');
  });

  test('switches readers and consensus, colour and per-lesion toggles', async () => {
    const union = await viewer.overlayBox();
    expect(union).not.toBeNull();
    const mode = page.getByTestId('overlay-mode');
    await mode.selectOption('consensus');
    const k = page.getByTestId('consensus-k');
    await k.fill('1');
    await expect.poll(() => viewer.overlayBox()).toEqual(union);
    // At least 4 of 4 readers: never larger than the union.
    await k.fill('4');
    await expect.poll(async () => JSON.stringify(await viewer.overlayBox())).not.toBe(JSON.stringify(union));
    const strict = await viewer.overlayBox();
    if (strict) {
      expect(strict.i1 - strict.i0).toBeLessThanOrEqual(union!.i1 - union!.i0);
      expect(strict.j1 - strict.j0).toBeLessThanOrEqual(union!.j1 - union!.j0);
    }
    // One reader at a time.
    await mode.selectOption({ index: 1 });
    await expect.poll(() => mode.inputValue()).toMatch(/^reader:/);
    await mode.selectOption('all');
    await expect.poll(() => viewer.overlayBox()).toEqual(union);

    // Colour: the drawn pixels take the chosen colour.
    const here = page.locator('[data-testid="label-group"].here').first();
    await expect(here).toBeVisible();
    await page.getByTestId('overlay-opacity').fill('1');
    await here.getByTestId('label-group-colour').fill('#00ff00');
    const green = await viewer.shotWithLabels(join(screenshotDir, 'labels-overlay-green.png'));
    let greenPixels = 0;
    for (let i = 0; i < green.data.length; i += 4) if (green.data[i + 1] > 200 && green.data[i] < 60 && green.data[i + 2] < 60) greenPixels++;
    expect(greenPixels).toBeGreaterThan(10);
    // Hiding every lesion on this slice leaves nothing drawn.
    for (const g of await page.locator('[data-testid="label-group"].here').all()) await g.getByTestId('label-group-toggle').uncheck();
    await expect.poll(() => viewer.overlayBox()).toBeNull();
    for (const g of await page.locator('[data-testid="label-group"].here').all()) await g.getByTestId('label-group-toggle').check();
    await page.getByTestId('overlay-opacity').fill('0.35');
    await page.screenshot({ path: join(screenshotDir, 'labels-viewer.png') });
    expect(await new AppShell(page).errorMessages()).toEqual([]);
  });

  test('sends label files chosen in the browser as bytes: a file of another kind is refused naming it, the reader XML imports and can be removed', async () => {
    await new AppShell(page).gotoLibrary();
    const input = page.getByTestId('label-file');
    await input.setInputFiles({ name: 'notes.csv', mimeType: 'text/csv', buffer: Buffer.from('hello,world\n1,2\n') });
    await expect(page.getByTestId('label-report-error')).toContainText('notes.csv: not a label file this app reads');
    await expect(page.getByTestId('label-source')).toHaveCount(1);
    await input.setInputFiles(XML);
    await expect(page.getByTestId('label-report')).toHaveAttribute('data-kind', 'lidc-xml');
    await expect(page.getByTestId('label-report-headline')).toHaveText('32 of 41 ROIs matched indexed slices');
    await expect(page.getByTestId('label-source')).toHaveCount(2);
    await page.getByTestId('label-source').nth(1).getByTestId('remove-label-source').click();
    await expect(page.getByTestId('label-source')).toHaveCount(1);
    expect(await new AppShell(page).errorMessages()).toEqual([]);
  });
});
