/**
 * Generates one study: renders every slice, encodes it as a CT Image Storage file (handed to a
 * write callback, so the core stays free of I/O), and gathers its labels: the true nodule masks
 * per slice (for the DICOM SEG), the simulated readers (LIDC XML), the PE-positive slices (RSNA
 * CSV rows) and the study's manifest entry.
 */
import { encodeCtSlice, type CtSliceHeader } from './dicom';
import { lidcXml } from './lidc-xml';
import { buildModel, type PatientModel, slicePosition, toPatient } from './model';
import type { NoiseField } from './noise';
import type { Characteristics, NoduleType } from './nodules';
import { modelInput, type PatientPlan, type StudyPlan, synthUid, type SynthOptions } from './plan';
import { type ReaderMark, simulateReaders, type SliceRef } from './readers';
import { renderSlice, type SliceOutput } from './render';
import { type RsnaExam, rsnaExam, rsnaRow } from './rsna';

/** Files of a study, relative to the cohort root (forward slashes). */
export function studyPaths(p: PatientPlan, s: StudyPlan, slices: number) {
  const folder = `dicom/${p.patientId}/study-${s.index}/ct`;
  const digits = Math.max(4, String(slices).length);
  return {
    folder,
    slice: (k: number) => `${folder}/IM${String(k + 1).padStart(digits, '0')}.dcm`,
    lidc: `lidc/${p.patientId}_study-${s.index}.xml`,
    seg: `seg/${p.patientId}_study-${s.index}_seg.dcm`,
  };
}

export interface ManifestSlice {
  index: number;
  sopInstanceUid: string;
  z: number;
  areaPx: number;
}

export interface ManifestNodule {
  id: number;
  /** Segment number in the SEG (null when the nodule left no pixel in the series). */
  segmentNumber: number | null;
  type: NoduleType;
  diameterMm: number;
  axesMm: [number, number, number];
  /** Patient coordinates (LPS, mm) and voxel coordinates [column, row, slice index] of the centre. */
  centre: [number, number, number];
  centreVoxel: [number, number, number];
  solidHu: number;
  glassHu: number;
  spicules: number;
  characteristics: Characteristics;
  slices: ManifestSlice[];
  readers: ReaderMark[];
}

export interface ManifestEmbolus {
  id: number;
  site: string;
  side: string;
  centre: [number, number, number];
  lengthMm: number;
  radiusMm: number;
  hu: number;
  chronic: boolean;
  /** Slice indices where the defect shows (at least one labelled pixel). */
  slices: number[];
}

export interface StudyManifest {
  index: number;
  studyInstanceUid: string;
  studyDate: string;
  studyTime: string;
  accessionNumber: string;
  patientAge: string;
  series: {
    seriesInstanceUid: string;
    frameOfReferenceUid: string;
    folder: string;
    slices: number;
    rows: number;
    columns: number;
    pixelSpacing: [number, number];
    sliceThickness: number;
    imageOrientationPatient: number[];
    instances: { instanceNumber: number; sopInstanceUid: string; file: string; imagePositionPatient: [number, number, number] }[];
  };
  lidcXml: string;
  seg: { file: string; seriesInstanceUid: string; sopInstanceUid: string; segments: number; frames: number } | null;
  readers: { reader: number; radiologistId: string }[];
  nodules: ManifestNodule[];
  pe: {
    planned: boolean;
    present: boolean;
    rvStrain: boolean;
    chronic: boolean;
    acuteAndChronic: boolean;
    exam: RsnaExam;
    slices: number[];
    emboli: ManifestEmbolus[];
  };
  anatomy: { bodyWidthMm: number; bodyDepthMm: number; subcutaneousFatMm: number; lungHeightMm: number; contrastFactor: number; noiseSdHu: number; traitApplied: boolean };
}

/** What the SEG writer needs: segments (visible nodules) and their frames. */
export interface SegSpec {
  file: string;
  rows: number;
  columns: number;
  pixelSpacing: number;
  sliceThickness: number;
  segments: { number: number; label: string; description: string }[];
  /** One frame per (segment, slice) holding at least one pixel, in segment then slice order. */
  frames: { segment: number; slice: number; mask: Uint8Array }[];
  sources: { sopInstanceUid: string; position: [number, number, number] }[];
}

export interface StudyResult {
  manifest: StudyManifest;
  csvRows: string[];
  lidc: { file: string; xml: string };
  seg: SegSpec | null;
  /** Files written through the callback, relative paths. */
  files: string[];
}

const r3 = (v: number) => Math.round(v * 1000) / 1000;

