/**
 * DICOM Segmentation objects (SEG, BINARY), read and written with dcmjs.
 *
 * Reading maps every frame to its segment and source image (DerivationImageSequence ->
 * SourceImageSequence -> ReferencedSOPInstanceUID, else the frame's ImagePositionPatient).
 * Writing builds a multi-frame SEG referencing the source images of one series, one frame per
 * (segment, source slice) that holds any pixel, bit-packed LSB first as the standard requires.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import dcmjs from 'dcmjs';
import { appMeta } from '../../platform/app-meta';
import { area, packBits, packBitsLsb, unpackBitsLsb } from '../../core/labels/raster';

const { DicomMessage, DicomMetaDictionary, DicomDict } = dcmjs.data;
type Ds = Record<string, unknown>;

export const SEG_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.66.4';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const DEFLATED = '1.2.840.10008.1.2.1.99';

export interface SegSegment {
  number: number;
  label: string;
  category: string;
  type: string;
}

export interface SegFrame {
  segment: number;
  sourceSopUid: string;
  position: [number, number, number] | null;
  /** Mask of rows x columns, packed MSB first (our storage format). */
  packed: Uint8Array;
  area: number;
}

export interface SegObject {
  rows: number;
  columns: number;
  referencedSeriesUid: string;
  segments: SegSegment[];
  frames: SegFrame[];
  warnings: string[];
}

const seq = (v: unknown): Ds[] => (Array.isArray(v) ? (v as Ds[]) : v && typeof v === 'object' ? [v as Ds] : []);
const first = (v: unknown): Ds | undefined => seq(v)[0];
const codeMeaning = (v: unknown) => String(first(v)?.CodeMeaning ?? '');

function pixelBytes(ds: Ds, path: string): Uint8Array {
  const pd = ds.PixelData as ArrayBuffer[] | ArrayBuffer | undefined;
  const buf = Array.isArray(pd) ? pd[0] : pd;
  if (!buf) throw new Error(`${path}: the SEG has no PixelData`);
  return new Uint8Array(buf);
}

export async function readSeg(path: string): Promise<SegObject> {
  const bytes = readFileSync(path);
  let dict;
  try {
    dict = DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  } catch (err) {
    throw new Error(`${path}: not a readable DICOM file: ${(err as Error).message}`);
  }
  const meta = DicomMetaDictionary.naturalizeDataset(dict.meta);
  const ds = DicomMetaDictionary.naturalizeDataset(dict.dict);
  if (ds.SOPClassUID !== SEG_SOP_CLASS) throw new Error(`${path}: not a DICOM SEG (SOP Class ${String(ds.SOPClassUID)})`);
  const ts = String(meta.TransferSyntaxUID ?? EXPLICIT_LE);
  if (!/^1\.2\.840\.10008\.1\.2(\.1|\.2|\.1\.99)?$/.test(ts))
    throw new Error(`${path}: SEG pixel data in transfer syntax ${ts} (compressed) is not supported; store it uncompressed or deflated`);
  const warnings: string[] = [];
  const rows = Number(ds.Rows);
  const columns = Number(ds.Columns);
  const frames = Number(ds.NumberOfFrames ?? 1);
  const bits = Number(ds.BitsAllocated);
  if (String(ds.SegmentationType ?? 'BINARY') !== 'BINARY' || bits !== 1)
    warnings.push(`SegmentationType ${String(ds.SegmentationType)} with ${bits} bits: values > 0 are read as inside`);
  const segments: SegSegment[] = seq(ds.SegmentSequence).map((s) => ({
    number: Number(s.SegmentNumber),
    label: String(s.SegmentLabel ?? ''),
    category: codeMeaning(s.SegmentedPropertyCategoryCodeSequence),
    type: codeMeaning(s.SegmentedPropertyTypeCodeSequence),
  }));
  const referencedSeriesUid = String(first(ds.ReferencedSeriesSequence)?.SeriesInstanceUID ?? '');
  const perFrame = seq(ds.PerFrameFunctionalGroupsSequence);
  const shared = first(ds.SharedFunctionalGroupsSequence);
  const pixels = pixelBytes(ds, path);
  const n = rows * columns;
  const out: SegFrame[] = [];
  for (let f = 0; f < frames; f++) {
    const fg = perFrame[f] ?? {};
    const segNum = Number(first(fg.SegmentIdentificationSequence ?? shared?.SegmentIdentificationSequence)?.ReferencedSegmentNumber ?? 1);
    const src = first(first(fg.DerivationImageSequence)?.SourceImageSequence);
    const pos = first(fg.PlanePositionSequence)?.ImagePositionPatient as number[] | undefined;
    let mask: Uint8Array;
    if (bits === 1) mask = unpackBitsLsb(pixels, n, f * n);
    else {
      mask = new Uint8Array(n);
      const per = bits / 8;
      for (let i = 0; i < n; i++) mask[i] = pixels[(f * n + i) * per] ? 1 : 0;
    }
    out.push({
      segment: segNum,
      sourceSopUid: String(src?.ReferencedSOPInstanceUID ?? ''),
      position: pos && pos.length >= 3 ? [Number(pos[0]), Number(pos[1]), Number(pos[2])] : null,
      packed: packBits(mask),
      area: area(mask),
    });
  }
  return { rows, columns, referencedSeriesUid, segments, frames: out, warnings };
}

