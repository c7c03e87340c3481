import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServices, type Services } from '../../src/host/services';
import { indexFolders } from '../../src/library/indexing/indexer';
import { importLabels } from '../../src/library/labels/label-import';
import { buildFinetuneManifest, splitClassProblems } from '../../src/library/runs/finetune-manifest';
import { writeCohort } from '../../src/library/synth/synth-writer';
import { defaultOptions } from '../../src/core/synth/plan';
import { RSNA_HEADER } from '../../src/core/synth/rsna';
import type { Database } from '../../src/library/db/sqlite';
import type { FinetuneConfigInput, PretrainConfigInput } from '../../src/shared/run-config';
import type { RunSplit, RunSummary, SplitLineage } from '../../src/shared/types';
import { root, tempDir } from '../helpers';

/**
 * Splits that never leak, through the services the app and the CLI use, on generated cohorts in
 * real SQLite libraries, with parents trained for real (one step in a trainer process): a
 * curriculum stage keeps its parent's manifest; fine-tuning from a pretrained run, and every run of
 * an experiment grid, keeps the patients a parent trained on out of validation and held-out, and is
 * refused (names and counts) when no clean patients are left; fine-tuning splits are stratified by
 * patient class and refused when a split cannot have positives.
 */
describe('splits that never leak', () => {
  const tmp = tempDir();
  const cohortA = join(tmp.dir, 'cohort-a'); // 12 patients
  const cohortB = join(tmp.dir, 'cohort-b'); // 6 more, added to the library later
  const open: Services[] = [];

  /** A library over cohort A with `positives` PE-positive patients (the 2nd, 5th, … in key order), labelled by an RSNA train.csv. */
  async function library(name: string, positives: number): Promise<{ services: Services; db: Database; keys: string[]; positive: string[]; seriesOf: (keys: string[]) => number[] }> {
    const services = createServices({ mode: 'server', dataDir: join(tmp.dir, name), dbPath: join(tmp.dir, `${name}.sqlite`), emit: () => {} });
    open.push(services);
    const db = services.db;
    await indexFolders(db, [cohortA]);
    const rows = db
      .prepare(
        `SELECT st.study_uid AS study, se.series_uid AS series, i.sop_uid AS sop, p.patient_key AS patient FROM instances i
         JOIN series se ON se.id = i.series_ref JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref
         WHERE se.modality = 'CT' ORDER BY p.patient_key, i.sop_uid`,
      )
      .all() as { study: string; series: string; sop: string; patient: string }[];
    const keys = [...new Set(rows.map((r) => r.patient))].sort();
    const positive = keys.filter((_, i) => i % 3 === 1).slice(0, positives);
    const seen = new Map<string, number>();
    const lines = rows.map((r) => {
      const k = seen.get(r.series) ?? 0;
      seen.set(r.series, k + 1);
      // a positive patient: slices 2 to 5 of 8 positive, the rest negative
      const pe = positive.includes(r.patient) && k >= 2 && k <= 5 ? 1 : 0;
      const exam = positive.includes(r.patient) ? 0 : 1;
      return [r.study, r.series, r.sop, pe, exam, ...Array(12).fill(0)].join(',');
    });
    const csv = join(tmp.dir, `${name}-train.csv`);
    writeFileSync(csv, [RSNA_HEADER, ...lines].join('\n') + '\n');
    await importLabels(db, csv);
    const seriesOf = (ks: string[]) =>
      db
        .prepare(`SELECT se.id FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref WHERE se.modality = 'CT' AND p.patient_key IN (${ks.map(() => '?').join(',')})`)
        .pluck()
        .all(...ks) as number[];
    return { services, db, keys, positive, seriesOf };
  }

  /** `ctssl` in a process, on a library of this test. */
  const ctssl = (name: string, ...args: string[]) =>
    spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), ...args, '--db', join(tmp.dir, `${name}.sqlite`)], { env: { ...process.env, CTSSL_DATA_DIR: join(tmp.dir, name) }, encoding: 'utf8', timeout: 120_000 });

  const manifestOf = (r: RunSummary) => JSON.parse(readFileSync(join(r.dir, 'manifest.json'), 'utf8')) as { hash: string; seed: number; series: { seriesUid: string; patientKey: string; split: string }[]; split?: SplitLineage };
  const patientsIn = (r: RunSummary, ...splits: string[]) => new Set(manifestOf(r).series.filter((s) => splits.includes(s.split)).map((s) => s.patientKey));
  const ledgerOf = (r: RunSummary) => JSON.parse(readFileSync(join(r.dir, 'run.json'), 'utf8')) as { split: { keptInTrain: number; overlap: number; warnings: string[]; inheritedFrom: string | null } | null };

  /** A pretraining run trained for one step (a real checkpoint, so that others can start from it). */
  async function pretrained(s: Services, input: Partial<PretrainConfigInput>): Promise<RunSummary> {
    const run = s.runs.create({ task: 'masked', maskPercent: 5, preset: 'tiny', size: 32, steps: 1, batchSize: 2, useCache: false, evalEvery: 1, checkpointEvery: 1, ...input } as PretrainConfigInput);
    s.runs.start(run.id);
    const r = await s.runs.wait(run.id);
    expect(r.status).toBe('done');
    return s.runs.get(run.id);
  }

  const finetune = (s: Services, input: Partial<FinetuneConfigInput>) =>
    s.runs.create({
      kind: 'finetune',
      task: 'classification',
      model: 'encoder-classifier',
      label: { kind: 'image-label', name: 'pe_present_on_image' },
      preset: 'tiny',
      size: 32,
      steps: 1,
      batchSize: 2,
      useCache: false,
      fractions: { train: 0.6, val: 0.2, test: 0.2 },
      filter: { modality: 'CT' },
      ...input,
    } as FinetuneConfigInput);

  beforeAll(async () => {
    await writeCohort({ ...defaultOptions(12, 5), slices: 8, size: 32, peFraction: 0 }, cohortA, { jobs: 1 });
    await writeCohort({ ...defaultOptions(6, 6), slices: 8, size: 32, peFraction: 0 }, cohortB, { jobs: 1 });
  }, 120_000);
  afterAll(async () => {
    for (const s of open) await s.close();
    tmp.cleanup();
  });

  it('a curriculum stage inherits its parent manifest; a new cohort keeps the parent training patients in training', async () => {
    const { services: s, db } = await library('curriculum', 4);
    const parent = await pretrained(s, { filter: { modality: 'CT' }, seed: 1 });
    const trainedByParent = patientsIn(parent, 'train');
    expect(trainedByParent.size).toBe(10);
    // The library grows, and the next stage asks for another seed and split fractions: it keeps its parent's data and split all the same.
    await indexFolders(db, [cohortB]);
    const stage = s.runs.create({ task: 'masked', maskPercent: 10, preset: 'tiny', size: 32, steps: 1, batchSize: 2, useCache: false, init: parent.dir, seed: 7, fractions: { train: 0.5, val: 0.25, test: 0.25 }, filter: { modality: 'CT' } } as PretrainConfigInput);
    const m = manifestOf(stage);
    expect(m.hash).toBe(manifestOf(parent).hash);
    expect(stage.manifestHash).toBe(parent.manifestHash);
    expect(m.series.map((x) => [x.seriesUid, x.split])).toEqual(manifestOf(parent).series.map((x) => [x.seriesUid, x.split]));
    expect(stage.config).toMatchObject({ seed: 7, fractions: { train: 0.8, val: 0.1, test: 0.1 }, filter: { modality: 'CT' } });
    expect(m.split).toMatchObject({ inheritedFrom: parent.dir, keptInTrain: [...trainedByParent].sort(), overlap: [], warnings: [] });
    expect(ledgerOf(stage).split).toMatchObject({ inheritedFrom: parent.dir, keptInTrain: 10, overlap: 0 });
    for (const k of patientsIn(stage, 'val', 'test')) expect(trainedByParent.has(k)).toBe(false);

    // Asked for a new cohort (the 18 patients now in the library), with another seed: new patients are split, the parent's stay in training.
    const fresh = s.runs.create({ task: 'masked', maskPercent: 10, preset: 'tiny', size: 32, steps: 1, batchSize: 2, useCache: false, init: parent.dir, newCohort: true, seed: 7, filter: { modality: 'CT' } } as PretrainConfigInput);
    expect(patientsIn(fresh, 'train', 'val', 'test').size).toBe(18);
    for (const k of trainedByParent) expect(patientsIn(fresh, 'train').has(k)).toBe(true);
    expect(patientsIn(fresh, 'val').size).toBe(2);
    expect(patientsIn(fresh, 'test').size).toBe(2);
    expect(manifestOf(fresh).split).toMatchObject({ inheritedFrom: null, keptInTrain: [...trainedByParent].sort(), overlap: [] });
    // The same request without the parent's patients held back would have leaked (this seed's plain split puts some in validation or held-out).
    const leaky = s.runs.create({ task: 'masked', maskPercent: 10, preset: 'tiny', size: 32, steps: 1, batchSize: 2, useCache: false, init: parent.dir, newCohort: true, allowOverlap: true, seed: 7, filter: { modality: 'CT' } } as PretrainConfigInput);
    const overlap = manifestOf(leaky).split!.overlap;
    expect(overlap.length).toBeGreaterThan(0);
    for (const k of overlap) expect(trainedByParent.has(k)).toBe(true);
    expect(manifestOf(leaky).split!.warnings.join('\n')).toMatch(/in validation or held-out \(overlap allowed\)/);

    // The split view (runs.split): patients with their series in each split, the kept ones flagged.
    const view = (await s.handlers['runs.split'](fresh.id)) as RunSplit;
    expect(view.labelled).toBe(false);
    expect(view.splits.train.patients + view.splits.val.patients + view.splits.test.patients).toBe(18);
    expect(view.splits.val.list.every((p) => !p.parentTrained && p.positive === null && p.series.length > 0)).toBe(true);
    expect(view.splits.train.list.filter((p) => p.parentTrained).map((p) => p.key)).toEqual([...trainedByParent].sort());
    expect(view.splits.test.list[0].series[0]).toMatchObject({ uid: expect.stringMatching(/^[\d.]+$/), slices: 8, positives: null });

    // The CLI: the next stage from the parent's folder, its split in --json (and on stderr without it).
    const cli = ctssl('curriculum', 'pretrain', '--task', 'masked', '--mask', '10', '--init', parent.dir, '--preset', 'tiny', '--size', '32', '--steps', '1', '--batch', '2', '--no-cache', '--out', join(tmp.dir, 'cli-stage'), '--json');
    expect(cli.status, cli.stderr).toBe(0);
    const json = JSON.parse(cli.stdout) as { status: string; split: RunSplit };
    expect(json.status).toBe('done');
    expect(json.split).toMatchObject({ manifestHash: parent.manifestHash, lineage: { inheritedFrom: parent.dir } });
    expect(json.split.splits.train.list.map((p) => p.key)).toEqual([...trainedByParent].sort());
    expect(json.split.splits.test.list[0].series[0].uid).toBe(manifestOf(parent).series.find((x) => x.split === 'test')!.seriesUid);
  }, 180_000);

  it('fine-tuning from a pretrained run keeps its training patients out of validation and held-out; stratified', async () => {
    const { services: s, keys, positive, seriesOf } = await library('finetune', 4);
    // The encoder trained on 6 of the 12 labelled patients, 2 of them positive.
    const negatives = keys.filter((k) => !positive.includes(k));
    const seen = [...positive.slice(0, 2), ...negatives.slice(0, 4)];
    const parent = await pretrained(s, { seriesIds: seriesOf(seen), fractions: { train: 1, val: 0, test: 0 } });
    expect([...patientsIn(parent, 'train')].sort()).toEqual([...seen].sort());
    const run = finetune(s, { init: parent.dir });
    for (const k of patientsIn(run, 'val', 'test')) expect(seen.includes(k)).toBe(false);
    for (const k of seen) expect(patientsIn(run, 'train').has(k)).toBe(true);
    const lineage = manifestOf(run).split!;
    expect(lineage).toMatchObject({ inheritedFrom: null, keptInTrain: [...seen].sort(), overlap: [], stratified: true, due: { val: 3, test: 3 }, warnings: [] });
    expect(lineage.parents).toEqual([{ dir: parent.dir, name: expect.any(String), kind: 'pretrain', trainPatients: 6, note: '' }]);
    const view = (await s.handlers['runs.split'](run.id)) as RunSplit;
    for (const sp of ['train', 'val', 'test'] as const) expect(view.splits[sp].positivePatients).toBeGreaterThan(0);
    expect(view.splits.val.patients).toBe(3);
    expect(view.splits.test.patients).toBe(3);
    // Allowing the overlap gives this seed's plain stratified split, which puts some of them in validation or held-out: listed and warned.
    const leaky = finetune(s, { init: parent.dir, allowOverlap: true });
    const l = manifestOf(leaky).split!;
    expect(l.overlap.length).toBeGreaterThan(0);
    for (const k of l.overlap) expect(seen.includes(k)).toBe(true);
    expect(ledgerOf(leaky).split).toMatchObject({ overlap: l.overlap.length, warnings: [expect.stringMatching(/trained on .* in validation or held-out \(overlap allowed\)/)] });

    // An imported encoder has no manifest: its patients cannot be checked, and the run says so.
    const imported = join(tmp.dir, 'imported-encoder');
    cpSync(parent.dir, imported, { recursive: true });
    rmSync(join(imported, 'manifest.json'));
    const ledger = JSON.parse(readFileSync(join(imported, 'run.json'), 'utf8'));
    writeFileSync(join(imported, 'run.json'), JSON.stringify({ ...ledger, importedFrom: 'someone-elses.ctssl.zip' }));
    const fromImport = finetune(s, { init: imported });
    expect(manifestOf(fromImport).split!.parents[0]).toMatchObject({ kind: 'imported', trainPatients: null });
    expect(manifestOf(fromImport).split!.warnings).toEqual([expect.stringMatching(/cannot check: the encoder was trained elsewhere \(imported from someone-elses\.ctssl\.zip\)/)]);
  }, 180_000);

  it('refuses, with names and counts, when the library has no clean patients for validation or held-out', async () => {
    const { services: s, keys, seriesOf } = await library('refuse', 4);
    const seen = keys.slice(0, 11);
    const parent = await pretrained(s, { seriesIds: seriesOf(seen), fractions: { train: 1, val: 0, test: 0 } });
    const before = s.runs.list().length;
    let message = '';
    try {
      finetune(s, { init: parent.dir, name: 'refused' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^no clean validation patients: the validation split was due 3 patients, but 11 of the cohort's 12 patients trained the parent run ".*" and stay in training \(/);
    for (const k of seen) expect(message).toContain(k);
    expect(message).toMatch(/the 1 other went to held-out\. Add patients the parent runs never trained on, or allow the overlap/);
    // nothing recorded, no folder left behind
    expect(s.runs.list()).toHaveLength(before);
    // the CLI refuses the same way
    const cli = ctssl('refuse', 'finetune', '--task', 'classification', '--label', 'pe', '--init', parent.dir, '--size', '32', '--steps', '1', '--json');
    expect(cli.status).not.toBe(0);
    expect(cli.stderr).toMatch(/no clean validation patients: .* 11 of the cohort's 12 patients trained the parent run/);
    // insisting is possible, and recorded
    const insisted = finetune(s, { init: parent.dir, allowOverlap: true });
    expect(manifestOf(insisted).split!.overlap.length).toBeGreaterThan(0);
    expect(ledgerOf(insisted).split!.warnings[0]).toMatch(/overlap allowed/);
    // pretraining with a new cohort is held to the same rule
    expect(() => s.runs.create({ task: 'rotation', preset: 'tiny', size: 32, steps: 1, init: parent.dir, newCohort: true, filter: { modality: 'CT' } } as PretrainConfigInput)).toThrow(/no clean (validation|held-out) patients/);
  }, 180_000);

  it('an experiment grid keeps one split for all its runs, clean of every pretrained init, and reports it once', async () => {
    const { services: s, keys, positive, seriesOf } = await library('experiment', 4);
    const negatives = keys.filter((k) => !positive.includes(k));
    const seen = [...positive.slice(0, 2), ...negatives.slice(0, 4)];
    const parent = await pretrained(s, { seriesIds: seriesOf(seen), fractions: { train: 1, val: 0, test: 0 } });
    const { id } = s.experiments.start(
      { name: 'clean grid', task: 'classification', label: 'pe', preset: 'tiny', size: 32, inits: ['random', parent.dir], fractions: [1], seeds: [1], steps: 1, batchSize: 2, evalEvery: 1, splitFractions: { train: 0.6, val: 0.2, test: 0.2 } },
      { dir: join(tmp.dir, 'grid') },
    );
    const report = await s.experiments.wait(id);
    const runs = report.cells.map((c) => s.runs.byDir(c.runDir));
    expect(runs).toHaveLength(2);
    expect(new Set(runs.map((r) => r.manifestHash)).size).toBe(1);
    for (const r of runs) for (const k of patientsIn(r, 'val', 'test')) expect(seen.includes(k)).toBe(false);
    // the random-init run shares the split that keeps the pretrained init's patients in training
    expect(manifestOf(runs[0]).split!.keptInTrain).toEqual([...seen].sort());
    const split = report.split!;
    expect(split.splits.val.patients + split.splits.test.patients).toBe(6);
    expect(split.lineage!.keptInTrain).toEqual([...seen].sort());
    expect(readFileSync(report.files.html, 'utf8')).toMatch(/Patient split[^]*6 patients in training because a pretrained initialisation trained on them/);
  }, 300_000);

  it('stratifies fine-tuning splits by patient class: each split has positives with 4 positive patients, and a clear refusal with 2', async () => {
    const four = await library('four', 4);
    const labels = { task: 'classification' as const, label: { kind: 'image-label' as const, name: 'pe_present_on_image' }, fractions: { train: 0.6, val: 0.2, test: 0.2 } };
    const seeds = Array.from({ length: 20 }, (_, i) => i + 1);
    const plainFails = seeds.filter((seed) => splitClassProblems(buildFinetuneManifest(four.db, tmp.dir, { ...labels, seed, stratify: false })).length > 0);
    // the patient split without classes leaves some split without positives for many seeds (the 12-patient failure of issue 15)
    expect(plainFails.length).toBeGreaterThan(0);
    for (const seed of seeds) {
      const m = buildFinetuneManifest(four.db, tmp.dir, { ...labels, seed });
      expect(splitClassProblems(m), `seed ${seed}`).toEqual([]);
      for (const sp of ['train', 'val', 'test'] as const) expect(m.counts[sp].positives, `seed ${seed} ${sp}`).toBeGreaterThan(0);
    }
    const run = finetune(four.services, { splitSeed: plainFails[0] });
    expect(manifestOf(run).split).toMatchObject({ stratified: true, parents: [] });

    const two = await library('two', 2);
    const dir = join(tmp.dir, 'two-positives');
    expect(() => two.services.runs.create({ ...labels, kind: 'finetune', model: 'encoder-classifier', preset: 'tiny', size: 32, steps: 1, filter: { modality: 'CT' } } as FinetuneConfigInput, { dir })).toThrow(
      /^validation split has no positive patients \(2 positive patients: all in train\); held-out split has no positive patients \(2 positive patients: all in train\): add labelled patients or change the split fractions$/,
    );
    expect(existsSync(dir)).toBe(false);
  }, 180_000);

  it('adds training-only series to training and leaves validation and held-out as the cohort alone splits them', async () => {
    const lib = await library('train-only', 4);
    const cohortKeys = lib.keys.slice(0, 9);
    const extraKeys = lib.keys.slice(9);
    const cohort = lib.seriesOf(cohortKeys);
    const extra = lib.seriesOf(extraKeys);
    const alone = finetune(lib.services, { seriesIds: cohort, filter: undefined, splitSeed: 3 });
    const more = finetune(lib.services, { seriesIds: cohort, trainSeriesIds: extra, filter: undefined, splitSeed: 3 });
    for (const sp of ['val', 'test']) expect(patientsIn(more, sp)).toEqual(patientsIn(alone, sp));
    expect(patientsIn(alone, 'val').size + patientsIn(alone, 'test').size).toBeGreaterThan(0);
    expect(patientsIn(more, 'train')).toEqual(new Set([...patientsIn(alone, 'train'), ...extraKeys]));
    // the CLI's flag is the same field
    const cli = ctssl('train-only', 'finetune', '--task', 'classification', '--label', 'pe', '--preset', 'tiny', '--size', '32', '--steps', '1', '--batch', '2', '--split', '0.6,0.2,0.2', '--split-seed', '3', '--series', cohort.join(','), '--train-series', extra.join(','), '--json');
    expect(cli.status, cli.stderr).toBe(0);
    const viaCli = JSON.parse(cli.stdout) as { run: string };
    const cliManifest = JSON.parse(readFileSync(join(viaCli.run, 'manifest.json'), 'utf8')) as { series: { patientKey: string; split: string }[] };
    expect(new Set(cliManifest.series.filter((x) => x.split === 'test').map((x) => x.patientKey))).toEqual(patientsIn(alone, 'test'));
    // a series given twice, or a patient of the cohort given as training-only, is refused naming the series
    expect(() => finetune(lib.services, { seriesIds: cohort, trainSeriesIds: [cohort[0]], filter: undefined })).toThrow(new RegExp(`^series ${cohort[0]} is in the cohort and among the training-only series`));
  }, 180_000);
});
