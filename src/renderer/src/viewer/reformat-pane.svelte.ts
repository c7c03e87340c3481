/**
 * One reformat view of the open series (the plane of a display row or column across the stack:
 * coronal and sagittal for an axial series), beside the acquired view in the 1x3 layout. It owns
 * its vtk.js view (through the SliceView interface), its overlay canvas (label masks and the
 * crosshair) and its readout; the volume, window, interpolation and crosshair are the ViewerState's,
 * so every view follows them. Reactive fields are the readout only.
 *
 * Pointer: a click (or drag) moves the crosshair to the point (the other views follow); the wheel
 * moves this view's plane (its fixed row or column) one voxel per notch; Ctrl+wheel zooms at the
 * pointer and Shift/middle-drag pans, as in the acquired view (each view keeps its own zoom; the
 * viewer's reset, R, fits them all again).
 */
import { composeOverlay } from './label-overlay';
import { extractReformat, reformatLayout, reformatToVolume, volumeToReformat, type ReformatPlane } from './reformat';
import { cameraFor, FIT, imageRect, panBy, screenToVoxel, zoomAt, type SliceLayout, type ViewTransform } from './slice-geometry';
import type { SliceView } from './slice-view';
import { clearOverlay, drawCrosshair, drawPicture, hoverReadout, pictureCanvas, type HoverReadout } from './view-overlay';
import type { ViewerState } from './viewer-state.svelte';

/** Crosshair colours, one per view (acquired, row plane, column plane), as the lines of that view's plane. */
export const CROSS_COLOURS = ['#56b4e9', '#e69f00', '#009e73'] as const;

export class ReformatPane {
  hover = $state.raw<HoverReadout | null>(null);
  /** Label voxels drawn in this view's picture (for tests and the status line). */
  maskPixels = $state(0);

  private view: SliceView | null = null;
  private overlay: HTMLCanvasElement | null = null;
  private buffer: Int16Array | null = null;
  private frame = 0;
  private dirty = true;
  private pointer: { x: number; y: number } | null = null;
  private maskCanvas: HTMLCanvasElement | null = null;
  private rgba: Uint8ClampedArray | null = null;
  /** This view's zoom and pan over "fit to the view", and the transform a pan drag started from. */
  private transform = $state.raw<ViewTransform>(FIT);
  private panStart: ViewTransform | null = null;
  /** The mask picture of the last draw and what it was made of (plane index, labels.masksKey()). */
  private masks: { key: string; picture: HTMLCanvasElement | null } | null = null;

  constructor(
    private readonly viewer: ViewerState,
    readonly plane: ReformatPlane,
  ) {}

  get layout(): SliceLayout | null {
    const i = this.viewer.info;
    return i ? reformatLayout(i.dims, i.spacing, this.plane) : null;
  }

  /** This view's fixed row (row plane) or column (column plane). */
  get index(): number {
    return this.plane === 'row' ? this.viewer.cross.y : this.viewer.cross.x;
  }

  /** How many planes this view can step through. */
  get planes(): number {
    const i = this.viewer.info;
    return i ? (this.plane === 'row' ? i.dims[1] : i.dims[0]) : 0;
  }

  attachView(view: SliceView): void {
    this.view = view;
    this.setUp();
  }

  detachView(): void {
    this.view = null;
    cancelAnimationFrame(this.frame);
    this.frame = 0;
  }

  attachOverlay(c: HTMLCanvasElement | null): void {
    this.overlay = c;
    this.requestRender();
  }

  /** (Re)configures the view for the open series; called when the view or the series arrives. */
  setUp(): void {
    const view = this.view;
    const l = this.layout;
    if (!view || !l || !this.viewer.info) return;
    view.setLayout(l, this.viewer.info.paddingValue);
    view.setWindow(this.viewer.window);
    view.setInterpolation(this.viewer.interpolation);
    this.transform = FIT;
    view.setTransform(FIT);
    this.buffer = new Int16Array(l.columns * l.rows);
    this.invalidate();
  }

  /** The picture must be resliced (new voxels, another plane). */
  invalidate(): void {
    this.dirty = true;
    this.requestRender();
  }

