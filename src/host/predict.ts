/**
 * Inference of a fine-tuned run on a series, for every door (`ctssl predict`, the viewer's Predict
 * button through `predict.run`): the host prepares the series from the library (slices in the
 * viewer's display order, their files and display transform), a fresh trainer process computes
 * (src/trainer/predict.ts) with progress, a cancel kills it. The prediction is kept with the run
 * (`<run>/predictions/<hash of the series UID>/`: prediction.json and masks.bin) so the viewer can
 * draw its masks slice by slice and any door can export it: per-slice scores as JSON or CSV, a
 * U-Net's mask as NIfTI (grid and affine of `ctssl export-nifti`) or DICOM SEG (referencing the
 * series' images).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, type EventName, type Events } from '../shared/contract';
import type { PredictionComputation, PredictionSummary, PredictSeries } from '../shared/predict';
import type { SliceMasks } from '../shared/types';
import type { BackendName } from '../shared/backends';
import { displayTransform } from '../core/dicom/geometry';
import { fromDisplay } from '../core/labels/mask-resample';
import { unpackBits } from '../core/labels/raster';
import { findSeriesByUid, getSeries, seriesPlanes } from '../library/db/catalog';
import type { Database } from '../library/db/sqlite';
import { latestCheckpointDir } from '../library/runs/checkpoint';
import { segSeriesContext } from '../library/labels/seg-export';
import { writeSeg } from '../library/labels/seg';
import { writeLabelNifti } from '../library/labels/nifti-export';
import { getRun } from './runs/run-store';
import { trainerRequest, TrainerRequestError, type SpawnTrainer } from './runs/trainer-host';

/** What is kept with the run: the summary, and what exports need to put masks back on stored pixels. */
interface StoredPrediction extends PredictionSummary {
  rows: number;
  columns: number;
  transform: PredictSeries['transform'];
  sopUids: string[];
  /** Byte length of each packed mask in masks.bin, in maskSlices order. */
  maskBytes: number;
}

export type PredictFormat = 'json' | 'csv' | 'nifti' | 'seg';

/** The export format a file name asks for. */
export function predictFormatOf(file: string): PredictFormat {
  const f = file.toLowerCase();
  if (f.endsWith('.json')) return 'json';
  if (f.endsWith('.csv')) return 'csv';
  if (f.endsWith('.nii') || f.endsWith('.nii.gz')) return 'nifti';
  if (f.endsWith('.dcm') || f.endsWith('.seg')) return 'seg';
  throw new ApiError('invalid-argument', `${file}: name the output .json or .csv (per-slice scores), .nii.gz or .nii (mask as NIfTI) or .dcm (mask as DICOM SEG)`);
}

const TOP = 10;

export class PredictService {
  private running = new Map<string, AbortController>();

  constructor(
    private readonly db: Database,
    private readonly emit: <E extends EventName>(event: E, payload: Events[E]) => void,
    private readonly spawn: SpawnTrainer,
    /** The data folder: predict.export writes into its exports/ (the server's downloads). */
    private readonly dataDir?: string,
  ) {}

  /** The run's folder, checked to be a fine-tuning run with a checkpoint. */
  private runOf(runId: number): { dir: string } {
    const run = getRun(this.db, runId);
    if (!run || run.deletedAt) throw new ApiError('not-found', `no run with id ${runId}`);
    if (run.kind !== 'finetune') throw new ApiError('invalid-argument', `run ${runId} is a ${run.kind} run: predictions need a fine-tuned classifier or U-Net`);
    if (!latestCheckpointDir(run.dir)) throw new ApiError('invalid-argument', `run ${runId} (${run.dir}) has no checkpoint yet: train it first`);
    return { dir: run.dir };
  }

  /** The library id of an indexed series named by its Series Instance UID (the CLI's --series). */
  seriesIdOf(uid: string): number {
    const row = findSeriesByUid(this.db, uid);
    if (!row) throw new ApiError('not-found', `no indexed series with UID ${uid} (ctssl series lists them)`);
    return row.id;
  }

