import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../src/library/db/schema';
import { indexFolders } from '../../src/library/indexing/indexer';
import { importLabels } from '../../src/library/labels/label-import';
import { getRun, runMetrics } from '../../src/host/runs/run-store';
import { isTraining } from '../../src/host/runs/run-lock';
import { createFinetuneRun, createRun } from '../../src/host/runs/create-run';
import { summaryResults } from '../../src/host/runs/record-events';
import { startRun } from '../../src/host/runs/start-run';
import type { ClassificationResults } from '../../src/shared/results';
import { latestCheckpointDir, readCheckpoint } from '../../src/library/runs/checkpoint';
import type { Database } from '../../src/library/db/sqlite';
import type { TrainerEvent } from '../../src/shared/trainer-protocol';
import { fixtures, tempDir } from '../helpers';
import { globSync } from '../glob';

/** Fine-tuning on the real LIDC slabs and their nodule annotations, in real trainer processes. */
describe('fine-tuning on real LIDC nodule labels', () => {
  const tmp = tempDir();
  let db: Database;
  beforeAll(async () => {
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
    await importLabels(db, globSync(join(fixtures, 'lidc-0001'), /069\.xml$/)[0]);
    await importLabels(db, join(fixtures, 'lidc-small', 'xml', '71.xml'));
  });
  afterAll(() => {
    db.close();
    tmp.cleanup();
  });

  it('trains a U-Net whose down branch is a pretrained encoder on the nodule masks (loss falls), and writes Dice results', async () => {
    // pretrained in the lung window: the fine-tuning run below, given no window, takes it
    const pre = createRun(db, { task: 'masked', preset: 'tiny', size: 64, steps: 2, batchSize: 2, useCache: false, windowLevel: -600, windowWidth: 1500, filter: { modality: 'CT' } }, { dataDir: tmp.dir, dir: join(tmp.dir, 'pre') });
    expect((await startRun(db, pre).done).status).toBe('done');
    const run = createFinetuneRun(
      db,
      { kind: 'finetune', task: 'segmentation', model: 'unet', label: { kind: 'nodule', consensusK: 1 }, preset: 'tiny', size: 64, init: pre.dir, freezeEpochs: 1, steps: 24, batchSize: 4, lr: 0.01, evalEvery: 12, useCache: false, filter: { modality: 'CT' } },
      { dataDir: tmp.dir, dir: join(tmp.dir, 'seg') },
    );
    expect(run.config).toMatchObject({ windowLevel: -600, windowWidth: 1500, scaling: 'fixed' });
    const seen: TrainerEvent[] = [];
    const r = await startRun(db, run, { onEvent: (e) => seen.push(e) }).done;
    expect(r.status).toBe('done');
    const loss = runMetrics(db, run.id, 'train').filter((m) => m.name === 'loss').map((m) => m.value);
    expect(loss).toHaveLength(24);
    expect(loss[23]).toBeLessThan(loss[0]);
    const results = JSON.parse(readFileSync(join(run.dir, 'results.json'), 'utf8'));
    expect(results).toMatchObject({ task: 'segmentation' });
    expect(results.dice).toBeGreaterThanOrEqual(0);
    expect(results.patients).toBeGreaterThan(0);
    expect(results.warnings.length).toBeGreaterThan(0);
    expect(seen.some((e) => e.type === 'results')).toBe(true);
    // recorded with the run, so the app shows them after a restart
    expect(getRun(db, run.id)!.summary.results).toEqual(results);
    // the encoder started from the pretrained run (frozen in epoch 0)
    const pw = new Map(readCheckpoint(latestCheckpointDir(pre.dir)!).weights.map((w) => [w.name, w]));
    const fw = readCheckpoint(latestCheckpointDir(run.dir)!).weights;
    expect(fw.some((w) => w.name.startsWith('up.'))).toBe(true);
    expect(fw.filter((w) => w.name.startsWith('encoder.')).every((w) => pw.has(w.name))).toBe(true);
  });

  it("takes each window field a request leaves unset from its init, and runs one trainer per run folder", async () => {
    const half = createFinetuneRun(
      db,
      { kind: 'finetune', task: 'classification', model: 'encoder-classifier', label: { kind: 'nodule' }, preset: 'tiny', size: 64, init: join(tmp.dir, 'pre'), windowLevel: -500, steps: 2, batchSize: 2, useCache: false, filter: { modality: 'CT' } },
      { dataDir: tmp.dir, dir: join(tmp.dir, 'half') },
    );
    // the level given; width and scaling still the encoder's (lung window, 1500 wide)
    expect(half.config).toMatchObject({ windowLevel: -500, windowWidth: 1500, scaling: 'fixed' });
    const first = startRun(db, half);
    expect(isTraining(half.dir)).toBe(true);
    expect(existsSync(join(half.dir, 'trainer.lock'))).toBe(true);
    expect(() => startRun(db, half)).toThrow(/already training/);
    first.stop();
    await first.done;
    expect(isTraining(half.dir)).toBe(false);
    expect(existsSync(join(half.dir, 'trainer.lock'))).toBe(false);
    // the lock of a host that was killed (its process is gone) does not hold the folder
    const lock = join(half.dir, 'trainer.lock');
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12345 }));
    expect(isTraining(half.dir)).toBe(false);
    // a live host's fresh lock does (here: our parent process stands in for another app window)
    writeFileSync(lock, JSON.stringify({ pid: process.ppid }));
    expect(isTraining(half.dir)).toBe(true);
    expect(() => startRun(db, half)).toThrow(/already training/);
    // a lock its host stopped touching is stale even if the pid is alive (reused after a crash)
    const old = new Date(Date.now() - 10 * 60_000);
    utimesSync(lock, old, old);
    expect(isTraining(half.dir)).toBe(false);
    // the host touches its lock while it trains (every 20 s), so the lock stays fresh
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const again = startRun(db, half);
    try {
      expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(process.pid);
      utimesSync(lock, old, old);
      vi.advanceTimersByTime(20_000);
      expect(Date.now() - statSync(lock).mtimeMs).toBeLessThan(10_000);
    } finally {
      vi.useRealTimers();
    }
    again.stop();
    await again.done;
    expect(existsSync(lock)).toBe(false);
  });

  it('keeps the numbers and a ROC of at most 256 points in the run summary, not the per-slice scores', () => {
    const n = 1000;
    const fpr = Array.from({ length: n }, (_, i) => i / (n - 1));
    // Only the fields summaryResults looks at (and a ROC with an extra array, cut the same way).
    const r = summaryResults({ task: 'classification', auroc: 0.8, scores: fpr, labels: fpr.map((v) => (v > 0.5 ? 1 : 0)), roc: { fpr, tpr: fpr.map((v) => Math.sqrt(v)), thresholds: fpr } } as unknown as ClassificationResults) as Omit<ClassificationResults, 'scores' | 'labels'>;
    expect(r).not.toHaveProperty('scores');
    expect(r).not.toHaveProperty('labels');
    const roc = r.roc as { fpr: number[]; tpr: number[]; thresholds: number[] };
    expect(roc.fpr).toHaveLength(256);
    expect(roc.thresholds).toHaveLength(256);
    expect([roc.fpr[0], roc.fpr[255], roc.tpr[255]]).toEqual([0, 1, 1]);
    expect(r.auroc).toBe(0.8);
    const small = { task: 'classification', roc: { fpr: [0, 1], tpr: [0, 1] } };
    expect(summaryResults(small as unknown as ClassificationResults)).toEqual(small);
  });

  it('classifies slices by nodule presence with class weights, from random initialisation', async () => {
    const run = createFinetuneRun(
      db,
      { kind: 'finetune', task: 'classification', model: 'encoder-classifier', label: { kind: 'nodule' }, preset: 'tiny', size: 32, steps: 6, batchSize: 4, evalEvery: 3, useCache: false, filter: { modality: 'CT' } },
      { dataDir: tmp.dir, dir: join(tmp.dir, 'cls') },
    );
    const r = await startRun(db, run).done;
    expect(r.status).toBe('done');
    expect(getRun(db, run.id)!.status).toBe('done');
    // no init: the paper's soft-tissue window
    expect(run.config).toMatchObject({ windowLevel: 50, windowWidth: 350 });
    expect(existsSync(join(run.dir, 'results.json'))).toBe(true);
    expect(Object.keys(r.finalLosses).sort()).toEqual(['accuracy', 'loss']);
    // Patient-level statistics: each held-out slice's patient as a number, the split's patients, and
    // (two LIDC patients in these fixtures) the warning of a split with fewer than 10 patients.
    const results = JSON.parse(readFileSync(join(run.dir, 'results.json'), 'utf8'));
    expect(results.patients).toBeGreaterThan(0);
    expect(results.warnings.join('\n')).toMatch(/has \d patients? \(fewer than 10\)/);
    if (!('error' in results)) {
      expect(results.patientOfSlice).toHaveLength(results.slices);
      expect(new Set(results.patientOfSlice).size).toBe(results.patients);
      expect(results.ci).toEqual({ unit: 'patient', resamples: 2000, valid: expect.any(Number), seed: 1 });
    }
    // the run's summary keeps the numbers, not the per-slice arrays
    expect(getRun(db, run.id)!.summary.results).not.toHaveProperty('patientOfSlice');
  });

  it('stops early on validation Dice and keeps, checkpoints and scores the best evaluation\'s weights', async () => {
    const run = createFinetuneRun(
      db,
      { kind: 'finetune', task: 'segmentation', model: 'unet', label: { kind: 'nodule', consensusK: 1 }, preset: 'tiny', size: 32, steps: 60, batchSize: 4, lr: 0.03, evalEvery: 2, earlyStopPatience: 2, useCache: false, windowLevel: -600, windowWidth: 1500, filter: { modality: 'CT' } },
      { dataDir: tmp.dir, dir: join(tmp.dir, 'early') },
    );
    const seen: TrainerEvent[] = [];
    const r = await startRun(db, run, { onEvent: (e) => seen.push(e) }).done;
    expect(r.status).toBe('done');
    const results = JSON.parse(readFileSync(join(run.dir, 'results.json'), 'utf8'));
    const dice = runMetrics(db, run.id, 'val').filter((m) => m.name === 'dice');
    const es = results.earlyStop;
    expect(es).toMatchObject({ patience: 2, metric: 'dice', evalEvery: 2, evaluations: dice.length });
    // it stopped before the 60 steps, two evaluations after its best one, the best being the largest validation Dice
    expect(es.stoppedAtStep).toBeLessThan(60);
    expect(r.step).toBe(es.stoppedAtStep);
    // one checkpoint at the stop, the best weights (not the last step's, then the best over it)
    expect(seen.filter((e) => e.type === 'checkpoint' && e.step === es.stoppedAtStep)).toHaveLength(1);
    expect(es.stoppedAtStep - es.bestStep).toBe(2 * 2);
    expect(es.bestValue).toBe(Math.max(...dice.map((m) => m.value)));
    expect(dice.find((m) => m.value === es.bestValue)!.step).toBe(es.bestStep);
    // the run's last checkpoint holds the best evaluation's weights, not the last step's
    const best = readCheckpoint(latestCheckpointDir(join(run.dir, 'early-stop'))!);
    expect(best.state.step).toBe(es.bestStep);
    const last = new Map(readCheckpoint(latestCheckpointDir(run.dir)!).weights.map((w) => [w.name, w.data]));
    expect(best.weights.every((w) => Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength).equals(Buffer.from(last.get(w.name)!.buffer, last.get(w.name)!.byteOffset, last.get(w.name)!.byteLength)))).toBe(true);
  }, 120_000);

  it('stops early exactly as if it had not been killed: resumed after kill -9, the same best step, weights and held-out Dice', async () => {
    const cfg = { kind: 'finetune', task: 'segmentation', model: 'unet', label: { kind: 'nodule', consensusK: 1 }, preset: 'tiny', size: 32, steps: 60, batchSize: 4, lr: 0.03, evalEvery: 2, checkpointEvery: 2, earlyStopPatience: 2, useCache: false, windowLevel: -600, windowWidth: 1500, filter: { modality: 'CT' } } as const;
    const a = createFinetuneRun(db, cfg, { dataDir: tmp.dir, dir: join(tmp.dir, 'early-a') });
    const ra = await startRun(db, a).done;
    expect(ra.status).toBe('done');
    const esA = JSON.parse(readFileSync(join(a.dir, 'results.json'), 'utf8')).earlyStop;
    // it stopped early, after the point where the other run is killed
    expect(esA.stoppedAtStep).toBeLessThan(60);
    expect(esA.stoppedAtStep).toBeGreaterThan(4);
    // Killed right after the checkpoint of its second evaluation (the tracker's history and the best weights so far on disk), then resumed.
    const b = createFinetuneRun(db, cfg, { dataDir: tmp.dir, dir: join(tmp.dir, 'early-b') });
    const hb = startRun(db, b, {
      onEvent: (e: TrainerEvent) => {
        if (e.type === 'checkpoint' && e.step === 4) hb.child.kill('SIGKILL');
      },
    });
    expect((await hb.done).status).toBe('crashed');
    expect(existsSync(join(b.dir, 'results.json'))).toBe(false);
    expect(latestCheckpointDir(join(b.dir, 'early-stop'))).not.toBeNull();
    const rb = await startRun(db, getRun(db, b.id)!, { resume: true }).done;
    expect(rb.status).toBe('done');
    expect(rb.step).toBe(ra.step);
    const resultsA = JSON.parse(readFileSync(join(a.dir, 'results.json'), 'utf8'));
    const resultsB = JSON.parse(readFileSync(join(b.dir, 'results.json'), 'utf8'));
    expect(resultsB.earlyStop).toEqual(esA);
    expect(resultsB.dice).toBe(resultsA.dice);
    const bytes = (dir: string) => readFileSync(join(latestCheckpointDir(dir)!, 'weights.safetensors'));
    expect(bytes(b.dir).equals(bytes(a.dir))).toBe(true);
  }, 240_000);

  it('explains what is missing: labels of another kind, a cnn with an init', () => {
    expect(() =>
      createFinetuneRun(db, { kind: 'finetune', task: 'classification', model: 'cnn', label: { kind: 'image-label', name: 'pe_present_on_image' }, steps: 1 }, { dataDir: tmp.dir }),
    ).toThrow(/no series in the cohort has per-image labels named "pe_present_on_image"/);
    expect(() => createFinetuneRun(db, { kind: 'finetune', task: 'classification', model: 'cnn', label: { kind: 'nodule' }, init: join(tmp.dir, 'pre'), steps: 1 }, { dataDir: tmp.dir })).toThrow(
      /takes no init/,
    );
    expect(() => createFinetuneRun(db, { kind: 'finetune', task: 'segmentation', model: 'cnn', label: { kind: 'nodule' }, steps: 1 }, { dataDir: tmp.dir })).toThrow(/segmentation uses model 'unet'/);
  });
});
