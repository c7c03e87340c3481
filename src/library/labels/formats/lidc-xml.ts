/**
 * LIDC-IDRI XML (one reading session per reader, nodules with ROI outlines per slice): findings and
 * ROIs matched to indexed slices by SOP Instance UID, each reader's nodules grouped across readers.
 */
import { readFileSync } from 'node:fs';
import { groupNodules, locate, parseLidcXml, type LocatedNodule } from '../../../core/labels/lidc';
import { area, roisToMask } from '../../../core/labels/raster';
import type { LidcImportReport, UnmatchedRoi } from '../../../shared/results';
import type { Database } from '../../db/sqlite';
import { checkSize, instanceBySop, MAX_LISTED, MiB, newSource, saveReport, sha1 } from '../label-files';
import type { LabelFormat } from './format';

const n = (v: number) => v.toLocaleString('en-US');

export const lidcXml: LabelFormat<LidcImportReport> = {
  kind: 'lidc-xml',
  title: 'LIDC-IDRI XML',
  noun: 'LIDC-IDRI XML file',
  reads: 'LIDC-IDRI XML',
  extensions: ['.xml'],
  // Parsed as one document (real files are under 2 MB).
  maxBytes: 50 * MiB,
  sniff: (h) => h.xmlRoot === 'LidcReadMessage',
  import: async (db, path) => importLidc(db, path),
  describe(r) {
    const facts: [string, string][] = [];
    const fact = (label: string, v: number) => facts.push([label, n(v)]);
    fact('readers', r.readers);
    fact('nodules ≥ 3 mm (per reader)', r.nodules);
    fact('nodules after grouping readers', r.groupedNodules);
    fact('small nodules < 3 mm', r.smallNodules);
    fact('non-nodules', r.nonNodules);
    fact('ROIs', r.rois);
    fact('matched ROIs', r.matchedRois);
    const lines = [
      `${r.file}: LIDC XML for series ${r.seriesInstanceUid}${r.seriesIndexed ? '' : ' (not indexed)'}`,
      `  ${r.readers} readers, ${r.nodules} nodule annotations (${r.smallNodules} < 3 mm, ${r.groupedNodules} distinct nodules >= 3 mm), ${r.nonNodules} non-nodules`,
      `  ${r.rois} ROIs: ${r.matchedRois} on indexed slices, ${r.unmatchedRois.length} not`,
      ...r.unmatchedRois.slice(0, 10).map((u) => `    reader ${u.reader} ${u.nodule} z=${u.z ?? '?'} ${u.sopUid}: ${u.reason}`),
    ];
    if (r.unmatchedRois.length > 10) lines.push(`    ... ${r.unmatchedRois.length - 10} more (--json lists them)`);
    return {
      headline: `${r.matchedRois} of ${r.rois} ROIs matched indexed slices${r.seriesIndexed ? '' : ' (the series is not in the library)'}`,
      facts,
      unmatched: r.unmatchedRois.map((u) => ({ what: `reader ${u.reader}, ${u.nodule}${u.z !== null ? `, z ${u.z} mm` : ''}, SOP ${u.sopUid}`, reason: u.reason })),
      unmatchedCount: Math.max(r.unmatchedRois.length, r.rois - r.matchedRois),
      warnings: r.warnings,
      incomplete: !r.seriesIndexed,
      text: [...lines, ...r.warnings.map((w) => `  warning: ${w}`)].join('\n'),
    };
  },
};

