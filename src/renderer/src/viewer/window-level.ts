/**
 * Window/level presets and free adjustment. Pure; unit-tested.
 *
 * The window is kept within bounds (width 1..8000 HU, level -3000..4000 HU) so that its lower
 * edge never reaches the padding value (-32768): padding pixels always render black.
 */

export interface WindowLevel {
  /** Window width, HU. */
  width: number;
  /** Window centre (level), HU. */
  level: number;
}

export interface Preset extends WindowLevel {
  id: 'soft' | 'lung' | 'bone';
  label: string;
  /** Keyboard key that selects it. */
  key: string;
}

export const presets: readonly Preset[] = [
  { id: 'soft', label: 'Soft tissue', key: '1', level: 50, width: 350 },
  { id: 'lung', label: 'Lung', key: '2', level: -600, width: 1500 },
  { id: 'bone', label: 'Bone', key: '3', level: 400, width: 1800 },
];

export const DEFAULT_PRESET = presets[0];

export const LIMITS = { minWidth: 1, maxWidth: 8000, minLevel: -3000, maxLevel: 4000 } as const;

export function clampWindow(w: WindowLevel): WindowLevel {
  const width = Math.round(Math.min(LIMITS.maxWidth, Math.max(LIMITS.minWidth, w.width)));
  const level = Math.round(Math.min(LIMITS.maxLevel, Math.max(LIMITS.minLevel, w.level)));
  return { width, level };
}

/** The preset a window equals, if any. */
export function presetOf(w: WindowLevel): Preset | null {
  return presets.find((p) => p.width === w.width && p.level === w.level) ?? null;
}

/**
 * Window after a left-button drag of (dx, dy) CSS pixels from `start`: right widens, left narrows;
 * down raises the level, up lowers it. The step grows with the window so that narrow and wide
 * windows both adjust at a usable speed.
 */
export function dragWindow(start: WindowLevel, dx: number, dy: number): WindowLevel {
  const step = Math.max(1, start.width / 256);
  return clampWindow({ width: start.width + dx * step * 2, level: start.level + dy * step });
}

/** "W 350 L 50" */
export function windowText(w: WindowLevel): string {
  return `W ${w.width} L ${w.level}`;
}

/**
 * The slice as an RGBA picture of grey levels under the window, one pixel a voxel (level - width/2
 * black, level + width/2 white, linear between, as vtk.js maps them), into `rgba` (4 bytes a voxel,
 * e.g. an ImageData's data): the viewer's first paint, before vtk.js has drawn.
 */
export function windowedGrey(hu: Int16Array, w: WindowLevel, rgba: Uint8ClampedArray): Uint8ClampedArray {
  if (rgba.length !== hu.length * 4) throw new Error(`the picture has room for ${rgba.length / 4} pixels, the slice has ${hu.length} voxels`);
  const lo = w.level - w.width / 2;
  const scale = 255 / w.width;
  for (let i = 0; i < hu.length; i++) {
    const g = (hu[i] - lo) * scale;
    const v = g <= 0 ? 0 : g >= 255 ? 255 : g;
    rgba[4 * i] = v;
    rgba[4 * i + 1] = v;
    rgba[4 * i + 2] = v;
    rgba[4 * i + 3] = 255;
  }
  return rgba;
}
