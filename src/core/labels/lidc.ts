/**
 * LIDC-IDRI XML (LidcReadMessage): reading sessions -> nodules -> ROIs with edge maps, and
 * characteristics. Pure parsing; rasterisation is in raster.ts and grouping across readers below.
 *
 * In LIDC, nodules >= 3 mm carry characteristics and outline ROIs; nodules < 3 mm are a single
 * edge point per slice and no characteristics; non-nodules are listed with a locus only.
 */
import { XMLParser } from 'fast-xml-parser';

export interface LidcRoi {
  z: number | null;
  sopUid: string;
  inclusion: boolean;
  /** Outline as pixel coordinates [x (column), y (row)], in drawing order. */
  points: [number, number][];
}

export interface LidcNodule {
  /** Reader-local id, e.g. "Nodule 001" or "IL057_127364". */
  id: string;
  /** True for nodules < 3 mm (one point per slice, no characteristics). */
  small: boolean;
  characteristics: Record<string, number>;
  rois: LidcRoi[];
}

export interface LidcReader {
  /** Index of the reading session in the file (1-based) and the radiologist id when present. */
  session: number;
  radiologistId: string;
  nodules: LidcNodule[];
  nonNodules: { id: string; z: number | null; sopUid: string; point: [number, number] | null }[];
}

export interface LidcDocument {
  seriesInstanceUid: string;
  studyInstanceUid: string;
  taskDescription: string;
  readers: LidcReader[];
}

const ARRAYS = new Set(['readingSession', 'unblindedReadNodule', 'roi', 'edgeMap', 'nonNodule', 'locus', 'CXRreadingSession']);

type Obj = Record<string, unknown>;
const asArray = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : v === undefined || v === null ? [] : [v as Obj]);
const text = (v: unknown): string => (v === undefined || v === null ? '' : String(v).trim());
const numOrNull = (v: unknown): number | null => {
  const n = Number(text(v));
  return text(v) === '' || !Number.isFinite(n) ? null : n;
};

/** Parses a LIDC XML document; throws with a message naming what is missing. */
export function parseLidcXml(xml: string): LidcDocument {
  const parser = new XMLParser({
    ignoreAttributes: true,
    removeNSPrefix: true,
    parseTagValue: false,
    isArray: (name) => ARRAYS.has(name),
  });
  const doc = parser.parse(xml) as Obj;
  const root = doc.LidcReadMessage as Obj | undefined;
  if (!root) throw new Error('not a LIDC XML file: no LidcReadMessage root element');
  const header = (root.ResponseHeader ?? {}) as Obj;
  const readers: LidcReader[] = asArray(root.readingSession).map((rs, i) => ({
    session: i + 1,
    radiologistId: text(rs.servicingRadiologistID),
    nodules: asArray(rs.unblindedReadNodule).map((n) => {
      const ch = (n.characteristics ?? {}) as Obj;
      const characteristics: Record<string, number> = {};
      for (const [k, v] of Object.entries(ch)) {
        const x = numOrNull(v);
        if (x !== null) characteristics[k] = x;
      }
      const rois = asArray(n.roi).map((r) => ({
        z: numOrNull(r.imageZposition),
        sopUid: text(r.imageSOP_UID),
        inclusion: text(r.inclusion).toUpperCase() !== 'FALSE',
        points: asArray(r.edgeMap)
          .map((e) => [numOrNull(e.xCoord), numOrNull(e.yCoord)] as [number | null, number | null])
          .filter((p): p is [number, number] => p[0] !== null && p[1] !== null),
      }));
      const small = Object.keys(characteristics).length === 0 && rois.every((r) => r.points.length <= 1);
      return { id: text(n.noduleID), small, characteristics, rois };
    }),
    nonNodules: asArray(rs.nonNodule).map((nn) => {
      const locus = asArray(nn.locus)[0];
      const x = numOrNull(locus?.xCoord);
      const y = numOrNull(locus?.yCoord);
      return {
        id: text(nn.nonNoduleID),
        z: numOrNull(nn.imageZposition),
        sopUid: text(nn.imageSOP_UID),
        point: x !== null && y !== null ? ([x, y] as [number, number]) : null,
      };
    }),
  }));
  return {
    seriesInstanceUid: text(header.SeriesInstanceUid ?? header.SeriesInstanceUID),
    studyInstanceUid: text(header.StudyInstanceUID ?? header.StudyInstanceUid),
    taskDescription: text(header.TaskDescription),
    readers,
  };
}

/** A nodule of one reader, located in patient space for grouping. */
export interface LocatedNodule {
  reader: number;
  nodule: LidcNodule;
  /** Centroid in mm: x, y from pixel coordinates x spacing, z from the ROI positions. */
  centroid: [number, number, number];
  /** Equivalent radius in mm (from the largest ROI's outline extent), at least half a pixel. */
  radius: number;
}

/**
 * Groups reader annotations of the same physical nodule: single-linkage clustering of centroids
 * that lie within the larger of the two radii (and at least `minDistance` mm) of each other,
 * never putting two annotations of the same reader in one group unless they touch.
 * Returns groups of indices into `located`.
 */
export function groupNodules(located: LocatedNodule[], minDistance = 5): number[][] {
  const n = located.length;
  const parent = located.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = located[i];
      const b = located[j];
      if (a.reader === b.reader) continue;
      const d = Math.hypot(a.centroid[0] - b.centroid[0], a.centroid[1] - b.centroid[1], a.centroid[2] - b.centroid[2]);
      if (d <= Math.max(a.radius, b.radius, minDistance)) parent[find(i)] = find(j);
    }
  }
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const r = find(i);
    groups.set(r, [...(groups.get(r) ?? []), i]);
  }
  // Stable order: by smallest z, then x.
  return [...groups.values()].sort((g, h) => located[g[0]].centroid[2] - located[h[0]].centroid[2] || located[g[0]].centroid[0] - located[h[0]].centroid[0]);
}

/** Centroid and radius of a reader's nodule, given the pixel spacing [row, column] in mm. */
export function locate(reader: number, nodule: LidcNodule, pixelSpacing: [number, number]): LocatedNodule | null {
  const pts = nodule.rois.filter((r) => r.inclusion && r.points.length > 0);
  if (pts.length === 0) return null;
  let sx = 0;
  let sy = 0;
  let sz = 0;
  let count = 0;
  let maxExtent = 0;
  for (const r of pts) {
    let minX = Infinity;
    let maxX = -Infinity;
    let minY = Infinity;
    let maxY = -Infinity;
    for (const [x, y] of r.points) {
      sx += x;
      sy += y;
      sz += r.z ?? 0;
      count++;
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      minY = Math.min(minY, y);
      maxY = Math.max(maxY, y);
    }
    maxExtent = Math.max(maxExtent, (maxX - minX + 1) * pixelSpacing[1], (maxY - minY + 1) * pixelSpacing[0]);
  }
  return {
    reader,
    nodule,
    centroid: [(sx / count) * pixelSpacing[1], (sy / count) * pixelSpacing[0], sz / count],
    radius: Math.max(maxExtent / 2, pixelSpacing[0] / 2),
  };
}
