/**
 * Viewer keyboard shortcuts: one table drives both the key handler and the help overlay.
 * Pure (no DOM types beyond the key name); unit-tested.
 */
import { presets } from './window-level';

export type ViewerAction =
  | { kind: 'step'; delta: number }
  | { kind: 'first' }
  | { kind: 'last' }
  | { kind: 'preset'; key: string }
  | { kind: 'reset' }
  | { kind: 'interpolation' }
  | { kind: 'label'; dir: 1 | -1 }
  | { kind: 'overlay' }
  | { kind: 'layout' }
  /** The next top-scoring slice of the model's prediction (Shift: the previous). */
  | { kind: 'top' }
  | { kind: 'help' }
  | { kind: 'close' };

/** The action of a key (KeyboardEvent.key), or null when the viewer does not use it. */
export function actionFor(key: string): ViewerAction | null {
  switch (key) {
    case 'ArrowUp':
      return { kind: 'step', delta: -1 };
    case 'ArrowDown':
      return { kind: 'step', delta: 1 };
    case 'PageUp':
      return { kind: 'step', delta: -10 };
    case 'PageDown':
      return { kind: 'step', delta: 10 };
    case 'Home':
      return { kind: 'first' };
    case 'End':
      return { kind: 'last' };
    case 'r':
    case 'R':
      return { kind: 'reset' };
    case 'i':
    case 'I':
      return { kind: 'interpolation' };
    case 'n':
    case 'N':
    case ']':
      return { kind: 'label', dir: 1 };
    case 'p':
    case 'P':
    case '[':
      return { kind: 'label', dir: -1 };
    case 'o':
    case 'O':
      return { kind: 'overlay' };
    case 'l':
    case 'L':
      return { kind: 'layout' };
    case 't':
    case 'T':
      return { kind: 'top' };
    case '?':
      return { kind: 'help' };
    case 'Escape':
      return { kind: 'close' };
  }
  if (presets.some((p) => p.key === key)) return { kind: 'preset', key };
  return null;
}

/** Rows of the help overlay. */
export const shortcutHelp: readonly { keys: string[]; what: string }[] = [
  { keys: ['Wheel'], what: 'next / previous slice' },
  { keys: ['↑', '↓'], what: 'previous / next slice' },
  { keys: ['PgUp', 'PgDn'], what: '10 slices back / forward' },
  { keys: ['Home', 'End'], what: 'first / last slice' },
  ...presets.map((p) => ({ keys: [p.key], what: `${p.label} window (W ${p.width} L ${p.level})` })),
  { keys: ['Left drag'], what: 'window: right/left = wider/narrower, down/up = level up/down' },
  { keys: ['Shift+drag', 'Middle drag'], what: 'pan' },
  { keys: ['Ctrl+wheel'], what: 'zoom at the pointer (in three views, each view its own)' },
  { keys: ['R'], what: 'reset zoom, pan (every view) and window' },
  { keys: ['I'], what: 'nearest / linear interpolation' },
  { keys: ['N', ']'], what: 'next slice with labels' },
  { keys: ['P', '['], what: 'previous slice with labels' },
  { keys: ['O'], what: 'show / hide label overlays' },
  { keys: ['L'], what: 'one view / three views (axial, coronal, sagittal) with a linked crosshair' },
  { keys: ['Click'], what: 'in three views: move the crosshair there (the other views follow)' },
  { keys: ['T', 'Shift+T'], what: 'next / previous top-scoring slice of the model (after Predict)' },
  { keys: ['?'], what: 'this help' },
  { keys: ['Esc'], what: 'close help' },
];
