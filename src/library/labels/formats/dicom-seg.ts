/**
 * DICOM SEG (binary or fractional segments over the frames of a referenced series): one finding
 * per segment, one packed mask per frame, frames matched to indexed slices by their source image
 * or, without one, by position.
 */
import type { SegImportReport } from '../../../shared/results';
import type { Database } from '../../db/sqlite';
import { checkSize, instanceBySop, MAX_LISTED, MiB, newSource, readHead, saveReport, sha1File } from '../label-files';
import { readSeg, SEG_SOP_CLASS } from '../seg';
import type { LabelFormat } from './format';

const n = (v: number) => v.toLocaleString('en-US');

export const dicomSeg: LabelFormat<SegImportReport> = {
  kind: 'dicom-seg',
  title: 'DICOM SEG',
  noun: 'DICOM SEG',
  reads: 'DICOM SEG',
  extensions: ['.dcm', '.dicom', '.seg', ''],
  // Read whole: 1 GiB holds a bit-packed SEG of 100 segments over 300 slices of 512 x 512.
  maxBytes: 1024 * MiB,
  // A DICOM file whose meta names another SOP class (a CT image) is not a SEG.
  sniff: (h) => h.dicom && (h.dicomSopClass == null || h.dicomSopClass === SEG_SOP_CLASS),
  import: importSeg,
  describe(r) {
    const facts: [string, string][] = [['segments', String(r.segments.length)]];
    for (const s of r.segments) facts.push([`segment ${s.number}: ${s.label}`, `${s.frames} frames, ${n(s.areaPx)} px`]);
    facts.push(['frames', n(r.frames)], ['matched frames', n(r.matchedFrames)]);
    return {
      headline: `${r.matchedFrames} of ${r.frames} frames matched indexed slices`,
      facts,
      unmatched: r.unmatchedFrames.map((u) => ({ what: `frame ${u.frame}, SOP ${u.sopUid}`, reason: u.reason })),
      unmatchedCount: Math.max(r.unmatchedFrames.length, r.frames - r.matchedFrames),
      warnings: r.warnings,
      incomplete: false,
      text: [
        `${r.file}: DICOM SEG of series ${r.seriesInstanceUid}: ${r.segments.length} segments, ${r.frames} frames, ${r.matchedFrames} on indexed slices`,
        ...r.segments.map((s) => `  segment ${s.number} "${s.label}": ${s.frames} frames, ${s.areaPx} px`),
        ...r.unmatchedFrames.slice(0, 10).map((u) => `    frame ${u.frame} ${u.sopUid}: ${u.reason}`),
        ...r.warnings.map((w) => `  warning: ${w}`),
      ].join('\n'),
    };
  },
};

export async function importSeg(db: Database, path: string): Promise<SegImportReport> {
  checkSize(dicomSeg, readHead(path).size, path);
  const hash = await sha1File(path);
  const seg = await readSeg(path);
  const lookup = instanceBySop(db);
  const unmatchedFrames: SegImportReport['unmatchedFrames'] = [];
  const warnings = [...seg.warnings];
  // Frames without a source reference are matched by position within the referenced series.
  const byPosition = seg.referencedSeriesUid
    ? (db
        .prepare(
          `SELECT i.sop_uid, i.image_position FROM instances i JOIN series se ON se.id = i.series_ref WHERE se.series_uid = ? AND i.image_position IS NOT NULL`,
        )
        .all(seg.referencedSeriesUid) as { sop_uid: string; image_position: string }[])
    : [];
  const findSop = (frame: (typeof seg.frames)[number]): string => {
    if (frame.sourceSopUid) return frame.sourceSopUid;
    if (!frame.position) return '';
    let best = '';
    let bestD = 0.5; // mm
    for (const r of byPosition) {
      const p = JSON.parse(r.image_position) as number[];
      const d = Math.hypot(p[0] - frame.position[0], p[1] - frame.position[1], p[2] - frame.position[2]);
      if (d < bestD) {
        bestD = d;
        best = r.sop_uid;
      }
    }
    return best;
  };
  let matchedFrames = 0;
  let sourceId = 0;
  const segStats = new Map<number, { frames: number; areaPx: number }>();
  db.transaction(() => {
    sourceId = newSource(db, 'dicom-seg', path, hash, seg.referencedSeriesUid);
    const findingIds = new Map<number, number>();
    const insFinding = db.prepare(
      "INSERT INTO findings (source_ref, series_uid, kind, reader, finding_key, group_key, attributes) VALUES (?, ?, 'segment', '', ?, ?, ?) RETURNING id",
    );
    for (const s of seg.segments) {
      findingIds.set(
        s.number,
        (insFinding.get(sourceId, seg.referencedSeriesUid, String(s.number), `SEG${s.number}`, JSON.stringify({ label: s.label, category: s.category, type: s.type })) as { id: number }).id,
      );
    }
    const insRoi = db.prepare(
      'INSERT INTO rois (finding_ref, sop_uid, frame, z, inclusion, mask, rows, columns, area_px) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)',
    );
    seg.frames.forEach((f, i) => {
      const fid = findingIds.get(f.segment);
      if (fid === undefined) {
        warnings.push(`frame ${i + 1} refers to segment ${f.segment}, which the SegmentSequence does not define`);
        return;
      }
      const sop = findSop(f);
      const inst = sop ? lookup(sop) : undefined;
      if (!inst) {
        if (unmatchedFrames.length < MAX_LISTED)
          unmatchedFrames.push({ frame: i + 1, sopUid: sop, reason: sop ? 'no indexed image has this SOP Instance UID' : 'the frame references no source image and no indexed plane is at its position' });
      } else matchedFrames++;
      const st = segStats.get(f.segment) ?? { frames: 0, areaPx: 0 };
      st.frames++;
      st.areaPx += f.area;
      segStats.set(f.segment, st);
      insRoi.run(fid, sop, 0, f.position?.[2] ?? null, Buffer.from(f.packed), seg.rows, seg.columns, f.area);
    });
  })();
  const report: SegImportReport = {
    kind: 'dicom-seg',
    file: path,
    sourceId,
    seriesInstanceUid: seg.referencedSeriesUid,
    segments: seg.segments.map((s) => ({ number: s.number, label: s.label, ...(segStats.get(s.number) ?? { frames: 0, areaPx: 0 }) })),
    frames: seg.frames.length,
    matchedFrames,
    unmatchedFrames,
    warnings: warnings.slice(0, 50),
  };
  saveReport(db, sourceId, report);
  return report;
}
