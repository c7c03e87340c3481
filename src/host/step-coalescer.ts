/**
 * Step events of a trainer go on to the renderers at most every STEP_EVENT_MS: a tiny preset takes
 * hundreds of steps a second, and one message per step flooded the page's connection (in the browser
 * a Playwright trace records every WebSocket frame; a run of thousands of steps left the page seconds
 * behind its own clicks). Each step sent carries the steps held since the last one (`earlierSteps`),
 * so that curves keep every point; any other event first sends the steps held before it, so that the
 * order is kept. What the library records is not affected: the recorder sees every event at once.
 */
import type { StepEvent, TrainerEvent } from '../shared/trainer-protocol';

export const STEP_EVENT_MS = 100;
/** Steps held at most (a flood of steps is sent on without waiting for the timer). */
const MAX_HELD = 1000;

export type CoalescedSend = (event: TrainerEvent, earlierSteps?: StepEvent[]) => void;

export interface StepCoalescer {
  push(event: TrainerEvent): void;
  /** Sends what is held now (the trainer ended). */
  flush(): void;
}

export function coalesceSteps(send: CoalescedSend, ms = STEP_EVENT_MS, now: () => number = Date.now): StepCoalescer {
  let held: StepEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let lastSent = -Infinity;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (held.length === 0) return;
    const steps = held;
    held = [];
    lastSent = now();
    send(steps[steps.length - 1], steps.length > 1 ? steps.slice(0, -1) : undefined);
  };
  return {
    push(event) {
      if (event.type !== 'step') {
        flush();
        send(event);
        return;
      }
      held.push(event);
      const since = now() - lastSent;
      if (since >= ms || held.length >= MAX_HELD) flush();
      else timer ??= setTimeout(flush, ms - since);
    },
    flush,
  };
}
