import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../src/cli/main';
import { createRun } from '../src/host/runs/create-run';
import { createServices } from '../src/host/services';
import { labelFileRule } from '../src/host/user-paths';
import { openLibrary } from '../src/library/db/schema';
import type { Database } from '../src/library/db/sqlite';
import { indexFolders } from '../src/library/indexing/indexer';
import { batched, instanceBySop, MAX_LISTED, own, streamCsv, withProvisionalSource } from '../src/library/labels/label-files';
import { labelKinds, registerLabelFormat, sniffLabelKind, type LabelFormat } from '../src/library/labels/label-formats';
import { registerPretextTask, type PretextTask } from '../src/core/ssl/pretext/registry';
import { flipImage } from '../src/core/ssl/transforms';
import { backendInfo, backendNames } from '../src/shared/backends';
import { className, pretextTaskIds, taskTitle } from '../src/shared/pretext-tasks';
import { parsePretrainConfig } from '../src/shared/run-config';
import type { CsvImportReport } from '../src/shared/results';
import type { TrainerEvent } from '../src/shared/trainer-protocol';
import { computeBackend, initBackend, registerBackend } from '../src/trainer/backend';
import { evaluateRun } from '../src/trainer/eval-ssl';
import { runPretrain } from '../src/trainer/pretrain/pretrain-loop';
import type { TrainerPort } from '../src/trainer/step-loop';
import { fixtures, tempDir } from './helpers';

/**
 * Each extension point is one registry that every layer reads: a task, a label format or a compute
 * backend is one module (here, each toy's definition below) and one registry line (here, its
 * register call). Each toy then works end to end through the real code of every layer, with no
 * other file touched: the run config accepts it, the CLI lists it, the host names and records it,
 * the trainer trains and evaluates it (in process, with a port, since a registration made here does
 * not reach a trainer child process), the library imports it into a real SQLite library.
 */

// ------------------------------------------------------------------ the toy modules

/** A reconstruction task: the slice's grey levels inverted; the target is the slice. */
const invert: PretextTask = {
  id: 'invert',
  label: 'Inversion',
  hint: 'undo an inversion of the grey levels',
  paperName: 'inversion',
  kind: 'reconstruction',
  classes: [],
  options: [],
  paper: 'Not in the paper: a toy task for the registry test.',
  example: (_o, img) => ({ input: img.map((v) => 1 - v), target: img }),
};

/** A classification task: the slice as it is or flipped up-down; the class is which. */
const vflip: PretextTask = {
  id: 'vflip',
  label: 'Vertical flip',
  hint: 'as it is or upside down, 2-way classification',
  paperName: 'vertical flip',
  kind: 'classification',
  classes: ['upright', 'upside down'],
  options: [],
  paper: 'Not in the paper: a toy task for the registry test.',
  example(_o, img, size, rng) {
    const label = rng.int(2);
    return { input: flipImage(img, size, label === 1 ? 2 : 0), label };
  },
};

/** The pure-JS backend under another name. */
const toyCpu = {
  ...computeBackend('cpu'),
  name: 'toy-cpu',
  needs: 'nothing',
  usedFor: 'the registry test',
  gpuJobs: false,
  advice: 'always present',
};

/** A one-column CSV of slices (SOP Instance UIDs): each listed slice gets the image label 'listed' = 1. */
const sliceList: LabelFormat<CsvImportReport> = {
  kind: 'slice-list-csv',
  title: 'slice list',
  noun: 'slice list CSV',
  reads: 'a one-column CSV of SOPInstanceUID',
  extensions: ['.csv', '.uids'],
  maxBytes: 2 ** 20,
  sniff: (h) => h.csvHeader?.trim() === 'sopinstanceuid',
  import: (db, path) =>
    withProvisionalSource(db, 'slice-list-csv', path, async (sourceId, hash) => {
      const lookup = instanceBySop(db);
      const ins = db.prepare("INSERT OR REPLACE INTO image_labels (source_ref, sop_uid, name, value) VALUES (?, ?, 'listed', 1)");
      const unmatched: CsvImportReport['unmatched'] = [];
      let rows = 0;
      let matched = 0;
      const write = batched(db, (records) => {
        for (const [sop = ''] of records) {
          rows++;
          ins.run(sourceId, sop.trim());
          if (lookup(sop.trim())) matched++;
          else if (unmatched.length < MAX_LISTED) unmatched.push({ row: rows, key: own(sop), reason: 'no indexed image has this SOP Instance UID' });
        }
      });
      await streamCsv(path, hash, () => undefined, write);
      return { kind: 'slice-list-csv', file: path, sourceId, rows, matchedRows: matched, unmatchedRows: rows - matched, unmatched, warnings: [] } as unknown as CsvImportReport;
    }),
  describe: (r) => ({
    headline: `${r.matchedRows} of ${r.rows} slices are in the library`,
    facts: [['slices listed', String(r.rows)]],
    unmatched: r.unmatched.map((u) => ({ what: `row ${u.row}: ${u.key}`, reason: u.reason })),
    unmatchedCount: r.unmatchedRows,
    warnings: r.warnings,
    incomplete: false,
    text: `${r.file}: slice list: ${r.rows} slices, ${r.matchedRows} in the library`,
  }),
};

