/**
 * A small DICOM Part 10 writer for uncompressed CT images in explicit VR little endian: 128-byte
 * preamble, "DICM", the file meta group with its group length, then the dataset in ascending tag
 * order, values padded to even length (UI with NUL, text with space). Pure: returns bytes.
 *
 * Written for speed (a cohort has thousands of slices); dcmjs is used for the SEG objects,
 * where nested sequences matter more than speed.
 */

export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
/** Implementation Class UID of CT SSL Studio's synthetic writer (2.25 root, fixed). */
export const IMPLEMENTATION_UID = '2.25.147902811632910412417357166203497340523';
export const IMPLEMENTATION_VERSION = 'CTSSL_SYNTH_1';

type Vr = 'AE' | 'AS' | 'CS' | 'DA' | 'DS' | 'IS' | 'LO' | 'LT' | 'PN' | 'SH' | 'TM' | 'UI' | 'UL' | 'US' | 'OB' | 'OW' | 'SS';

/** One element: tag as 0xGGGGEEEE, VR, and a string (text VRs), numbers (US/UL/SS) or bytes (OB/OW). */
export interface DicomElement {
  tag: number;
  vr: Vr;
  value: string | number[] | Uint8Array;
}

const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

/** Formats a decimal string value (DS): at most 16 characters. */
export function ds(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`DS value must be finite, got ${v}`);
  let s = String(Math.round(v * 1e6) / 1e6);
  if (s === '-0') s = '0';
  if (s.length > 16) s = v.toPrecision(10).replace(/\.?0+(e|$)/, '$1');
  return s;
}

const enc = new TextEncoder();

function valueBytes(e: DicomElement): Uint8Array {
  const v = e.value;
  if (v instanceof Uint8Array) {
    if (v.length % 2 === 0) return v;
    const padded = new Uint8Array(v.length + 1);
    padded.set(v);
    return padded;
  }
  if (Array.isArray(v)) {
    const size = e.vr === 'UL' ? 4 : 2;
    const out = new Uint8Array(v.length * size);
    const dv = new DataView(out.buffer);
    v.forEach((n, i) => {
      if (e.vr === 'UL') dv.setUint32(i * 4, n, true);
      else if (e.vr === 'SS') dv.setInt16(i * 2, n, true);
      else dv.setUint16(i * 2, n, true);
    });
    return out;
  }
  let s = v;
  if (s.length % 2 === 1) s += e.vr === 'UI' ? '\0' : ' ';
  return enc.encode(s);
}

function headerSize(e: DicomElement): number {
  return LONG_VRS.has(e.vr) ? 12 : 8;
}

