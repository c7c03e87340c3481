/**
 * What the index keeps of one DICOM object: identity, patient attributes for the bias probe,
 * acquisition facts for cohorts, and everything the pixel pipeline and geometry need.
 * Pure: takes a parsed dataset, returns a plain record.
 */
import type { PhiIdentifier, PhiKind } from '../privacy/phi';
import { decodeDicomText, latin1 } from './charset';
import { type DataSet, firstItem, num, nums, type ParsedDicom, PIXEL_DATA, str, u16 } from './parse';

export type Vec3 = [number, number, number];

export interface InstanceHeader {
  sopInstanceUid: string;
  sopClassUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  patientId: string;
  /** Hash of PatientName, used only to tell patients apart when PatientID is empty. Never stored in clear. */
  patientNameHash: string;
  patientSex: string;
  patientAge: string;
  patientBirthDate: string;
  ethnicGroup: string;
  studyDate: string;
  studyTime: string;
  studyId: string;
  studyDescription: string;
  seriesDate: string;
  seriesTime: string;
  seriesNumber: number | null;
  seriesDescription: string;
  modality: string;
  bodyPart: string;
  manufacturer: string;
  model: string;
  contrastAgent: string;
  kernel: string;
  imageType: string;
  instanceNumber: number | null;
  acquisitionNumber: number | null;
  acquisitionTime: string;
  rows: number | null;
  columns: number | null;
  pixelSpacing: [number, number] | null;
  sliceThickness: number | null;
  spacingBetweenSlices: number | null;
  imagePosition: Vec3 | null;
  imageOrientation: number[] | null;
  sliceLocation: number | null;
  gantryTilt: number | null;
  rescaleSlope: number;
  rescaleIntercept: number;
  rescaleType: string;
  bitsAllocated: number | null;
  bitsStored: number | null;
  highBit: number | null;
  pixelRepresentation: number | null;
  photometric: string;
  samplesPerPixel: number | null;
  planarConfiguration: number | null;
  transferSyntaxUid: string;
  numberOfFrames: number;
  pixelPaddingValue: number | null;
  pixelPaddingRangeLimit: number | null;
  windowCenter: number | null;
  windowWidth: number | null;
  hasPixelData: boolean;
  /** Byte offset and length of the pixel data value in the file (length -1 when encapsulated). */
  pixelDataOffset: number | null;
  pixelDataLength: number | null;
  /** Per-frame positions of an enhanced multi-frame object (PerFrameFunctionalGroupsSequence). */
  framePositions: Vec3[] | null;
  /**
   * Patient identifiers of this object (names decoded with SpecificCharacterSet, IDs, institution,
   * physicians, UIDs other than the SOP Instance UID, dates), stored per series so that an export
   * can be checked without the source files. See readIdentifiers.
   */
  identifiers: PhiIdentifier[];
  warnings: string[];
}

export const SOP_CLASS = {
  mediaStorageDirectory: '1.2.840.10008.1.3.10',
  ctImage: '1.2.840.10008.5.1.4.1.1.2',
  enhancedCtImage: '1.2.840.10008.5.1.4.1.1.2.1',
  segmentation: '1.2.840.10008.5.1.4.1.1.66.4',
} as const;

function vec3(v: number[] | null): Vec3 | null {
  return v && v.length >= 3 ? [v[0], v[1], v[2]] : null;
}

function signed16(v: number | null, pixelRepresentation: number | null): number | null {
  if (v === null) return null;
  return pixelRepresentation === 1 && v > 0x7fff ? v - 0x10000 : v;
}

/** A small stable string hash (cyrb53), for derived identities; not cryptographic. */
export function hash53(s: string, seed = 0): string {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0');
}

/**
 * A valid DICOM UID derived from a key, under the 2.25 (UUID-derived) root, so derived identities
 * look and behave like real UIDs downstream.
 */
export function derivedUid(key: string): string {
  const a = hash53(key, 1);
  const b = hash53(key, 2);
  const big = BigInt('0x' + a + b);
  return '2.25.' + big.toString(10);
}

