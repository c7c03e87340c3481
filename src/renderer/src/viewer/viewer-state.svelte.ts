/**
 * State of one open series in the viewer. Reactive fields are the small view-model only (slice
 * index, window, readouts, progress); the voxels live in a plain VolumeLoader and the picture in
 * the SliceView (the 2D canvas view, canvas-slice-view.ts), both held in ordinary (non-reactive)
 * fields.
 *
 * Loading: `viewer.open`, then the middle slice alone (first paint), then the rest in blocks of 16
 * nearest-first around the slice on screen.
 */
import type { ApiClient } from '../../../shared/contract';
import type { VolumeInfo } from '../../../shared/types';
import { describeError } from '../lib/errors';
import { toasts } from '../lib/toasts.svelte';
import { cameraFor, FIT, imageRect, panBy, screenToVoxel, zoomAt, type SliceLayout, type ViewTransform } from './slice-geometry';
import type { SliceView } from './slice-view';
import { LoadAborted, VolumeLoader } from './volume-loader';
import { chosenBackground, VolumeFetcher } from './volume-fetcher';
import { CROSS_COLOURS, ReformatPane } from './reformat-pane.svelte';
import type { VolumePoint } from './reformat';
import { clearOverlay, drawCrosshair, drawPicture, hoverReadout, pictureCanvas, type HoverReadout } from './view-overlay';
import { ViewerLabelsState } from './viewer-labels-state.svelte';
import { clampWindow, DEFAULT_PRESET, dragWindow, presets, type WindowLevel } from './window-level';

export type ViewerStatus = 'opening' | 'loading' | 'ready' | 'error';

export type { HoverReadout } from './view-overlay';

export const BLOCK_SIZE = 16;

/**
 * Steps of an open as User Timing marks (`ctssl-viewer:open`, `:info` (viewer.open answered),
 * `:first-slice-data`, `:view` (the view made), `:first-paint`); the benchmark reads them.
 */
function mark(name: string): void {
  try {
    performance.mark(`ctssl-viewer:${name}`);
  } catch {
    // no User Timing
  }
}

export class ViewerState {
  status = $state<ViewerStatus>('opening');
  info = $state.raw<VolumeInfo | null>(null);
  /** Slice on screen, 0-based. */
  slice = $state(0);
  window = $state.raw<WindowLevel>(DEFAULT_PRESET);
  loaded = $state(0);
  /** Whether the slice on screen has arrived. */
  sliceReady = $state(false);
  hover = $state.raw<HoverReadout | null>(null);
  error = $state<string | null>(null);
  interpolation = $state<'nearest' | 'linear'>('nearest');
  transform = $state.raw<ViewTransform>(FIT);
  /** Time from the open request to the first slice on screen, and to the whole volume, ms. */
  firstSliceMs = $state<number | null>(null);
  volumeMs = $state<number | null>(null);

  /** Labels of the series: badges, masks of the slice on screen, overlay style. */
  readonly labels: ViewerLabelsState;

  /** One view (the acquired plane) or three (acquired, row plane, column plane: axial, coronal, sagittal). */
  layoutMode = $state<'1x1' | '1x3'>('1x1');
  /** The crosshair's display column and row (its slice is `slice`); every view shows it in 1x3. */
  cross = $state.raw<{ x: number; y: number }>({ x: 0, y: 0 });
  /** The two reformat views (row plane, column plane), drawn when their canvases are attached. */
  readonly panes: ReformatPane[] = [new ReformatPane(this, 'row'), new ReformatPane(this, 'column')];
  /** Pictures drawn under the label masks in step with the slice (a model's predicted mask, PredictionState): each gives a slice's picture, or null. */
  readonly overlayLayers: ((slice: number) => ImageData | null)[] = [];
  private layerCanvas: HTMLCanvasElement | null = null;

