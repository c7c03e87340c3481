/**
 * Contours to masks, pure. The rule (also implemented independently in Python for the fixture
 * sidecar, test/fixtures/labels/make_expected.py): a pixel belongs to a contour's mask when its
 * centre (integer coordinates) is inside the closed polygon by the even-odd rule with half-open
 * edges, or when it lies on the outline (the polygon's edges drawn with Bresenham lines).
 * Exclusion contours remove their interior (not their outline) from the union of inclusions.
 */

export type Point = [number, number];

/** Marks the pixels whose centres lie inside the polygon (even-odd, half-open edges). */
export function fillPolygon(points: Point[], rows: number, cols: number, out: Uint8Array, value = 1): void {
  const n = points.length;
  if (n < 3) return;
  let minY = Infinity;
  let maxY = -Infinity;
  for (const [, y] of points) {
    minY = Math.min(minY, y);
    maxY = Math.max(maxY, y);
  }
  const xs: number[] = [];
  for (let y = Math.max(0, Math.ceil(minY)); y <= Math.min(rows - 1, Math.floor(maxY)); y++) {
    xs.length = 0;
    for (let i = 0; i < n; i++) {
      const [x1, y1] = points[i];
      const [x2, y2] = points[(i + 1) % n];
      if ((y1 <= y && y < y2) || (y2 <= y && y < y1)) xs.push(x1 + ((y - y1) * (x2 - x1)) / (y2 - y1));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const from = Math.max(0, Math.ceil(xs[k]));
      const to = Math.min(cols - 1, Math.ceil(xs[k + 1]) - 1);
      for (let x = from; x <= to; x++) out[y * cols + x] = value;
    }
  }
}

/** Draws the closed outline with Bresenham lines. */
export function drawOutline(points: Point[], rows: number, cols: number, out: Uint8Array, value = 1): void {
  const n = points.length;
  const plot = (x: number, y: number) => {
    if (x >= 0 && y >= 0 && x < cols && y < rows) out[y * cols + x] = value;
  };
  if (n === 1) {
    plot(Math.round(points[0][0]), Math.round(points[0][1]));
    return;
  }
  for (let i = 0; i < n; i++) {
    let [x0, y0] = points[i].map(Math.round) as Point;
    const [x1, y1] = points[(i + 1) % n].map(Math.round) as Point;
    const dx = Math.abs(x1 - x0);
    const dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1;
    const sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      plot(x0, y0);
      if (x0 === x1 && y0 === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
}

/** Mask of one slice's ROIs: union of inclusion contours (interior and outline) minus exclusion interiors. */
export function roisToMask(rois: { points: Point[]; inclusion: boolean }[], rows: number, cols: number): Uint8Array {
  const mask = new Uint8Array(rows * cols);
  for (const r of rois) {
    if (!r.inclusion) continue;
    fillPolygon(r.points, rows, cols, mask);
    drawOutline(r.points, rows, cols, mask);
  }
  const holes = rois.filter((r) => !r.inclusion);
  if (holes.length > 0) {
    const hole = new Uint8Array(rows * cols);
    for (const r of holes) fillPolygon(r.points, rows, cols, hole);
    for (let i = 0; i < mask.length; i++) if (hole[i]) mask[i] = 0;
  }
  return mask;
}

export function area(mask: Uint8Array): number {
  let a = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) a++;
  return a;
}

/** Pixels marked by at least k of the masks (consensus of readers). */
export function consensus(masks: Uint8Array[], k: number): Uint8Array {
  if (masks.length === 0) return new Uint8Array(0);
  const n = masks[0].length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (const m of masks) if (m[i]) c++;
    if (c >= k) out[i] = 1;
  }
  return out;
}

/** Packs a 0/1 mask into bits, most significant bit first (DICOM SEG BINARY uses LSB first: see packBitsLsb). */
export function packBits(mask: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(mask.length / 8));
  for (let i = 0; i < mask.length; i++) if (mask[i]) out[i >> 3] |= 0x80 >> (i & 7);
  return out;
}

export function unpackBits(bits: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (bits[i >> 3] >> (7 - (i & 7))) & 1;
  return out;
}

/** DICOM BINARY segmentation frames pack pixels least significant bit first. */
export function packBitsLsb(mask: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(mask.length / 8));
  for (let i = 0; i < mask.length; i++) if (mask[i]) out[i >> 3] |= 1 << (i & 7);
  return out;
}

export function unpackBitsLsb(bits: Uint8Array, length: number, bitOffset = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const b = i + bitOffset;
    out[i] = (bits[b >> 3] >> (b & 7)) & 1;
  }
  return out;
}
