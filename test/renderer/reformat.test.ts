/**
 * Reformats resliced from the display volume (src/renderer/src/viewer/reformat.ts): the row and
 * column planes hold the voxels of that row / column of every slice, unloaded slices are padding,
 * the picture's pixel size comes from the spacing, index maps go both ways, and the views of an
 * axial series are named and labelled as a radiologist expects (coronal: R-L, S-I; sagittal: A-P, S-I).
 */
import { describe, expect, it } from 'vitest';
import { extractReformat, reformatEdgeLabels, reformatLayout, reformatToVolume, viewNames, volumeToReformat } from '../../src/renderer/src/viewer/reformat';
import type { VolumeInfo } from '../../src/shared/types';

const dims: [number, number, number] = [4, 3, 5];
const vox = new Int16Array(4 * 3 * 5).map((_, n) => n);
const at = (x: number, y: number, k: number) => k * 12 + y * 4 + x;

function axialInfo(): VolumeInfo {
  return {
    seriesId: 1,
    seriesInstanceUid: '1.2',
    dims,
    spacing: [0.7, 0.8, 2.5],
    orientation: 'axial',
    labels: { left: 'R', right: 'L', top: 'A', bottom: 'P' },
    positions: [0, 2.5, 5, 7.5, 10],
    paddingValue: -32768,
    frame: {
      origins: [0, 1, 2, 3, 4].map((k) => [-10, -20, 50 - 2.5 * k] as [number, number, number]),
      xStep: [0.7, 0, 0],
      yStep: [0, 0.8, 0],
      stored: { rows: 3, columns: 4, transpose: false, flipX: false, flipY: false },
    },
    metadata: {},
    warnings: [],
  };
}

describe('reformats', () => {
  it('the row plane is row y of every slice, the column plane column x; unloaded slices are padding', () => {
    const row = new Int16Array(4 * 5);
    extractReformat(vox, dims, (k) => k !== 3, 'row', 2, -32768, row);
    for (let k = 0; k < 5; k++) for (let x = 0; x < 4; x++) expect(row[k * 4 + x]).toBe(k === 3 ? -32768 : at(x, 2, k));
    const col = new Int16Array(3 * 5);
    extractReformat(vox, dims, () => true, 'column', 1, -32768, col);
    for (let k = 0; k < 5; k++) for (let y = 0; y < 3; y++) expect(col[k * 3 + y]).toBe(at(1, y, k));
  });

  it('pictures have the spacing of their axes, and indices map both ways', () => {
    expect(reformatLayout(dims, [0.7, 0.8, 2.5], 'row')).toEqual({ columns: 4, rows: 5, sx: 0.7, sy: 2.5 });
    expect(reformatLayout(dims, [0.7, 0.8, 2.5], 'column')).toEqual({ columns: 3, rows: 5, sx: 0.8, sy: 2.5 });
    for (const plane of ['row', 'column'] as const) {
      const p = reformatToVolume(plane, 2, 1, 4);
      expect(volumeToReformat(plane, p)).toEqual({ u: 1, v: 4, index: 2 });
    }
    expect(reformatToVolume('row', 2, 1, 4)).toEqual({ x: 1, y: 2, k: 4 });
    expect(reformatToVolume('column', 2, 1, 4)).toEqual({ x: 2, y: 1, k: 4 });
  });

  it('an axial series gives coronal and sagittal views with radiological edge labels', () => {
    const info = axialInfo();
    expect(viewNames(info)).toEqual(['axial', 'coronal', 'sagittal']);
    expect(reformatEdgeLabels(info, 'row')).toEqual({ left: 'R', right: 'L', top: 'S', bottom: 'I' });
    expect(reformatEdgeLabels(info, 'column')).toEqual({ left: 'A', right: 'P', top: 'S', bottom: 'I' });
  });
});
