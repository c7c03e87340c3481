/**
 * Where the slice sits on screen, shared by the vtk.js camera and the HU readout so that both
 * agree. Pure; unit-tested.
 *
 * World coordinates are millimetres in the slice plane: voxel (i, j) (column i, row j, row 0 at
 * the top as delivered) is centred at (i * sx, j * sy). The camera looks along +z with view-up -y,
 * so world x grows to the right and world y grows downwards on screen: no pixel is flipped.
 */

export interface SliceLayout {
  columns: number;
  rows: number;
  /** mm between columns (display x). */
  sx: number;
  /** mm between rows (display y). */
  sy: number;
}

/** Zoom and pan on top of "fit to the viewport". */
export interface ViewTransform {
  /** 1 = the whole slice fits. */
  zoom: number;
  /** Offset of the view centre from the slice centre, mm. */
  panX: number;
  panY: number;
}

export const FIT: ViewTransform = { zoom: 1, panX: 0, panY: 0 };

export interface CameraSetup {
  /** Focal point (x, y) in world mm; z is 0. */
  focal: [number, number];
  /** Half the viewport height in world mm (vtk.js parallelScale). */
  parallelScale: number;
}

export function sliceCentre(l: SliceLayout): [number, number] {
  return [((l.columns - 1) * l.sx) / 2, ((l.rows - 1) * l.sy) / 2];
}

/** Camera for a viewport of `width` x `height` CSS pixels. */
export function cameraFor(l: SliceLayout, width: number, height: number, t: ViewTransform = FIT): CameraSetup {
  const w = Math.max(1, width);
  const h = Math.max(1, height);
  const aspect = w / h;
  const halfH = (l.rows * l.sy) / 2;
  const halfW = (l.columns * l.sx) / 2;
  const fit = Math.max(halfH, halfW / aspect) * 1.02;
  const [cx, cy] = sliceCentre(l);
  return { focal: [cx + t.panX, cy + t.panY], parallelScale: fit / Math.max(1e-3, t.zoom) };
}

/** World mm under a CSS-pixel position (x right, y down from the viewport's top-left corner). */
export function screenToWorld(cam: CameraSetup, width: number, height: number, x: number, y: number): [number, number] {
  const mmPerPx = (2 * cam.parallelScale) / Math.max(1, height);
  return [cam.focal[0] + (x - width / 2) * mmPerPx, cam.focal[1] + (y - height / 2) * mmPerPx];
}

/** The voxel (column i, row j) under a CSS-pixel position, or null outside the slice. */
export function screenToVoxel(
  l: SliceLayout,
  cam: CameraSetup,
  width: number,
  height: number,
  x: number,
  y: number,
): { i: number; j: number } | null {
  const [wx, wy] = screenToWorld(cam, width, height, x, y);
  const i = Math.round(wx / l.sx);
  const j = Math.round(wy / l.sy);
  if (i < 0 || j < 0 || i >= l.columns || j >= l.rows) return null;
  return { i, j };
}

/** Zoom by `factor` keeping the world point under (x, y) in place. */
export function zoomAt(l: SliceLayout, t: ViewTransform, width: number, height: number, x: number, y: number, factor: number): ViewTransform {
  const zoom = Math.min(40, Math.max(0.25, t.zoom * factor));
  const before = cameraFor(l, width, height, t);
  const [wx, wy] = screenToWorld(before, width, height, x, y);
  const after = cameraFor(l, width, height, { ...t, zoom });
  const mmPerPx = (2 * after.parallelScale) / Math.max(1, height);
  const [cx, cy] = sliceCentre(l);
  return { zoom, panX: wx - (x - width / 2) * mmPerPx - cx, panY: wy - (y - height / 2) * mmPerPx - cy };
}

/** Pan by a drag of (dx, dy) CSS pixels: the image follows the pointer. */
export function panBy(l: SliceLayout, t: ViewTransform, width: number, height: number, dx: number, dy: number): ViewTransform {
  const cam = cameraFor(l, width, height, t);
  const mmPerPx = (2 * cam.parallelScale) / Math.max(1, height);
  return { ...t, panX: t.panX - dx * mmPerPx, panY: t.panY - dy * mmPerPx };
}

/**
 * Where the whole slice image lies on screen (CSS pixels from the viewport's top-left corner):
 * voxel (i, j) covers world [i*sx - sx/2, i*sx + sx/2] x [j*sy - sy/2, j*sy + sy/2], as vtk.js draws
 * it. A label overlay drawn into this rectangle lines up with the slice under any zoom and pan.
 */
export function imageRect(l: SliceLayout, cam: CameraSetup, width: number, height: number): { x: number; y: number; width: number; height: number } {
  const mmPerPx = (2 * cam.parallelScale) / Math.max(1, height);
  return {
    x: width / 2 + (-l.sx / 2 - cam.focal[0]) / mmPerPx,
    y: height / 2 + (-l.sy / 2 - cam.focal[1]) / mmPerPx,
    width: (l.columns * l.sx) / mmPerPx,
    height: (l.rows * l.sy) / mmPerPx,
  };
}