  /** The series as the trainer reads it: slices in display order with their files. */
  seriesInput(seriesId: number): PredictSeries {
    const row = getSeries(this.db, seriesId);
    if (!row) throw new ApiError('not-found', `no series with id ${seriesId}`);
    if (!row.rows || !row.columns || row.slices === 0) throw new ApiError('invalid-argument', `series ${row.seriesInstanceUid} has no image slices`);
    const { geometry, planes } = seriesPlanes(this.db, seriesId);
    const q = this.db.prepare('SELECT sop_uid, image_orientation, rows, columns FROM instances WHERE id = ?');
    const rows = planes.map((p) => q.get(p.instanceId) as { sop_uid: string; image_orientation: string | null; rows: number; columns: number });
    const odd = rows.find((r) => r.rows !== row.rows || r.columns !== row.columns);
    if (odd) throw new ApiError('invalid-argument', `series ${row.seriesInstanceUid}: image ${odd.sop_uid} is ${odd.rows} x ${odd.columns}, the series ${row.rows} x ${row.columns}`);
    const iop = rows[0]?.image_orientation ? (JSON.parse(rows[0].image_orientation) as number[]) : null;
    const t = displayTransform(iop, geometry.orientation);
    return {
      seriesUid: row.seriesInstanceUid,
      rows: row.rows,
      columns: row.columns,
      transform: { transpose: t.transpose, flipX: t.flipX, flipY: t.flipY },
      slices: planes.map((p, i) => ({ path: p.path, frame: p.frame, sopUid: rows[i].sop_uid })),
    };
  }

  private folder(runDir: string, seriesUid: string): string {
    return join(runDir, 'predictions', createHash('sha256').update(seriesUid).digest('hex').slice(0, 24));
  }

  /**
   * Runs the model of a fine-tuned run on a series in a trainer process and keeps the prediction
   * with the run. Progress goes to 'predict.progress' (with `requestId`) and `onProgress`; `cancel`
   * with the same request id (or `signal`) kills the trainer and keeps nothing.
   */
  async run(o: { runId: number; seriesId: number; threshold?: number; requestId?: string; backend?: BackendName; signal?: AbortSignal; onProgress?: (done: number, total: number) => void }): Promise<PredictionSummary> {
    const { dir } = this.runOf(o.runId);
    const series = this.seriesInput(o.seriesId);
    const requestId = o.requestId ?? null;
    const key = requestId ?? `${o.runId}/${o.seriesId}/${Date.now()}`;
    if (this.running.has(key)) throw new ApiError('busy', `prediction ${key} is already running`);
    const ac = new AbortController();
    o.signal?.addEventListener('abort', () => ac.abort(), { once: true });
    this.running.set(key, ac);
    const t0 = Date.now();
    let result: PredictionComputation;
    try {
      const r = await trainerRequest(
        this.spawn,
        { v: 1, type: 'predict', runDir: dir, series, threshold: o.threshold, backend: o.backend },
        'prediction',
        (e) => {
          if (e.type !== 'predict-progress') return;
          o.onProgress?.(e.done, e.total);
          this.emit('predict.progress', { requestId, runId: o.runId, seriesId: o.seriesId, done: e.done, total: e.total });
        },
        ac.signal,
      );
      result = r.result;
    } catch (err) {
      if (err instanceof TrainerRequestError && err.cancelled) throw new ApiError('cancelled', 'prediction cancelled');
      throw new ApiError('internal', `prediction with run ${o.runId} on series ${series.seriesUid}: ${(err as Error).message}`);
    } finally {
      this.running.delete(key);
    }
    return this.keep(o.runId, dir, o.seriesId, series, result, (Date.now() - t0) / 1000);
  }

  cancel(requestId: string): boolean {
    const ac = this.running.get(requestId);
    if (!ac) return false;
    ac.abort();
    return true;
  }