/** Reads the index record from a parsed dataset. */
export function readHeader(parsed: ParsedDicom): InstanceHeader {
  const ds: DataSet = parsed.dataSet;
  const warnings = [...parsed.warnings];
  const pixelRepresentation = u16(ds, 'x00280103');

  // Enhanced multi-frame objects keep geometry and rescale in functional groups.
  const shared = firstItem(ds, 'x52009229');
  const perFrame = ds.elements['x52009230']?.items ?? [];
  const sharedMeasures = firstItem(shared, 'x00289110');
  const sharedOrient = firstItem(shared, 'x00209116');
  const sharedRescale = firstItem(shared, 'x00289145');
  const firstFrame = perFrame[0]?.dataSet;

  let framePositions: Vec3[] | null = null;
  if (perFrame.length > 0) {
    const pos = perFrame.map((it) => vec3(nums(firstItem(it.dataSet, 'x00209113') ?? ds, 'x00200032')));
    if (pos.every((p) => p !== null)) framePositions = pos as Vec3[];
  }

  const pixelSpacingRaw =
    nums(ds, 'x00280030') ?? (sharedMeasures ? nums(sharedMeasures, 'x00280030') : null) ?? nums(firstItem(firstFrame, 'x00289110') ?? ds, 'x00280030');
  const orientation =
    nums(ds, 'x00200037') ??
    (sharedOrient ? nums(sharedOrient, 'x00200037') : null) ??
    (firstFrame ? nums(firstItem(firstFrame, 'x00209116') ?? ds, 'x00200037') : null);
  const rescaleSrc = ds.elements['x00281053'] ? ds : sharedRescale ?? firstItem(firstFrame, 'x00289145') ?? ds;

  const pixel = ds.elements[PIXEL_DATA];
  const pixelDataLength = pixel ? (pixel.hadUndefinedLength || pixel.length === 0xffffffff ? -1 : pixel.length) : null;

  const slope = num(rescaleSrc, 'x00281053');
  const intercept = num(rescaleSrc, 'x00281052');
  const frames = num(ds, 'x00280008');

  const header: InstanceHeader = {
    sopInstanceUid: str(ds, 'x00080018'),
    sopClassUid: str(ds, 'x00080016') || str(ds, 'x00020002'),
    studyInstanceUid: str(ds, 'x0020000d'),
    seriesInstanceUid: str(ds, 'x0020000e'),
    frameOfReferenceUid: str(ds, 'x00200052'),
    patientId: str(ds, 'x00100020'),
    patientNameHash: str(ds, 'x00100010') ? hash53(str(ds, 'x00100010')) : '',
    patientSex: str(ds, 'x00100040').toUpperCase(),
    patientAge: str(ds, 'x00101010'),
    patientBirthDate: str(ds, 'x00100030'),
    ethnicGroup: str(ds, 'x00102160'),
    studyDate: str(ds, 'x00080020'),
    studyTime: str(ds, 'x00080030'),
    studyId: str(ds, 'x00200010'),
    studyDescription: str(ds, 'x00081030'),
    seriesDate: str(ds, 'x00080021'),
    seriesTime: str(ds, 'x00080031'),
    seriesNumber: num(ds, 'x00200011'),
    seriesDescription: str(ds, 'x0008103e'),
    modality: str(ds, 'x00080060').toUpperCase(),
    bodyPart: str(ds, 'x00180015').toUpperCase(),
    manufacturer: str(ds, 'x00080070'),
    model: str(ds, 'x00081090'),
    contrastAgent: str(ds, 'x00180010'),
    kernel: str(ds, 'x00181210'),
    imageType: str(ds, 'x00080008') ? (ds.string('x00080008') ?? '') : '',
    instanceNumber: num(ds, 'x00200013'),
    acquisitionNumber: num(ds, 'x00200012'),
    acquisitionTime: str(ds, 'x00080032'),
    rows: u16(ds, 'x00280010'),
    columns: u16(ds, 'x00280011'),
    pixelSpacing: pixelSpacingRaw && pixelSpacingRaw.length >= 2 ? [pixelSpacingRaw[0], pixelSpacingRaw[1]] : null,
    sliceThickness: num(ds, 'x00180050') ?? (sharedMeasures ? num(sharedMeasures, 'x00180050') : null),
    spacingBetweenSlices: num(ds, 'x00180088') ?? (sharedMeasures ? num(sharedMeasures, 'x00180088') : null),
    imagePosition: vec3(nums(ds, 'x00200032')) ?? (framePositions ? framePositions[0] : null),
    imageOrientation: orientation && orientation.length >= 6 ? orientation.slice(0, 6) : null,
    sliceLocation: num(ds, 'x00201041'),
    gantryTilt: num(ds, 'x00181120'),
    rescaleSlope: slope ?? 1,
    rescaleIntercept: intercept ?? 0,
    rescaleType: str(rescaleSrc, 'x00281054'),
    bitsAllocated: u16(ds, 'x00280100'),
    bitsStored: u16(ds, 'x00280101'),
    highBit: u16(ds, 'x00280102'),
    pixelRepresentation,
    photometric: str(ds, 'x00280004').toUpperCase(),
    samplesPerPixel: u16(ds, 'x00280002'),
    planarConfiguration: u16(ds, 'x00280006'),
    transferSyntaxUid: parsed.transferSyntaxUid,
    numberOfFrames: frames && frames > 0 ? Math.round(frames) : 1,
    pixelPaddingValue: signed16(u16(ds, 'x00280120'), pixelRepresentation),
    pixelPaddingRangeLimit: signed16(u16(ds, 'x00280121'), pixelRepresentation),
    windowCenter: num(ds, 'x00281050'),
    windowWidth: num(ds, 'x00281051'),
    hasPixelData: !!pixel,
    pixelDataOffset: pixel ? pixel.dataOffset : null,
    pixelDataLength,
    framePositions,
    identifiers: readIdentifiers(ds),
    warnings,
  };
  if (header.rows !== null && header.columns !== null && (header.rows === 0 || header.columns === 0)) {
    warnings.push('Rows or Columns is 0');
  }
  return header;
}

