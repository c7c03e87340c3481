/**
 * Step events go on to the renderers at most every 100 ms, each carrying the steps held since the
 * last one, and never out of order with the other events (src/host/step-coalescer.ts).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { coalesceSteps } from '../../src/host/step-coalescer';
import type { StepEvent, TrainerEvent } from '../../src/shared/trainer-protocol';

const step = (n: number): StepEvent => ({ v: 1, type: 'step', step: n, epoch: 0, losses: { loss: 1 / n }, lr: 1e-3, slicesPerSecond: 0, etaSeconds: null, memory: { rssMb: 1, tensors: 1 } });
const stepsOf = (sent: { event: TrainerEvent; earlier?: StepEvent[] }[]) => sent.flatMap((s) => [...(s.earlier ?? []), s.event].map((e) => (e.type === 'step' ? e.step : e.type)));

describe('coalesceSteps', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sends the first step at once, holds the next ones for 100 ms, then sends them in one message with every point', () => {
    const sent: { event: TrainerEvent; earlier?: StepEvent[] }[] = [];
    const c = coalesceSteps((event, earlier) => sent.push({ event, earlier }));
    c.push(step(1));
    expect(sent).toHaveLength(1);
    for (let i = 2; i <= 50; i++) {
      vi.advanceTimersByTime(1);
      c.push(step(i));
    }
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(100);
    expect(sent).toHaveLength(2);
    expect(sent[1].event).toMatchObject({ type: 'step', step: 50 });
    expect(sent[1].earlier?.map((s) => s.step)).toEqual(Array.from({ length: 48 }, (_, i) => i + 2));
    expect(stepsOf(sent)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('1000 steps a second for 2 s become at most 21 messages', () => {
    const sent: { event: TrainerEvent; earlier?: StepEvent[] }[] = [];
    const c = coalesceSteps((event, earlier) => sent.push({ event, earlier }));
    for (let i = 1; i <= 2000; i++) {
      c.push(step(i));
      vi.advanceTimersByTime(1);
    }
    c.flush();
    expect(sent.length).toBeLessThanOrEqual(21);
    expect(stepsOf(sent)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
  });

  it('any other event sends the held steps first: a pause is never seen before the steps that preceded it', () => {
    const sent: { event: TrainerEvent; earlier?: StepEvent[] }[] = [];
    const c = coalesceSteps((event, earlier) => sent.push({ event, earlier }));
    c.push(step(1));
    c.push(step(2));
    c.push(step(3));
    c.push({ v: 1, type: 'paused', step: 3 });
    expect(stepsOf(sent)).toEqual([1, 2, 3, 'paused']);
    vi.advanceTimersByTime(1000);
    expect(sent).toHaveLength(3);
  });
});