  private loader: VolumeLoader | null = null;
  private fetcher: VolumeFetcher | null = null;
  private view: SliceView | null = null;
  private overlay: HTMLCanvasElement | null = null;
  private overlaySrc: HTMLCanvasElement | null = null;
  private overlayImage: ImageData | null = null;
  /** Whether the overlay canvas holds anything (else an empty draw leaves it alone). */
  private overlayDrawn = false;
  private disposed = false;
  private frame = 0;
  private sliceDirty = true;
  private pointer: { x: number; y: number } | null = null;
  private dragStart: WindowLevel | null = null;
  private panStart: ViewTransform | null = null;
  private t0 = 0;

  constructor(
    private readonly api: ApiClient,
    readonly seriesId: number,
  ) {
    this.labels = new ViewerLabelsState(api, seriesId, () => this.requestRender());
  }

  /** The voxels loaded so far (null before `viewer.open` answered). */
  get volume(): VolumeLoader | null {
    return this.loader;
  }

  get slices(): number {
    return this.info?.dims[2] ?? 0;
  }

  get layout(): SliceLayout | null {
    const i = this.info;
    return i ? { columns: i.dims[0], rows: i.dims[1], sx: i.spacing[0], sy: i.spacing[1] } : null;
  }

  async open(): Promise<void> {
    this.t0 = performance.now();
    mark('open');
    try {
      const info = await this.api.invoke('viewer.open', this.seriesId);
      mark('info');
      if (this.disposed) return;
      this.info = info;
      const fetcher = new VolumeFetcher(this.api, this.seriesId);
      this.fetcher = fetcher;
      const loader = new VolumeLoader({
        dims: info.dims,
        voxels: fetcher.sharedVolume(info.dims),
        blockSize: BLOCK_SIZE,
        // 2 requests for the slices near the one on screen (and background ones far from it, when asked for: volume-fetcher.ts).
        concurrency: 2,
        background: chosenBackground(),
        fetch: (start, count) => fetcher.fetch(start, count),
        fetchFirst: (start, count) => fetcher.fetchNow(start, count),
        onSlices: (start, count) => this.onSlices(start, count),
      });
      this.loader = loader;
      this.slice = Math.floor((info.dims[2] - 1) / 2);
      this.cross = { x: Math.floor(info.dims[0] / 2), y: Math.floor(info.dims[1] / 2) };
      for (const p of this.panes) p.setUp();
      this.status = 'loading';
      this.labels.ensure(this.slice);
      void this.labels.load();
      if (this.view) this.setUpView(this.view);
      await loader.loadFirst(this.slice);
      mark('first-slice-data');
      await loader.loadAll();
      if (this.disposed) return;
      this.volumeMs = performance.now() - this.t0;
      this.status = 'ready';
    } catch (err) {
      if (this.disposed || err instanceof LoadAborted) return;
      this.status = 'error';
      const { code, message } = describeError(err);
      this.error = `${code}: ${message}`;
      toasts.error(this.info ? 'Loading slices' : 'Opening series', err);
    }
  }

  /** Hands the view model its renderer (the 2D canvas view, made when the stage mounts). */
  attachView(view: SliceView): void {
    mark('view');
    this.view = view;
    if (this.info) this.setUpView(view);
  }

  /** The 2D canvas over the slice where label masks are drawn (null to detach). */
  attachOverlay(canvas: HTMLCanvasElement | null): void {
    this.overlay = canvas;
    this.requestRender();
  }

  detachView(): void {
    this.view = null;
    cancelAnimationFrame(this.frame);
    this.frame = 0;
  }

  private setUpView(view: SliceView): void {
    const l = this.layout!;
    view.setLayout(l, this.info!.paddingValue);
    view.setWindow(this.window);
    view.setTransform(this.transform);
    view.setInterpolation(this.interpolation);
    this.sliceDirty = true;
    this.requestRender();
  }

  private onSlices(start: number, count: number): void {
    if (this.disposed || !this.loader) return;
    this.loaded = this.loader.loadedCount;
    if (this.layoutMode === '1x3') for (const p of this.panes) p.invalidate();
    if (this.slice >= start && this.slice < start + count) {
      this.sliceDirty = true;
      this.requestRender();
    }
    this.fetcher?.inserted(start, count);
  }