// ------------------------------------------------------------------ the tests

const tmp = tempDir();
let db: Database;

beforeAll(async () => {
  db = openLibrary(join(tmp.dir, 'lib.sqlite'));
  await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
});
afterAll(async () => {
  db.close();
  tmp.cleanup();
  await initBackend({ force: 'wasm' });
});

function port(): TrainerPort & { events: TrainerEvent[] } {
  const events: TrainerEvent[] = [];
  return { events, send: (e) => void events.push(e), control: { paused: false, stop: false, wake: null } };
}

/** Creates the run through the host (config, manifest, folder, row) and trains it through the trainer's loop, in process. */
async function pretrain(task: string, backend: string) {
  const run = createRun(
    db,
    { task, preset: 'tiny', size: 32, steps: 2, batchSize: 2, evalEvery: 2, checkpointEvery: 2, evalBatches: 1, seed: 5, useCache: false, filter: { modality: 'CT' } },
    { dataDir: tmp.dir },
  );
  const p = port();
  await runPretrain({ v: 1, type: 'start', runDir: run.dir, resume: false, cacheDir: null, backend }, p);
  return { run, events: p.events };
}

const pretrainChoices = (flag: string) =>
  buildProgram()
    .commands.find((c) => c.name() === 'pretrain')!
    .options.find((o) => o.long === flag)!.argChoices;

describe('a pretext task is one module and one registry line', () => {
  it('a toy reconstruction task, on a toy backend: config, CLI, host, 2 training steps and Table II through the registries', async () => {
    expect(() => parsePretrainConfig({ task: 'invert', steps: 1 })).toThrow(/run config: task: Invalid option: expected one of "masked"\|"next-slice"\|"denoise"\|"rotation"\|"flip"$/);
    await expect(initBackend({ force: 'toy-cpu' })).rejects.toThrow(/unknown compute backend 'toy-cpu'/);
    const undoTask = registerPretextTask(invert);
    const undoBackend = registerBackend(toyCpu);
    try {
      // Every layer lists them.
      expect(pretextTaskIds()).toEqual(['masked', 'next-slice', 'denoise', 'rotation', 'flip', 'invert']);
      expect(pretrainChoices('--task')).toContain('invert');
      expect(backendNames()).toEqual(['tensorflow', 'wasm', 'cpu', 'toy-cpu']);
      for (const command of ['pretrain', 'eval-ssl', 'finetune', 'experiment', 'bias-probe'])
        expect(buildProgram().commands.find((c) => c.name() === command)!.options.find((o) => o.long === '--backend')!.argChoices).toContain('toy-cpu');
      expect(backendInfo('toy-cpu')?.gpuJobs).toBe(false);
      expect(parsePretrainConfig({ task: 'invert', steps: 1 }).task).toBe('invert');
      // CTSSL_BACKEND takes it too.
      process.env.CTSSL_BACKEND = 'toy-cpu';
      try {
        expect((await initBackend()).name).toBe('cpu');
      } finally {
        delete process.env.CTSSL_BACKEND;
      }

      const { run, events } = await pretrain('invert', 'toy-cpu');
      expect(run.task).toBe('invert');
      expect(run.dir).toMatch(/runs\/\d{8}\d{6}-invert-[0-9a-f]{8}$/);
      expect(taskTitle(parsePretrainConfig(JSON.parse(readFileSync(join(run.dir, 'config.json'), 'utf8'))))).toBe('invert');
      const ready = events.find((e) => e.type === 'ready');
      expect(ready).toMatchObject({ backend: { name: 'cpu', package: '@tensorflow/tfjs-backend-cpu' } });
      const done = events.find((e) => e.type === 'done');
      expect(done).toMatchObject({ step: 2, stopped: false });
      // A reconstruction task trains the VQ-VAE with its composite loss and is scored on images.
      expect(Object.keys((done as { finalLosses: Record<string, number> }).finalLosses)).toEqual(expect.arrayContaining(['loss', 'mse', 'vq', 'ssim']));
      const val = events.find((e) => e.type === 'eval') as { metrics: Record<string, number> };
      expect(Number.isFinite(val.metrics.mse)).toBe(true);
      expect(events.find((e) => e.type === 'sample')).toMatchObject({ size: 32 });

      const table = await evaluateRun(run.dir, { backend: 'toy-cpu', maxSlices: 4 });
      expect(table).toMatchObject({ task: 'invert', maskPercent: null, backend: expect.stringMatching(/^@tensorflow\/tfjs-backend-cpu@/) });
      expect(Number.isFinite(table.perVolume.mse.mean)).toBe(true);
      expect(table.table).toContain('| invert |');
    } finally {
      undoTask();
      undoBackend();
    }
    expect(pretextTaskIds()).not.toContain('invert');
    expect(backendNames()).not.toContain('toy-cpu');
  }, 180_000);

  it('a toy classification task: its classes make the classifier, its metrics are AUROC and cross-entropy', async () => {
    const undo = registerPretextTask(vflip);
    try {
      expect(className('vflip', 1)).toBe('upside down');
      const { run, events } = await pretrain('vflip', 'wasm');
      expect(events.find((e) => e.type === 'done')).toMatchObject({ step: 2, stopped: false });
      expect(Object.keys((events.find((e) => e.type === 'done') as { finalLosses: Record<string, number> }).finalLosses)).toContain('loss');
      const val = events.find((e) => e.type === 'eval') as { metrics: Record<string, number> };
      expect(Object.keys(val.metrics)).toEqual(expect.arrayContaining(['crossEntropy', 'auroc', 'accuracy']));
      expect(events.find((e) => e.type === 'sample')).toMatchObject({ target: null, label: expect.any(Number), predicted: expect.any(Number) });
      const table = await evaluateRun(run.dir, { maxSlices: 6 });
      expect(table.aurocPerClass).toHaveLength(2);
      expect(Number.isFinite(table.perVolume.crossEntropy.mean)).toBe(true);
    } finally {
      undo();
    }
  }, 180_000);
});

