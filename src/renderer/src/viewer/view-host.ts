/**
 * What the acquired view (SliceCanvas) and the reformat views (ReformatCanvas) share around their
 * view model: the renderer (the acquired view's 2D canvas, the reformats' vtk.js loaded on demand)
 * created in a host element and disposed with it, the overlay canvas, the resize observer, a wheel
 * listener that may cancel the page's scroll, the wheel's notch-to-step accumulation and pointer
 * coordinates relative to the host.
 */
import type { CreateSliceView, SliceView } from './slice-view';

/** A view model a canvas hosts: ViewerState (the acquired plane) or a ReformatPane. */
export interface HostedView {
  attachView(view: SliceView): void;
  detachView(): void;
  /** The 2D canvas over the picture (null to detach). */
  attachOverlay(canvas: HTMLCanvasElement | null): void;
  /** The host changed size. */
  resized(): void;
}

/**
 * Mounts `model`'s view: attaches the overlay, gets the renderer (`renderer`: a module loaded on
 * demand, as vtk.js is) and creates the view in `host`, observes the host's size and listens to the
 * wheel on `stage` (not passive: Svelte's onwheel is, and the handlers cancel the page's scroll and
 * zoom). `onFail` gets the message when no view can start. Returns the teardown (for onMount).
 */
export function mountSliceView(
  model: HostedView,
  els: { host: HTMLElement; stage: HTMLElement; overlay: HTMLCanvasElement },
  wheel: (e: WheelEvent) => void,
  onFail: (message: string) => void,
  renderer: () => Promise<CreateSliceView>,
): () => void {
  let view: SliceView | null = null;
  let gone = false;
  const ro = new ResizeObserver(() => model.resized());
  els.stage.addEventListener('wheel', wheel, { passive: false });
  model.attachOverlay(els.overlay);
  renderer()
    .then((createSliceView) => {
      if (gone) return;
      view = createSliceView(els.host);
      model.attachView(view);
      ro.observe(els.host);
    })
    .catch((err: Error) => onFail(`The slice renderer could not start: ${err.message}`));
  return () => {
    gone = true;
    els.stage.removeEventListener('wheel', wheel);
    ro.disconnect();
    model.attachOverlay(null);
    model.detachView();
    view?.dispose();
    view = null;
  };
}

/** The point of a mouse event in CSS pixels from the top-left corner of `el`. */
export function localPoint(el: HTMLElement, e: MouseEvent): { x: number; y: number } {
  const r = el.getBoundingClientRect();
  return { x: e.clientX - r.left, y: e.clientY - r.top };
}

/**
 * The wheel on a view, alike in every view: Ctrl (or Cmd) + wheel zooms at the pointer, the wheel
 * alone steps (slices in the acquired view, the plane in a reformat).
 */
export function viewWheel(e: WheelEvent, host: HTMLElement, steps: WheelSteps, target: { zoom(factor: number, x: number, y: number): void; step(delta: number): void }): void {
  e.preventDefault();
  const dy = wheelPixels(e);
  if (e.ctrlKey || e.metaKey) {
    const p = localPoint(host, e);
    target.zoom(Math.exp(-dy / 500), p.x, p.y);
    return;
  }
  const s = steps.next(dy);
  if (s) target.step(s);
}

/**
 * A press on a view's stage, alike in every view: the left or middle button captures the pointer
 * and focuses the stage; 'pan' for the middle button or Shift + left, 'primary' for the left alone,
 * null for any other button (left to the browser).
 */
export function viewPress(e: PointerEvent): 'pan' | 'primary' | null {
  if (e.button !== 0 && e.button !== 1) return null;
  e.preventDefault();
  const el = e.currentTarget as HTMLElement;
  el.setPointerCapture(e.pointerId);
  el.focus();
  return e.button === 1 || e.shiftKey ? 'pan' : 'primary';
}

/** A wheel event's vertical delta in pixels (line and page modes converted). */
export function wheelPixels(e: WheelEvent): number {
  return e.deltaMode === 1 ? e.deltaY * 33 : e.deltaMode === 2 ? e.deltaY * 400 : e.deltaY;
}

/** Wheel deltas to steps: a mouse notch (~100 px) is one step; touchpad deltas add up to one. */
export class WheelSteps {
  private acc = 0;

  /** The step (-1, 0 or 1) a delta of `dy` pixels makes. */
  next(dy: number): number {
    if (Math.abs(dy) >= 50) {
      this.acc = 0;
      return Math.sign(dy);
    }
    this.acc += dy;
    if (Math.abs(this.acc) < 50) return 0;
    const s = Math.sign(this.acc);
    this.acc = 0;
    return s;
  }
}
