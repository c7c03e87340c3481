/**
 * Point markers that are not lesions (LIDC non-nodules) as small crosses over the slice: an RGBA
 * picture the size of the slice (one pixel per voxel), drawn as an overlay layer of the viewer
 * (ViewerState.overlayLayers) so it follows zoom and pan. Pure (no DOM: the viewer makes the ImageData);
 * the cross is `arm` voxels each way, in white with a dark edge so it shows on lung and bone alike.
 */

export interface Mark {
  index: number;
  x: number;
  y: number;
}

/** Paints crosses for the marks of slice `index` into `out` (width * height * 4); returns how many were drawn. */
export function paintMarks(marks: readonly Mark[], index: number, width: number, height: number, out: Uint8ClampedArray, arm = 4): number {
  out.fill(0);
  let drawn = 0;
  const put = (x: number, y: number, v: number, a: number) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const o = (y * width + x) * 4;
    if (out[o + 3] === 255 && v === 0) return; // the white stroke wins over its edge
    out[o] = v;
    out[o + 1] = v;
    out[o + 2] = v;
    out[o + 3] = a;
  };
  for (const m of marks) {
    if (m.index !== index) continue;
    const cx = Math.round(m.x);
    const cy = Math.round(m.y);
    if (cx < 0 || cy < 0 || cx >= width || cy >= height) continue;
    drawn++;
    for (let d = -arm - 1; d <= arm + 1; d++) {
      // dark edge around the strokes
      put(cx + d, cy - 1, 0, 200);
      put(cx + d, cy + 1, 0, 200);
      put(cx - 1, cy + d, 0, 200);
      put(cx + 1, cy + d, 0, 200);
    }
    for (let d = -arm; d <= arm; d++) {
      put(cx + d, cy, 255, 255);
      put(cx, cy + d, 255, 255);
    }
  }
  return drawn;
}

/** An overlay layer of the marks of a series: the picture of a slice (made by `make`, an ImageData in the viewer), or null when it has none. */
export function marksLayer<T>(
  marks: () => readonly Mark[],
  size: () => { width: number; height: number } | null,
  visible: () => boolean,
  make: (rgba: Uint8ClampedArray<ArrayBuffer>, width: number, height: number) => T,
): (slice: number) => T | null {
  let cache: { slice: number; marks: readonly Mark[]; image: T | null } | null = null;
  return (slice) => {
    const ms = marks();
    const dims = size();
    if (!visible() || !dims || !ms.some((m) => m.index === slice)) return null;
    if (cache && cache.slice === slice && cache.marks === ms) return cache.image;
    const rgba = new Uint8ClampedArray(dims.width * dims.height * 4);
    const n = paintMarks(ms, slice, dims.width, dims.height, rgba, Math.max(3, Math.round(Math.max(dims.width, dims.height) / 128)));
    const image = n ? make(rgba, dims.width, dims.height) : null;
    cache = { slice, marks: ms, image };
    return image;
  };
}
