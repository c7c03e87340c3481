/**
 * What the import report of a label file (`ImportReport` of src/shared/results.ts, by kind of
 * file) says, in rows a researcher can read: a headline, the counts, and every unmatched item with
 * its reason. Pure; unit-tested.
 */
import type { ImportReport } from '../../../shared/results';

export interface ReportView {
  kind: string;
  file: string;
  headline: string;
  /** [label, value] pairs in display order. */
  facts: [string, string][];
  /** Items that did not match an indexed image, with the reason. */
  unmatched: { what: string; reason: string }[];
  /** How many unmatched items the file had (the list may be cut short by the services). */
  unmatchedCount: number;
  warnings: string[];
  /** True when something did not match or the series is not indexed. */
  incomplete: boolean;
}

const KIND_NAMES: Record<string, string> = {
  'lidc-xml': 'LIDC-IDRI XML',
  'rsna-csv': 'RSNA PE CSV',
  'dicom-seg': 'DICOM SEG',
  'attributes-csv': 'patient attributes CSV',
};

export function kindName(kind: string): string {
  return KIND_NAMES[kind] ?? kind;
}

const n = (v: number) => v.toLocaleString('en-US');

export function describeReport(r: ImportReport): ReportView {
  const facts: [string, string][] = [];
  const fact = (label: string, v: number | undefined) => {
    if (v !== undefined) facts.push([label, n(v)]);
  };
  const unmatched: ReportView['unmatched'] = [];
  let headline: string;
  let unmatchedCount: number;
  let incomplete = false;

  switch (r.kind) {
    case 'lidc-xml':
      headline = `${r.matchedRois} of ${r.rois} ROIs matched indexed slices`;
      if (!r.seriesIndexed) {
        headline += ' (the series is not in the library)';
        incomplete = true;
      }
      fact('readers', r.readers);
      fact('nodules ≥ 3 mm (per reader)', r.nodules);
      fact('nodules after grouping readers', r.groupedNodules);
      fact('small nodules < 3 mm', r.smallNodules);
      fact('non-nodules', r.nonNodules);
      fact('ROIs', r.rois);
      fact('matched ROIs', r.matchedRois);
      for (const u of r.unmatchedRois)
        unmatched.push({ what: `reader ${u.reader}, ${u.nodule}${u.z !== null ? `, z ${u.z} mm` : ''}, SOP ${u.sopUid}`, reason: u.reason });
      unmatchedCount = Math.max(unmatched.length, r.rois - r.matchedRois);
      break;
    case 'rsna-csv':
    case 'attributes-csv':
      headline = `${n(r.matchedRows)} of ${n(r.rows)} rows matched indexed ${r.kind === 'rsna-csv' ? 'images' : 'patients or studies'}`;
      fact('rows', r.rows);
      fact('matched rows', r.matchedRows);
      fact('unmatched rows', r.unmatchedRows);
      fact('exams', r.exams);
      fact('PE-positive images', r.positiveImages);
      for (const u of r.unmatched) unmatched.push({ what: `row ${u.row}: ${u.key}`, reason: u.reason });
      unmatchedCount = Math.max(unmatched.length, r.unmatchedRows);
      break;
    case 'dicom-seg':
      headline = `${r.matchedFrames} of ${r.frames} frames matched indexed slices`;
      facts.push(['segments', String(r.segments.length)]);
      for (const s of r.segments) facts.push([`segment ${s.number}: ${s.label}`, `${s.frames} frames, ${n(s.areaPx)} px`]);
      fact('frames', r.frames);
      fact('matched frames', r.matchedFrames);
      for (const u of r.unmatchedFrames) unmatched.push({ what: `frame ${u.frame}, SOP ${u.sopUid}`, reason: u.reason });
      unmatchedCount = Math.max(unmatched.length, r.frames - r.matchedFrames);
      break;
  }
  if (unmatchedCount > 0) incomplete = true;
  return { kind: r.kind, file: r.file, headline, facts, unmatched, unmatchedCount, warnings: r.warnings, incomplete };
}
