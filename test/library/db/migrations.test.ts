import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listSeries } from '../../../src/library/db/catalog';
import { migrate, SCHEMA_VERSION } from '../../../src/library/db/schema';
import { openSqlite, type Database } from '../../../src/library/db/sqlite';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { importLabels, listLabelSources } from '../../../src/library/labels/label-import';
import { seriesLabels } from '../../../src/library/labels/viewer-labels';
import { fixtures, tempDir } from '../../helpers';
import { globSync } from '../../glob';

const xml069 = globSync(join(fixtures, 'lidc-0001'), /069\.xml$/)[0];
const count = (db: Database, table: string) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
const tableSql = (db: Database, name: string) => db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").pluck().get(name) as string;

describe('migration 6: label kinds checked in code instead of a CHECK constraint', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('a library at the previous schema (5) keeps its label sources, their findings, ROIs and per-image labels, and its foreign keys', async () => {
    const db = openSqlite(join(tmp.dir, 'lib.sqlite'));
    try {
      migrate(db, 5);
      expect(db.pragma('user_version', { simple: true })).toBe(5);
      expect(tableSql(db, 'label_sources')).toMatch(/CHECK \(kind IN/);
      await indexFolders(db, [join(fixtures, 'lidc-0001')]);
      await importLabels(db, xml069);
      const csv = join(tmp.dir, 'attributes.csv');
      writeFileSync(csv, 'patient_id,sex,age\nLIDC-IDRI-0001,M,70\n');
      await importLabels(db, csv);
      db.prepare("INSERT INTO image_labels (source_ref, sop_uid, name, value) VALUES (2, '1.2.3', 'pe_present_on_image', 1)").run();
      expect(() => db.prepare("INSERT INTO label_sources (kind, path, sha1, imported_at) VALUES ('toy', '/t', '', '')").run()).toThrow(/CHECK constraint failed/);

      const seriesId = listSeries(db)[0].id;
      const before = {
        sources: listLabelSources(db),
        labels: seriesLabels(db, seriesId),
        counts: ['label_sources', 'findings', 'rois', 'image_labels', 'patient_attributes'].map((t) => count(db, t)),
      };
      expect(before.counts[1]).toBeGreaterThan(0);

      migrate(db);
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(SCHEMA_VERSION).toBe(8);
      // Same rows, same ids, same answers.
      expect(listLabelSources(db)).toEqual(before.sources);
      expect(seriesLabels(db, seriesId)).toEqual(before.labels);
      expect(['label_sources', 'findings', 'rois', 'image_labels', 'patient_attributes'].map((t) => count(db, t))).toEqual(before.counts);
      // No CHECK on kind; the unique index on (kind, path) is back; foreign keys on and intact.
      expect(tableSql(db, 'label_sources')).not.toMatch(/CHECK/);
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'label_sources'").pluck().all()).toEqual(['label_sources_path']);
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.pragma('foreign_key_check')).toEqual([]);
      db.prepare("INSERT INTO label_sources (kind, path, sha1, imported_at) VALUES ('toy', '/t', '', '')").run();
      expect(() => db.prepare("INSERT INTO label_sources (kind, path, sha1, imported_at) VALUES ('toy', '/t', '', '')").run()).toThrow(/UNIQUE constraint failed/);
      // Deleting a source still takes its findings, ROIs and labels with it.
      db.prepare('DELETE FROM label_sources WHERE id = 1').run();
      expect(count(db, 'findings')).toBe(0);
      expect(count(db, 'rois')).toBe(0);
      db.prepare('DELETE FROM label_sources WHERE id = 2').run();
      expect(count(db, 'image_labels')).toBe(0);
      expect(count(db, 'patient_attributes')).toBe(0);
    } finally {
      db.close();
    }
    // Opening it again changes nothing.
    const again = openSqlite(join(tmp.dir, 'lib.sqlite'));
    try {
      migrate(again);
      expect(again.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(count(again, 'label_sources')).toBe(1);
    } finally {
      again.close();
    }
  });

  it('a new library is created at the current schema with the same label_sources as a migrated one', () => {
    const fresh = openSqlite(':memory:');
    const stepped = openSqlite(':memory:');
    try {
      migrate(fresh);
      migrate(stepped, 5);
      migrate(stepped);
      const schema = (db: Database) => db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name LIKE 'label_sources%' ORDER BY name").all();
      expect(schema(stepped)).toEqual(schema(fresh));
    } finally {
      fresh.close();
      stepped.close();
    }
  });
});
