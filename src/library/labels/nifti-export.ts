/**
 * A series' labels as a NIfTI label volume (.nii.gz, uint8) on the same grid and affine as
 * `ctssl export-nifti` writes for the image: 0 background, 1..G one value per nodule group (or
 * SEG segment), in the order listed in the result.
 */
import { writeFile, rename } from 'node:fs/promises';
import { gzipSync } from 'fflate';
import { sliceMasks, type MaskQuery } from './label-queries';
import { niftiAffine, niftiHeader, niftiStack } from '../volumes/nifti';
import type { Database } from '../db/sqlite';

export interface LabelNiftiResult {
  file: string;
  dims: [number, number, number];
  /** Label value -> finding group. */
  labels: { value: number; group: string }[];
  labelledSlices: number;
  voxels: number;
}

export async function exportSeriesLabelNifti(db: Database, seriesId: number, outPath: string, q: MaskQuery = {}): Promise<LabelNiftiResult> {
  const values = new Map<string, number>();
  const r = await writeLabelNifti(db, seriesId, outPath, 'ctssl labels', (sopUid, rows, columns) =>
    sliceMasks(db, sopUid, rows, columns, q).map((g) => {
      if (!values.has(g.group)) values.set(g.group, values.size + 1);
      return { value: values.get(g.group)!, mask: g.mask };
    }),
  );
  if (values.size > 255) throw new Error(`series ${r.uid}: more than 255 label groups`);
  if (r.voxels === 0) throw new Error(`series ${r.uid} has no labels matching the request`);
  return { file: outPath, dims: r.dims, labels: [...values.entries()].map(([group, value]) => ({ value, group })), labelledSlices: r.labelledSlices, voxels: r.voxels };
}

/**
 * Writes a uint8 label volume on the grid and affine of `ctssl export-nifti`: `masksOf` gives each
 * image's masks (stored orientation, rows x columns) with the value each one paints.
 */
export async function writeLabelNifti(
  db: Database,
  seriesId: number,
  outPath: string,
  description: string,
  masksOf: (sopUid: string, rows: number, columns: number) => { value: number; mask: Uint8Array }[],
): Promise<{ uid: string; dims: [number, number, number]; labelledSlices: number; voxels: number }> {
  const st = niftiStack(db, seriesId);
  const inst = db.prepare('SELECT sop_uid, rows, columns, pixel_spacing FROM instances WHERE id = ?');
  const first = inst.get(st.planes[0].instanceId) as { rows: number; columns: number; pixel_spacing: string | null };
  if (!first.pixel_spacing) throw new Error(`series ${st.uid}: no PixelSpacing, no affine`);
  const { rows, columns } = first;
  const px = rows * columns;
  const vol = new Uint8Array(px * st.n);
  let labelledSlices = 0;
  let voxels = 0;
  st.planes.forEach((p, k) => {
    const r = inst.get(p.instanceId) as { sop_uid: string; rows: number; columns: number };
    if (r.rows !== rows || r.columns !== columns) throw new Error(`series ${st.uid}: planes of different sizes`);
    let any = false;
    for (const g of masksOf(r.sop_uid, rows, columns)) {
      if (g.value < 1 || g.value > 255) throw new Error(`series ${st.uid}: label value ${g.value} outside 1-255`);
      for (let i = 0; i < px; i++)
        if (g.mask[i]) {
          if (!vol[k * px + i]) voxels++;
          vol[k * px + i] = g.value;
          any = true;
        }
    }
    if (any) labelledSlices++;
  });
  const ps = JSON.parse(first.pixel_spacing) as [number, number];
  const header = niftiHeader({
    dims: [columns, rows, st.n],
    pixdim: [ps[1], ps[0], st.n > 1 ? Math.abs(st.step) : 1],
    datatype: 'uint8',
    affine: niftiAffine(st, ps),
    description,
  });
  const raw = new Uint8Array(header.length + vol.length);
  raw.set(header, 0);
  raw.set(vol, header.length);
  const tmp = `${outPath}.${process.pid}.tmp`;
  await writeFile(tmp, outPath.endsWith('.gz') ? gzipSync(raw, { level: 6 }) : raw);
  await rename(tmp, outPath);
  return { uid: st.uid, dims: [columns, rows, st.n], labelledSlices, voxels };
}