  requestRender(): void {
    if (this.frame || !this.view) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  resized(): void {
    this.view?.resize();
    this.requestRender();
  }

  private draw(): void {
    const view = this.view;
    const info = this.viewer.info;
    const loader = this.viewer.volume;
    if (!view || !info || !loader || !this.buffer) return;
    if (this.dirty) {
      extractReformat(loader.voxels, info.dims, (k) => loader.isLoaded(k), this.plane, this.index, info.paddingValue, this.buffer);
      view.showSlice(this.buffer);
      this.dirty = false;
      this.updateHover();
    }
    view.setWindow(this.viewer.window);
    view.setInterpolation(this.viewer.interpolation);
    view.render();
    this.drawOverlay();
  }

  /** Label masks resliced like the picture, and the crosshair lines of the other two views. */
  private drawOverlay(): void {
    const c = this.overlay;
    const l = this.layout;
    const info = this.viewer.info;
    if (!c || !this.view || !l || !info) return;
    const { width, height } = this.view.size();
    const ctx = clearOverlay(c, width, height);
    if (!ctx) return;
    const r = imageRect(l, cameraFor(l, width, height, this.transform), width, height);
    const masks = this.maskPicture(l);
    if (masks) drawPicture(ctx, masks, r);
    // Crosshair: where the acquired slice (horizontal line) and the other plane (vertical) cut this one.
    const { u, v } = volumeToReformat(this.plane, { x: this.viewer.cross.x, y: this.viewer.cross.y, k: this.viewer.slice });
    drawCrosshair(ctx, r, l, u, v, CROSS_COLOURS[0], CROSS_COLOURS[this.plane === 'row' ? 2 : 1]);
  }

  /**
   * The label masks of every labelled slice cut along this plane, as a canvas of the picture's size;
   * made again only when the plane or the masks changed, not on every draw (window drags, the
   * crosshair moving along this plane).
   */
  private maskPicture(l: SliceLayout): HTMLCanvasElement | null {
    const key = `${this.index}/${this.viewer.labels.masksKey()}`;
    if (this.masks?.key !== key) this.masks = { key, picture: this.resliceMasks(l) };
    return this.masks.picture;
  }

  private resliceMasks(l: SliceLayout): HTMLCanvasElement | null {
    const labels = this.viewer.labels;
    const info = this.viewer.info!;
    if (!labels.visible || labels.indices.length === 0) return this.noMasks();
    const [w, h] = info.dims;
    const groups = new Map<string, Uint8Array>();
    for (const k of labels.indices) {
      const m = labels.masksAt(k);
      if (!m || m.width !== w || m.height !== h) continue;
      for (const g of m.groups) {
        let dst = groups.get(g.group);
        if (!dst) groups.set(g.group, (dst = new Uint8Array(l.columns * l.rows)));
        if (this.plane === 'row') {
          const y = this.index;
          for (let x = 0; x < w; x++) if (g.mask[y * w + x]) dst[k * l.columns + x] = 1;
        } else {
          const x = this.index;
          for (let y = 0; y < h; y++) if (g.mask[y * w + x]) dst[k * l.columns + y] = 1;
        }
      }
    }
    if (groups.size === 0) return this.noMasks();
    let drawn = 0;
    for (const m of groups.values()) for (let i = 0; i < m.length; i++) drawn += m[i];
    if (drawn !== this.maskPixels) this.maskPixels = drawn;
    const n = l.columns * l.rows * 4;
    if (!this.rgba || this.rgba.length !== n) this.rgba = new Uint8ClampedArray(n);
    const box = composeOverlay(
      [...groups].map(([key, mask]) => ({ key, mask })),
      l.columns,
      l.rows,
      labels.overlayStyle(),
      this.rgba,
    );
    if (!box) return null;
    return pictureCanvas((this.maskCanvas ??= document.createElement('canvas')), new ImageData(this.rgba as Uint8ClampedArray<ArrayBuffer>, l.columns, l.rows));
  }

  private noMasks(): null {
    if (this.maskPixels !== 0) this.maskPixels = 0;
    return null;
  }

  /** The volume point under CSS pixel (x, y) of this view, or null outside the picture. */
  private pointAt(x: number, y: number): { x: number; y: number; k: number } | null {
    const l = this.layout;
    if (!l || !this.view) return null;
    const { width, height } = this.view.size();
    const v = screenToVoxel(l, cameraFor(l, width, height, this.transform), width, height, x, y);
    return v ? reformatToVolume(this.plane, this.index, v.i, v.j) : null;
  }

  /** A click or drag at (x, y): the crosshair moves there, and every view follows. */
  clickAt(x: number, y: number): void {
    const p = this.pointAt(x, y);
    if (p) this.viewer.setCross(p);
  }

  /** Zooms by `factor` keeping the point under (x, y) in place (Ctrl+wheel). */
  zoom(factor: number, x: number, y: number): void {
    const l = this.layout;
    if (!l || !this.view) return;
    const { width, height } = this.view.size();
    this.setTransform(zoomAt(l, this.transform, width, height, x, y, factor));
  }

  beginPan(): void {
    this.panStart = this.transform;
  }

  /** A pan drag by (dx, dy) CSS pixels from where it began. */
  panDrag(dx: number, dy: number): void {
    const l = this.layout;
    if (!l || !this.view || !this.panStart) return;
    const { width, height } = this.view.size();
    this.setTransform(panBy(l, this.panStart, width, height, dx, dy));
  }

  endPan(): void {
    this.panStart = null;
  }

  /** Fit to the view again (the viewer's reset). */
  fit(): void {
    this.setTransform(FIT);
  }

  /** This view's zoom (1 = fit), for the readout and tests. */
  get zoomFactor(): number {
    return this.transform.zoom;
  }

  private setTransform(t: ViewTransform): void {
    this.transform = t;
    this.view?.setTransform(t);
    this.updateHover();
    this.requestRender();
  }

  /** Moves this view's plane by `delta` rows or columns (the wheel; linked: the others' crosshair moves). */
  step(delta: number): void {
    const c = this.viewer.cross;
    const next = Math.min(this.planes - 1, Math.max(0, this.index + delta));
    this.viewer.setCross(this.plane === 'row' ? { x: c.x, y: next, k: this.viewer.slice } : { x: next, y: c.y, k: this.viewer.slice });
  }

  pointerAt(x: number | null, y: number | null): void {
    this.pointer = x === null || y === null ? null : { x, y };
    this.updateHover();
  }

  private updateHover(): void {
    const info = this.viewer.info;
    const loader = this.viewer.volume;
    const p = this.pointer ? this.pointAt(this.pointer.x, this.pointer.y) : null;
    if (!p || !info || !loader) {
      if (this.hover !== null) this.hover = null;
      return;
    }
    const next = hoverReadout(info, loader, p.x, p.y, p.k, this.hover);
    if (next !== this.hover) this.hover = next;
  }

  dispose(): void {
    this.detachView();
    this.overlay = null;
    this.maskCanvas = null;
    this.masks = null;
  }
}
