import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders, removeFolder } from '../../../src/library/indexing/indexer';
import { cohortCounts, listFolders, listSeries, PAPER_COHORT } from '../../../src/library/db/catalog';
import type { Database } from '../../../src/library/db/sqlite';
import type { IndexSummary } from '../../../src/shared/types';
import { fixtures, hasSharedData, sharedData, tempDir } from '../../helpers';

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else yield p;
  }
}

function snapshot(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of files(dir)) {
    const st = statSync(f);
    m.set(f, createHash('sha1').update(readFileSync(f)).digest('hex') + ':' + st.mtimeMs + ':' + st.size);
  }
  return m;
}

describe('indexing the committed real DICOM fixtures', () => {
  const tmp = tempDir();
  let db: Database;
  let summary: IndexSummary;
  let before: Map<string, string>;

  beforeAll(async () => {
    before = snapshot(fixtures);
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    summary = await indexFolders(db, [fixtures]);
  });
  afterAll(() => {
    db.close();
    tmp.cleanup();
  });

  it('never modifies the source files', () => {
    expect(snapshot(fixtures)).toEqual(before);
  });

  it('accounts for every file: indexed, duplicate or skipped with a reason', () => {
    const count = (status: string) => db.prepare('SELECT COUNT(*) FROM files WHERE status = ?').pluck().get(status) as number;
    const all = [...files(fixtures)].length;
    expect(summary.files).toBe(all);
    expect(count('indexed') + count('duplicate') + count('skipped')).toBe(all);
    expect(count('skipped')).toBe(summary.skipped.length);
    for (const s of summary.skipped) expect(s.reason.length).toBeGreaterThan(5);
  });

  it('reads the LIDC-IDRI-0001 slab: 17 axial slices at 2.5 mm, uniform, no tilt', () => {
    const [s] = listSeries(db, { text: 'LIDC-IDRI-0001' });
    expect(s).toMatchObject({
      modality: 'CT',
      orientation: 'axial',
      slices: 17,
      rows: 512,
      columns: 512,
      sliceThickness: 2.5,
      spacing: 2.5,
      uniformSpacing: true,
      gantryTilt: 0,
      gaps: 0,
      manufacturer: 'GE MEDICAL SYSTEMS',
    });
  });

  it('indexes the UID-less TotalSegmentator series under a stable derived identity, with a warning', () => {
    const derived = listSeries(db).filter((s) => s.derivedUids && s.slices === 20);
    expect(derived).toHaveLength(1);
    expect(derived[0].seriesInstanceUid).toMatch(/^2\.25\.\d+$/);
    expect(summary.warnings.some((w) => w.includes('totalseg') && w.includes('derived'))).toBe(true);
  });

  it('detects the gantry tilt and the uneven spacing of the GE head CT', () => {
    const tilted = listSeries(db, { modality: 'CT', minSlices: 10 }).filter((s) => s.gantryTilt > 1);
    expect(tilted).toHaveLength(1);
    expect(tilted[0].gantryTilt).toBeGreaterThan(15);
    expect(tilted[0].gantryTilt).toBeLessThan(22);
    expect(tilted[0].uniformSpacing).toBe(false);
    expect(tilted[0].slices).toBe(28);
  });

  it('classifies the COVID-19 reformats as coronal and sagittal', () => {
    const covid = listSeries(db, { text: 'A002304' });
    const orient = covid.map((s) => s.orientation).sort();
    expect(orient).toEqual(['axial', 'axial', 'coronal', 'coronal', 'sagittal', 'sagittal']);
  });

  it("applies the paper's cohort rule and explains the counts", () => {
    const paper = listSeries(db, PAPER_COHORT);
    expect(paper.every((s) => s.modality === 'CT' && s.orientation === 'axial' && (s.sliceThickness ?? 99) <= 3)).toBe(true);
    expect(paper.some((s) => s.patientId === 'LIDC-IDRI-0001')).toBe(true);
    const c = cohortCounts(db, { ...PAPER_COHORT, minSlices: 15 });
    expect(c.matching).toBe(listSeries(db, { ...PAPER_COHORT, minSlices: 15 }).length);
    expect(c.byFilter.maxThickness).toBeGreaterThanOrEqual(c.matching);
    expect(c.total).toBe(listSeries(db).length);
  });

  it('skips broken files with reasons that say what is wrong', () => {
    const reason = (name: string) => summary.skipped.find((s) => s.path.endsWith('/' + name))?.reason ?? '';
    expect(reason('rtplan_truncated.dcm')).toMatch(/truncated|malformed/);
    expect(reason('MR_truncated.dcm')).toMatch(/truncated/);
    expect(reason('DICOMDIR')).toMatch(/DICOMDIR/);
    expect(reason('README.txt')).toMatch(/not a DICOM file/);
  });

  it('reads a preamble-less big-endian file and stores what it has', () => {
    const row = db
      .prepare(`SELECT f.status, f.warnings FROM files f WHERE f.path LIKE '%ExplVR_BigEndNoMeta.dcm'`)
      .get() as { status: string; warnings: string };
    expect(row.status).toBe('indexed');
    expect(row.warnings).toMatch(/big endian/);
  });
});

