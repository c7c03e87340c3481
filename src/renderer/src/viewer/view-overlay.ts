/**
 * What every view (the acquired plane, the reformats) draws over its picture and reads under the
 * pointer: the overlay canvas sized to the view, pictures of one pixel a voxel scaled into the
 * picture's rectangle, the crosshair lines, and the HU / voxel / LPS readout.
 */
import { displayToStored, voxelToPatient } from '../../../core/dicom/patient-geometry';
import type { VolumeInfo } from '../../../shared/types';
import type { VolumeLoader } from './volume-loader';

/** The picture's rectangle on the view, CSS pixels (slice-geometry's imageRect). */
export type Rect = { x: number; y: number; width: number; height: number };

/**
 * Sizes the overlay canvas to the view (`width` x `height` CSS pixels at the device pixel ratio) and
 * clears it; the context it returns draws in CSS pixels. Null without a 2D context.
 */
export function clearOverlay(c: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D | null {
  const dpr = window.devicePixelRatio || 1;
  const W = Math.max(1, Math.floor(width * dpr));
  const H = Math.max(1, Math.floor(height * dpr));
  if (c.width !== W) c.width = W;
  if (c.height !== H) c.height = H;
  const ctx = c.getContext('2d');
  if (!ctx) return null;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, W, H);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** Draws `src` (one pixel a voxel) into the picture's rectangle, unsmoothed (or bilinear, `smooth`: the slice under linear interpolation). */
export function drawPicture(ctx: CanvasRenderingContext2D, src: CanvasImageSource, r: Rect, smooth = false): void {
  ctx.imageSmoothingEnabled = smooth;
  ctx.drawImage(src, r.x, r.y, r.width, r.height);
}

/** Puts `img` into the scratch canvas `src` (resized to it) and returns it, ready for drawPicture. */
export function pictureCanvas(src: HTMLCanvasElement, img: ImageData): HTMLCanvasElement {
  if (src.width !== img.width) src.width = img.width;
  if (src.height !== img.height) src.height = img.height;
  src.getContext('2d')!.putImageData(img, 0, 0);
  return src;
}

/** The crosshair through voxel (u, v) of a columns x rows picture: the horizontal line in `across`, the vertical one in `down`. */
export function drawCrosshair(
  ctx: CanvasRenderingContext2D,
  r: Rect,
  grid: { columns: number; rows: number },
  u: number,
  v: number,
  across: string,
  down: string,
): void {
  const px = r.x + ((u + 0.5) / grid.columns) * r.width;
  const py = r.y + ((v + 0.5) / grid.rows) * r.height;
  ctx.lineWidth = 1;
  ctx.strokeStyle = across;
  ctx.beginPath();
  ctx.moveTo(r.x, py);
  ctx.lineTo(r.x + r.width, py);
  ctx.stroke();
  ctx.strokeStyle = down;
  ctx.beginPath();
  ctx.moveTo(px, r.y);
  ctx.lineTo(px, r.y + r.height);
  ctx.stroke();
}

export interface HoverReadout {
  /** Display column and row of the voxel under the pointer (x right, y down on screen). */
  i: number;
  j: number;
  /** The slice of that voxel in the stack (0-based). */
  k: number;
  /** HU, or why there is none. */
  hu: number | 'padding' | 'loading';
  /** Voxel indices as the file has them: column, row, and the slice's index in the stack (0-based). */
  voxel: { i: number; j: number; k: number } | null;
  /** Patient coordinates of the voxel centre (LPS, mm); null without IPP/IOP. */
  lps: [number, number, number] | null;
}

/** The readout of display voxel (x, y) of slice k; `prev` itself when nothing changed (no reactive update). */
export function hoverReadout(info: VolumeInfo, loader: VolumeLoader, x: number, y: number, k: number, prev: HoverReadout | null): HoverReadout {
  const value = loader.value(k, x, y);
  const hu = value === null ? 'loading' : value === info.paddingValue ? 'padding' : value;
  if (prev && prev.i === x && prev.j === y && prev.k === k && prev.hu === hu) return prev;
  const f = info.frame;
  const stored = f ? displayToStored(f.stored, x, y) : null;
  return { i: x, j: y, k, hu, voxel: stored ? { ...stored, k } : null, lps: f ? voxelToPatient(f, x, y, k) : null };
}