export interface SegSource {
  sopUid: string;
  sopClassUid: string;
  position: [number, number, number] | null;
}

export interface WriteSegOptions {
  /** Patient/study module values copied from the source series, with its UIDs. */
  patient: { patientId: string; patientName?: string; sex?: string; birthDate?: string };
  study: { studyInstanceUid: string; studyDate?: string; studyTime?: string; studyId?: string; accession?: string };
  series: { seriesInstanceUid: string; frameOfReferenceUid: string };
  rows: number;
  columns: number;
  pixelSpacing: [number, number];
  sliceThickness: number;
  orientation: number[];
  segments: { label: string; masks: Map<string, Uint8Array>; algorithm?: { name: string; version?: string } }[];
  sources: SegSource[];
  seriesDescription?: string;
  /** ContentLabel (a DICOM CS: upper case, digits, space, underscore; at most 16). */
  contentLabel?: string;
  deflate?: boolean;
}

const code = (value: string, scheme: string, meaning: string) => ({ CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning });

/** Writes a BINARY SEG; returns its SOP Instance UID and frame count. */
export function writeSeg(outPath: string, o: WriteSegOptions): { sopInstanceUid: string; frames: number } {
  const sopInstanceUid = DicomMetaDictionary.uid();
  const seriesUid = DicomMetaDictionary.uid();
  const bySop = new Map(o.sources.map((s) => [s.sopUid, s]));
  const frames: { segment: number; source: SegSource; mask: Uint8Array }[] = [];
  o.segments.forEach((s, i) => {
    // Frames in source order, so they follow the series geometry.
    for (const src of o.sources) {
      const m = s.masks.get(src.sopUid);
      if (m && area(m) > 0) frames.push({ segment: i + 1, source: src, mask: m });
    }
    for (const sop of s.masks.keys()) if (!bySop.has(sop)) throw new Error(`segment "${s.label}": no source image ${sop} in the series`);
  });
  if (frames.length === 0) throw new Error('nothing to write: every mask is empty');
  const n = o.rows * o.columns;
  const bits = new Uint8Array(Math.ceil((frames.length * n) / 8));
  frames.forEach((f, k) => {
    const packed = packBitsLsb(f.mask);
    const offset = k * n;
    if (offset % 8 === 0) bits.set(packed.subarray(0, Math.ceil(n / 8)), offset / 8);
    else for (let i = 0; i < n; i++) if (f.mask[i]) bits[(offset + i) >> 3] |= 1 << ((offset + i) & 7);
  });
  const now = new Date();
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  const time = now.toISOString().slice(11, 19).replace(/:/g, '');
  const dataset: Ds = {
    _vrMap: { PixelData: 'OB' },
    SOPClassUID: SEG_SOP_CLASS,
    SOPInstanceUID: sopInstanceUid,
    Modality: 'SEG',
    SeriesInstanceUID: seriesUid,
    SeriesNumber: 900,
    SeriesDescription: o.seriesDescription ?? 'CT SSL Studio labels',
    InstanceNumber: 1,
    ContentDate: date,
    ContentTime: time,
    ContentLabel: o.contentLabel ?? 'LABELS',
    ContentDescription: 'Exported by CT SSL Studio',
    ContentCreatorName: '',
    Manufacturer: 'CT SSL Studio',
    ManufacturerModelName: 'CT SSL Studio',
    SoftwareVersions: appMeta().version,
    DeviceSerialNumber: '1',
    PatientName: o.patient.patientName ?? '',
    PatientID: o.patient.patientId,
    PatientBirthDate: o.patient.birthDate ?? '',
    PatientSex: o.patient.sex ?? '',
    StudyInstanceUID: o.study.studyInstanceUid,
    StudyDate: o.study.studyDate ?? '',
    StudyTime: o.study.studyTime ?? '',
    StudyID: o.study.studyId ?? '',
    AccessionNumber: o.study.accession ?? '',
    ReferringPhysicianName: '',
    FrameOfReferenceUID: o.series.frameOfReferenceUid,
    PositionReferenceIndicator: '',
    ImageType: ['DERIVED', 'PRIMARY'],
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: o.rows,
    Columns: o.columns,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    SegmentationType: 'BINARY',
    NumberOfFrames: frames.length,
    DimensionOrganizationType: '3D',
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: DicomMetaDictionary.uid() }],
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: o.series.seriesInstanceUid,
        ReferencedInstanceSequence: o.sources.map((s) => ({ ReferencedSOPClassUID: s.sopClassUid, ReferencedSOPInstanceUID: s.sopUid })),
      },
    ],
    SegmentSequence: o.segments.map((s, i) => ({
      SegmentNumber: i + 1,
      SegmentLabel: s.label,
      SegmentAlgorithmType: s.algorithm ? 'AUTOMATIC' : 'MANUAL',
      ...(s.algorithm && { SegmentAlgorithmName: s.algorithm.name }),
      SegmentedPropertyCategoryCodeSequence: [code('M-01000', 'SRT', 'Morphologically Altered Structure')],
      SegmentedPropertyTypeCodeSequence: [code('M-03010', 'SRT', 'Nodule')],
    })),
    SharedFunctionalGroupsSequence: [
      {
        PlaneOrientationSequence: [{ ImageOrientationPatient: o.orientation }],
        PixelMeasuresSequence: [{ PixelSpacing: o.pixelSpacing, SliceThickness: o.sliceThickness }],
      },
    ],
    PerFrameFunctionalGroupsSequence: frames.map((f) => ({
      DerivationImageSequence: [
        {
          SourceImageSequence: [
            {
              ReferencedSOPClassUID: f.source.sopClassUid,
              ReferencedSOPInstanceUID: f.source.sopUid,
              PurposeOfReferenceCodeSequence: [code('121322', 'DCM', 'Source image for image processing operation')],
            },
          ],
          DerivationCodeSequence: [code('113076', 'DCM', 'Segmentation')],
        },
      ],
      FrameContentSequence: [{ DimensionIndexValues: [f.segment, o.sources.indexOf(f.source) + 1] }],
      PlanePositionSequence: f.source.position ? [{ ImagePositionPatient: f.source.position }] : [],
      SegmentIdentificationSequence: [{ ReferencedSegmentNumber: f.segment }],
    })),
    PixelData: [bits.buffer],
  };
  const meta: Ds = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: SEG_SOP_CLASS,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: o.deflate ? DEFLATED : EXPLICIT_LE,
    ImplementationClassUID: '2.25.80302813137786398554742050926734630921',
    ImplementationVersionName: 'CTSSL_' + appMeta().version,
  };
  const dicomDict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dicomDict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  writeFileSync(outPath, new Uint8Array(dicomDict.write()));
  return { sopInstanceUid, frames: frames.length };
}
