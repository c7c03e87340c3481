/**
 * What the import report of a label file says, in rows a researcher can read: a headline, the
 * counts, and every unmatched item with its reason. The services return the report as an open
 * record (its shape depends on the kind of file); this reads the fields it knows and ignores the
 * rest. Pure; unit-tested.
 */

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

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string => (typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v));
const arr = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as Record<string, unknown>[]) : []);

function baseName(path: string): string {
  const m = /[^/\\]+$/.exec(path);
  return m ? m[0] : path;
}

export function describeReport(r: Record<string, unknown>): ReportView {
  const kind = str(r.kind);
  const file = str(r.file);
  const facts: [string, string][] = [];
  const unmatched: ReportView['unmatched'] = [];
  const warnings = Array.isArray(r.warnings) ? r.warnings.map(str) : [];
  const fact = (label: string, v: unknown) => {
    const n = num(v);
    if (n !== null) facts.push([label, n.toLocaleString('en-US')]);
  };
  let headline = `${kindName(kind)}: ${baseName(file)}`;
  let unmatchedCount = 0;
  let incomplete = false;

  if (kind === 'lidc-xml') {
    const matched = num(r.matchedRois) ?? 0;
    const total = num(r.rois) ?? 0;
    headline = `${matched} of ${total} ROIs matched indexed slices`;
    if (r.seriesIndexed === false) {
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
    for (const u of arr(r.unmatchedRois)) {
      const z = num(u.z);
      unmatched.push({
        what: `reader ${str(u.reader)}, ${str(u.nodule)}${z !== null ? `, z ${z} mm` : ''}, SOP ${str(u.sopUid)}`,
        reason: str(u.reason),
      });
    }
    unmatchedCount = Math.max(unmatched.length, total - matched);
  } else if (kind === 'rsna-csv' || kind === 'attributes-csv') {
    const matched = num(r.matchedRows) ?? 0;
    const rows = num(r.rows) ?? 0;
    headline = `${matched.toLocaleString('en-US')} of ${rows.toLocaleString('en-US')} rows matched indexed ${kind === 'rsna-csv' ? 'images' : 'patients or studies'}`;
    fact('rows', r.rows);
    fact('matched rows', r.matchedRows);
    fact('unmatched rows', r.unmatchedRows);
    fact('exams', r.exams);
    fact('PE-positive images', r.positiveImages);
    for (const u of arr(r.unmatched)) unmatched.push({ what: `row ${str(u.row)}: ${str(u.key)}`, reason: str(u.reason) });
    unmatchedCount = Math.max(unmatched.length, num(r.unmatchedRows) ?? 0);
  } else if (kind === 'dicom-seg') {
    const matched = num(r.matchedFrames) ?? 0;
    const frames = num(r.frames) ?? 0;
    headline = `${matched} of ${frames} frames matched indexed slices`;
    const segments = arr(r.segments);
    facts.push(['segments', String(segments.length)]);
    for (const s of segments) facts.push([`segment ${str(s.number)}: ${str(s.label)}`, `${num(s.frames) ?? 0} frames, ${(num(s.areaPx) ?? 0).toLocaleString('en-US')} px`]);
    fact('frames', r.frames);
    fact('matched frames', r.matchedFrames);
    for (const u of arr(r.unmatchedFrames)) unmatched.push({ what: `frame ${str(u.frame)}, SOP ${str(u.sopUid)}`, reason: str(u.reason) });
    unmatchedCount = Math.max(unmatched.length, frames - matched);
  } else {
    for (const [k, v] of Object.entries(r)) if (num(v) !== null && k !== 'sourceId') fact(k, v);
  }
  if (unmatchedCount > 0) incomplete = true;
  return { kind, file, headline, facts, unmatched, unmatchedCount, warnings, incomplete };
}