export function importLidc(db: Database, path: string): LidcImportReport {
  const bytes = readFileSync(path);
  checkSize(lidcXml, bytes.length, path);
  let doc;
  try {
    doc = parseLidcXml(bytes.toString('utf8'));
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
  const lookup = instanceBySop(db);
  const warnings: string[] = [];
  const series = db.prepare('SELECT id, pixel_spacing_row, pixel_spacing_col FROM series WHERE series_uid = ?').get(doc.seriesInstanceUid) as
    | { id: number; pixel_spacing_row: number | null; pixel_spacing_col: number | null }
    | undefined;
  if (!doc.seriesInstanceUid) warnings.push('the XML names no SeriesInstanceUid: ROIs are matched by SOP Instance UID only');
  else if (!series) warnings.push(`series ${doc.seriesInstanceUid} is not in the index: index its folder to see these labels`);
  const spacing: [number, number] = series?.pixel_spacing_row && series.pixel_spacing_col ? [series.pixel_spacing_row, series.pixel_spacing_col] : [0.7, 0.7];
  if (!series?.pixel_spacing_row) warnings.push('pixel spacing unknown: nodules grouped assuming 0.7 mm pixels');

  // Group each reader's nodules across readers (>= 3 mm nodules and small ones separately).
  const located: (LocatedNodule & { key: string })[] = [];
  doc.readers.forEach((r) =>
    r.nodules.forEach((n) => {
      const l = locate(r.session, n, spacing);
      if (l) located.push({ ...l, key: `${r.session}|${n.id}` });
    }),
  );
  const groupOf = new Map<string, string>();
  for (const small of [false, true]) {
    const subset = located.filter((l) => l.nodule.small === small);
    groupNodules(subset).forEach((g, i) => {
      for (const idx of g) groupOf.set(subset[idx].key, `${small ? 'S' : 'N'}${i + 1}`);
    });
  }

  const unmatched: UnmatchedRoi[] = [];
  let rois = 0;
  let matched = 0;
  let sourceId = 0;
  db.transaction(() => {
    sourceId = newSource(db, 'lidc-xml', path, sha1(bytes), doc.seriesInstanceUid);
    const insFinding = db.prepare(
      'INSERT INTO findings (source_ref, series_uid, kind, reader, finding_key, group_key, attributes) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id',
    );
    const insRoi = db.prepare(
      'INSERT INTO rois (finding_ref, sop_uid, frame, z, inclusion, contour, rows, columns, area_px) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)',
    );
    for (const r of doc.readers) {
      const reader = String(r.session);
      for (const n of r.nodules) {
        const fid = (
          insFinding.get(
            sourceId,
            doc.seriesInstanceUid,
            n.small ? 'small-nodule' : 'nodule',
            reader,
            n.id,
            groupOf.get(`${r.session}|${n.id}`) ?? '',
            JSON.stringify({ ...n.characteristics, radiologistId: r.radiologistId }),
          ) as { id: number }
        ).id;
        for (const roi of n.rois) {
          rois++;
          const inst = roi.sopUid ? lookup(roi.sopUid) : undefined;
          let areaPx: number | null = null;
          if (!inst) {
            if (unmatched.length < MAX_LISTED)
              unmatched.push({
                sopUid: roi.sopUid,
                reader: r.session,
                nodule: n.id,
                z: roi.z,
                reason: roi.sopUid ? 'no indexed image has this SOP Instance UID' : 'the ROI names no imageSOP_UID',
              });
          } else {
            matched++;
            if (doc.seriesInstanceUid && inst.series_uid !== doc.seriesInstanceUid)
              warnings.push(`ROI on ${roi.sopUid} belongs to series ${inst.series_uid}, not the XML's ${doc.seriesInstanceUid}`);
            const ipp = inst.image_position ? (JSON.parse(inst.image_position) as number[]) : null;
            if (ipp && roi.z !== null && Math.abs(ipp[2] - roi.z) > 0.6)
              warnings.push(`ROI z ${roi.z} differs from the image position z ${ipp[2]} of ${roi.sopUid}`);
            if (inst.rows && inst.columns) areaPx = area(roisToMask([roi], inst.rows, inst.columns));
          }
          insRoi.run(fid, roi.sopUid, roi.z, roi.inclusion ? 1 : 0, JSON.stringify(roi.points), inst?.rows ?? null, inst?.columns ?? null, areaPx);
        }
      }
      for (const nn of r.nonNodules) {
        const fid = (insFinding.get(sourceId, doc.seriesInstanceUid, 'non-nodule', reader, nn.id, '', '{}') as { id: number }).id;
        if (nn.point) insRoi.run(fid, nn.sopUid, nn.z, 1, JSON.stringify([nn.point]), null, null, null);
      }
    }
  })();
  const groups = new Set([...groupOf.values()].filter((g) => g.startsWith('N')));
  const report: LidcImportReport = {
    kind: 'lidc-xml',
    file: path,
    sourceId,
    seriesInstanceUid: doc.seriesInstanceUid,
    seriesIndexed: !!series,
    readers: doc.readers.length,
    nodules: doc.readers.reduce((s, r) => s + r.nodules.length, 0),
    smallNodules: doc.readers.reduce((s, r) => s + r.nodules.filter((n) => n.small).length, 0),
    nonNodules: doc.readers.reduce((s, r) => s + r.nonNodules.length, 0),
    groupedNodules: groups.size,
    rois,
    matchedRois: matched,
    unmatchedRois: unmatched,
    warnings: [...new Set(warnings)].slice(0, 50),
  };
  saveReport(db, sourceId, report);
  return report;
}
