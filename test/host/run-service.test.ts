import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createServices } from '../../src/host/services';
import { indexFolders } from '../../src/library/indexing/indexer';
import { createRun } from '../../src/host/runs/create-run';
import type { Events } from '../../src/shared/contract';
import { fixtures, tempDir } from '../helpers';

describe('runs through the services (what the app does), with real trainer processes', () => {
  it('creates, starts, streams events, records curves, evaluates, and answers the doctor', async () => {
    const tmp = tempDir();
    const events: Events['run.event'][] = [];
    const services = createServices({
      mode: 'server',
      dataDir: tmp.dir,
      dbPath: join(tmp.dir, 'lib.sqlite'),
      emit: (name, payload) => {
        if (name === 'run.event') events.push(payload as Events['run.event']);
      },
    });
    const h = services.handlers;
    try {
      await indexFolders(services.db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
      expect(h['runs.create']({ task: 'masked', steps: 4 } as never)).toBeDefined(); // default cohort = paper rule
      const run = await h['runs.create']({ task: 'denoise', preset: 'tiny', size: 32, steps: 4, batchSize: 2, evalEvery: 2, checkpointEvery: 2, evalBatches: 1, useCache: true } as never);
      expect(run.status).toBe('created');
      const started = await h['runs.start'](run.id);
      expect(started.status).toBe('running');
      await expect(Promise.resolve().then(() => h['runs.start'](run.id))).rejects.toThrow(/already running/);
      for (let i = 0; i < 600 && !events.some((e) => e.runId === run.id && e.event.type === 'done'); i++) await new Promise((r) => setTimeout(r, 100));
      const types = new Set(events.filter((e) => e.runId === run.id).map((e) => e.event.type));
      for (const t of ['ready', 'started', 'step', 'eval', 'sample', 'checkpoint', 'done']) expect(types).toContain(t);
      const sample = await h['runs.sample'](run.id);
      expect(sample?.input).toBeInstanceOf(Float32Array);
      expect(sample?.input.length).toBe(32 * 32);
      for (let i = 0; i < 50 && (await h['runs.list']()).find((r) => r.id === run.id)!.status === 'running'; i++) await new Promise((r) => setTimeout(r, 100));
      const listed = (await h['runs.list']()).find((r) => r.id === run.id)!;
      expect(listed).toMatchObject({ status: 'done', step: 4, totalSteps: 4 });
      expect(listed.backend).toMatch(/tfjs-backend-wasm/);
      const m = await h['runs.metrics'](run.id);
      const loss = m.series.find((s) => s.split === 'train' && s.name === 'loss')!;
      expect(loss.steps).toEqual([1, 2, 3, 4]);
      expect(m.series.some((s) => s.split === 'val' && s.name === 'ssim')).toBe(true);
      await expect(Promise.resolve().then(() => h['runs.start'](run.id))).rejects.toThrow(/finished/);
      const evaluating = h['runs.evaluate'](run.id, { maxSlices: 4 });
      // its folder is being read: not deleted meanwhile
      await expect(Promise.resolve().then(() => h['runs.delete'](run.id))).rejects.toThrow(/being evaluated or exported/);
      const ev = await evaluating;
      expect((ev as { images: number }).images).toBe(4);
      const imgs = await h['runs.evalImages'](run.id);
      expect(imgs.samples.length).toBeGreaterThan(0);
      expect(Buffer.from(imgs.samples[0].input.subarray(1, 4)).toString()).toBe('PNG');
      expect(imgs.samples[0].diff).not.toBeNull();
      expect((await h['runs.list']()).find((r) => r.id === run.id)!.active).toBe(false);
      // the trainer is asked for single-threaded GC whatever this machine's cores, so a host that
      // spawned it without the trainer's flags fails here on any machine
      const gcBefore = process.env.CTSSL_TRAINER_GC;
      process.env.CTSSL_TRAINER_GC = 'single';
      let doc: Awaited<ReturnType<(typeof h)['system.doctor']>>;
      try {
        doc = await h['system.doctor']();
      } finally {
        if (gcBefore == null) delete process.env.CTSSL_TRAINER_GC;
        else process.env.CTSSL_TRAINER_GC = gcBefore;
      }
      expect(doc.backend.name).toBe('wasm');
      expect(doc.cpu.gc).toBe('single-threaded');
      expect(doc.presets.map((p) => p.preset)).toEqual(['paper', 'standard', 'small', 'tiny']);
      await expect(Promise.resolve().then(() => h['runs.pause'](run.id))).rejects.toThrow(/not running/);
      await expect(Promise.resolve().then(() => h['runs.metrics'](999))).rejects.toThrow(/no run with id 999/);

      // Delete moves the run to the trash; restore undoes it; emptying the trash deletes for good.
      const dir = listed.dir;
      const gone = await h['runs.delete'](run.id);
      expect(gone.movedTo).toBe(join(tmp.dir, 'trash', 'runs', `${run.id}-${basename(dir)}`));
      expect(existsSync(dir)).toBe(false);
      expect(existsSync(join(gone.movedTo!, 'config.json'))).toBe(true);
      expect((await h['runs.list']()).map((r) => r.id)).not.toContain(run.id);
      expect((await h['runs.trash']()).map((r) => r.id)).toEqual([run.id]);
      await expect(Promise.resolve().then(() => h['runs.start'](run.id))).rejects.toThrow(/no run with id/);
      await expect(Promise.resolve().then(() => h['runs.delete'](run.id))).rejects.toThrow(/no run with id/);
      const back = await h['runs.restore'](run.id);
      expect(back).toMatchObject({ id: run.id, dir, status: 'done' });
      expect(existsSync(join(dir, 'config.json'))).toBe(true);
      expect((await h['runs.metrics'](run.id)).series.find((x) => x.name === 'loss')!.steps).toEqual([1, 2, 3, 4]);
      expect(await h['runs.trash']()).toEqual([]);
      await expect(Promise.resolve().then(() => h['runs.restore'](run.id))).rejects.toThrow(/not in the trash/);
      const again = await h['runs.delete'](run.id);
      expect(await h['runs.emptyTrash']()).toEqual({ removed: 1, failed: [] });
      expect(existsSync(again.movedTo!)).toBe(false);
      expect(existsSync(`${again.movedTo!}.purging`)).toBe(false);
      expect(await h['runs.trash']()).toEqual([]);
      expect(services.db.prepare('SELECT COUNT(*) FROM run_metrics WHERE run_ref = ?').pluck().get(run.id)).toBe(0);
      // a run folder outside the data folder (made with --out elsewhere, may hold other files) is never moved or deleted
      const outside = tempDir();
      try {
        const ext = createRun(services.db, { task: 'denoise', preset: 'tiny', size: 32, steps: 2, batchSize: 2, useCache: false }, { dataDir: tmp.dir, dir: join(outside.dir, 'mine') });
        writeFileSync(join(outside.dir, 'mine', 'notes.txt'), 'keep');
        expect((await h['runs.delete'](ext.id)).movedTo).toBeNull();
        // only the ids a confirmation listed are emptied
        expect(await h['runs.emptyTrash']([])).toEqual({ removed: 0, failed: [] });
        expect((await h['runs.trash']()).map((r) => r.id)).toEqual([ext.id]);
        expect(await h['runs.emptyTrash']([ext.id])).toEqual({ removed: 1, failed: [] });
        expect(readFileSync(join(outside.dir, 'mine', 'notes.txt'), 'utf8')).toBe('keep');
        expect(existsSync(join(outside.dir, 'mine', 'config.json'))).toBe(true);
      } finally {
        outside.cleanup();
      }
      // a run that is training is not deleted
      const busy = await h['runs.create']({ task: 'denoise', preset: 'tiny', size: 32, steps: 200, batchSize: 2, useCache: false } as never);
      await h['runs.start'](busy.id);
      await expect(Promise.resolve().then(() => h['runs.delete'](busy.id))).rejects.toThrow(/training: stop it first/);
      await h['runs.stop'](busy.id);
      for (let i = 0; i < 300 && (await h['runs.list']()).find((r) => r.id === busy.id)!.active; i++) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await services.close();
      tmp.cleanup();
    }
  });
});

describe('sharing through the services', () => {
  it('exports a run into the data folder and imports it back from its path', async () => {
    const { readFileSync } = await import('node:fs');
    const tmp = tempDir();
    const services = createServices({ mode: 'server', dataDir: tmp.dir, dbPath: join(tmp.dir, 'lib.sqlite'), emit: () => {} });
    const h = services.handlers;
    try {
      await indexFolders(services.db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
      const run = await h['runs.create']({ task: 'flip', preset: 'tiny', size: 32, steps: 1, batchSize: 2, useCache: false } as never);
      await h['runs.start'](run.id);
      for (let i = 0; i < 600 && (await h['runs.list']()).find((r) => r.id === run.id)!.status === 'running'; i++) await new Promise((r) => setTimeout(r, 100));
      const ex = await h['runs.export'](run.id, { licence: 'CC-BY-4.0' });
      expect(ex.file.startsWith(join(tmp.dir, 'exports'))).toBe(true);
      const a = await h['packages.import'](ex.file);
      expect(a.run.kind).toBe('imported');
      expect(a.run.status).toBe('done');
      await expect(h['packages.pick']()).rejects.toThrow(/server mode/);
    } finally {
      await services.close();
      tmp.cleanup();
    }
  });
});
