/**
 * HU planes of a series in display order and radiological display orientation, as one Int16Array
 * block: what the viewer requests slice blocks from, and what exports and training read.
 *
 * Slices come in the order of `seriesPlanes` (along the slice normal: axial superior first,
 * coronal anterior first, sagittal right first). Each plane goes through the series'
 * `displayTransform`, so display +x points to the patient's left (axial, coronal) and +y
 * posterior (axial) or inferior (coronal, sagittal). Padding pixels are PADDING_SENTINEL.
 *
 * A block reads each file once: the planes of the block are grouped by file (multi-frame objects
 * contribute several planes), files are read a few at a time, and every needed frame is decoded
 * from the one parse of its file.
 */
import { readFile } from 'node:fs/promises';
import type { SliceOrientation } from '../../shared/types';
import { type DisplayTransform, displayTransform, edgeLabels, type SeriesGeometry, toDisplay } from '../../core/dicom/geometry';
import type { Vec3 } from '../../core/dicom/header';
import { type FrameHU, frameToHU, openPixelSource, PixelDataError } from './pixels';
import { type PlaneRef, seriesPlanes } from '../db/catalog';
import type { Database } from '../db/sqlite';

/** The Int16 value of padding pixels (and never of tissue: HU are clamped to -32767..32767). */
export const PADDING_SENTINEL = -32768;
const HU_MIN = -32767;
const HU_MAX = 32767;

export interface VolumeOptions {
  /** First slice of the block, in display order (default 0). */
  start?: number;
  /** Number of slices (default: to the end of the series). */
  count?: number;
  /** Files read at the same time (default 8). */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface VolumeBlock {
  seriesId: number;
  /** HU, slice-major then row-major in display orientation: data[(k * height + y) * width + x]. */
  data: Int16Array;
  width: number;
  height: number;
  start: number;
  count: number;
  /** Slices in the whole series. */
  totalSlices: number;
  orientation: SliceOrientation;
  /** How stored rows/columns were moved to display; also the patient directions of display +x/+y. */
  transform: DisplayTransform;
  labels: { left: string; right: string; top: string; bottom: string };
  /** Millimetres between display pixels along x and y (null when the header has no PixelSpacing). */
  pixelSpacing: [number, number] | null;
  /** Median distance between slices along the normal, mm. */
  sliceSpacing: number | null;
  /** ImagePositionPatient of each slice of the block (of stored pixel (0,0)), when known. */
  positions: (Vec3 | null)[];
  /** Signed distance of each slice along the display stack direction, mm. */
  distances: number[];
  /** Any slice came from a lossy encoding. */
  lossy: boolean;
  /** Number of padding pixels in the block. */
  paddingCount: number;
  warnings: string[];
}

export interface SeriesLayout {
  geometry: SeriesGeometry;
  planes: PlaneRef[];
  transform: DisplayTransform;
}

/** The ordered planes and display transform of a series (no pixels read). */
export function seriesLayout(db: Database, seriesId: number): SeriesLayout {
  const { geometry, planes } = seriesPlanes(db, seriesId);
  if (planes.length === 0) throw new Error(`series ${seriesId} has no image planes in the library`);
  const iop = geometry.planes[0]?.orientation ?? null;
  return { geometry, planes, transform: displayTransform(iop, geometry.orientation) };
}

/** Runs fn over items with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
      const item = items[next++];
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Loads a block of slices of a series as Int16 HU in display orientation. */
export async function loadSeriesVolume(db: Database, seriesId: number, options: VolumeOptions = {}): Promise<VolumeBlock> {
  const layout = seriesLayout(db, seriesId);
  return loadLayoutBlock(seriesId, layout, options);
}

/** One decoded plane handed to a PlaneSink: HU in the requested orientation (NaN = padding). */
export interface PlaneVisit {
  /** Index of the plane in the block (0-based). */
  slot: number;
  hu: Float32Array;
  width: number;
  height: number;
  frame: FrameHU;
  path: string;
}

export interface PlaneReadOptions {
  start?: number;
  count?: number;
  concurrency?: number;
  signal?: AbortSignal;
}

/** Slices [start, start+count) of a layout, validated. */
export function blockRange(layout: SeriesLayout, start = 0, count?: number): { start: number; count: number } {
  const total = layout.planes.length;
  if (!Number.isInteger(start) || start < 0 || start >= total) throw new Error(`start must be an integer in 0..${total - 1}, got ${start}`);
  const n = count ?? total - start;
  if (!Number.isInteger(n) || n < 1 || start + n > total) throw new Error(`count must be an integer in 1..${total - start}, got ${count}`);
  return { start, count: n };
}

/**
 * Decodes planes [start, start+count) of a layout, each file read and parsed once, and hands each
 * plane, moved by `transform`, to `visit`. All planes must have the size of the first one.
 */
export async function readPlanes(
  layout: SeriesLayout,
  transform: Pick<DisplayTransform, 'transpose' | 'flipX' | 'flipY'>,
  options: PlaneReadOptions,
  visit: (p: PlaneVisit) => void,
): Promise<void> {
  const { start, count } = blockRange(layout, options.start, options.count);
  const block = layout.planes.slice(start, start + count);
  const byFile = new Map<string, { frame: number; slot: number }[]>();
  block.forEach((p, slot) => {
    if (!p.path) throw new Error(`slice ${start + slot} has no file in the library`);
    const list = byFile.get(p.path) ?? [];
    list.push({ frame: p.frame, slot });
    byFile.set(p.path, list);
  });
  let rows = -1;
  let columns = -1;
  await pool(
    [...byFile.entries()],
    options.concurrency ?? 8,
    async ([path, wanted]) => {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(path));
      } catch (err) {
        throw new PixelDataError(path, '', `cannot read the file: ${err instanceof Error ? err.message : String(err)}`);
      }
      const src = openPixelSource(bytes, { source: path });
      for (const { frame, slot } of wanted) {
        const h = frameToHU(await src.decode(frame), path);
        if (rows < 0) {
          rows = h.rows;
          columns = h.columns;
        } else if (h.rows !== rows || h.columns !== columns) {
          throw new PixelDataError(path, h.transferSyntaxUid, `frame ${frame} is ${h.columns}x${h.rows} but another slice of the series is ${columns}x${rows}: planes of different sizes cannot form a volume`);
        }
        const identity = !transform.transpose && !transform.flipX && !transform.flipY;
        let hu = h.hu;
        let width = columns;
        let height = rows;
        if (!identity) {
          hu = new Float32Array(h.hu.length);
          ({ width, height } = toDisplay(h.hu, rows, columns, transform, hu));
        }
        visit({ slot, hu, width, height, frame: h, path });
      }
    },
    options.signal,
  );
}