function writeElement(out: Uint8Array, dv: DataView, at: number, e: DicomElement, bytes: Uint8Array): number {
  dv.setUint16(at, e.tag >>> 16, true);
  dv.setUint16(at + 2, e.tag & 0xffff, true);
  out[at + 4] = e.vr.charCodeAt(0);
  out[at + 5] = e.vr.charCodeAt(1);
  if (LONG_VRS.has(e.vr)) {
    dv.setUint16(at + 6, 0, true);
    dv.setUint32(at + 8, bytes.length, true);
    at += 12;
  } else {
    if (bytes.length > 0xffff) throw new Error(`element ${e.tag.toString(16)} too long for a short VR`);
    dv.setUint16(at + 6, bytes.length, true);
    at += 8;
  }
  out.set(bytes, at);
  return at + bytes.length;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let scratch = new Uint8Array(0);

/**
 * Encodes a Part 10 file: meta (SOP class and instance from the dataset), dataset elements
 * (sorted here), and optionally int16 pixel data as (7FE0,0010) OW. With `reuse` the bytes live in
 * a buffer shared with the next call (write them out before encoding again).
 */
export function encodePart10(sopClassUid: string, sopInstanceUid: string, elements: DicomElement[], pixels?: Int16Array, reuse = false): Uint8Array {
  const meta: DicomElement[] = [
    { tag: 0x00020001, vr: 'OB', value: new Uint8Array([0, 1]) },
    { tag: 0x00020002, vr: 'UI', value: sopClassUid },
    { tag: 0x00020003, vr: 'UI', value: sopInstanceUid },
    { tag: 0x00020010, vr: 'UI', value: EXPLICIT_VR_LE },
    { tag: 0x00020012, vr: 'UI', value: IMPLEMENTATION_UID },
    { tag: 0x00020013, vr: 'SH', value: IMPLEMENTATION_VERSION },
  ];
  const sorted = elements.slice().sort((a, b) => a.tag - b.tag);
  for (let i = 1; i < sorted.length; i++) if (sorted[i].tag === sorted[i - 1].tag) throw new Error(`duplicate element ${sorted[i].tag.toString(16)}`);
  const metaBytes = meta.map(valueBytes);
  const dataBytes = sorted.map(valueBytes);
  const metaLen = meta.reduce((a, e, i) => a + headerSize(e) + metaBytes[i].length, 0);
  const dataLen = sorted.reduce((a, e, i) => a + headerSize(e) + dataBytes[i].length, 0);
  const pixLen = pixels ? 12 + pixels.length * 2 : 0;
  const total = 132 + 12 + metaLen + dataLen + pixLen;
  let out: Uint8Array;
  if (reuse) {
    if (scratch.length < total) scratch = new Uint8Array(total);
    out = scratch.subarray(0, total);
    out.fill(0, 0, 128);
  } else out = new Uint8Array(total);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[128] = 0x44;
  out[129] = 0x49;
  out[130] = 0x43;
  out[131] = 0x4d;
  let at = writeElement(out, dv, 132, { tag: 0x00020000, vr: 'UL', value: [metaLen] }, valueBytes({ tag: 0x00020000, vr: 'UL', value: [metaLen] }));
  meta.forEach((e, i) => (at = writeElement(out, dv, at, e, metaBytes[i])));
  sorted.forEach((e, i) => (at = writeElement(out, dv, at, e, dataBytes[i])));
  if (pixels) {
    dv.setUint16(at, 0x7fe0, true);
    dv.setUint16(at + 2, 0x0010, true);
    out[at + 4] = 0x4f; // O
    out[at + 5] = 0x57; // W
    dv.setUint16(at + 6, 0, true);
    dv.setUint32(at + 8, pixels.length * 2, true);
    at += 12;
    if (littleEndian) out.set(new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.length * 2), at);
    else for (let i = 0; i < pixels.length; i++) dv.setInt16(at + 2 * i, pixels[i], true);
    at += pixels.length * 2;
  }
  if (at !== total) throw new Error(`internal: wrote ${at} of ${total} bytes`);
  return out;
}

/** The identity, geometry and acquisition facts of one synthetic CT slice. */
export interface CtSliceHeader {
  patientName: string;
  patientId: string;
  birthDate: string;
  sex: string;
  age: string;
  ethnicGroup: string;
  studyUid: string;
  seriesUid: string;
  frameOfReferenceUid: string;
  sopUid: string;
  studyDate: string;
  studyTime: string;
  seriesTime: string;
  accession: string;
  studyId: string;
  studyDescription: string;
  seriesDescription: string;
  seriesNumber: number;
  instanceNumber: number;
  contrast: boolean;
  rows: number;
  columns: number;
  pixelSpacing: number;
  sliceThickness: number;
  position: [number, number, number];
  reconstructionDiameter: number;
  softwareVersion: string;
}

/**
 * Encodes one CT Image Storage file (int16, RescaleIntercept -1024, slope 1). With `reuse` the
 * returned bytes are overwritten by the next call.
 */
