import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { createServices, type Services } from '../../src/host/services';
import { indexFolders } from '../../src/library/indexing/indexer';
import { importLabels } from '../../src/library/labels/label-import';
import { writeCohort } from '../../src/library/synth/synth-writer';
import { defaultOptions } from '../../src/core/synth/plan';
import type { Events } from '../../src/shared/contract';
import { tempDir } from '../helpers';

/**
 * The downstream pipeline end to end on a generated labelled cohort, through the services the app
 * uses, with real trainer processes: an experiment grid (random vs supervised CNN vs a pretrained
 * encoder) and the bias probe.
 */
describe('experiments and the bias probe', () => {
  const tmp = tempDir();
  let services: Services;
  const events: { name: string; payload: unknown }[] = [];
  beforeAll(async () => {
    const cohort = join(tmp.dir, 'cohort');
    await writeCohort({ ...defaultOptions(10, 5), slices: 8, size: 64, peFraction: 0.6, trait: 'sex', traitValue: 'F', traitStrength: 4 }, cohort, { jobs: 1 });
    services = createServices({ mode: 'server', dataDir: tmp.dir, dbPath: join(tmp.dir, 'lib.sqlite'), emit: (name, payload) => events.push({ name, payload }) });
    await indexFolders(services.db, [cohort]);
    await importLabels(services.db, join(cohort, 'train.csv'));
  }, 240_000);
  afterAll(async () => {
    await services.close();
    tmp.cleanup();
  });

  const waitFor = async (pred: () => boolean, ms = 400_000) => {
    const until = Date.now() + ms;
    while (!pred() && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    expect(pred()).toBe(true);
  };

  it('runs a grid of fine-tuning runs and reports AUROC vs fraction with plots', async () => {
    const h = services.handlers;
    // Pretrained on 4 of the 10 patients: the grid keeps those in training, and the other 6 are its validation and held-out patients.
    const pre = await h['runs.create']({ task: 'rotation', preset: 'tiny', size: 32, steps: 3, batchSize: 4, useCache: false, filter: { modality: 'CT' }, fractions: { train: 0.5, val: 0.25, test: 0.25 } } as never);
    await h['runs.start'](pre.id);
    await waitFor(() => events.some((e) => e.name === 'run.event' && (e.payload as Events['run.event']).runId === pre.id && (e.payload as Events['run.event']).event.type === 'done'));
    await new Promise((r) => setTimeout(r, 500));
    const exp = await h['experiments.start']({
      name: 'tiny PE grid',
      task: 'classification',
      label: 'pe',
      preset: 'tiny',
      size: 32,
      inits: ['random', 'cnn', pre.id],
      fractions: [0.5, 1],
      seeds: [1],
      steps: 3,
      batchSize: 4,
      evalEvery: 3,
      splitFractions: { train: 0.5, val: 0.25, test: 0.25 },
    } as never);
    expect(exp.cells).toBe(6);
    await expect(Promise.resolve().then(() => h['experiments.start']({ name: 'x', task: 'classification', inits: ['random'], steps: 1 } as never))).rejects.toThrow(/already running/);
    await waitFor(() => events.some((e) => e.name === 'experiment.event' && (e.payload as Events['experiment.event']).id === exp.id && ['done', 'error'].includes((e.payload as Events['experiment.event']).kind)));
    const cells = events.filter((e) => e.name === 'experiment.event' && (e.payload as Events['experiment.event']).kind === 'cell');
    expect(cells).toHaveLength(6);
    const rep = await h['experiments.report'](exp.id);
    expect(rep.error).toBeNull();
    expect(rep.summary).toMatchObject({ status: 'done', completed: 6, cells: 6 });
    const report = rep.report as { summary: { mean: number; n: number }[]; cells: { results: { auroc: number; heldOut: boolean } }[] };
    expect(report.summary).toHaveLength(6);
    for (const c of report.cells) {
      expect(c.results.auroc).toBeGreaterThanOrEqual(0);
      expect(c.results.auroc).toBeLessThanOrEqual(1);
      expect(c.results.heldOut).toBe(true);
    }
    expect(Object.keys(rep.svgs).sort()).toEqual(['auroc-vs-fraction.svg', 'auroc-vs-iterations.svg', 'roc.svg']);
    const parsed = new XMLParser({ ignoreAttributes: false }).parse(rep.svgs['auroc-vs-fraction.svg']);
    expect(parsed.svg).toBeDefined();
    expect(existsSync(join(rep.summary.dir, 'report.html'))).toBe(true);
    expect(readFileSync(join(rep.summary.dir, 'results.csv'), 'utf8').trim().split('\n')).toHaveLength(7);
    expect((await h['experiments.list']()).map((e) => e.id)).toContain(exp.id);
    // Paired comparisons of the pretrained run with each baseline on the same held-out slices:
    // patient-level p with its Holm adjustment (primary), slice-level DeLong p beside it; one seed, so nothing pooled.
    const full = rep.report!;
    expect(full.comparisons.length).toBeGreaterThan(0);
    expect(full.comparisons.every((c) => c.seed === 1)).toBe(true);
    expect(full.statistics).toMatchObject({ resamples: 2000, seed: 1, alpha: 0.05 });
    expect(full.statistics.family).toBe(full.comparisons.filter((c) => c.p !== null).length);
    for (const c of full.comparisons) {
      expect(c.patients).toBeGreaterThan(0);
      if (c.p !== null) expect(c.pHolm).toBeGreaterThanOrEqual(c.p);
      expect(['pretrained higher', 'baseline higher', 'no significant difference', 'not testable']).toContain(c.verdict);
    }
    // Each run's interval is patient-level; the test split of this 10-patient cohort is small, and every door says so.
    for (const c of full.cells) if (c.results && !('error' in c.results)) expect(c.results).toMatchObject({ ci: { unit: 'patient', resamples: 2000 } });
    expect(full.warnings.some((w) => /the test split has \d patients? \(fewer than 10\)/.test(w))).toBe(true);
    const html = readFileSync(join(rep.summary.dir, 'report.html'), 'utf8');
    expect(html).toContain('fewer than 10');
    expect(html).toContain('p slice-level DeLong (assumes independent slices)');
    expect(readFileSync(join(rep.summary.dir, 'results.csv'), 'utf8').split('\n')[0]).toContain('ci_unit');
    const runResults = JSON.parse(readFileSync(join(full.cells[0].runDir, 'results.json'), 'utf8'));
    expect(runResults.patientOfSlice).toHaveLength(runResults.slices);
  });

  it('resumes a stopped grid in its folder: the finished run is kept, the rest run, one report', async () => {
    const h = services.handlers;
    const before = events.length;
    const mine = () => events.slice(before).filter((e) => e.name === 'experiment.event').map((e) => e.payload as Events['experiment.event']);
    const exp = await h['experiments.start']({ name: 'resumable', task: 'classification', label: 'pe', preset: 'tiny', size: 32, inits: ['random'], fractions: [0.5, 1], seeds: [1], steps: 3, batchSize: 4, evalEvery: 3, earlyStopPatience: 2, splitFractions: { train: 0.5, val: 0.25, test: 0.25 } } as never);
    await waitFor(() => mine().some((e) => e.id === exp.id && e.kind === 'cell' && e.index === 0));
    await h['experiments.stop'](exp.id);
    await waitFor(() => mine().some((e) => e.id === exp.id && (e.kind === 'stopped' || e.kind === 'done')));
    const stopped = (await h['experiments.list']()).find((x) => x.id === exp.id)!;
    // stopped after its first run (the second may or may not have started)
    expect(stopped.status).toBe('incomplete');
    expect(stopped.completed).toBe(1);
    const firstResults = join(exp.dir, 'runs', 'random-f0.5-s1', 'results.json');
    const kept = readFileSync(firstResults, 'utf8');
    expect((await h['experiments.report'](exp.id)).spec).toMatchObject({ name: 'resumable', fractions: [0.5, 1] });

    const mark = events.length;
    const resumed = await h['experiments.resume'](exp.id);
    expect(resumed).toMatchObject({ id: exp.id, status: 'running', cells: 2 });
    await expect(Promise.resolve().then(() => h['experiments.resume'](exp.id))).rejects.toThrow(/already running/);
    await expect(Promise.resolve().then(() => h['experiments.delete'](exp.id))).rejects.toThrow(/is running: stop it first/);
    await waitFor(() => events.slice(mark).some((e) => e.name === 'experiment.event' && (e.payload as Events['experiment.event']).id === exp.id && (e.payload as Events['experiment.event']).kind === 'done'));
    const rep = await h['experiments.report'](exp.id);
    expect(rep.summary).toMatchObject({ status: 'done', completed: 2, cells: 2 });
    expect((rep.report as { cells: unknown[] }).cells).toHaveLength(2);
    // the first run was not trained again: its results are byte-identical
    expect(readFileSync(firstResults, 'utf8')).toBe(kept);
    // the spec's early stopping reaches every run (config and results)
    for (const cell of ['random-f0.5-s1', 'random-f1-s1']) {
      expect(JSON.parse(readFileSync(join(exp.dir, 'runs', cell, 'config.json'), 'utf8'))).toMatchObject({ earlyStopPatience: 2 });
      expect(JSON.parse(readFileSync(join(exp.dir, 'runs', cell, 'results.json'), 'utf8')).earlyStop).toMatchObject({ patience: 2, evalEvery: 3, stoppedAtStep: null });
    }
    const stepsAfter = events.slice(mark).filter((e) => e.name === 'experiment.event' && (e.payload as Events['experiment.event']).kind === 'run-event' && (e.payload as Events['experiment.event']).index === 0);
    expect(stepsAfter).toHaveLength(0);
    // the second run's 'started' reaches the app (its length, and where it resumed)
    const started = events
      .slice(mark)
      .map((e) => e.payload as Events['experiment.event'])
      .find((p) => p.id === exp.id && p.kind === 'run-event' && p.index === 1 && p.event?.type === 'started');
    expect(started?.event).toMatchObject({ type: 'started', totalSteps: 3 });
    await expect(Promise.resolve().then(() => h['experiments.resume'](exp.id))).rejects.toThrow(/complete: nothing to resume/);
    // a grid's run is not deleted on its own (its report and resume need it)
    const cellRun = (await h['runs.list']()).find((r) => r.dir === join(exp.dir, 'runs', 'random-f0.5-s1'))!;
    await expect(Promise.resolve().then(() => h['runs.delete'](cellRun.id))).rejects.toThrow(/part of the experiment in .*resumable/);
    // the window the grid resolved is in its spec, so a later resume uses the same one
    expect(JSON.parse(readFileSync(join(exp.dir, 'spec.json'), 'utf8'))).toMatchObject({ windowLevel: 50, windowWidth: 350, scaling: 'fixed' });
    // every run finished but no report (it failed, or the app stopped in between): resumable, and resuming writes it
    rmSync(join(exp.dir, 'report.json'));
    expect((await h['experiments.list']()).find((x) => x.id === exp.id)).toMatchObject({ status: 'incomplete', completed: 2 });
    const again = events.length;
    await h['experiments.resume'](exp.id);
    await waitFor(() => events.slice(again).some((e) => e.name === 'experiment.event' && (e.payload as Events['experiment.event']).id === exp.id && (e.payload as Events['experiment.event']).kind === 'done'));
    expect((await h['experiments.list']()).find((x) => x.id === exp.id)).toMatchObject({ status: 'done' });
    expect(readFileSync(firstResults, 'utf8')).toBe(kept);

    // Delete moves the experiment with its runs to the trash; restore brings both back; empty deletes.
    const runIds = (await h['runs.list']()).filter((r) => r.dir.startsWith(exp.dir)).map((r) => r.id);
    expect(runIds).toHaveLength(2);
    await h['experiments.delete'](exp.id);
    expect(existsSync(exp.dir)).toBe(false);
    expect((await h['experiments.list']()).map((x) => x.id)).not.toContain(exp.id);
    expect((await h['experiments.trash']()).map((x) => x.id)).toEqual([exp.id]);
    expect((await h['runs.list']()).filter((r) => runIds.includes(r.id))).toEqual([]);
    expect((await h['runs.trash']()).filter((r) => runIds.includes(r.id))).toEqual([]); // not trashed on their own
    await expect(Promise.resolve().then(() => h['runs.restore'](runIds[0]))).rejects.toThrow(/restore the experiment/);
    await expect(Promise.resolve().then(() => h['experiments.report'](exp.id))).rejects.toThrow(/no experiment/);
    const back = await h['experiments.restore'](exp.id);
    expect(back).toMatchObject({ id: exp.id, status: 'done', completed: 2 });
    expect(readFileSync(firstResults, 'utf8')).toBe(kept);
    expect((await h['runs.list']()).filter((r) => runIds.includes(r.id)).map((r) => r.dir.startsWith(exp.dir))).toEqual([true, true]);
    expect((await h['runs.metrics'](runIds[0])).series.length).toBeGreaterThan(0);
    await h['experiments.delete'](exp.id);
    expect(await h['experiments.emptyTrash']([])).toEqual({ removed: 0 });
    expect(await h['experiments.emptyTrash']([exp.id])).toEqual({ removed: 1 });
    expect(await h['experiments.trash']()).toEqual([]);
    expect(existsSync(join(tmp.dir, 'trash', 'experiments', exp.id))).toBe(false);
    expect(services.db.prepare('SELECT COUNT(*) FROM runs WHERE id IN (?, ?)').pluck().get(runIds[0], runIds[1])).toBe(0);
    await expect(Promise.resolve().then(() => h['experiments.resume']('no-such'))).rejects.toThrow(/no experiment no-such/);
  });

  it('probes the middle-slice representation for sex and finds the synthetic trait in raw slices', async () => {
    const r = await services.handlers['probe.run']({ runIds: [], attributes: ['sex'], folds: 2, seed: 1 });
    const scores = (r.result as { scores: { features: string; auroc: number; attribute: string }[] }).scores;
    // The paper's baseline (a CNN trained from scratch on the raw slices) and the extra 16x16 row.
    expect(scores).toHaveLength(2);
    expect(scores.every((s) => s.attribute === 'sex' && s.auroc >= 0 && s.auroc <= 1)).toBe(true);
    const raw16 = scores.find((s) => /^raw slice: logistic regression/.test(s.features))!;
    expect(scores.some((s) => /^raw slice: CNN from scratch/.test(s.features))).toBe(true);
    expect(raw16.auroc).toBeGreaterThan(0.7); // the generator ties a strong trait to female patients
    expect(r.svg).toMatch(/^<svg/);
    expect(events.some((e) => e.name === 'probe.progress')).toBe(true);
    // kept in the data folder: listed with its settings, and its result read back as returned
    const list = await services.handlers['probe.list']();
    expect(list.map((p) => p.id)).toEqual([r.id]);
    expect(list[0]).toMatchObject({ attributes: ['sex'], folds: 2, seed: 1, scans: 10 });
    expect(list[0].features).toEqual(expect.arrayContaining([expect.stringMatching(/^raw slice: CNN/), expect.stringMatching(/^raw slice: logistic/)]));
    expect(list[0].features).toHaveLength(2);
    expect(await services.handlers['probe.result'](r.id)).toEqual(r);
    await expect(Promise.resolve().then(() => services.handlers['probe.result']('nope'))).rejects.toThrow(/no finished bias probe nope/);
    // Delete moves it to the trash; restore brings it back; empty deletes the listed ones.
    const h = services.handlers;
    await h['probe.delete'](r.id);
    expect(await h['probe.list']()).toEqual([]);
    expect((await h['probe.trash']()).map((p) => p.id)).toEqual([r.id]);
    await expect(Promise.resolve().then(() => h['probe.result'](r.id))).rejects.toThrow(/no finished bias probe/);
    expect(await h['probe.restore'](r.id)).toMatchObject({ id: r.id, scans: 10 });
    expect(await h['probe.result'](r.id)).toEqual(r);
    await h['probe.delete'](r.id);
    expect(await h['probe.emptyTrash']([])).toEqual({ removed: 0 });
    expect(await h['probe.emptyTrash']([r.id])).toEqual({ removed: 1 });
    expect(await h['probe.trash']()).toEqual([]);
    expect(existsSync(join(tmp.dir, 'trash', 'probes', r.id))).toBe(false);
  });

  it('cancels a running probe: the request fails as cancelled, nothing is listed or left behind', async () => {
    const before = events.length;
    const pending = Promise.resolve(services.handlers['probe.run']({ runIds: [], attributes: ['sex'], folds: 2, seed: 2, requestId: 'window-1' }));
    const settled = pending.then(
      () => null,
      (e: unknown) => e as { code?: string; message: string },
    );
    const progress = () => events.slice(before).filter((e) => e.name === 'probe.progress').map((e) => e.payload as Events['probe.progress']);
    // cancelled once the trainer process is working (its own progress, total > 0), so the kill
    // and the clean-up happen with a live process writing into the probe's folder
    await waitFor(() => progress().some((p) => p.total > 0), 60_000);
    expect(progress().every((p) => p.requestId === 'window-1')).toBe(true);
    const id = progress()[0].id;
    expect(await services.handlers['probe.cancel'](id)).toBe(true);
    const err = await settled;
    expect(err).toMatchObject({ code: 'cancelled' });
    expect(await services.handlers['probe.cancel'](id)).toBe(false);
    expect((await services.handlers['probe.list']()).map((p) => p.id)).not.toContain(id);
    expect(existsSync(join(tmp.dir, 'probes', id))).toBe(false);
  });
});