export interface GenerateHooks {
  /** Receives each encoded CT slice; the bytes are reused for the next slice, so write (or copy) them now. */
  writeSlice(path: string, bytes: Uint8Array): void;
  /** Optional: sees each rendered slice (for previews and tests). */
  onSlice?(k: number, out: SliceOutput, model: PatientModel): void;
}

export function generateStudy(o: SynthOptions, p: PatientPlan, s: StudyPlan, noise: NoiseField, hooks: GenerateHooks): StudyResult {
  const model = buildModel(modelInput(o, p, s));
  const g = model.scan;
  const paths = studyPaths(p, s, g.slices);
  const key = `p${p.index}/s${s.index}`;
  const age = `${String(s.age).padStart(3, '0')}Y`;
  const base: Omit<CtSliceHeader, 'sopUid' | 'instanceNumber' | 'position'> = {
    patientName: p.patientName,
    patientId: p.patientId,
    birthDate: p.birthDate,
    sex: p.sex,
    age,
    ethnicGroup: p.ethnicGroup,
    studyUid: s.studyUid,
    seriesUid: s.seriesUid,
    frameOfReferenceUid: s.frameOfReferenceUid,
    studyDate: s.studyDate,
    studyTime: s.studyTime,
    seriesTime: s.studyTime,
    accession: s.accession,
    studyId: s.studyId,
    studyDescription: 'CT CHEST PE PROTOCOL (SYNTHETIC)',
    seriesDescription: `CTPA AXIAL ${g.thickness}mm (SYNTHETIC)`,
    seriesNumber: 2,
    contrast: true,
    rows: g.size,
    columns: g.size,
    pixelSpacing: g.ps,
    sliceThickness: g.thickness,
    reconstructionDiameter: g.ps * g.size,
    softwareVersion: 'ctssl synth 1',
  };
  const slices: SliceRef[] = [];
  const instances: StudyManifest['series']['instances'] = [];
  const noduleSlices = new Map<number, ManifestSlice[]>();
  const noduleFrames = new Map<number, { slice: number; pixels: number[] }[]>();
  const emboliSlices = new Map<number, number[]>();
  const peSlice: boolean[] = [];
  const files: string[] = [];
  let buffers: SliceOutput | undefined;
  for (let k = 0; k < g.slices; k++) {
    const out = renderSlice(model, k, noise, buffers);
    buffers = out;
    const sopUid = synthUid(o.seed, `${key}/sop/${k + 1}`);
    const position = slicePosition(model, k);
    const pos: [number, number, number] = [r3(position[0]), r3(position[1]), r3(position[2])];
    const file = paths.slice(k);
    hooks.writeSlice(file, encodeCtSlice({ ...base, sopUid, instanceNumber: k + 1, position: pos }, out.stored, true));
    files.push(file);
    hooks.onSlice?.(k, out, model);
    slices.push({ sopUid, z: pos[2] });
    instances.push({ instanceNumber: k + 1, sopInstanceUid: sopUid, file, imagePositionPatient: pos });
    for (const [id, px] of out.nodules) {
      const list = noduleSlices.get(id) ?? [];
      list.push({ index: k, sopInstanceUid: sopUid, z: pos[2], areaPx: px.length });
      noduleSlices.set(id, list);
      const fr = noduleFrames.get(id) ?? [];
      fr.push({ slice: k, pixels: px });
      noduleFrames.set(id, fr);
    }
    for (const id of out.emboli) {
      const list = emboliSlices.get(id) ?? [];
      list.push(k);
      emboliSlices.set(id, list);
    }
    peSlice.push(out.emboli.length > 0);
  }

  // Labels: only nodules that left pixels in the series are outlined and segmented.
  const visible = model.nodules.filter((n) => noduleSlices.has(n.id));
  const readersModel = { ...model, nodules: visible };
  const rd = simulateReaders(readersModel, slices, s.readers, o.seed, key);
  const dateIso = (d: string) => `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}`;
  const time = `${s.studyTime.slice(0, 2)}:${s.studyTime.slice(2, 4)}:${s.studyTime.slice(4, 6)}`;
  const xml = lidcXml({
    uid: synthUid(o.seed, `${key}/lidc`),
    messageId: String(-(1 + (p.index * 7919 + s.index * 104729) % 2147483000)),
    seriesUid: s.seriesUid,
    studyUid: s.studyUid,
    dateRequest: dateIso(s.studyDate),
    timeRequest: time,
    dateService: dateIso(s.studyDate),
    timeService: time,
    readers: rd.readers,
  });
  const segNumber = new Map<number, number>();
  visible.forEach((n, i) => segNumber.set(n.id, i + 1));
  const n2 = g.size * g.size;
  const seg: SegSpec | null =
    visible.length === 0
      ? null
      : {
          file: paths.seg,
          rows: g.size,
          columns: g.size,
          pixelSpacing: g.ps,
          sliceThickness: g.thickness,
          segments: visible.map((n, i) => ({ number: i + 1, label: `Nodule ${i + 1}`, description: `${n.type} nodule, ${n.diameter.toFixed(1)} mm` })),
          frames: visible.flatMap((n) =>
            noduleFrames.get(n.id)!.map((f) => {
              const mask = new Uint8Array(n2);
              for (const px of f.pixels) mask[px] = 1;
              return { segment: segNumber.get(n.id)!, slice: f.slice, mask };
            }),
          ),
          sources: instances.map((i) => ({ sopInstanceUid: i.sopInstanceUid, position: i.imagePositionPatient })),
        };

  const visibleEmboli = model.emboli.filter((e) => emboliSlices.has(e.id));
  const exam = rsnaExam(visibleEmboli, { rvStrain: s.pe.rvStrain, chronic: s.pe.chronic, acuteAndChronic: s.pe.acuteAndChronic });
  const csvRows = slices.map((sl, k) => rsnaRow(s.studyUid, s.seriesUid, sl.sopUid, peSlice[k], exam));

  const an = model.anatomy;
  const manifest: StudyManifest = {
    index: s.index,
    studyInstanceUid: s.studyUid,
    studyDate: s.studyDate,
    studyTime: s.studyTime,
    accessionNumber: s.accession,
    patientAge: age,
    series: {
      seriesInstanceUid: s.seriesUid,
      frameOfReferenceUid: s.frameOfReferenceUid,
      folder: paths.folder,
      slices: g.slices,
      rows: g.size,
      columns: g.size,
      pixelSpacing: [g.ps, g.ps],
      sliceThickness: g.thickness,
      imageOrientationPatient: [1, 0, 0, 0, 1, 0],
      instances,
    },
    lidcXml: paths.lidc,
    seg: seg ? { file: seg.file, seriesInstanceUid: s.segSeriesUid, sopInstanceUid: s.segInstanceUid, segments: seg.segments.length, frames: seg.frames.length } : null,
    readers: rd.readers.map((r, i) => ({ reader: i + 1, radiologistId: r.radiologistId })),
    nodules: model.nodules.map((n) => {
      const c = toPatient(model, n.centre);
      return {
        id: n.id,
        segmentNumber: segNumber.get(n.id) ?? null,
        type: n.type,
        diameterMm: r3(n.diameter),
        axesMm: [r3(2 * n.axes[0]), r3(2 * n.axes[1]), r3(2 * n.axes[2])],
        centre: [r3(c[0]), r3(c[1]), r3(c[2])],
        centreVoxel: [r3((n.centre[0] - g.x0) / g.ps), r3((n.centre[1] - g.y0) / g.ps), r3((n.centre[2] - g.s0) / g.thickness)],
        solidHu: r3(n.solidHu),
        glassHu: r3(n.glassHu),
        spicules: n.spicules.length,
        characteristics: n.characteristics,
        slices: noduleSlices.get(n.id) ?? [],
        readers: rd.marks.get(n.id) ?? [],
      };
    }),
    pe: {
      planned: s.pe.present,
      present: visibleEmboli.length > 0,
      rvStrain: visibleEmboli.length > 0 && s.pe.rvStrain,
      chronic: visibleEmboli.length > 0 && s.pe.chronic,
      acuteAndChronic: visibleEmboli.length > 0 && s.pe.acuteAndChronic,
      exam,
      slices: peSlice.flatMap((v, k) => (v ? [k] : [])),
      emboli: model.emboli.map((e) => {
        const c = toPatient(model, e.centre);
        return {
          id: e.id,
          site: e.site,
          side: e.side,
          centre: [r3(c[0]), r3(c[1]), r3(c[2])],
          lengthMm: r3(2 * e.halfLength),
          radiusMm: r3(e.radius),
          hu: r3(e.hu),
          chronic: e.chronic,
          slices: emboliSlices.get(e.id) ?? [],
        };
      }),
    },
    anatomy: {
      bodyWidthMm: r3(an.width),
      bodyDepthMm: r3(an.depth),
      subcutaneousFatMm: r3(an.fat),
      lungHeightMm: r3(an.lungHeight),
      contrastFactor: r3(an.contrast),
      noiseSdHu: r3(an.noise),
      traitApplied: p.traitApplied,
    },
  };
  return { manifest, csvRows, lidc: { file: paths.lidc, xml }, seg, files };
}
