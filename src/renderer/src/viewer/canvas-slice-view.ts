/**
 * The acquired view's renderer: the slice on a 2D canvas. The slice's HU are mapped to grey under
 * the window on the page's thread (windowedGrey: level - width/2 black, level + width/2 white, linear
 * between, as vtk.js maps them) into a canvas of one pixel a voxel, which a CSS transform places on
 * the rectangle the camera gives (slice-geometry's imageRect, the same as the label overlay's),
 * scaled unsmoothed (nearest: image-rendering pixelated) or smoothed (linear).
 *
 * Why not vtk.js here: the acquired view is the one scrolled from the first paint while the volume
 * loads, and must answer a key within 100 ms on any machine. On software WebGL (SwiftShader, e.g. a
 * browser without a GPU) vtk.js' first render compiles its shaders in one task of 60-350 ms, and each
 * render after costs a key 40-80 ms; this canvas draws a 512 x 512 slice in a few ms, with or
 * without a GPU (docs/benchmarks.md, Opening a series). The reformat views (1x3) keep vtk.js
 * (vtk-slice-view.ts), loaded when that layout is first shown.
 */
import { cameraFor, FIT, imageRect, type SliceLayout, type ViewTransform } from './slice-geometry';
import type { SliceView } from './slice-view';
import { DEFAULT_PRESET, windowedGrey, type WindowLevel } from './window-level';

export function createCanvasSliceView(host: HTMLElement): SliceView {
  // One pixel a voxel; the browser's compositor scales and places it (a CSS transform), so a new
  // slice costs the page one 512 x 512 picture and no redraw of a view-sized canvas, and zoom and pan
  // redraw nothing.
  const canvas = document.createElement('canvas');
  canvas.style.position = 'absolute';
  canvas.style.left = '0';
  canvas.style.top = '0';
  canvas.style.transformOrigin = '0 0';
  host.appendChild(canvas);
  let ctx: CanvasRenderingContext2D | null = null;

  let layout: SliceLayout | null = null;
  let padding = -32768;
  let pixels: Int16Array | null = null;
  let picture: ImageData | null = null;
  /** The canvas no longer shows `pixels` under `window_` (a new slice or window). */
  let stale = true;
  let transform: ViewTransform = FIT;
  let window_: WindowLevel = DEFAULT_PRESET;
  let smooth = false;
  let width = 1;
  let height = 1;
  let disposed = false;

  /** Sets a style property only when it changes (no style recalculation for nothing). */
  const style = (name: 'transform' | 'imageRendering', value: string) => {
    if (canvas.style[name] !== value) canvas.style[name] = value;
  };

  const view: SliceView = {
    setLayout(l, paddingValue) {
      layout = { ...l };
      padding = paddingValue;
      pixels = new Int16Array(l.columns * l.rows).fill(padding);
      picture = new ImageData(l.columns, l.rows);
      canvas.width = l.columns;
      canvas.height = l.rows;
      ctx = canvas.getContext('2d', { alpha: false });
      transform = FIT;
      stale = true;
    },
    showSlice(hu) {
      if (!pixels) return;
      if (hu) {
        if (hu.length !== pixels.length) throw new Error(`slice has ${hu.length} voxels, expected ${pixels.length}`);
        pixels.set(hu);
      } else {
        pixels.fill(padding);
      }
      stale = true;
    },
    setWindow(w) {
      if (w.width === window_.width && w.level === window_.level) return;
      window_ = w;
      stale = true;
    },
    setTransform(t) {
      transform = t;
    },
    setInterpolation(mode) {
      smooth = mode === 'linear';
    },
    resize() {
      const r = host.getBoundingClientRect();
      width = Math.max(1, r.width);
      height = Math.max(1, r.height);
    },
    render() {
      if (disposed || !layout || !pixels || !picture || !ctx) return;
      const t = performance.now();
      if (stale) {
        windowedGrey(pixels, window_, picture.data);
        ctx.putImageData(picture, 0, 0);
        stale = false;
      }
      // The picture's rectangle under the camera (slice-geometry's imageRect, as the label overlay's).
      const r = imageRect(layout, cameraFor(layout, width, height, transform), width, height);
      style('transform', `translate(${r.x}px, ${r.y}px) scale(${r.width / layout.columns}, ${r.height / layout.rows})`);
      style('imageRendering', smooth ? 'auto' : 'pixelated');
      // What a draw costs the page's thread, for bench/viewer.ts.
      try {
        performance.measure('ctssl-view:render', { start: t, end: performance.now() });
      } catch {
        // no User Timing
      }
    },
    size() {
      return { width, height };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      canvas.remove();
      pixels = null;
      picture = null;
      ctx = null;
    },
  };
  view.resize();
  return view;
}
