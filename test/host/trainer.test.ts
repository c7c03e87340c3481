import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../src/library/db/schema';
import { indexFolders } from '../../src/library/indexing/indexer';
import { latestCheckpointDir, readCheckpoint } from '../../src/library/runs/checkpoint';
import { getRun, runMetrics } from '../../src/host/runs/run-store';
import { createRun } from '../../src/host/runs/create-run';
import { startRun } from '../../src/host/runs/start-run';
import type { Database } from '../../src/library/db/sqlite';
import type { TrainerEvent } from '../../src/shared/trainer-protocol';
import { fixtures, tempDir } from '../helpers';

/**
 * Real trainer processes (Node child processes running src/utility/trainer.ts) on real DICOM
 * (the committed LIDC slabs), tiny preset.
 */
describe('the trainer process', () => {
  const tmp = tempDir();
  let db: Database;
  beforeAll(async () => {
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
  });
  afterAll(() => {
    db.close();
    tmp.cleanup();
  });

  const config = (extra: object = {}) => ({
    task: 'masked' as const,
    preset: 'tiny' as const,
    size: 32,
    steps: 9,
    batchSize: 2,
    checkpointEvery: 3,
    evalEvery: 3,
    evalBatches: 1,
    seed: 7,
    useCache: false,
    filter: { modality: 'CT' },
    ...extra,
  });
  const weightsOf = (dir: string) => readFileSync(join(latestCheckpointDir(dir)!, 'weights.safetensors'));
  const trainLosses = (runId: number) =>
    runMetrics(db, runId, 'train')
      .filter((m) => m.name === 'loss')
      .map((m) => [m.step, m.value]);

  it('resumes after kill -9 exactly as if it had not stopped', async () => {
    // Reference: uninterrupted.
    const a = createRun(db, config(), { dataDir: tmp.dir, dir: join(tmp.dir, 'a') });
    const ra = await startRun(db, a).done;
    expect(ra.status).toBe('done');
    expect(ra.step).toBe(9);

    // Killed with SIGKILL right after its first checkpoint, then resumed.
    const b = createRun(db, config(), { dataDir: tmp.dir, dir: join(tmp.dir, 'b') });
    const hb = startRun(db, b, {
      onEvent: (e: TrainerEvent) => {
        if (e.type === 'checkpoint' && e.step === 3) hb.child.kill('SIGKILL');
      },
    });
    const killed = await hb.done;
    expect(killed.status).toBe('crashed');
    expect(getRun(db, b.id)!.status).toBe('crashed');
    expect(readCheckpoint(latestCheckpointDir(b.dir)!).state.step).toBeGreaterThanOrEqual(3);
    // A host killed with the trainer loses the points it had not yet written to the database
    // (they are in metrics.jsonl): the resume brings them back into the curve.
    db.prepare('DELETE FROM run_metrics WHERE run_ref = ? AND step >= 2').run(b.id);

    const events: TrainerEvent[] = [];
    const rb = await startRun(db, getRun(db, b.id)!, { resume: true, onEvent: (e) => events.push(e) }).done;
    expect(rb.status).toBe('done');
    const started = events.find((e) => e.type === 'started') as Extract<TrainerEvent, { type: 'started' }>;
    expect(started.resumedFrom).toBeGreaterThanOrEqual(3);

    expect(trainLosses(b.id)).toEqual(trainLosses(a.id));
    expect(runMetrics(db, b.id, 'val')).toEqual(runMetrics(db, a.id, 'val'));
    expect(weightsOf(b.dir).equals(weightsOf(a.dir))).toBe(true);
    expect(rb.finalLosses).toEqual(ra.finalLosses);
  });

  it('streams every loss term, evaluations, samples and memory, pauses and stops on request', async () => {
    const c = createRun(db, config({ task: 'rotation', steps: 30, evalEvery: 2 }), { dataDir: tmp.dir, dir: join(tmp.dir, 'c') });
    const seen: TrainerEvent[] = [];
    const h = startRun(db, c, {
      onEvent: (e) => {
        seen.push(e);
        if (e.type === 'step' && e.step === 2) h.pause();
        if (e.type === 'paused') setTimeout(() => h.resume(), 200);
        if (e.type === 'step' && e.step === 5) h.stop();
      },
    });
    const r = await h.done;
    expect(r.status).toBe('stopped');
    expect(r.step).toBeLessThan(30);
    const steps = seen.filter((e) => e.type === 'step') as Extract<TrainerEvent, { type: 'step' }>[];
    expect(Object.keys(steps[0].losses).sort()).toEqual(['accuracy', 'loss']);
    expect(steps.every((s) => s.memory.rssMb > 0 && s.memory.tensors > 0 && s.lr === 1e-3)).toBe(true);
    // tensors do not grow across steps
    expect(new Set(steps.slice(1).map((s) => s.memory.tensors)).size).toBe(1);
    const paused = seen.find((e) => e.type === 'paused') as Extract<TrainerEvent, { type: 'paused' }>;
    expect(paused).toBeDefined();
    // the pause was asked at step 2 and must be honoured at the next step boundary, not later
    expect(paused.step).toBeLessThanOrEqual(3);
    expect(seen.some((e) => e.type === 'resumed')).toBe(true);
    const ev = seen.find((e) => e.type === 'eval') as Extract<TrainerEvent, { type: 'eval' }>;
    expect(Object.keys(ev.metrics)).toEqual(expect.arrayContaining(['crossEntropy', 'auroc', 'accuracy']));
    expect(seen.some((e) => e.type === 'sample')).toBe(true);
    expect(latestCheckpointDir(c.dir)).not.toBeNull();
  });

  it("evaluates the pretext task as Table II, with sample images", async () => {
    const { evaluateRun } = await import('../../src/trainer/eval-ssl');
    const r = await evaluateRun(join(tmp.dir, 'a'), { maxSlices: 6 });
    expect(r.images).toBe(6);
    expect(r.perImage.mse.n).toBe(6);
    expect(r.perImage.mse.mean).toBeGreaterThan(0);
    expect(r.perImage.ssim.mean).toBeLessThanOrEqual(1);
    expect(r.perImage.maskedMse.mean).toBeGreaterThan(0);
    expect(r.table).toMatch(/\| masked 20% \(area\) \| ours \| \d\.\d{4} ± \d\.\d{4} \|/);
    // The paper's definitions beside ours: masked MSE summed over a batch of 16, and the paper's published row.
    expect(r.perVolume.maskedMseBatchSum.mean).toBeCloseTo(16 * r.perVolume.maskedMse.mean, 10);
    expect(r.perImage.maskedMseBatchSum.sd).toBeCloseTo(16 * r.perImage.maskedMse.sd, 10);
    expect(r.table).toMatch(/\| masked 20% \(area\) \| paper's \| \d\.\d{4} ± \d\.\d{4} \|/);
    expect(r.table).toContain('| masked 20% | paper, Table II: 128 held-out volumes, 512 px | 0.0029 ± 0.0002 | 0.0988 ± 0.0494 | 0.8527 ± 0.0115 |  |  |');
    expect(r.table).toMatch(/masked MSE: ours, mean of \(output − target\)² over the masked pixels of an image; paper's, each image's masked MSE summed over a batch of 16/);
    expect(r.samples[0].diff).toMatch(/sample-0-diff\.png$/);
    expect(readFileSync(r.samples[0].input).subarray(1, 4).toString()).toBe('PNG');
  });

  it('starts a curriculum stage from the previous stage and reports a failed run clearly', async () => {
    const prev = join(tmp.dir, 'a');
    const d = createRun(db, config({ maskPercent: 10, init: prev, steps: 2 }), { dataDir: tmp.dir, dir: join(tmp.dir, 'd') });
    expect(d.parentDir).toBe(prev);
    const r = await startRun(db, d).done;
    expect(r.status).toBe('done');
    expect(() => createRun(db, config({ init: join(tmp.dir, 'nope') }), { dataDir: tmp.dir })).toThrow(/not a run folder with a checkpoint/);
    expect(() => createRun(db, config({ steps: undefined }), { dataDir: tmp.dir })).toThrow(/steps or epochs/);
  });
});
