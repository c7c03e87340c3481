/**
 * What the viewer needs from a slice renderer: the acquired view's 2D canvas (canvas-slice-view.ts)
 * and the reformat views' vtk.js (vtk-slice-view.ts). Declared apart from the vtk.js module so that
 * view models and tests can name the type without loading vtk.js (which touches `window` on import).
 */
import type { SliceLayout, ViewTransform } from './slice-geometry';
import type { WindowLevel } from './window-level';

export interface SliceView {
  /** Sets the slice size and pixel spacing; shows a blank (padding) slice until `showSlice`. */
  setLayout(layout: SliceLayout, paddingValue: number): void;
  /** Copies one slice of HU (columns x rows, row 0 at the top) into the renderer; null shows black. */
  showSlice(hu: Int16Array | null): void;
  setWindow(w: WindowLevel): void;
  setTransform(t: ViewTransform): void;
  setInterpolation(mode: 'nearest' | 'linear'): void;
  /** Call after the host element changed size. */
  resize(): void;
  render(): void;
  /** The host element's size in CSS pixels, as last measured. */
  size(): { width: number; height: number };
  /** Frees what the renderer made (every vtk.js object) and removes its canvas. */
  dispose(): void;
}

export type CreateSliceView = (host: HTMLElement) => SliceView;
