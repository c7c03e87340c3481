/**
 * InputQuiet (src/renderer/src/viewer/input-quiet.ts): the viewer's vtk.js warm-up steps wait until
 * the user's keys, wheel and drags have been quiet for a while. A plain EventTarget stands in for
 * the window; the clock and timers are vitest's fake ones.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InputQuiet } from '../../src/renderer/src/viewer/input-quiet';

const input = (type: string, extra: Record<string, unknown> = {}) => Object.assign(new Event(type), extra);

describe('InputQuiet', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Whether `p` has settled after the timers ran `ms` further. */
  async function settledAfter(p: Promise<void>, ms: number, state: { done: boolean }): Promise<boolean> {
    await vi.advanceTimersByTimeAsync(ms);
    return state.done;
  }

  const track = (p: Promise<void>) => {
    const state = { done: false };
    void p.then(() => (state.done = true));
    return state;
  };

  it('counts its making as input; with quietMs 0 resolves at once whatever the input', async () => {
    const target = new EventTarget();
    const q = new InputQuiet(target, 400, () => Date.now());
    const first = track(q.wait());
    expect(await settledAfter(Promise.resolve(), 390, first)).toBe(false);
    expect(await settledAfter(Promise.resolve(), 20, first)).toBe(true);
    const none = new InputQuiet(target, 0, () => Date.now());
    target.dispatchEvent(input('keydown'));
    const second = track(none.wait());
    expect(await settledAfter(Promise.resolve(), 0, second)).toBe(true);
  });

  it('waits until no key has come for quietMs, however long the keys go on', async () => {
    const target = new EventTarget();
    const q = new InputQuiet(target, 400, () => Date.now());
    target.dispatchEvent(input('keydown'));
    const state = track(q.wait());
    // A key every 100 ms for a second: never quiet for 400 ms.
    for (let i = 0; i < 10; i++) {
      expect(await settledAfter(Promise.resolve(), 100, state)).toBe(false);
      target.dispatchEvent(input('keydown'));
    }
    expect(await settledAfter(Promise.resolve(), 390, state)).toBe(false);
    expect(await settledAfter(Promise.resolve(), 30, state)).toBe(true);
  });

  it('counts the wheel, presses and drags, not a hover; stops listening once disposed', async () => {
    const target = new EventTarget();
    const q = new InputQuiet(target, 300, () => Date.now());
    await vi.advanceTimersByTimeAsync(1000);
    target.dispatchEvent(input('pointermove', { buttons: 0 }));
    expect(q.sinceInput).toBe(1000);
    for (const e of [input('wheel'), input('pointerdown'), input('pointermove', { buttons: 1 })]) {
      await vi.advanceTimersByTimeAsync(50);
      target.dispatchEvent(e);
      expect(q.sinceInput).toBe(0);
    }
    const state = track(q.wait());
    expect(await settledAfter(Promise.resolve(), 200, state)).toBe(false);
    q.dispose();
    target.dispatchEvent(input('keydown'));
    expect(q.sinceInput).toBeGreaterThanOrEqual(200);
    // Disposed: the waiting caller is let go on its next check.
    expect(await settledAfter(Promise.resolve(), 120, state)).toBe(true);
  });
});
