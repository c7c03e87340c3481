/**
 * LIDC-IDRI annotation XML (LidcReadMessage), written in the layout of the public files: the
 * http://www.nih.gov namespace, a ResponseHeader with SeriesInstanceUid and StudyInstanceUID, one
 * readingSession per reader with unblindedReadNodule elements (noduleID, characteristics, roi with
 * imageZposition, imageSOP_UID, inclusion and edgeMap xCoord/yCoord pixel points).
 *
 * Outlines are traced around the reader's mask through the centres of its boundary pixels
 * (8-connected, closed: the first point is repeated at the end, as in the public files), so that
 * filling the polygon and adding the outline pixels gives the mask back.
 */
import type { Characteristics } from './nodules';

export type Point = [number, number];

export interface LidcRoiOut {
  z: number;
  sopUid: string;
  inclusion: boolean;
  /** [x (column), y (row)] pixel points. */
  points: Point[];
}

export interface LidcNoduleOut {
  id: string;
  /** Absent for nodules < 3 mm (LIDC marks those with a single point and no characteristics). */
  characteristics?: Characteristics;
  rois: LidcRoiOut[];
}

export interface LidcReaderOut {
  radiologistId: string;
  nodules: LidcNoduleOut[];
}

export interface LidcDocOut {
  uid: string;
  messageId: string;
  seriesUid: string;
  studyUid: string;
  /** YYYY-MM-DD and HH:MM:SS. */
  dateRequest: string;
  timeRequest: string;
  dateService: string;
  timeService: string;
  readers: LidcReaderOut[];
}

// Clockwise on screen (y down), starting west.
const DX = [-1, -1, 0, 1, 1, 1, 0, -1];
const DY = [0, -1, -1, -1, 0, 1, 1, 1];

/**
 * Traces the outer boundary of every 8-connected component of a binary mask (Moore neighbour
 * tracing). Returns closed point lists (first point repeated last; a single pixel gives one point).
 */
export function traceContours(mask: Uint8Array, width: number, height: number): Point[][] {
  const seen = new Uint8Array(mask.length);
  const at = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] !== 0;
  const out: Point[][] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if (!mask[p] || seen[p]) continue;
      // Mark the component (flood fill, 8-connected) so it is traced once.
      const stack = [p];
      seen[p] = 1;
      while (stack.length) {
        const q = stack.pop()!;
        const qx = q % width;
        const qy = (q - qx) / width;
        for (let d = 0; d < 8; d++) {
          const nx = qx + DX[d];
          const ny = qy + DY[d];
          if (at(nx, ny) && !seen[ny * width + nx]) {
            seen[ny * width + nx] = 1;
            stack.push(ny * width + nx);
          }
        }
      }
      out.push(traceFrom(at, x, y));
    }
  }
  return out;
}

function traceFrom(at: (x: number, y: number) => boolean, sx: number, sy: number): Point[] {
  const pts: Point[] = [[sx, sy]];
  let cx = sx;
  let cy = sy;
  // Raster order guarantees the west neighbour of the start is background.
  let back = 0;
  let first = -1;
  for (let guard = 0; guard < 4_000_000; guard++) {
    let found = -1;
    for (let i = 1; i <= 8; i++) {
      const d = (back + i) % 8;
      if (at(cx + DX[d], cy + DY[d])) {
        found = d;
        break;
      }
    }
    if (found < 0) return pts; // an isolated pixel: one point
    if (cx === sx && cy === sy) {
      // Stop when leaving the start the way we first left it (Jacob's stopping criterion).
      if (first < 0) first = found;
      else if (found === first) break;
    }
    const prev = (found + 7) % 8;
    const bx = cx + DX[prev];
    const by = cy + DY[prev];
    cx += DX[found];
    cy += DY[found];
    back = dirOf(bx - cx, by - cy);
    pts.push([cx, cy]);
  }
  return pts;
}

function dirOf(dx: number, dy: number): number {
  for (let d = 0; d < 8; d++) if (DX[d] === dx && DY[d] === dy) return d;
  // Not adjacent (cannot happen for Moore tracing); fall back to west.
  return 0;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Serialises the document in the public files' layout and indentation. */
export function lidcXml(d: LidcDocOut): string {
  const L: string[] = [];
  L.push('<?xml version="1.0" encoding="UTF-8"?>');
  L.push(
    `<LidcReadMessage uid="${esc(d.uid)}" xmlns="http://www.nih.gov" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.nih.gov  http://troll.rad.med.umich.edu/lidc/LidcReadMessage.xsd">`,
  );
  L.push('<ResponseHeader>');
  L.push('<Version>1.8.1</Version>');
  L.push(`<MessageId>${esc(d.messageId)}</MessageId>`);
  L.push(`<DateRequest>${d.dateRequest}</DateRequest>`);
  L.push(`<TimeRequest>${d.timeRequest}</TimeRequest>`);
  L.push('<RequestingSite>removed</RequestingSite>');
  L.push('<ServicingSite>removed</ServicingSite>');
  L.push('<TaskDescription>Second unblinded read</TaskDescription>');
  L.push('<CtImageFile>removed</CtImageFile>');
  L.push(`<SeriesInstanceUid>${esc(d.seriesUid)}</SeriesInstanceUid>`);
  L.push(`<DateService>${d.dateService}</DateService>`);
  L.push(`<TimeService>${d.timeService}</TimeService>`);
  L.push('<ResponseDescription>1 - Reading complete</ResponseDescription>');
  L.push(`<StudyInstanceUID>${esc(d.studyUid)}</StudyInstanceUID></ResponseHeader>`);
  for (const r of d.readers) {
    L.push('<readingSession>');
    L.push('    <annotationVersion>3.12</annotationVersion>');
    L.push(`    <servicingRadiologistID>${esc(r.radiologistId)}</servicingRadiologistID>`);
    for (const n of r.nodules) {
      L.push('    <unblindedReadNodule>');
      L.push(`      <noduleID>${esc(n.id)}</noduleID>`);
      if (n.characteristics) {
        const c = n.characteristics;
        L.push('      <characteristics>');
        for (const k of ['subtlety', 'internalStructure', 'calcification', 'sphericity', 'margin', 'lobulation', 'spiculation', 'texture', 'malignancy'] as const)
          L.push(`        <${k}>${c[k]}</${k}>`);
        L.push('      </characteristics>');
      }
      for (const roi of n.rois) {
        L.push('      <roi>');
        L.push(`        <imageZposition>${roi.z.toFixed(6)}</imageZposition>`);
        L.push(`        <imageSOP_UID>${esc(roi.sopUid)}</imageSOP_UID>`);
        L.push(`        <inclusion>${roi.inclusion ? 'TRUE' : 'FALSE'}</inclusion>`);
        for (const [x, y] of roi.points) {
          L.push('        <edgeMap>');
          L.push(`          <xCoord>${x}</xCoord>`);
          L.push(`          <yCoord>${y}</yCoord>`);
          L.push('        </edgeMap>');
        }
        L.push('      </roi>');
      }
      L.push('    </unblindedReadNodule>');
    }
    L.push('  </readingSession>');
  }
  L.push('</LidcReadMessage>');
  return L.join('\n') + '\n';
}