/** Elements holding patient identifiers, at any depth (sequences included). */
const IDENTIFIER_TAGS: Record<string, PhiKind> = {
  x00100010: 'patient-name',
  x00101001: 'patient-name', // OtherPatientNames
  x00101005: 'patient-name', // PatientBirthName
  x00101060: 'patient-name', // PatientMotherBirthName
  x00100020: 'patient-id',
  x00101000: 'other-patient-id', // OtherPatientIDs (retired, still written)
  x00100021: 'issuer',
  x00380010: 'other-patient-id', // AdmissionID
  x00080050: 'accession',
  x00200010: 'study-id',
  x00080080: 'institution',
  x00081040: 'institution', // InstitutionalDepartmentName
  x00080081: 'institution-address',
  x00080090: 'physician', // ReferringPhysicianName
  x00081048: 'physician', // PhysiciansOfRecord
  x00081050: 'physician', // PerformingPhysicianName
  x00081060: 'physician', // NameOfPhysiciansReadingStudy
  x00321032: 'physician', // RequestingPhysician
  x00081070: 'operator', // OperatorsName
  x00101040: 'patient-address',
  x00102154: 'telephone',
  x00100030: 'birth-date',
  x00080020: 'study-date',
  x00080021: 'series-date',
  x00080022: 'acquisition-date',
  x00080023: 'content-date',
  x0008002a: 'acquisition-date', // AcquisitionDateTime (its date part)
};

/** The object's own SOP Instance UID is in the index and every manifest already. */
const OWN_UID_TAGS = new Set(['x00080018', 'x00020003']);
const UID_VALUE = /^[0-9]+(\.[0-9]+){3,}$/;
/** UIDs of the DICOM standard (SOP classes, transfer syntaxes, ...) identify nobody. */
const STANDARD_UID = '1.2.840.10008.';

/**
 * Patient identifiers of a dataset, for the export check: the elements of IDENTIFIER_TAGS (in
 * sequences too: OtherPatientIDsSequence items give other-patient-id and issuer), text decoded
 * with the SpecificCharacterSet in force (every plausible reading, see charset.ts), multiple
 * values split; and every UID-valued element but the object's own SOP Instance UID and the
 * standard's UIDs. Never throws: an unreadable element is left out.
 */