  private keep(runId: number, dir: string, seriesId: number, series: PredictSeries, r: PredictionComputation, seconds: number): PredictionSummary {
    const n = series.slices.length;
    const scores = r.task === 'classification' ? (r.scores ?? []) : (r.maxProbability ?? []);
    if (scores.length !== n) throw new ApiError('internal', `the trainer scored ${scores.length} of ${n} slices`);
    const maskSlices = r.maskSlices ?? [];
    const masks = r.masks ?? [];
    const px = r.width * r.height;
    let maskVoxels = 0;
    for (const m of masks) for (let i = 0; i < m.length; i++) for (let b = m[i]; b; b &= b - 1) maskVoxels++;
    const top = [...scores.keys()].sort((a, b) => scores[b] - scores[a] || a - b).slice(0, TOP);
    const stored: StoredPrediction = {
      runId,
      runDir: dir,
      seriesId,
      seriesUid: series.seriesUid,
      task: r.task,
      model: r.model,
      checkpointStep: r.checkpointStep,
      backend: r.backend,
      threshold: r.threshold,
      slices: n,
      width: r.width,
      height: r.height,
      scores,
      top,
      maskSlices,
      maskVoxels,
      seconds,
      createdAt: new Date().toISOString(),
      rows: series.rows,
      columns: series.columns,
      transform: series.transform,
      sopUids: series.slices.map((s) => s.sopUid),
      maskBytes: Math.ceil(px / 8),
    };
    const folder = this.folder(dir, series.seriesUid);
    const tmp = `${folder}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const bin = new Uint8Array(masks.length * stored.maskBytes);
    masks.forEach((m, k) => bin.set(m.subarray(0, stored.maskBytes), k * stored.maskBytes));
    writeFileSync(join(tmp, 'masks.bin'), bin);
    writeFileSync(join(tmp, 'prediction.json'), JSON.stringify(stored));
    rmSync(folder, { recursive: true, force: true });
    renameSync(tmp, folder);
    return summaryOf(stored);
  }

  /** The kept prediction's folder and prediction.json (not its masks), or null when there is none. */
  private kept(runId: number, seriesId: number): { folder: string; p: StoredPrediction } | null {
    const run = getRun(this.db, runId);
    if (!run || run.deletedAt) throw new ApiError('not-found', `no run with id ${runId}`);
    const row = getSeries(this.db, seriesId);
    if (!row) throw new ApiError('not-found', `no series with id ${seriesId}`);
    const folder = this.folder(run.dir, row.seriesInstanceUid);
    if (!existsSync(join(folder, 'prediction.json'))) return null;
    return { folder, p: JSON.parse(readFileSync(join(folder, 'prediction.json'), 'utf8')) as StoredPrediction };
  }

  /** The kept prediction with all its packed masks (exports). */
  private stored(runId: number, seriesId: number): { p: StoredPrediction; masks: Uint8Array } | null {
    const k = this.kept(runId, seriesId);
    if (!k) return null;
    const { folder, p } = k;
    const masks = new Uint8Array(readFileSync(join(folder, 'masks.bin')));
    if (masks.length !== p.maskSlices.length * p.maskBytes) throw new ApiError('internal', `${folder}/masks.bin: ${masks.length} bytes, expected ${p.maskSlices.length * p.maskBytes}`);
    return { p, masks };
  }

  /** The kept prediction of a run on a series, or null when there is none. */
  summary(runId: number, seriesId: number): PredictionSummary | null {
    const k = this.kept(runId, seriesId);
    return k ? summaryOf(k.p) : null;
  }

  /**
   * The predicted mask of one slice (display index), in display orientation, as the viewer's label
   * masks. The viewer asks slice by slice: only that slice's bytes of masks.bin are read.
   */
  mask(runId: number, seriesId: number, index: number): SliceMasks {
    const s = this.kept(runId, seriesId);
    if (!s) throw new ApiError('not-found', `run ${runId} has no prediction for series ${seriesId}: predict first`);
    const { folder, p } = s;
    if (index >= p.slices) throw new ApiError('invalid-argument', `slice ${index} is outside the series (${p.slices} slices)`);
    const k = p.maskSlices.indexOf(index);
    let mask: Uint8Array = new Uint8Array(p.width * p.height);
    if (k >= 0) {
      const fd = openSync(join(folder, 'masks.bin'), 'r');
      try {
        const size = fstatSync(fd).size;
        if (size !== p.maskSlices.length * p.maskBytes) throw new ApiError('internal', `${folder}/masks.bin: ${size} bytes, expected ${p.maskSlices.length * p.maskBytes}`);
        const packed = new Uint8Array(p.maskBytes);
        if (readSync(fd, packed, 0, p.maskBytes, k * p.maskBytes) !== p.maskBytes) throw new ApiError('internal', `${folder}/masks.bin: cut short at slice ${index}`);
        mask = unpackBits(packed, p.width * p.height);
      } finally {
        closeSync(fd);
      }
    }
    return { seriesId, index, width: p.width, height: p.height, groups: [{ group: 'prediction', kind: 'prediction', sourceId: -1, readers: [], mask }] };
  }

  /** Stored-orientation masks by SOP Instance UID, for NIfTI and SEG. */
  private storedMasks(p: StoredPrediction, masks: Uint8Array): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    p.maskSlices.forEach((index, k) => {
      const disp = unpackBits(masks.subarray(k * p.maskBytes, (k + 1) * p.maskBytes), p.width * p.height);
      out.set(p.sopUids[index], fromDisplay(disp, p.rows, p.columns, p.transform));
    });
    return out;
  }

  /**
   * Writes a kept prediction to `file` in `format` (default: by the file's name): scores as JSON or
   * CSV; a U-Net's mask as NIfTI or DICOM SEG.
   */
  async exportTo(runId: number, seriesId: number, file: string, format: PredictFormat = predictFormatOf(file)): Promise<{ file: string; format: PredictFormat; slices: number; maskSlices: number }> {
    const s = this.stored(runId, seriesId);
    if (!s) throw new ApiError('not-found', `run ${runId} has no prediction for series ${seriesId}: predict first`);
    const { p, masks } = s;
    const scoreName = p.task === 'classification' ? 'score' : 'max_probability';
    if (format === 'json') {
      const slices = p.scores.map((score, index) => ({ index, sopUid: p.sopUids[index], [scoreName]: score, ...(p.task === 'segmentation' && { mask: p.maskSlices.includes(index) }) }));
      writeAtomic(file, JSON.stringify({ ...summaryOf(p), slices }, null, 2) + '\n');
    } else if (format === 'csv') {
      const lines = [`index,sop_uid,${scoreName}${p.task === 'segmentation' ? ',mask' : ''}`];
      p.scores.forEach((score, index) => lines.push(`${index},${p.sopUids[index]},${score}${p.task === 'segmentation' ? `,${p.maskSlices.includes(index) ? 1 : 0}` : ''}`));
      writeAtomic(file, lines.join('\n') + '\n');
    } else {
      if (p.task !== 'segmentation') throw new ApiError('invalid-argument', `run ${runId} is a classifier: it gives per-slice scores, write them as .json or .csv`);
      const bySop = this.storedMasks(p, masks);
      if (bySop.size === 0) throw new ApiError('invalid-argument', `the prediction of run ${runId} on series ${p.seriesUid} is empty: no slice has a mask to write`);
      try {
        if (format === 'nifti') {
          await writeLabelNifti(this.db, seriesId, file, `ctssl prediction run ${runId}`, (sop) => {
            const m = bySop.get(sop);
            return m ? [{ value: 1, mask: m }] : [];
          });
        } else {
          const ctx = segSeriesContext(this.db, seriesId);
          writeSeg(file, {
            ...ctx.base,
            seriesDescription: `CT SSL Studio prediction (run ${runId})`,
            contentLabel: 'PREDICTION',
            segments: [{ label: 'Predicted nodule', masks: bySop, algorithm: { name: `CT SSL Studio ${p.model} run ${runId} step ${p.checkpointStep}` } }],
          });
        }
      } catch (err) {
        if (err instanceof ApiError) throw err;
        throw new ApiError('invalid-argument', (err as Error).message);
      }
    }
    return { file, format, slices: p.slices, maskSlices: p.maskSlices.length };
  }

  /**
   * The app's export (predict.export): a kept prediction written into <data>/exports as
   * prediction-run<id>-series<id>.<ext> (in server mode, downloaded from there by the browser).
   */
  async exportToExports(runId: number, seriesId: number, format: PredictFormat) {
    if (!this.dataDir) throw new ApiError('unsupported', 'predict.export: no data folder');
    const ext = { json: 'json', csv: 'csv', nifti: 'nii.gz', seg: 'dcm' }[format];
    const dir = join(this.dataDir, 'exports');
    mkdirSync(dir, { recursive: true });
    return this.exportTo(runId, seriesId, join(dir, `prediction-run${Math.trunc(runId)}-series${Math.trunc(seriesId)}.${ext}`), format);
  }

  close(): void {
    for (const ac of this.running.values()) ac.abort();
  }
}

function summaryOf(p: StoredPrediction): PredictionSummary {
  const { rows: _r, columns: _c, transform: _t, sopUids: _s, maskBytes: _m, ...summary } = p;
  return summary;
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}
