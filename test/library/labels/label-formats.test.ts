import { describe, expect, it } from 'vitest';
import { describeLabelReport } from '../../../src/library/labels/label-formats';

describe('what a label import report says (each format\'s describe)', () => {
  it('summarises an LIDC report with every unmatched ROI and its reason', () => {
    const v = describeLabelReport({
      kind: 'lidc-xml',
      file: '/d/069.xml',
      sourceId: 1,
      seriesInstanceUid: '1.2',
      seriesIndexed: true,
      readers: 4,
      nodules: 13,
      groupedNodules: 1,
      smallNodules: 9,
      nonNodules: 13,
      rois: 41,
      matchedRois: 32,
      unmatchedRois: [{ sopUid: '1.2.3', reader: 1, nodule: 'Nodule 002', z: -150, reason: 'no indexed image has this SOP Instance UID' }],
      warnings: [],
    });
    expect(v.headline).toBe('32 of 41 ROIs matched indexed slices');
    expect(v.facts).toContainEqual(['readers', '4']);
    expect(v.unmatched).toEqual([{ what: 'reader 1, Nodule 002, z -150 mm, SOP 1.2.3', reason: 'no indexed image has this SOP Instance UID' }]);
    expect(v.unmatchedCount).toBe(9);
    expect(v.incomplete).toBe(true);
    expect(v.format).toBe('LIDC-IDRI XML');
    expect(v.text.split('\n')[0]).toBe('/d/069.xml: LIDC XML for series 1.2');
  });

  it('summarises CSV and SEG reports', () => {
    const csv = describeLabelReport({ kind: 'rsna-csv', file: 'train.csv', sourceId: 2, rows: 1200, matchedRows: 1200, unmatchedRows: 0, unmatched: [], positiveImages: 31, warnings: [] });
    expect(csv.headline).toBe('1,200 of 1,200 rows matched indexed images');
    expect(csv.incomplete).toBe(false);
    const seg = describeLabelReport({ kind: 'dicom-seg', file: 's.dcm', sourceId: 3, seriesInstanceUid: '1.2', frames: 4, matchedFrames: 3, segments: [{ number: 1, label: 'N1', frames: 4, areaPx: 120 }], unmatchedFrames: [{ frame: 4, sopUid: '9', reason: 'not indexed' }], warnings: [] });
    expect(seg.headline).toBe('3 of 4 frames matched indexed slices');
    expect(seg.facts).toContainEqual(['segment 1: N1', '4 frames, 120 px']);
    expect(seg.unmatched).toHaveLength(1);
    expect(seg.incomplete).toBe(true);
    const attrs = describeLabelReport({ kind: 'attributes-csv', file: 'a.csv', sourceId: 4, rows: 3, matchedRows: 2, unmatchedRows: 1, unmatched: [{ row: 3, key: 'P9', reason: 'no indexed patient or study with this key' }], warnings: [] });
    expect(attrs.headline).toBe('2 of 3 rows matched indexed patients or studies');
    expect(attrs.text).toBe('a.csv: patient attributes: 3 rows, 2 matched, 1 not\n    row 3 P9: no indexed patient or study with this key');
  });
});
