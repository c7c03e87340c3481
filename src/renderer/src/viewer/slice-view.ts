/**
 * What the viewer needs from a slice renderer. Declared apart from the vtk.js module so that
 * view models and tests can name the type without loading vtk.js (which touches `window` on import).
 */
import type { SliceLayout, ViewTransform } from './slice-geometry';
import type { WindowLevel } from './window-level';

export interface SliceView {
  /** Sets the slice size and pixel spacing; shows a blank (padding) slice until `showSlice`. */
  setLayout(layout: SliceLayout, paddingValue: number): void;
  /** Copies one slice of HU (columns x rows, row 0 at the top) into the texture; null shows black. */
  showSlice(hu: Int16Array | null): void;
  setWindow(w: WindowLevel): void;
  setTransform(t: ViewTransform): void;
  setInterpolation(mode: 'nearest' | 'linear'): void;
  /** Call after the host element changed size. */
  resize(): void;
  render(): void;
  /**
   * Readies the renderer without drawing a slice, a step per task (the WebGL context, then a render
   * of a 1 x 1 image that compiles the shaders): on software WebGL each step is a long task, and
   * together they were one of over 300 ms. Each step waits for `ready` first (e.g. until the user's
   * input has been quiet, InputQuiet). Resolves once done (at once on later calls, whose `ready` is unused).
   */
  warmUp(ready?: () => Promise<void>): Promise<void>;
  /** The host element's size in CSS pixels, as last measured. */
  size(): { width: number; height: number };
  /** Deletes every vtk.js object and removes the canvas. */
  dispose(): void;
}

export type CreateSliceView = (host: HTMLElement) => SliceView;
