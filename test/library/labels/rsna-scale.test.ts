/**
 * RSNA train.csv matching as bench/index-scale.ts runs it at a million rows, here on a small
 * library written through the indexer's own write path: every row is one look-up by the SOP
 * Instance UID's unique index (nothing else read per row), the per-image labels live in their
 * primary key's b-tree (WITHOUT ROWID: two b-trees per label, not three), a re-import replaces the
 * earlier one, and a row whose image is in another series than the CSV says is still reported.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../../src/library/db/schema';
import type { Database } from '../../../src/library/db/sqlite';
import { importLabels, type CsvImportReport } from '../../../src/library/labels/label-import';
import { streamCsv } from '../../../src/library/labels/label-files';
import { createHash } from 'node:crypto';
import Papa from 'papaparse';
import { buildLibrary, writeRsnaCsv } from '../../../bench/index-scale-library';
import { tempDir } from '../../helpers';

const N = 3000;

describe('RSNA CSV matching at scale', () => {
  let tmp: ReturnType<typeof tempDir>;
  let db: Database;
  let csv: string;

  beforeEach(async () => {
    tmp = tempDir();
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    buildLibrary(db, { instances: N, folder: '/archive/scale' });
    csv = join(tmp.dir, 'train.csv');
    expect(await writeRsnaCsv(csv, { instances: N })).toMatchObject({ rows: N });
  });
  afterEach(() => {
    db.close();
    tmp.cleanup();
  });

  it('looks each row up by the unique SOP index alone, and keeps the labels in a WITHOUT ROWID table', async () => {
    const seen: string[] = [];
    const prepare = db.prepare.bind(db);
    db.prepare = ((sql: string) => {
      seen.push(sql);
      return prepare(sql);
    }) as Database['prepare'];
    let report: CsvImportReport;
    try {
      report = (await importLabels(db, csv)) as CsvImportReport;
    } finally {
      db.prepare = prepare;
    }
    expect(report).toMatchObject({ rows: N, matchedRows: N, unmatchedRows: 0, warnings: [] });
    const lookup = seen.find((s) => /FROM instances\b.*WHERE .*sop_uid = \?/s.test(s));
    expect(lookup, seen.join('\n')).toBeDefined();
    expect(lookup).not.toMatch(/JOIN/);
    const plan = (prepare('EXPLAIN QUERY PLAN ' + lookup).all(null) as { detail: string }[]).map((r) => r.detail);
    expect(plan).toEqual([expect.stringMatching(/^SEARCH instances USING INDEX sqlite_autoindex_instances_1 \(sop_uid=\?\)$/)]);

    expect(prepare("SELECT sql FROM sqlite_master WHERE name = 'image_labels'").pluck().get()).toMatch(/WITHOUT ROWID/);
    expect(prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'image_labels' ORDER BY name").pluck().all()).toEqual(['image_labels_sop']);
    expect(prepare('SELECT COUNT(*) FROM image_labels').pluck().get()).toBe(N);
  });

  it('a re-import replaces the earlier one; a row naming another series than its image is reported', async () => {
    await importLabels(db, csv);
    // Row 2's image claims to be in another series.
    const lines = readFileSync(csv, 'utf8').split('\n');
    const f = lines[2].split(',');
    f[1] = '1.2.3.4.5';
    lines[2] = f.join(',');
    writeFileSync(csv, lines.join('\n'));
    const report = (await importLabels(db, csv)) as CsvImportReport;
    expect(report).toMatchObject({ rows: N, matchedRows: N });
    expect(report.warnings).toEqual([expect.stringContaining(`row 2: image ${f[2]} is in series `)]);
    expect(report.warnings[0]).toMatch(/the CSV says 1\.2\.3\.4\.5$/);
    expect(db.prepare("SELECT COUNT(*) FROM label_sources WHERE kind = 'rsna-csv'").pluck().get()).toBe(1);
    expect(db.prepare('SELECT COUNT(*) FROM image_labels').pluck().get()).toBe(N);
  });

  it('a file without quotes is split as Papa splits it, across 1 MiB chunks; a long line is still refused by its number', async () => {
    const lines = ['a,b,c'];
    for (let i = 0; i < 60_000; i++) lines.push(i % 997 === 0 ? '' : `${i}, x${i} ,${'y'.repeat(i % 40)},,`);
    const text = lines.join('\n') + '\n';
    const path = join(tmp.dir, 'plain.csv');
    writeFileSync(path, text);
    const got: string[][] = [];
    let header: string[] = [];
    await streamCsv(path, createHash('sha1'), (h) => (header = h), (r) => got.push(...r));
    const papa = Papa.parse<string[]>(text, { delimiter: ',', skipEmptyLines: true }).data;
    expect(header).toEqual(papa[0]);
    expect(got).toEqual(papa.slice(1));

    const long = join(tmp.dir, 'long.csv');
    writeFileSync(long, `a,b\n1,2\n${'x'.repeat(1.5 * 2 ** 20)}\n3,4\n`);
    await expect(streamCsv(long, createHash('sha1'), () => {}, () => {})).rejects.toThrow(/line 3 is longer than 1 MiB/);
  });
});
