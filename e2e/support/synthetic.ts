/**
 * A small real DICOM series with known HU everywhere, written to disk (CT Image Storage, explicit
 * VR little endian, through the project's Part 10 writer) and then indexed and served by a real
 * `ctssl serve`, to check what the viewer draws and reads out:
 *
 *   - a horizontal ramp from -1000 HU (column 0) to +1000 HU (last column) as background;
 *   - a 1000 HU marker in the top-left corner (columns 0..23, rows 0..15): must appear top-left;
 *   - padding (PixelPaddingValue) in the bottom-right corner (columns >= 80, rows >= 48): always black;
 *   - a centre block (columns 40..56, rows 26..38) of 100 + k HU on display slice k: the HU readout;
 *   - a 300 HU disk whose radius changes with the slice: scrolling changes the picture.
 *
 * Pixels are 1.0 mm wide and 1.5 mm tall, so the 96 x 64 slice is 96 x 96 mm on screen. Slices are
 * axial, head first in display order: display slice k lies at z = TOP_Z - 2.5 k.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CT_IMAGE_STORAGE, ds, encodePart10, type DicomElement } from '../../src/core/synth/dicom';

export const COLS = 96;
export const ROWS = 64;
export const SLICES = 40;
export const SX = 1.0;
export const SY = 1.5;
export const THICKNESS = 2.5;
export const TOP_Z = 0;
/** Stored value of padding pixels (PixelPaddingValue). */
export const PADDING_STORED = -2000;
export const PATIENT_ID = 'SYNTH-01';
export const DESCRIPTION = 'Synthetic ramp phantom';

/** HU at column i, row j of display slice k; null for padding. */
export function huAt(i: number, j: number, k: number): number | null {
  if (i >= 80 && j >= 48) return null;
  if (i < 24 && j < 16) return 1000;
  if (Math.abs(i - 48) <= 8 && Math.abs(j - 32) <= 6) return 100 + k;
  const r = 3 + (k % 10);
  if ((i - 20) ** 2 + (j - 40) ** 2 <= r * r) return 300;
  return Math.round(-1000 + (2000 * i) / (COLS - 1));
}

const ROOT = '1.2.826.0.1.3680043.8.498.77';

/** Writes the series into `dir` (one file per slice, in scrambled order); returns the folder. */
export function writeSyntheticSeries(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const E = (tag: number, vr: DicomElement['vr'], value: DicomElement['value']): DicomElement => ({ tag, vr, value });
  for (let k = 0; k < SLICES; k++) {
    const pixels = new Int16Array(COLS * ROWS);
    for (let j = 0; j < ROWS; j++) for (let i = 0; i < COLS; i++) pixels[j * COLS + i] = huAt(i, j, k) ?? PADDING_STORED;
    const sop = `${ROOT}.3.${k + 1}`;
    const z = TOP_Z - THICKNESS * k;
    const elements: DicomElement[] = [
      E(0x00080016, 'UI', CT_IMAGE_STORAGE),
      E(0x00080018, 'UI', sop),
      E(0x00080020, 'DA', '20240101'),
      E(0x00080060, 'CS', 'CT'),
      E(0x00080070, 'LO', 'CT SSL Studio e2e'),
      E(0x0008103e, 'LO', DESCRIPTION),
      E(0x00100010, 'PN', 'Phantom^Ramp'),
      E(0x00100020, 'LO', PATIENT_ID),
      E(0x00180050, 'DS', ds(THICKNESS)),
      E(0x0020000d, 'UI', `${ROOT}.1`),
      E(0x0020000e, 'UI', `${ROOT}.2`),
      E(0x00200011, 'IS', '3'),
      // Instance numbers do not follow the position: the viewer must order by geometry.
      E(0x00200013, 'IS', String(((k * 7) % SLICES) + 1)),
      E(0x00200032, 'DS', ['0', '0', ds(z)].join('\\')),
      E(0x00200037, 'DS', '1\\0\\0\\0\\1\\0'),
      E(0x00200052, 'UI', `${ROOT}.4`),
      E(0x00280002, 'US', [1]),
      E(0x00280004, 'CS', 'MONOCHROME2'),
      E(0x00280010, 'US', [ROWS]),
      E(0x00280011, 'US', [COLS]),
      // Row spacing (between rows, vertical) first, then column spacing.
      E(0x00280030, 'DS', `${ds(SY)}\\${ds(SX)}`),
      E(0x00280100, 'US', [16]),
      E(0x00280101, 'US', [16]),
      E(0x00280102, 'US', [15]),
      E(0x00280103, 'US', [1]),
      E(0x00280120, 'SS', [PADDING_STORED]),
      E(0x00281052, 'DS', '0'),
      E(0x00281053, 'DS', '1'),
    ];
    writeFileSync(join(dir, `IM${String((k * 13) % 97).padStart(3, '0')}-${k}.dcm`), encodePart10(CT_IMAGE_STORAGE, sop, elements, pixels));
  }
  return dir;
}

/** Expected grey level (0..255) of a HU value in a window, as a linear ramp clamped at both ends. */
export function expectedGrey(hu: number, width: number, level: number): number {
  const lo = level - width / 2;
  return Math.max(0, Math.min(255, ((hu - lo) / width) * 255));
}
