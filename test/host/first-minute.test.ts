/**
 * "Try it on a synthetic cohort" (issue 13): on an empty library, library.synthCohort writes a
 * small labelled cohort into the data folder, indexes it and imports its labels, with progress
 * events; the series are then listed with labels, ready for a pretraining.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createServices } from '../../src/host/services';
import type { Events } from '../../src/shared/contract';
import { tempDir } from '../helpers';

describe('the first minute: a synthetic cohort on an empty library', () => {
  it('writes, indexes and labels a cohort of 6 patients, reporting each phase', async () => {
    const tmp = tempDir('ctssl-first-minute-');
    const progress: Events['library.synthProgress'][] = [];
    const services = createServices({
      mode: 'server',
      dataDir: tmp.dir,
      dbPath: join(tmp.dir, 'library.sqlite'),
      emit: (event, payload) => {
        if (event === 'library.synthProgress') progress.push(payload as Events['library.synthProgress']);
      },
    });
    try {
      const h = services.handlers;
      const r = await h['library.synthCohort']({ requestId: 'first' });
      expect(r.folder).toBe(join(tmp.dir, 'synthetic', 'cohort-1'));
      expect(existsSync(join(r.folder, 'manifest.json'))).toBe(true);
      expect(r.patients).toBe(6);
      expect(r.labelFiles).toBe(7); // an LIDC XML per series and the train.csv
      expect(r.nodules).toBeGreaterThanOrEqual(6);

      const series = await h['library.series']({});
      expect(series).toHaveLength(6); // SEG objects are attached to their series, not listed
      expect(await h['library.series']({ labels: 'nodule' })).toHaveLength(6);
      expect((await h['library.series']({ modality: 'CT', orientation: 'axial', maxThickness: 3 })).length).toBe(6); // the paper cohort
      const folders = await h['library.folders']();
      expect(folders.map((f) => f.path)).toEqual([r.folder]);

      const phases = [...new Set(progress.map((p) => p.phase))];
      expect(phases).toEqual(['writing', 'indexing', 'labels', 'done']);
      expect(progress.every((p) => p.requestId === 'first')).toBe(true);
      expect(progress.filter((p) => p.phase === 'writing').at(-1)).toMatchObject({ done: 6, total: 6 });

      // one at a time; a second cohort goes to its own folder, and can be cancelled
      const second = h['library.synthCohort']({ requestId: 'second' });
      await expect(h['library.synthCohort']({})).rejects.toThrow(/being made already/);
      expect(await h['library.cancelSynth']('second')).toBe(true);
      await expect(second).rejects.toThrow(/cancelled/);
      expect(progress.at(-1)).toMatchObject({ requestId: 'second', phase: 'cancelled' });
      await services.indexing.jobs.idle();
    } finally {
      await services.close();
      tmp.cleanup();
    }
  }, 240_000);
});