/** As loadSeriesVolume, over a layout already computed (the viewer keeps one per open series). */
export async function loadLayoutBlock(seriesId: number, layout: SeriesLayout, options: VolumeOptions = {}): Promise<VolumeBlock> {
  const { geometry, planes, transform } = layout;
  const { start, count } = blockRange(layout, options.start, options.count);
  const block = planes.slice(start, start + count);
  let width = 0;
  let height = 0;
  let data: Int16Array | null = null;
  let pixelSpacing: [number, number] | null = null;
  let lossy = false;
  let paddingCount = 0;
  let clamped = 0;
  const warnings = new Set<string>(geometry.warnings);

  await readPlanes(layout, transform, { start, count, concurrency: options.concurrency, signal: options.signal }, (p) => {
    if (!data) {
      width = p.width;
      height = p.height;
      data = new Int16Array(width * height * count);
      const ps = p.frame.header.pixelSpacing;
      // PixelSpacing is [between rows, between columns]: display x runs along a row unless transposed.
      if (ps) pixelSpacing = transform.transpose ? [ps[0], ps[1]] : [ps[1], ps[0]];
    }
    lossy ||= p.frame.lossy;
    for (const w of p.frame.warnings) warnings.add(w);
    const out = data.subarray(p.slot * width * height, (p.slot + 1) * width * height);
    const plane = p.hu;
    for (let i = 0; i < plane.length; i++) {
      const v = plane[i];
      if (v !== v) {
        out[i] = PADDING_SENTINEL;
        paddingCount++;
      } else {
        const r = Math.round(v);
        if (r < HU_MIN || r > HU_MAX) clamped++;
        out[i] = r < HU_MIN ? HU_MIN : r > HU_MAX ? HU_MAX : r;
      }
    }
  });
  if (clamped > 0) warnings.add(`${clamped} pixels had HU outside -32767..32767 and were clamped`);
  if (lossy) warnings.add('some slices are lossy-compressed');

  const spacing = geometry.spacing === null ? null : Math.abs(geometry.spacing);
  return {
    seriesId,
    data: data!,
    width,
    height,
    start,
    count,
    totalSlices: planes.length,
    orientation: geometry.orientation,
    transform,
    labels: edgeLabels(transform),
    pixelSpacing,
    sliceSpacing: spacing,
    positions: block.map((p) => p.position),
    distances: block.map((p) => p.distance),
    lossy,
    paddingCount,
    warnings: [...warnings],
  };
}
