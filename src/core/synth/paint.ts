/**
 * Painting primitives over one slice: a Float32 HU buffer and a Uint8 tissue label buffer, with
 * pixel centres at body-relative millimetres (x0 + i * ps, y0 + j * ps). Each primitive visits only
 * its bounding box and overwrites only pixels whose current label is in `allow` (a bit mask over
 * labels < 32), which is how organs nest (vessels only in lung, emboli only in contrast arteries).
 */
import type { Circle, Ellipse } from './anatomy';

export interface Canvas {
  size: number;
  ps: number;
  x0: number;
  y0: number;
  hu: Float32Array;
  lab: Uint8Array;
}

/** Bit mask of the given labels. */
export function mask(...labels: number[]): number {
  let m = 0;
  for (const l of labels) m |= 1 << l;
  return m;
}
export const ANY = 0xffffffff | 0;

function range(c: Canvas, lo: number, hi: number, origin: number): [number, number] {
  const a = Math.max(0, Math.ceil((lo - origin) / c.ps));
  const b = Math.min(c.size - 1, Math.floor((hi - origin) / c.ps));
  return [a, b];
}

export function paintEllipse(c: Canvas, e: Ellipse, label: number, hu: number, allow: number, grow = 0): void {
  const ax = e.ax + grow;
  const ay = e.ay + grow;
  if (ax <= 0 || ay <= 0) return;
  const ext = Math.max(ax, ay);
  const [i0, i1] = range(c, e.cx - ext, e.cx + ext, c.x0);
  const [j0, j1] = range(c, e.cy - ext, e.cy + ext, c.y0);
  const co = Math.cos(e.rot);
  const si = Math.sin(e.rot);
  const iax2 = 1 / (ax * ax);
  const iay2 = 1 / (ay * ay);
  const { size, lab, hu: H } = c;
  for (let j = j0; j <= j1; j++) {
    const dy = c.y0 + j * c.ps - e.cy;
    let p = j * size + i0;
    for (let i = i0; i <= i1; i++, p++) {
      if (!((allow >>> lab[p]) & 1)) continue;
      const dx = c.x0 + i * c.ps - e.cx;
      const u = dx * co + dy * si;
      const v = -dx * si + dy * co;
      if (u * u * iax2 + v * v * iay2 <= 1) {
        lab[p] = label;
        H[p] = hu;
      }
    }
  }
}

export function paintCircle(c: Canvas, k: Circle, label: number, hu: number, allow: number, grow = 0): void {
  paintEllipse(c, { cx: k.x, cy: k.y, ax: k.r, ay: k.r, rot: 0 }, label, hu, allow, grow);
}

/** A 2D capsule: all points within r of the segment (x0, y0)-(x1, y1). */
export function paintCapsule(c: Canvas, xa: number, ya: number, xb: number, yb: number, r: number, label: number, hu: number, allow: number): void {
  if (r <= 0) return;
  const [i0, i1] = range(c, Math.min(xa, xb) - r, Math.max(xa, xb) + r, c.x0);
  const [j0, j1] = range(c, Math.min(ya, yb) - r, Math.max(ya, yb) + r, c.y0);
  const dx = xb - xa;
  const dy = yb - ya;
  const len2 = dx * dx + dy * dy || 1e-9;
  const r2 = r * r;
  const { size, lab, hu: H } = c;
  for (let j = j0; j <= j1; j++) {
    const py = c.y0 + j * c.ps - ya;
    let p = j * size + i0;
    for (let i = i0; i <= i1; i++, p++) {
      if (!((allow >>> lab[p]) & 1)) continue;
      const px = c.x0 + i * c.ps - xa;
      let t = (px * dx + py * dy) / len2;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = px - t * dx;
      const ey = py - t * dy;
      if (ex * ex + ey * ey <= r2) {
        lab[p] = label;
        H[p] = hu;
      }
    }
  }
}

/**
 * A 3D tube segment (capsule of radius r between a and b, in body-relative mm with s as the third
 * axis) cut by the slice plane at depth s. Pixels get a partial-volume coverage
 * alpha = clamp((r - d) / ps + 0.5) and the HU is blended towards `hu`; the label is set where
 * alpha >= 0.5. Returns the number of labelled pixels. With `darker` the blend keeps the
 * minimum (for air lumens) instead of the maximum.
 */
export function paintTube(
  c: Canvas,
  s: number,
  a: readonly number[],
  b: readonly number[],
  r: number,
  label: number,
  hu: number,
  allow: number,
  darker = false,
): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const ds = b[2] - a[2];
  const len2 = dx * dx + dy * dy + ds * ds || 1e-9;
  // Parameter range where the segment is within r of the plane.
  let t0 = 0;
  let t1 = 1;
  if (Math.abs(ds) > 1e-9) {
    const ta = (s - r - a[2]) / ds;
    const tb = (s + r - a[2]) / ds;
    t0 = Math.max(0, Math.min(ta, tb));
    t1 = Math.min(1, Math.max(ta, tb));
    if (t0 > t1) return 0;
  } else if (Math.abs(s - a[2]) > r) return 0;
  const xa = a[0] + t0 * dx;
  const xb = a[0] + t1 * dx;
  const ya = a[1] + t0 * dy;
  const yb = a[1] + t1 * dy;
  const pad = r + c.ps;
  const [i0, i1] = range(c, Math.min(xa, xb) - pad, Math.max(xa, xb) + pad, c.x0);
  const [j0, j1] = range(c, Math.min(ya, yb) - pad, Math.max(ya, yb) + pad, c.y0);
  const inv = 1 / c.ps;
  const pz = s - a[2];
  const { size, lab, hu: H } = c;
  let n = 0;
  for (let j = j0; j <= j1; j++) {
    const py = c.y0 + j * c.ps - a[1];
    let p = j * size + i0;
    for (let i = i0; i <= i1; i++, p++) {
      if (!((allow >>> lab[p]) & 1)) continue;
      const px = c.x0 + i * c.ps - a[0];
      let t = (px * dx + py * dy + pz * ds) / len2;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = px - t * dx;
      const ey = py - t * dy;
      const ez = pz - t * ds;
      const d = Math.sqrt(ex * ex + ey * ey + ez * ez);
      let al = (r - d) * inv + 0.5;
      if (al <= 0) continue;
      if (al > 1) al = 1;
      const v = H[p] + (hu - H[p]) * al;
      if (darker ? v < H[p] : v > H[p]) H[p] = v;
      if (al >= 0.5 && lab[p] !== label) {
        lab[p] = label;
        n++;
      }
    }
  }
  return n;
}
