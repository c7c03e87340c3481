import { afterEach, describe, expect, it } from 'vitest';
import { storedChoice, storedInt } from '../../src/renderer/src/viewer/stored-knob';

/** A Map standing in for the page's localStorage (the knobs read getItem only). */
function withStorage(values: Record<string, string>): void {
  (globalThis as { localStorage?: unknown }).localStorage = { getItem: (k: string) => (k in values ? values[k] : null) };
}

describe('the viewer benchmark knobs in localStorage', () => {
  afterEach(() => delete (globalThis as { localStorage?: unknown }).localStorage);

  it('takes an allowed choice and an integer in range, else the default', () => {
    withStorage({ enc: 'deflate', bad: 'zip', n: '4', big: '7', frac: '2.5', neg: '-1', empty: '' });
    expect(storedChoice('enc', ['delta8', 'deflate'] as const, 'delta8')).toBe('deflate');
    expect(storedChoice('bad', ['delta8', 'deflate'] as const, 'delta8')).toBe('delta8');
    expect(storedChoice('unset', ['delta8', 'deflate'] as const, 'delta8')).toBe('delta8');
    expect(storedInt('n', 0, 6, 0)).toBe(4);
    expect(storedInt('big', 0, 6, 0)).toBe(0);
    expect(storedInt('frac', 0, 6, 1)).toBe(1);
    expect(storedInt('neg', 0, 6, 1)).toBe(1);
    expect(storedInt('empty', 0, 6, 3)).toBe(3);
    expect(storedInt('unset', 0, 5000, 400)).toBe(400);
  });

  it('falls back to the default where storage is unavailable (throws or is absent)', () => {
    (globalThis as { localStorage?: unknown }).localStorage = {
      getItem: () => {
        throw new Error('SecurityError');
      },
    };
    expect(storedInt('n', 0, 6, 2)).toBe(2);
    expect(storedChoice('enc', ['a', 'b'] as const, 'a')).toBe('a');
    delete (globalThis as { localStorage?: unknown }).localStorage;
    expect(storedInt('n', 0, 6, 2)).toBe(2);
  });
});
