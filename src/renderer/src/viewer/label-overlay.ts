/**
 * Label masks as an RGBA picture the size of the slice (one pixel per voxel): each visible group
 * filled in its colour at the chosen opacity, with its outline opaque so that small nodules stay
 * visible. Pure (no DOM); the viewer draws the result into a 2D canvas over the vtk.js view with
 * `imageRect` (slice-geometry.ts), so it follows zoom and pan. Unit-tested.
 */

export interface OverlayGroup {
  /** Group key as in SliceMasks ("sourceId:group"). */
  key: string;
  mask: Uint8Array;
}

export interface OverlayStyle {
  /** Fill opacity, 0..1 (outlines stay opaque). */
  opacity: number;
  /** Draw the outline. */
  outline: boolean;
  colours: Record<string, string>;
  hidden: Record<string, boolean>;
}

/** Okabe-Ito colours (distinguishable with colour-vision deficiencies), orange first. */
export const PALETTE = ['#e69f00', '#56b4e9', '#009e73', '#f0e442', '#0072b2', '#d55e00', '#cc79a7'] as const;

export function hexToRgb(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex.trim());
  if (!m) return [255, 0, 255];
  return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
}

/**
 * Composes the groups into `out` (width * height * 4 bytes, cleared first). Returns the bounding
 * box of the drawn pixels in voxel coordinates, or null when nothing was drawn.
 */
export function composeOverlay(
  groups: readonly OverlayGroup[],
  width: number,
  height: number,
  style: OverlayStyle,
  out: Uint8ClampedArray,
): { i0: number; j0: number; i1: number; j1: number } | null {
  out.fill(0);
  const fillA = Math.round(Math.max(0, Math.min(1, style.opacity)) * 255);
  let i0 = Infinity;
  let j0 = Infinity;
  let i1 = -Infinity;
  let j1 = -Infinity;
  for (const g of groups) {
    if (style.hidden[g.key]) continue;
    const [r, gg, b] = hexToRgb(style.colours[g.key] ?? PALETTE[0]);
    const m = g.mask;
    if (m.length !== width * height) continue;
    for (let j = 0; j < height; j++) {
      const row = j * width;
      for (let i = 0; i < width; i++) {
        if (!m[row + i]) continue;
        const edge =
          i === 0 || j === 0 || i === width - 1 || j === height - 1 || !m[row + i - 1] || !m[row + i + 1] || !m[row - width + i] || !m[row + width + i];
        const a = edge && style.outline ? 255 : fillA;
        if (a === 0) continue;
        const o = (row + i) * 4;
        // Later groups draw over earlier ones where they overlap.
        out[o] = r;
        out[o + 1] = gg;
        out[o + 2] = b;
        out[o + 3] = Math.max(out[o + 3], a);
        if (i < i0) i0 = i;
        if (i > i1) i1 = i;
        if (j < j0) j0 = j;
        if (j > j1) j1 = j;
      }
    }
  }
  return i1 < 0 ? null : { i0, j0, i1, j1 };
}

/** The labelled slice after (dir 1) or before (dir -1) `from` in a sorted list of indices, or null. */
export function nextLabelled(indices: readonly number[], from: number, dir: 1 | -1): number | null {
  if (dir > 0) {
    for (const k of indices) if (k > from) return k;
  } else {
    for (let n = indices.length - 1; n >= 0; n--) if (indices[n] < from) return indices[n];
  }
  return null;
}
