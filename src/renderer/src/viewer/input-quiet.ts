/**
 * Tells when the user's input has been quiet for a while. The viewer readies vtk.js only then (on
 * software WebGL each step, the WebGL context, the shader compile, the first real render, is a task
 * of 50-250 ms that a key pressed meanwhile has to wait for): while keys, the wheel or a drag keep
 * coming, the slice is drawn on the 2D overlay, which costs a few milliseconds a slice.
 *
 * DOM-free (any EventTarget; no vtk.js); unit-tested with a plain EventTarget in test/renderer/input-quiet.test.ts.
 */

/** Input that changes the picture: keys, the wheel, presses and drags (a hover alone redraws nothing). */
const INPUT_EVENTS = ['keydown', 'wheel', 'pointerdown', 'pointermove'] as const;

/** How long input must have been quiet before a step of vtk.js' warm-up, ms (viewer-state.svelte.ts' chosenQuietMs may change it). */
export const DEFAULT_QUIET_MS = 400;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class InputQuiet {
  private last: number;
  private disposed = false;

  /** Counts its own making as input: the viewer makes it at the first paint, just after the click or key that opened the series, when more keys are likeliest. */
  constructor(
    private readonly target: EventTarget,
    readonly quietMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.last = now();
    for (const type of INPUT_EVENTS) target.addEventListener(type, this.note, { capture: true, passive: true });
  }

  private readonly note = (e: Event): void => {
    // A pointer moving without a button is a hover: it only updates the readout.
    if (e.type === 'pointermove' && !(e as Event & { buttons?: number }).buttons) return;
    this.last = this.now();
  };

  /** Milliseconds since the last input (or the making). */
  get sinceInput(): number {
    return this.now() - this.last;
  }

  /**
   * Resolves once no input has come for `quietMs` (checked on a timer, so the caller's next step
   * starts in a task of its own); at once when `quietMs` is 0. Never rejects;
   * after dispose it resolves at once (the caller checks its own disposal).
   */
  async wait(): Promise<void> {
    if (this.quietMs <= 0) return;
    for (;;) {
      if (this.disposed) return;
      const left = this.quietMs - this.sinceInput;
      if (left <= 0) return;
      await sleep(Math.max(16, left));
    }
  }

  dispose(): void {
    this.disposed = true;
    for (const type of INPUT_EVENTS) this.target.removeEventListener(type, this.note, { capture: true });
  }
}
