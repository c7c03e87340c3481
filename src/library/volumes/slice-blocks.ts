/**
 * What the viewer asks for: a series' layout in display orientation (VolumeInfo) and blocks of
 * HU slices. Slices are read from the files named in the index, never from paths the renderer
 * sends.
 */
import { ApiError } from '../../shared/contract';
import type { SliceBlock, VolumeInfo } from '../../shared/types';
import { displayTransform, edgeLabels } from '../../core/dicom/geometry';
import { volumeFrame } from '../../core/dicom/patient-geometry';
import { getSeries, seriesPlanes } from '../db/catalog';
import type { Database } from '../db/sqlite';
import { loadSeriesVolume, PADDING_SENTINEL } from './volume';

export function openVolumeInfo(db: Database, seriesId: number): VolumeInfo {
  const series = getSeries(db, seriesId);
  if (!series) throw new ApiError('not-found', `no series with id ${seriesId}`);
  const { geometry, planes } = seriesPlanes(db, seriesId);
  if (planes.length === 0) throw new ApiError('unsupported', `series ${series.seriesInstanceUid} has no image planes to show`);
  const iop = (db.prepare('SELECT image_orientation FROM instances WHERE id = ?').pluck().get(planes[0].instanceId) as string | null) ?? null;
  const t = displayTransform(iop ? (JSON.parse(iop) as number[]) : null, geometry.orientation);
  const rows = series.rows ?? 0;
  const cols = series.columns ?? 0;
  const [rowSpacing, colSpacing] = series.pixelSpacing ?? [1, 1];
  // Stored pixel spacing is [between rows, between columns]; display x runs along columns unless transposed.
  const dims: [number, number, number] = t.transpose ? [rows, cols, planes.length] : [cols, rows, planes.length];
  const spacing: [number, number, number] = t.transpose
    ? [rowSpacing, colSpacing, series.spacing ?? series.sliceThickness ?? 1]
    : [colSpacing, rowSpacing, series.spacing ?? series.sliceThickness ?? 1];
  const warnings = [...geometry.warnings];
  if (!series.pixelSpacing) warnings.push('no PixelSpacing: 1 mm assumed');
  return {
    seriesId,
    seriesInstanceUid: series.seriesInstanceUid,
    dims,
    spacing,
    orientation: geometry.orientation,
    labels: edgeLabels(t),
    positions: planes.map((p) => Math.round(p.distance * 1000) / 1000),
    paddingValue: PADDING_SENTINEL,
    frame: volumeFrame(
      planes.map((p) => p.position),
      iop ? (JSON.parse(iop) as number[]) : null,
      series.pixelSpacing ?? null,
      rows,
      cols,
      t,
    ),
    metadata: {
      'Patient ID': series.patientId,
      Modality: series.modality,
      Description: series.description,
      Manufacturer: [series.manufacturer, series.model].filter(Boolean).join(' '),
      'Study date': series.studyDate,
      'Body part': series.bodyPart,
      Kernel: series.kernel,
      Matrix: `${series.columns ?? '?'} x ${series.rows ?? '?'}`,
      'Pixel spacing (mm)': series.pixelSpacing ? series.pixelSpacing.map((v) => v.toFixed(3)).join(' x ') : null,
      'Slice thickness (mm)': series.sliceThickness,
      'Spacing (mm)': series.spacing,
      Slices: series.slices,
      Orientation: series.orientation,
      'Uniform spacing': series.uniformSpacing ? 'yes' : 'no',
      'Gantry tilt (deg)': series.gantryTilt,
      Contrast: series.contrast ? 'yes' : 'no',
      'Series UID': series.seriesInstanceUid,
    },
    warnings,
  };
}

export async function readSliceBlock(db: Database, seriesId: number, start: number, count: number): Promise<SliceBlock> {
  if (!getSeries(db, seriesId)) throw new ApiError('not-found', `no series with id ${seriesId}`);
  const total = (db.prepare('SELECT slices FROM series WHERE id = ?').pluck().get(seriesId) as number) ?? 0;
  if (start >= total) throw new ApiError('invalid-argument', `slice ${start} is outside the series (${total} slices)`);
  try {
    const vol = await loadSeriesVolume(db, seriesId, { start, count: Math.min(count, total - start) });
    return { seriesId, start: vol.start, count: vol.count, data: vol.data };
  } catch (err) {
    throw new ApiError('internal', (err as Error).message);
  }
}