export function encodeCtSlice(h: CtSliceHeader, stored: Int16Array, reuse = false): Uint8Array {
  const E = (tag: number, vr: Vr, value: string | number[]): DicomElement => ({ tag, vr, value });
  const elements: DicomElement[] = [
    E(0x00080005, 'CS', 'ISO_IR 100'),
    E(0x00080008, 'CS', 'ORIGINAL\\PRIMARY\\AXIAL'),
    E(0x00080012, 'DA', h.studyDate),
    E(0x00080016, 'UI', CT_IMAGE_STORAGE),
    E(0x00080018, 'UI', h.sopUid),
    E(0x00080020, 'DA', h.studyDate),
    E(0x00080021, 'DA', h.studyDate),
    E(0x00080022, 'DA', h.studyDate),
    E(0x00080023, 'DA', h.studyDate),
    E(0x00080030, 'TM', h.studyTime),
    E(0x00080031, 'TM', h.seriesTime),
    E(0x00080032, 'TM', h.seriesTime),
    E(0x00080033, 'TM', h.seriesTime),
    E(0x00080050, 'SH', h.accession),
    E(0x00080060, 'CS', 'CT'),
    E(0x00080070, 'LO', 'CT SSL Studio'),
    E(0x00080090, 'PN', ''),
    E(0x00081030, 'LO', h.studyDescription),
    E(0x0008103e, 'LO', h.seriesDescription),
    E(0x00081090, 'LO', 'ctssl synth'),
    E(0x00100010, 'PN', h.patientName),
    E(0x00100020, 'LO', h.patientId),
    E(0x00100030, 'DA', h.birthDate),
    E(0x00100040, 'CS', h.sex),
    E(0x00101010, 'AS', h.age),
    E(0x00102160, 'SH', h.ethnicGroup),
    E(0x00180010, 'LO', h.contrast ? 'IV' : ''),
    E(0x00180015, 'CS', 'CHEST'),
    E(0x00180050, 'DS', ds(h.sliceThickness)),
    E(0x00180060, 'DS', '120'),
    E(0x00180088, 'DS', ds(h.sliceThickness)),
    E(0x00181020, 'LO', h.softwareVersion),
    E(0x00181100, 'DS', ds(h.reconstructionDiameter)),
    E(0x00181120, 'DS', '0'),
    E(0x00181210, 'SH', 'STANDARD'),
    E(0x00185100, 'CS', 'HFS'),
    E(0x0020000d, 'UI', h.studyUid),
    E(0x0020000e, 'UI', h.seriesUid),
    E(0x00200010, 'SH', h.studyId),
    E(0x00200011, 'IS', String(h.seriesNumber)),
    E(0x00200012, 'IS', '1'),
    E(0x00200013, 'IS', String(h.instanceNumber)),
    E(0x00200032, 'DS', h.position.map(ds).join('\\')),
    E(0x00200037, 'DS', '1\\0\\0\\0\\1\\0'),
    E(0x00200052, 'UI', h.frameOfReferenceUid),
    E(0x00201040, 'LO', ''),
    E(0x00201041, 'DS', ds(h.position[2])),
    E(0x00280002, 'US', [1]),
    E(0x00280004, 'CS', 'MONOCHROME2'),
    E(0x00280010, 'US', [h.rows]),
    E(0x00280011, 'US', [h.columns]),
    E(0x00280030, 'DS', `${ds(h.pixelSpacing)}\\${ds(h.pixelSpacing)}`),
    E(0x00280100, 'US', [16]),
    E(0x00280101, 'US', [16]),
    E(0x00280102, 'US', [15]),
    E(0x00280103, 'US', [1]),
    E(0x00281050, 'DS', '40'),
    E(0x00281051, 'DS', '400'),
    E(0x00281052, 'DS', '-1024'),
    E(0x00281053, 'DS', '1'),
    E(0x00281054, 'LO', 'HU'),
  ];
  if (stored.length !== h.rows * h.columns) throw new Error(`pixel count ${stored.length} != ${h.rows}x${h.columns}`);
  return encodePart10(CT_IMAGE_STORAGE, h.sopUid, elements, stored, reuse);
}
