/**
 * DICOM SEG objects found by indexing belong to the series they segment, not beside it: each SEG
 * file the index holds is imported as a label source (the dicom-seg format, as `ctssl labels
 * import` would), so its segments are masks on the referenced series' slices (the viewer's label
 * overlay, the 'nodule' cohort filter, fine-tuning), and the catalogue does not list SEG series as
 * image series (catalog.ts listSeries). A SEG indexed before its images is imported again once more
 * of its frames can be matched.
 */
import type { Database } from '../db/sqlite';
import type { SegImportReport } from '../../shared/results';
import { importLabels } from './label-import';
import { SEG_SOP_CLASS } from './seg';

export interface SegAttachResult {
  attached: { file: string; sourceId: number; seriesInstanceUid: string; matchedFrames: number; frames: number }[];
  failed: { file: string; error: string }[];
}

/** Imports the indexed SEG files not imported yet (or imported with frames that now match); one failure does not stop the others. */
export async function attachIndexedSegs(db: Database, o: { signal?: AbortSignal } = {}): Promise<SegAttachResult> {
  const files = db
    .prepare(`SELECT DISTINCT f.path FROM instances i JOIN files f ON f.id = i.file_ref WHERE i.sop_class_uid = ? ORDER BY f.path`)
    .pluck()
    .all(SEG_SOP_CLASS) as string[];
  const source = db.prepare(`SELECT report FROM label_sources WHERE path = ? AND kind = 'dicom-seg' ORDER BY id DESC LIMIT 1`).pluck();
  const matchable = db.prepare(`SELECT COUNT(*) FROM instances WHERE sop_uid = ?`).pluck();
  const out: SegAttachResult = { attached: [], failed: [] };
  for (const file of files) {
    if (o.signal?.aborted) break;
    const stored = source.get(file) as string | undefined;
    if (stored) {
      const r = JSON.parse(stored) as SegImportReport;
      // Imported already: again only when frames it could not match now have their image.
      if (r.matchedFrames >= r.frames || !r.unmatchedFrames.some((u) => u.sopUid && (matchable.get(u.sopUid) as number) > 0)) continue;
    }
    try {
      const r = (await importLabels(db, file)) as SegImportReport;
      out.attached.push({ file, sourceId: r.sourceId, seriesInstanceUid: r.seriesInstanceUid, matchedFrames: r.matchedFrames, frames: r.frames });
    } catch (err) {
      out.failed.push({ file, error: (err as Error).message });
    }
  }
  return out;
}
