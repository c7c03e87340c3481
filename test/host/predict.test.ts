import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServices, type Services } from '../../src/host/services';
import { indexFolders } from '../../src/library/indexing/indexer';
import { importLabels } from '../../src/library/labels/label-import';
import { createFinetuneRun } from '../../src/host/runs/create-run';
import { startRun } from '../../src/host/runs/start-run';
import { findSeriesByUid, listSeries } from '../../src/library/db/catalog';
import type { Events, EventName } from '../../src/shared/contract';
import type { PredictionSummary } from '../../src/shared/predict';
import { latestCheckpointDir, readCheckpoint } from '../../src/library/runs/checkpoint';
import { exportSeriesNifti } from '../../src/library/volumes/nifti';
import { fixtures, root, tempDir } from '../helpers';
import { globSync } from '../glob';

const py = '/usr/bin/python3';
const pyHas = (mods: string) => existsSync(py) && spawnSync(py, ['-c', `import ${mods}`]).status === 0;

/**
 * Inference with real fine-tuning runs (a few steps on the committed LIDC slices, in trainer
 * processes), through the services' predict.run as the app and `ctssl predict` call it.
 */
describe('predict: fine-tuned runs on a series', () => {
  const tmp = tempDir();
  let services: Services;
  const events: { name: EventName; payload: unknown }[] = [];
  let seriesId: number;
  let seriesUid: string;
  let clsRun: { id: number; dir: string };
  let segRun: { id: number; dir: string };

  beforeAll(async () => {
    services = createServices({
      mode: 'cli',
      dataDir: tmp.dir,
      dbPath: join(tmp.dir, 'lib.sqlite'),
      emit: <E extends EventName>(name: E, payload: Events[E]) => void events.push({ name, payload }),
    });
    const db = services.db;
    await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
    await importLabels(db, globSync(join(fixtures, 'lidc-0001'), /069\.xml$/)[0]);
    await importLabels(db, join(fixtures, 'lidc-small', 'xml', '71.xml'));
    const s = listSeries(db).find((r) => r.patientId === 'LIDC-IDRI-0001')!;
    seriesId = s.id;
    seriesUid = s.seriesInstanceUid;
    const common = { kind: 'finetune' as const, preset: 'tiny' as const, size: 64, batchSize: 4, useCache: false, filter: { modality: 'CT' }, windowLevel: -600, windowWidth: 1500 };
    const cls = createFinetuneRun(db, { ...common, task: 'classification', model: 'encoder-classifier', label: { kind: 'nodule' }, steps: 4, lr: 0.01 }, { dataDir: tmp.dir, dir: join(tmp.dir, 'cls') });
    expect((await startRun(db, cls).done).status).toBe('done');
    const seg = createFinetuneRun(db, { ...common, task: 'segmentation', model: 'unet', label: { kind: 'nodule', consensusK: 1 }, steps: 24, lr: 0.01, evalEvery: 24 }, { dataDir: tmp.dir, dir: join(tmp.dir, 'seg') });
    expect((await startRun(db, seg).done).status).toBe('done');
    clsRun = cls;
    segRun = seg;
  }, 600_000);

  afterAll(async () => {
    await services?.close();
    tmp.cleanup();
  });

  it('a classifier scores every slice in display order, as the model scores the training slices of that series', async () => {
    const h = services.handlers;
    const r = await h['predict.run']({ runId: clsRun.id, seriesId, requestId: 'cls-1' });
    const n = listSeries(services.db).find((s) => s.id === seriesId)!.slices;
    expect(r).toMatchObject({ task: 'classification', slices: n, seriesUid, runId: clsRun.id });
    expect(r.scores).toHaveLength(n);
    expect(r.scores.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(r.top[0]).toBe(r.scores.indexOf(Math.max(...r.scores)));
    // progress reached every slice, tagged with the request
    const progress = events.filter((e) => e.name === 'predict.progress').map((e) => e.payload as Events['predict.progress']);
    expect(progress.at(-1)).toMatchObject({ requestId: 'cls-1', done: n, total: n, runId: clsRun.id });
    // kept with the run: the app gets it back without predicting again
    expect(await h['predict.get'](clsRun.id, seriesId)).toEqual(r);

    // The same checkpoint in this process, on the slices as training read them (the run's
    // manifest and SliceSource): the service's scores are the model's scores of those slices.
    const { initBackend } = await import('../../src/trainer/backend');
    const { createFinetuneEngine } = await import('../../src/trainer/finetune/finetune-engine');
    const { readFinetuneRun, finetuneSize } = await import('../../src/trainer/finetune/finetune-loop');
    const { finetuneSliceSource } = await import('../../src/trainer/finetune/finetune-batches');
    await initBackend();
    const { config, manifest } = readFinetuneRun(clsRun.dir);
    const engine = await createFinetuneEngine(config, [1, 1]);
    await engine.setWeights(readCheckpoint(latestCheckpointDir(clsRun.dir)!).weights);
    const size = finetuneSize(config);
    const source = finetuneSliceSource(manifest, { level: config.windowLevel, width: config.windowWidth, size, scaling: config.scaling }, null);
    const si = manifest.series.findIndex((s) => s.seriesUid === seriesUid);
    expect(si).toBeGreaterThanOrEqual(0);
    const picks = [0, Math.floor(n / 2), n - 1];
    const input = new Float32Array(picks.length * size * size);
    for (const [k, i] of picks.entries()) input.set(await source.load({ series: si, slice: i }), k * size * size);
    const p = await engine.predict({ kind: 'class', shape: [picks.length, size, size, 1], input, labels: new Int32Array(picks.length), refs: [] });
    await engine.dispose();
    picks.forEach((i, k) => expect(r.scores[i]).toBeCloseTo(p[k * 2 + 1], 4));
  });

  it('writes the scores as JSON and CSV, and refuses a mask format for a classifier, naming the run', async () => {
    const json = join(tmp.dir, 'scores.json');
    const csv = join(tmp.dir, 'scores.csv');
    await services.predict.exportTo(clsRun.id, seriesId, json);
    await services.predict.exportTo(clsRun.id, seriesId, csv);
    const j = JSON.parse(readFileSync(json, 'utf8')) as PredictionSummary & { slices: { index: number; sopUid: string; score: number }[] };
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('index,sop_uid,score');
    expect(lines).toHaveLength(j.slices.length + 1);
    expect(Number(lines[3].split(',')[2])).toBeCloseTo(j.slices[2].score, 10);
    await expect(services.predict.exportTo(clsRun.id, seriesId, join(tmp.dir, 'x.nii.gz'))).rejects.toThrow(/classifier.*\.json or \.csv/);
    await expect(services.predict.exportTo(clsRun.id, seriesId, join(tmp.dir, 'x.png'))).rejects.toThrow(/x\.png: name the output/);
    // the app's export: into <data>/exports, named from the ids (the server's downloads come from there)
    const app = await services.handlers['predict.export'](clsRun.id, seriesId, 'csv');
    expect(app.file).toBe(join(tmp.dir, 'exports', `prediction-run${clsRun.id}-series${seriesId}.csv`));
    expect(readFileSync(app.file, 'utf8')).toBe(readFileSync(csv, 'utf8'));
    await expect(Promise.resolve().then(() => services.handlers['predict.export'](clsRun.id, seriesId, 'seg'))).rejects.toThrow(/classifier/);
  });

  it('a U-Net gives masks, drawn per slice in display orientation and exported as NIfTI on the export-nifti grid and as a DICOM SEG', async () => {
    const h = services.handlers;
    const first0 = await h['predict.run']({ runId: segRun.id, seriesId });
    expect(first0).toMatchObject({ task: 'segmentation', threshold: 0.5 });
    expect(first0.scores).toHaveLength(first0.slices);
    // A model this short-trained may call nothing at 0.5: the user lowers the threshold under the
    // most confident pixel of the series (each slice's largest probability is its score). The
    // display mask samples the probabilities bilinearly, so a lone peak keeps at least
    // (1 - 1 / (2 * scale))^2 of its height at the nearest display pixel: 0.88 at this series'
    // 8 display pixels a model pixel, so 0.8 x the peak is drawn whatever its neighbours (0.98 was
    // not: with a peak above neighbours under 0.98 of it, no display pixel reached it).
    const best = Math.max(...first0.scores);
    const threshold = first0.maskSlices.length > 0 ? 0.5 : best * 0.8;
    const r = first0.maskSlices.length > 0 ? first0 : await h['predict.run']({ runId: segRun.id, seriesId, threshold });
    expect(r.threshold).toBeCloseTo(threshold, 10);
    expect(r.maskSlices.length).toBeGreaterThan(0);
    expect(r.maskSlices).toContain(first0.scores.indexOf(best));
    expect(r.maskSlices.every((i) => r.scores[i] >= threshold)).toBe(true);
    const first = await h['predict.mask'](segRun.id, seriesId, r.maskSlices[0]);
    expect([first.width, first.height]).toEqual([512, 512]);
    expect(first.groups[0].mask.some((v) => v === 1)).toBe(true);
    const voxels = (await Promise.all(r.maskSlices.map((i) => h['predict.mask'](segRun.id, seriesId, i)))).reduce((a, m) => a + m.groups[0].mask.reduce((x, v) => x + v, 0), 0);
    expect(voxels).toBe(r.maskVoxels);
    const empty = [...Array(r.slices).keys()].find((i) => !r.maskSlices.includes(i));
    if (empty !== undefined) expect((await h['predict.mask'](segRun.id, seriesId, empty)).groups[0].mask.every((v) => v === 0)).toBe(true);
    await expect(Promise.resolve().then(() => h['predict.mask'](segRun.id, seriesId, 999))).rejects.toThrow(/outside the series/);

    const img = join(tmp.dir, 'img.nii.gz');
    const nii = join(tmp.dir, 'pred.nii.gz');
    const seg = join(tmp.dir, 'pred.dcm');
    await exportSeriesNifti(services.db, seriesId, img);
    await services.predict.exportTo(segRun.id, seriesId, nii);
    const written = await services.predict.exportTo(segRun.id, seriesId, seg);
    expect(written).toMatchObject({ format: 'seg', maskSlices: r.maskSlices.length });
    if (!pyHas('nibabel, numpy, pydicom')) return console.warn('/usr/bin/python3 with nibabel, numpy and pydicom absent: the NIfTI and SEG checks are skipped');
    // Display masks as the viewer shows them, per SOP, for the independent check.
    const display: Record<string, number[]> = {};
    const sops = JSON.parse(readFileSync(join(segRun.dir, 'predictions', readdirOne(join(segRun.dir, 'predictions')), 'prediction.json'), 'utf8')).sopUids as string[];
    for (const i of r.maskSlices) {
      const m = (await h['predict.mask'](segRun.id, seriesId, i)).groups[0].mask;
      display[sops[i]] = [...m.keys()].filter((k) => m[k] === 1);
    }
    const files = Object.fromEntries(
      listInstances(services, seriesId).map((x) => [x.sopUid, x.path]),
    );
    const check = join(tmp.dir, 'check.json');
    writeFileSync(check, JSON.stringify({ img, nii, seg, display, files, seriesUid }));
    const outp = execFileSync(py, [join(root, 'test', 'host', 'predict_check.py'), check], { encoding: 'utf8' });
    const res = JSON.parse(outp) as Record<string, unknown>;
    expect(res).toMatchObject({
      affineEqual: true,
      shapeEqual: true,
      niftiVoxels: r.maskVoxels,
      segVoxels: r.maskVoxels,
      segMatchesNifti: true,
      segMatchesDisplay: true,
      referencedSeries: seriesUid,
      referencesAllInstances: true,
      positionsMatchSources: true,
      segmentLabel: 'Predicted nodule',
      algorithmType: 'AUTOMATIC',
    });
  });

  it('ctssl predict runs the same service: the app\'s prediction, written as the --out name asks; a bad name is refused before the model runs', () => {
    const kept = services.predict.summary(segRun.id, seriesId)!;
    const ctssl = (...args: string[]) =>
      spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'predict', ...args, '--db', join(tmp.dir, 'lib.sqlite')], {
        env: { ...process.env, CTSSL_DATA_DIR: tmp.dir },
        encoding: 'utf8',
        timeout: 180_000,
      });
    const csv = join(tmp.dir, 'cli.csv');
    const r = ctssl('--run', segRun.dir, '--series', seriesUid, '--threshold', String(kept.threshold), '--out', csv, '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as PredictionSummary & { written: { file: string; format: string } };
    expect(out).toMatchObject({ runId: segRun.id, seriesId, task: 'segmentation', maskSlices: kept.maskSlices, maskVoxels: kept.maskVoxels, written: { file: csv, format: 'csv' } });
    out.scores.forEach((v, i) => expect(v).toBeCloseTo(kept.scores[i], 5));
    const rows = readFileSync(csv, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('index,sop_uid,max_probability,mask');
    expect(rows.slice(1).filter((l) => l.endsWith(',1')).map((l) => Number(l.split(',')[0]))).toEqual(kept.maskSlices);
    const bad = ctssl('--run', segRun.dir, '--series', seriesUid, '--out', join(tmp.dir, 'pred.png'));
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/pred\.png: name the output .json or .csv/);
    const unknown = ctssl('--run', segRun.dir, '--series', '1.2.3.4');
    expect(unknown.stderr).toMatch(/no indexed series with UID 1\.2\.3\.4/);
  });

  it('cancels a running prediction (its trainer killed, nothing kept) and refuses a run that is not fine-tuned', async () => {
    const before = services.predict.summary(clsRun.id, seriesId)!.createdAt;
    const h = services.handlers;
    const p = h['predict.run']({ runId: clsRun.id, seriesId, requestId: 'cancel-me' });
    await new Promise((r) => setTimeout(r, 200));
    expect(await h['predict.cancel']('cancel-me')).toBe(true);
    await expect(p).rejects.toThrow(/cancelled/);
    expect(services.predict.summary(clsRun.id, seriesId)!.createdAt).toBe(before);
    expect(await h['predict.cancel']('cancel-me')).toBe(false);
    await expect(Promise.resolve().then(() => h['predict.run']({ runId: 9999, seriesId }))).rejects.toThrow(/no run with id 9999/);
    expect(findSeriesByUid(services.db, seriesUid)?.id).toBe(seriesId);
  });
});

function readdirOne(dir: string): string {
  const names = readdirSync(dir);
  if (names.length !== 1) throw new Error(`${dir}: ${names.length} entries`);
  return names[0];
}

function listInstances(s: Services, seriesId: number): { sopUid: string; path: string }[] {
  return s.db
    .prepare('SELECT i.sop_uid AS sopUid, f.path AS path FROM instances i JOIN files f ON f.id = i.file_ref WHERE i.series_ref = ?')
    .all(seriesId) as { sopUid: string; path: string }[];
}