describe('incremental re-indexing', () => {
  const tmp = tempDir();
  const src = join(tmp.dir, 'src');
  let db: Database;
  beforeAll(() => {
    cpSync(join(fixtures, 'lidc-small'), src, { recursive: true });
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
  });
  afterAll(() => {
    db.close();
    tmp.cleanup();
  });
  const dcms = () => [...files(src)].filter((f) => f.endsWith('.dcm')).sort();

  it('reads unchanged files once, re-reads changed ones, drops deleted ones, counts duplicates', async () => {
    const first = await indexFolders(db, [src]);
    expect(first.parsed).toBe(first.files);
    expect(first.instances).toBe(12);

    const again = await indexFolders(db, [src]);
    expect(again.parsed).toBe(0);
    expect(again.instances).toBe(12);

    const [a, b] = dcms();
    const t = new Date(Date.now() + 5000);
    utimesSync(a, t, t);
    const changed = await indexFolders(db, [src]);
    expect(changed.parsed).toBe(1);
    expect(changed.instances).toBe(12);

    cpSync(b, join(src, 'copy-of-b.dcm'));
    const dup = await indexFolders(db, [src]);
    expect(dup.duplicates).toBe(1);
    expect(dup.instances).toBe(12);

    // Deleting the primary file promotes its duplicate: the instance stays.
    rmSync(b);
    const promoted = await indexFolders(db, [src]);
    expect(promoted.removed).toBe(1);
    expect(promoted.instances).toBe(12);
    expect(promoted.duplicates).toBe(0);

    rmSync(a);
    const removed = await indexFolders(db, [src]);
    expect(removed.removed).toBe(1);
    expect(removed.instances).toBe(11);
    expect(listSeries(db)[0].slices).toBe(11);

    // A file that turns into garbage is re-read and becomes skipped, with its instance gone.
    writeFileSync(dcms()[0], 'not dicom any more');
    const broken = await indexFolders(db, [src]);
    expect(broken.instances).toBe(10);
    expect(broken.skipped.some((s) => s.path === dcms()[0])).toBe(true);
  });

  it('removes a folder and everything indexed from it', async () => {
    const [folder] = listFolders(db);
    const res = removeFolder(db, folder.id);
    expect(res.instances).toBe(0);
    expect(res.series).toBe(0);
    expect(listFolders(db)).toHaveLength(0);
  });

  it('cancels cleanly: what was committed stays, a re-run completes', async () => {
    const ac = new AbortController();
    const partial = await indexFolders(db, [src], { signal: ac.signal, batchSize: 2, onProgress: (p) => p.filesDone >= 2 && ac.abort(), progressInterval: 0 });
    expect(partial.cancelled).toBe(true);
    const full = await indexFolders(db, [src]);
    expect(full.cancelled).toBe(false);
    expect(full.instances).toBe(10);
  });

  it('names the folder when it does not exist', async () => {
    await expect(indexFolders(db, [join(tmp.dir, 'nope')])).rejects.toThrow(/folder not found: .*nope/);
  });
});

describe.skipIf(!hasSharedData)('indexing all of ../shared/data', () => {
  it('indexes or skips with a reason every file, without crashing', async () => {
    const tmp = tempDir();
    const db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    try {
      const s = await indexFolders(db, [sharedData]);
      const n = (status: string) => db.prepare('SELECT COUNT(*) FROM files WHERE status = ?').pluck().get(status) as number;
      expect(n('indexed') + n('duplicate') + n('skipped')).toBe(s.files);
      expect(s.skipped.every((k) => k.reason.length > 0)).toBe(true);
      const lidc = listSeries(db, { text: 'LIDC-IDRI-0001' });
      expect(lidc[0].slices).toBe(133);
      // The same SOP instance in many transfer syntaxes counts as duplicates.
      expect(s.duplicates).toBeGreaterThan(10);
    } finally {
      db.close();
      tmp.cleanup();
    }
  });
});

describe('header reading in a worker thread', () => {
  it('gives the same index as reading inline', async () => {
    const tmp = tempDir();
    try {
      const run = async (workers: number) => {
        const db = openLibrary(join(tmp.dir, `w${workers}.sqlite`));
        const s = await indexFolders(db, [fixtures], { workers });
        const rows = db.prepare('SELECT sop_uid, image_position, rescale_intercept, transfer_syntax FROM instances ORDER BY sop_uid').all();
        db.close();
        return { s: { ...s, seconds: 0 }, rows };
      };
      const inline = await run(0);
      const worker = await run(1);
      expect(worker.s.warnings.some((w) => w.includes('worker'))).toBe(false);
      expect(worker).toEqual(inline);
    } finally {
      tmp.cleanup();
    }
  });
});