describe('a label format is one module and one registry line', () => {
  it('a toy one-column CSV of slice UIDs: sniffed, capped, imported into a real SQLite library, listed and described', async () => {
    const sops = (db.prepare('SELECT sop_uid FROM instances ORDER BY id LIMIT 3').pluck().all() as string[]).concat(['9.9.9']);
    const file = join(tmp.dir, 'slices.uids');
    writeFileSync(file, ['SOPInstanceUID', ...sops].join('\n') + '\n');
    const head = readFileSync(file);
    expect(() => sniffLabelKind(head, 'slices.uids')).toThrow(/slices\.uids: not a label file this app reads \(LIDC-IDRI XML, RSNA STR PE train\.csv, DICOM SEG, or a CSV of patient attributes/);
    expect(labelFileRule().extensions).not.toContain('.uids');

    const undo = registerLabelFormat(sliceList);
    const services = createServices({ mode: 'server', dataDir: tmp.dir, dbPath: join(tmp.dir, 'labels.sqlite'), emit: () => {} });
    try {
      expect(labelKinds()).toEqual(['lidc-xml', 'rsna-csv', 'dicom-seg', 'attributes-csv', 'slice-list-csv']);
      expect(sniffLabelKind(head, 'slices.uids')).toBe('slice-list-csv');
      expect(() => sniffLabelKind(new TextEncoder().encode('notes\n'), 'n.csv')).toThrow(/or a one-column CSV of SOPInstanceUID\)$/);
      expect(labelFileRule().extensions).toContain('.uids');
      await indexFolders(services.db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);

      // The app's door (the server's handler table): path checked, kind sniffed, cap checked, imported, described.
      const h = services.handlers;
      const r = await h['labels.import'](file);
      expect(r).toMatchObject({ kind: 'slice-list-csv', rows: 4, matchedRows: 3, unmatchedRows: 1 });
      expect(r.view).toMatchObject({ kind: 'slice-list-csv', format: 'slice list', headline: '3 of 4 slices are in the library', incomplete: true, unmatchedCount: 1 });
      const sources = await h['labels.sources']();
      expect(sources.map((s) => [s.kind, s.format])).toEqual([['slice-list-csv', 'slice list']]);
      // Stored without a CHECK on kind, its per-image labels read by the viewer.
      expect(services.db.prepare("SELECT count(*) FROM image_labels WHERE name = 'listed'").pluck().get()).toBe(4);
      const series = services.db.prepare('SELECT s.id FROM series s JOIN instances i ON i.series_ref = s.id WHERE i.sop_uid = ?').pluck().get(sops[0]) as number;
      const slices = (await h['labels.series'](series)).slices.filter((s) => s.image.listed === 1);
      expect(slices.length).toBeGreaterThan(0);
      // Its cap is its own.
      writeFileSync(join(tmp.dir, 'big.uids'), 'SOPInstanceUID\n' + '1.2.3\n'.repeat(2 ** 18));
      await expect(Promise.resolve().then(() => h['labels.import'](join(tmp.dir, 'big.uids')))).rejects.toThrow(/over the 1 MiB cap of a slice list CSV/);
    } finally {
      await services.close();
      undo();
    }
    // Unregistered, its kind is no longer recorded: validation in code stands for the old CHECK.
    expect(labelKinds()).not.toContain('slice-list-csv');
    await expect(sliceList.import(db, file)).rejects.toThrow(/label kind 'slice-list-csv' is not a registered label format/);
  }, 120_000);
});
