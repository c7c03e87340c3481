/**
 * The body on a CT slice, pure: pixels above an HU threshold, largest 4-connected component (so
 * the scanner table and stray objects, separated from the patient by air, do not count). Its area
 * picks a scan's "middle slice" for the bias probe: the slice with the largest body cross-section.
 */
export function largestComponentArea(mask: Uint8Array, width: number, height: number): number {
  const labels = new Int32Array(width * height);
  const stack = new Int32Array(width * height);
  let best = 0;
  let next = 1;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    let top = 0;
    stack[top++] = start;
    labels[start] = next;
    let area = 0;
    while (top > 0) {
      const p = stack[--top];
      area++;
      const x = p % width;
      const y = (p - x) / width;
      if (x > 0 && mask[p - 1] && !labels[p - 1]) (labels[p - 1] = next), (stack[top++] = p - 1);
      if (x < width - 1 && mask[p + 1] && !labels[p + 1]) (labels[p + 1] = next), (stack[top++] = p + 1);
      if (y > 0 && mask[p - width] && !labels[p - width]) (labels[p - width] = next), (stack[top++] = p - width);
      if (y < height - 1 && mask[p + width] && !labels[p + width]) (labels[p + width] = next), (stack[top++] = p + width);
    }
    if (area > best) best = area;
    next++;
  }
  return best;
}

/** Body cross-section in pixels of a HU slice (NaN = padding, outside the body). */
export function bodyArea(hu: ArrayLike<number>, width: number, height: number, threshold = -500, step = 1): number {
  const w = Math.ceil(width / step);
  const h = Math.ceil(height / step);
  const mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) mask[y * w + x] = hu[y * step * width + x * step] > threshold ? 1 : 0;
  return largestComponentArea(mask, w, h) * step * step;
}

/** Index of the largest of `areas` (the first when tied); -1 for none. */
export function argMax(areas: number[]): number {
  let best = -1;
  for (let i = 0; i < areas.length; i++) if (best < 0 || areas[i] > areas[best]) best = i;
  return best;
}
