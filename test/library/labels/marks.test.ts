import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { importLabels } from '../../../src/library/labels/label-import';
import { seriesLabels } from '../../../src/library/labels/viewer-labels';
import { seriesPlanes, listSeries } from '../../../src/library/db/catalog';
import type { Database } from '../../../src/library/db/sqlite';
import { fixtures, tempDir } from '../../helpers';
import { globSync } from '../../glob';

/**
 * LIDC non-nodule markers are marks: a point each, drawn as a cross, never a labelled slice.
 * 069.xml's non-nodules lie outside the 17 committed slices, so this test moves the first one onto
 * a committed slice without nodules (and the second onto one with a nodule), as a reader could have.
 */
describe('non-nodule markers', () => {
  const tmp = tempDir();
  let db: Database;
  let sops: string[];
  let plain: number;
  let withNodule: number;
  beforeAll(async () => {
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    await indexFolders(db, [join(fixtures, 'lidc-0001')]);
    const s = listSeries(db)[0];
    const q = db.prepare('SELECT sop_uid FROM instances WHERE id = ?').pluck();
    sops = seriesPlanes(db, s.id).planes.map((p) => q.get(p.instanceId) as string);
    const xml = globSync(join(fixtures, 'lidc-0001'), /069\.xml$/)[0];
    // Which slices carry nodules, from the untouched file.
    await importLabels(db, xml);
    const labelled = new Set(seriesLabels(db, s.id).slices.map((x) => x.index));
    plain = sops.findIndex((_, i) => !labelled.has(i));
    withNodule = [...labelled][0];
    let text = readFileSync(xml, 'utf8');
    let n = 0;
    text = text.replace(/(<nonNodule>[\s\S]*?<imageSOP_UID>)([^<]*)(<\/imageSOP_UID>[\s\S]*?<\/nonNodule>)/g, (m, a: string, _uid: string, b: string) => {
      n++;
      if (n === 1) return a + sops[plain] + b;
      if (n === 2) return a + sops[withNodule] + b;
      return m;
    });
    writeFileSync(join(tmp.dir, '069-moved.xml'), text);
    await importLabels(db, join(tmp.dir, '069-moved.xml'));
  });
  afterAll(() => {
    db.close();
    tmp.cleanup();
  });

  it('lists them as marks at their point (display coordinates) and leaves a slice with only marks out of the labelled slices', () => {
    const s = listSeries(db)[0];
    const l = seriesLabels(db, s.id);
    const marks = l.marks!;
    // the first moved marker: locus (396, 216) on an axial slice (display = stored: x column, y row)
    expect(marks).toContainEqual({ index: plain, sopUid: sops[plain], x: 396, y: 216, reader: expect.any(String), key: '_Non-nodule 001' });
    expect(marks.some((m) => m.index === withNodule)).toBe(true);
    const indices = l.slices.map((x) => x.index);
    expect(indices).not.toContain(plain);
    expect(indices).toContain(withNodule);
    // the slice with a nodule still counts its nodules, and its marker is not a nodule
    const w = l.slices.find((x) => x.index === withNodule)!;
    expect(w.nodules).toBeGreaterThan(0);
  });
});
