import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServices, type Services } from '../../../src/host/services';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { importLabels } from '../../../src/library/labels/label-import';
import { exportSeriesSeg } from '../../../src/library/labels/seg-export';
import { listSeries } from '../../../src/library/db/catalog';
import { fixtures, tempDir } from '../../helpers';
import { globSync } from '../../glob';
import type { IndexProgress } from '../../../src/shared/types';

/** A DICOM SEG found by indexing is attached to the series it segments, not listed as an image series. */
describe('DICOM SEG attached to its series', () => {
  const tmp = tempDir();
  const segDir = join(tmp.dir, 'segs');
  let services: Services;
  let frames = 0;
  /** Each end event of an index job as sent to the doors, with the label sources the library held when it was sent. */
  const ends: { phase: string; sources: number }[] = [];
  beforeAll(async () => {
    mkdirSync(segDir);
    const scratch = openLibrary(join(tmp.dir, 'scratch.sqlite'));
    await indexFolders(scratch, [join(fixtures, 'lidc-0001')]);
    await importLabels(scratch, globSync(join(fixtures, 'lidc-0001'), /069\.xml$/)[0]);
    frames = exportSeriesSeg(scratch, listSeries(scratch)[0].id, join(segDir, 'nodule-seg.dcm'), { consensusK: 2 }).frames;
    scratch.close();
    services = createServices({ mode: 'cli', dataDir: join(tmp.dir, 'data'), dbPath: join(tmp.dir, 'lib.sqlite'), emit: (name, p) => {
      if (name !== 'index.progress') return;
      const { phase } = p as IndexProgress;
      if (phase === 'done' || phase === 'cancelled' || phase === 'error') ends.push({ phase, sources: services.db.prepare('SELECT COUNT(*) FROM label_sources').pluck().get() as number });
    } });
  });
  afterAll(async () => {
    await services?.close();
    tmp.cleanup();
  });

  const index = async (folder: string) => {
    const { jobId } = services.indexing.start([folder]);
    const before = ends.length;
    const p = await services.indexing.jobs.finished(jobId);
    expect(p.phase).toBe('done');
    // one end event, sent after the SEG objects were attached (a page that reads the label sources on it sees them all)
    expect(ends.slice(before)).toEqual([{ phase: 'done', sources: (await services.handlers['labels.sources']()).length }]);
  };

  it('indexed before its images: attached at once, its frames matched once the images are indexed; never an image series', async () => {
    const h = services.handlers;
    await index(segDir);
    // the SEG is in the index (a file, an instance) but not an image series
    expect(services.db.prepare(`SELECT COUNT(*) FROM series WHERE modality = 'SEG'`).pluck().get()).toBe(1);
    expect(await h['library.series']({})).toEqual([]);
    const first = await h['labels.sources']();
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ kind: 'dicom-seg', file: join(segDir, 'nodule-seg.dcm') });
    expect(first[0].report).toMatchObject({ frames, matchedFrames: 0 });

    await index(join(fixtures, 'lidc-0001'));
    const series = await h['library.series']({});
    expect(series.map((s) => s.modality)).toEqual(['CT']);
    const sources = await h['labels.sources']();
    expect(sources).toHaveLength(1);
    expect(sources[0].report).toMatchObject({ frames, matchedFrames: frames });
    // openable as that series' mask overlay: its segment is on the CT's slices
    const labels = await h['labels.series'](series[0].id);
    const segSlices = labels.slices.filter((s) => s.segments > 0);
    expect(segSlices).toHaveLength(frames);
    const masks = await h['labels.masks'](series[0].id, segSlices[0].index, { sourceId: sources[0].id });
    expect(masks.groups.some((g) => g.kind === 'segment' && g.mask.some((v) => v === 1))).toBe(true);
    // in the 'nodule' cohort (what segmentation trains on)
    expect((await h['library.series']({ labels: 'nodule' })).map((s) => s.id)).toEqual([series[0].id]);

    // indexing again does not import it again
    await index(segDir);
    expect((await h['labels.sources']()).map((s) => s.id)).toEqual([sources[0].id]);
  });
});