export function readIdentifiers(ds: DataSet): PhiIdentifier[] {
  const out = new Map<string, PhiIdentifier>();
  const add = (kind: PhiKind, value: string) => {
    const v = value.replace(/\u0000/g, '').trim().slice(0, 256);
    if (v && !out.has(`${kind}\u0000${v}`)) out.set(`${kind}\u0000${v}`, { kind, value: v });
  };
  const walk = (d: DataSet, inherited: string[], depth: number) => {
    const bytes = d.byteArray as Uint8Array;
    const raw = (tag: string): Uint8Array | null => {
      const el = d.elements[tag];
      if (!el || el.dataOffset < 0 || el.length <= 0 || el.length === 0xffffffff || el.items) return null;
      return bytes.subarray(el.dataOffset, Math.min(bytes.length, el.dataOffset + el.length));
    };
    const cs = raw('x00080005');
    const charsets = cs ? latin1(cs).split('\\').map((s) => s.trim()) : inherited;
    for (const tag in d.elements) {
      const el = d.elements[tag];
      try {
        if (el.items) {
          if (depth < 4 && tag !== PIXEL_DATA) for (const it of el.items) if (it.dataSet) walk(it.dataSet, charsets, depth + 1);
          continue;
        }
        const kind = IDENTIFIER_TAGS[tag];
        // Anything else may only be a UID: short, and UI when the VR is known.
        if (!kind && (el.length > 130 || el.length < 8 || (el.vr !== undefined && el.vr !== 'UI'))) continue;
        const b = raw(tag);
        if (!b) continue;
        if (kind) {
          const k: PhiKind = kind === 'patient-id' && depth > 0 ? 'other-patient-id' : kind;
          for (const text of decodeDicomText(b, charsets)) for (const v of text.split('\\')) add(k, k.endsWith('-date') ? v.replace(/[^0-9]/g, '').slice(0, 8) : v);
        } else if (b.length <= 130 && !OWN_UID_TAGS.has(tag) && b.every((c) => (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x5c || c === 0 || c === 0x20)) {
          for (const v of latin1(b).split('\\')) {
            const u = v.replace(/[\u0000 ]+$/, '');
            if (UID_VALUE.test(u) && !u.startsWith(STANDARD_UID)) add('uid', u);
          }
        }
      } catch {
        /* an element that cannot be read identifies nothing we could check */
      }
    }
  };
  try {
    walk(ds, [], 0);
  } catch {
    /* keep what was read */
  }
  return [...out.values()];
}

/** Bytes the uncompressed pixel data should occupy, or null when it cannot be known from the header. */
export function expectedPixelBytes(h: InstanceHeader): number | null {
  if (h.rows === null || h.columns === null || h.bitsAllocated === null) return null;
  // YBR_FULL_422 stored natively shares chroma between pixel pairs: 2 samples per pixel, not 3.
  const spp = h.photometric === 'YBR_FULL_422' ? 2 : (h.samplesPerPixel ?? 1);
  const bits = h.rows * h.columns * spp * h.numberOfFrames * h.bitsAllocated;
  return Math.ceil(bits / 8);
}

/** Whether the object holds an image plane we can show and train on. */
export function isImage(h: InstanceHeader): boolean {
  return h.hasPixelData && h.rows !== null && h.columns !== null && h.rows > 0 && h.columns > 0;
}

/**
 * Patient age in years: PatientAge (nnnY/M/W/D) when present, otherwise from birth and study dates.
 */
export function ageYears(patientAge: string, birthDate: string, studyDate: string): number | null {
  const m = /^(\d{1,3})\s*([DWMY])?$/i.exec(patientAge.trim());
  if (m) {
    const n = Number(m[1]);
    switch ((m[2] ?? 'Y').toUpperCase()) {
      case 'D':
        return n / 365.25;
      case 'W':
        return (n * 7) / 365.25;
      case 'M':
        return n / 12;
      default:
        return n;
    }
  }
  const b = /^(\d{4})(\d{2})(\d{2})/.exec(birthDate);
  const s = /^(\d{4})(\d{2})(\d{2})/.exec(studyDate);
  if (b && s) {
    const bd = Date.UTC(+b[1], +b[2] - 1, +b[3]);
    const sd = Date.UTC(+s[1], +s[2] - 1, +s[3]);
    const years = (sd - bd) / (365.25 * 86400000);
    return years >= 0 && years < 150 ? Math.floor(years) : null;
  }
  return null;
}