  /** Draws on the next animation frame (many wheel events per frame collapse into one draw). */
  requestRender(): void {
    if (this.layoutMode === '1x3') for (const p of this.panes) p.requestRender();
    if (this.frame || !this.view || this.disposed) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private draw(): void {
    const view = this.view;
    if (!view || !this.info || !this.loader) return;
    if (this.sliceDirty) {
      const data = this.loader.slice(this.slice);
      view.showSlice(data);
      this.sliceReady = data !== null;
      this.sliceDirty = false;
      this.updateHover();
    }
    view.render();
    this.drawOverlay();
    if (this.firstSliceMs === null && this.sliceReady) {
      this.firstSliceMs = performance.now() - this.t0;
      mark('first-paint');
    }
  }

  /**
   * Draws the overlay layers and the label masks of the slice on screen into the overlay canvas,
   * into the rectangle the slice occupies under the current zoom and pan (the same camera as the
   * view's), and in 1x3 the crosshair.
   */
  private drawOverlay(): void {
    const c = this.overlay;
    const l = this.layout;
    if (!c || !this.view || !l) return;
    const { width, height } = this.view.size();
    const layers = this.overlayLayers.map((layer) => layer(this.slice)).filter((img) => img !== null);
    const img = this.labels.image();
    const cross = this.layoutMode === '1x3';
    // Nothing to draw and nothing drawn: the canvas is left alone (no clear, no new frame of it to composite).
    if (!layers.length && !img && !cross && !this.overlayDrawn) return;
    const ctx = clearOverlay(c, width, height);
    this.overlayDrawn = false;
    if (!ctx) return;
    const r = imageRect(l, cameraFor(l, width, height, this.transform), width, height);
    for (const layer of layers) drawPicture(ctx, pictureCanvas((this.layerCanvas ??= document.createElement('canvas')), layer), r);
    if (img) {
      // The label picture changes only with the slice, the masks or the style: put it into its canvas once.
      if (img !== this.overlayImage || !this.overlaySrc) {
        this.overlaySrc = pictureCanvas(this.overlaySrc ?? document.createElement('canvas'), img);
        this.overlayImage = img;
      }
      drawPicture(ctx, this.overlaySrc, r);
    }
    // The crosshair: where the row plane (horizontal line) and the column plane (vertical) cut this slice.
    if (cross) drawCrosshair(ctx, r, l, this.cross.x, this.cross.y, CROSS_COLOURS[1], CROSS_COLOURS[2]);
    this.overlayDrawn = layers.length > 0 || img !== null || cross;
  }


  /** Moves the crosshair to a volume point: the acquired view goes to its slice, the reformats to its row and column. */
  setCross(p: VolumePoint): void {
    const i = this.info;
    if (!i) return;
    const x = Math.min(i.dims[0] - 1, Math.max(0, Math.round(p.x)));
    const y = Math.min(i.dims[1] - 1, Math.max(0, Math.round(p.y)));
    if (x !== this.cross.x || y !== this.cross.y) {
      this.cross = { x, y };
      for (const pane of this.panes) pane.invalidate();
    }
    this.setSlice(p.k);
    this.requestRender();
  }

  /** A click on the acquired view at CSS pixel (x, y): the crosshair moves there. */
  clickAt(x: number, y: number): void {
    const v = this.voxelAt(x, y);
    if (v) this.setCross({ x: v.i, y: v.j, k: this.slice });
  }

  /** Switches between one view and three (acquired, row and column planes). */
  setLayoutMode(mode: '1x1' | '1x3'): void {
    if (mode === this.layoutMode) return;
    this.layoutMode = mode;
    if (mode === '1x3') for (const p of this.panes) p.invalidate();
    this.sliceDirty = true;
    this.requestRender();
  }

  toggleLayout(): void {
    this.setLayoutMode(this.layoutMode === '1x1' ? '1x3' : '1x1');
  }

  /** Jumps to the next (dir 1) or previous (dir -1) slice with labels; false when there is none. */
  stepLabelled(dir: 1 | -1): boolean {
    const k = this.labels.next(this.slice, dir);
    if (k === null) return false;
    this.setSlice(k);
    return true;
  }

  setSlice(k: number): void {
    const n = this.slices;
    if (n === 0) return;
    const next = Math.min(n - 1, Math.max(0, Math.round(k)));
    if (next === this.slice) return;
    this.slice = next;
    this.labels.ensure(next);
    this.loader?.setFocus(next);
    this.sliceDirty = true;
    this.sliceReady = this.loader?.isLoaded(next) ?? false;
    this.requestRender();
  }

  step(delta: number): void {
    this.setSlice(this.slice + delta);
  }

  setWindow(w: WindowLevel): void {
    this.window = clampWindow(w);
    this.view?.setWindow(this.window);
    this.requestRender();
  }

  applyPreset(key: string): boolean {
    const p = presets.find((x) => x.key === key || x.id === key);
    if (!p) return false;
    this.setWindow(p);
    return true;
  }

  beginWindowDrag(): void {
    this.dragStart = this.window;
  }

  windowDrag(dx: number, dy: number): void {
    if (this.dragStart) this.setWindow(dragWindow(this.dragStart, dx, dy));
  }

  endDrag(): void {
    this.dragStart = null;
    this.panStart = null;
  }

  beginPan(): void {
    this.panStart = this.transform;
  }

  panDrag(dx: number, dy: number): void {
    const l = this.layout;
    if (!l || !this.panStart || !this.view) return;
    const { width, height } = this.view.size();
    this.setTransform(panBy(l, this.panStart, width, height, dx, dy));
  }

  zoom(factor: number, x: number, y: number): void {
    const l = this.layout;
    if (!l || !this.view) return;
    const { width, height } = this.view.size();
    this.setTransform(zoomAt(l, this.transform, width, height, x, y, factor));
  }

  /** Fit the slice and go back to the soft-tissue window. */
  resetView(): void {
    this.setTransform(FIT);
    for (const p of this.panes) p.fit();
    this.setWindow(DEFAULT_PRESET);
  }

  toggleInterpolation(): void {
    this.interpolation = this.interpolation === 'nearest' ? 'linear' : 'nearest';
    this.view?.setInterpolation(this.interpolation);
    this.requestRender();
  }

  private setTransform(t: ViewTransform): void {
    this.transform = t;
    this.view?.setTransform(t);
    this.updateHover();
    this.requestRender();
  }

  /** The host was resized: re-measure, refit, redraw. */
  resized(): void {
    this.view?.resize();
    this.updateHover();
    this.requestRender();
  }

  /** Pointer at (x, y) CSS pixels from the canvas' top-left corner; null when it left. */
  pointerAt(x: number | null, y: number | null): void {
    this.pointer = x === null || y === null ? null : { x, y };
    this.updateHover();
  }

  private updateHover(): void {
    const v = this.pointer ? this.voxelAt(this.pointer.x, this.pointer.y) : null;
    const next = v && this.loader && this.info ? hoverReadout(this.info, this.loader, v.i, v.j, this.slice, this.hover) : null;
    if (next !== this.hover) this.hover = next;
  }

  /** The display voxel under CSS pixel (x, y) of the acquired view, or null outside the slice. */
  private voxelAt(x: number, y: number): { i: number; j: number } | null {
    const l = this.layout;
    if (!l || !this.view) return null;
    const { width, height } = this.view.size();
    return screenToVoxel(l, cameraFor(l, width, height, this.transform), width, height, x, y);
  }

  dispose(): void {
    this.disposed = true;
    this.loader?.abort();
    this.loader = null;
    this.fetcher?.dispose();
    this.fetcher = null;
    this.labels.dispose();
    for (const p of this.panes) p.dispose();
    this.overlay = null;
    this.overlaySrc = null;
    this.detachView();
  }
}
