/**
 * A synthetic series with known HU everywhere, to check what the viewer draws and reads out:
 *
 *   - a horizontal ramp from -1000 HU (column 0) to +1000 HU (last column) as background;
 *   - a 1000 HU marker in the top-left corner (columns 0..23, rows 0..15): must appear top-left;
 *   - padding (-32768) in the bottom-right corner (columns >= 80, rows >= 48): always black;
 *   - a centre block (columns 40..56, rows 26..38) of 100 + k HU on slice k: the HU readout;
 *   - a 300 HU disk whose radius changes with the slice: scrolling changes the picture.
 *
 * Pixels are 1.0 mm wide and 1.5 mm tall, so the 96 x 64 slice is 96 x 96 mm on screen.
 */
import type { SeriesRow, SliceBlock, VolumeInfo } from '../../src/shared/types';

export const COLS = 96;
export const ROWS = 64;
export const SLICES = 40;
export const SX = 1.0;
export const SY = 1.5;
export const PADDING = -32768;
export const SERIES_ID = 7;

export function huAt(i: number, j: number, k: number): number {
  if (i >= 80 && j >= 48) return PADDING;
  if (i < 24 && j < 16) return 1000;
  if (Math.abs(i - 48) <= 8 && Math.abs(j - 32) <= 6) return 100 + k;
  const r = 3 + (k % 10);
  if ((i - 20) ** 2 + (j - 40) ** 2 <= r * r) return 300;
  return Math.round(-1000 + (2000 * i) / (COLS - 1));
}

export function sliceBlock(start: number, count: number): SliceBlock {
  const data = new Int16Array(COLS * ROWS * count);
  for (let k = 0; k < count; k++)
    for (let j = 0; j < ROWS; j++) for (let i = 0; i < COLS; i++) data[k * COLS * ROWS + j * COLS + i] = huAt(i, j, start + k);
  return { seriesId: SERIES_ID, start, count, data };
}

export const volumeInfo: VolumeInfo = {
  seriesId: SERIES_ID,
  seriesInstanceUid: '1.2.826.0.1.3680043.8.498.1',
  dims: [COLS, ROWS, SLICES],
  spacing: [SX, SY, 2.5],
  orientation: 'axial',
  labels: { left: 'R', right: 'L', top: 'A', bottom: 'P' },
  positions: Array.from({ length: SLICES }, (_, k) => -100 + 2.5 * k),
  paddingValue: PADDING,
  metadata: { 'Patient ID': 'SYNTH-01', Modality: 'CT', Description: 'Synthetic ramp phantom', Slices: SLICES, Kernel: null },
  warnings: ['synthetic series: not from a scanner'],
};

export const seriesRow: SeriesRow = {
  id: SERIES_ID,
  seriesInstanceUid: volumeInfo.seriesInstanceUid,
  studyInstanceUid: '1.2.826.0.1.3680043.8.498.2',
  patientId: 'SYNTH-01',
  modality: 'CT',
  seriesNumber: 3,
  description: 'Synthetic ramp phantom',
  bodyPart: 'CHEST',
  manufacturer: 'Mock',
  model: 'M1',
  studyDate: '20240101',
  rows: ROWS,
  columns: COLS,
  slices: SLICES,
  instances: SLICES,
  sliceThickness: 2.5,
  spacing: 2.5,
  pixelSpacing: [SY, SX],
  orientation: 'axial',
  uniformSpacing: true,
  gantryTilt: 0,
  gaps: 0,
  multiFrame: false,
  contrast: false,
  kernel: 'B30f',
  derivedUids: false,
};

/** Expected grey level (0..255) of a HU value in a window, as a linear ramp clamped at both ends. */
export function expectedGrey(hu: number, width: number, level: number): number {
  const lo = level - width / 2;
  return Math.max(0, Math.min(255, ((hu - lo) / width) * 255));
}
