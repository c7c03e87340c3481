import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServices, type Services } from '../../../src/host/services';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { importLabelFolder } from '../../../src/library/labels/label-folder';
import { exportSeriesSeg } from '../../../src/library/labels/seg-export';
import { importLabels } from '../../../src/library/labels/label-import';
import { listSeries } from '../../../src/library/db/catalog';
import { openLibrary } from '../../../src/library/db/schema';
import type { EventName, Events } from '../../../src/shared/contract';
import type { LabelFolderImport } from '../../../src/shared/results';
import { fixtures, root, tempDir } from '../../helpers';

/**
 * A folder of real label files as a user has them: LIDC XMLs beside their DICOM images, an RSNA
 * CSV, a CSV of patient attributes, a SEG, and things that are not labels, in nested folders.
 */
describe('labels by the folder', () => {
  const tmp = tempDir();
  const folder = join(tmp.dir, 'labels');
  let services: Services;
  const events: { name: EventName; payload: unknown }[] = [];

  beforeAll(async () => {
    services = createServices({ mode: 'cli', dataDir: join(tmp.dir, 'data'), dbPath: join(tmp.dir, 'lib.sqlite'), emit: <E extends EventName>(name: E, p: Events[E]) => void events.push({ name, payload: p }) });
    const db = services.db;
    await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
    // The LIDC-IDRI-0001 tree as downloaded: images and the reader XML side by side.
    cpSync(join(fixtures, 'lidc-0001', 'LIDC-IDRI-0001'), join(folder, 'LIDC-IDRI-0001'), { recursive: true });
    mkdirSync(join(folder, 'xml', 'more'), { recursive: true });
    cpSync(join(fixtures, 'lidc-small', 'xml', '71.xml'), join(folder, 'xml', '71.xml'));
    cpSync(join(fixtures, 'lidc-small', 'xml', '069.xml'), join(folder, 'xml', 'more', '069-copy.xml'));
    // A SEG of LIDC-IDRI-0001's nodule, written from a scratch library of the same images.
    const scratch = openLibrary(join(tmp.dir, 'scratch.sqlite'));
    await indexFolders(scratch, [join(fixtures, 'lidc-0001')]);
    const xml = join(folder, 'LIDC-IDRI-0001');
    const x069 = spawnSync('find', [xml, '-name', '069.xml']).stdout.toString().trim();
    await importLabels(scratch, x069);
    exportSeriesSeg(scratch, listSeries(scratch)[0].id, join(folder, 'nodule.dcm'), {});
    scratch.close();
    const s = listSeries(db).find((r) => r.patientId === 'LIDC-IDRI-0001')!;
    writeFileSync(join(folder, 'attributes.csv'), `patient_id,sex,age\nLIDC-IDRI-0001,F,60\nLIDC-IDRI-0002,M,72\n`);
    const sop = (services.db.prepare('SELECT sop_uid FROM instances WHERE series_ref = ? LIMIT 1').pluck().get(s.id) as string);
    writeFileSync(join(folder, 'train.csv'), `StudyInstanceUID,SeriesInstanceUID,SOPInstanceUID,pe_present_on_image,negative_exam_for_pe,qa_motion\n${s.studyInstanceUid},${s.seriesInstanceUid},${sop},1,0,0\n`);
    writeFileSync(join(folder, 'notes.txt'), 'reading notes\n');
    writeFileSync(join(folder, 'xml', 'other.xml'), '<?xml version="1.0"?><IdriReadMessage></IdriReadMessage>');
    // A SEG cut short: its meta says SEG, its data set ends in the middle.
    writeFileSync(join(folder, 'xml', 'broken-seg.dcm'), readFileSync(join(folder, 'nodule.dcm')).subarray(0, 700));
    symlinkSync(folder, join(folder, 'xml', 'loop'));
    spawnSync('mkfifo', [join(folder, 'pipe')]);
  }, 120_000);

  afterAll(async () => {
    await services?.close();
    tmp.cleanup();
  });

  it('imports every label file through the format registry and says what happened to each of the others, and why', async () => {
    const progress: number[] = [];
    const r = await services.labels.importFolder(folder, { onProgress: (p) => progress.push(p.done) });
    expect(r.byKind).toEqual({ 'lidc-xml': 3, 'rsna-csv': 1, 'attributes-csv': 1, 'dicom-seg': 1 });
    expect(r.imported.map((i) => i.file).sort()).toEqual(
      [expect.stringMatching(/^LIDC-IDRI-0001\/.*069\.xml$/), 'attributes.csv', 'nodule.dcm', 'train.csv', 'xml/71.xml', 'xml/more/069-copy.xml'].sort() as never,
    );
    const reason = (f: string | RegExp) => r.skipped.find((s) => (typeof f === 'string' ? s.file === f : f.test(s.file)))?.reason;
    // the CT images are DICOM but not SEG: skipped, saying so (the indexer is where they go)
    const images = r.skipped.filter((s) => /\.dcm$/.test(s.file) && s.file.startsWith('LIDC-IDRI-0001'));
    expect(images.length).toBe(17);
    expect(images[0].reason).toMatch(/SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2 \(CT image\), not a DICOM SEG/);
    expect(reason('notes.txt')).toMatch(/not a label file/);
    expect(reason('xml/other.xml')).toMatch(/root element is <IdriReadMessage>/);
    expect(reason('xml/loop')).toMatch(/link to a folder: not followed/);
    expect(reason('pipe')).toMatch(/not a regular file/);
    expect(r.failed).toEqual([{ file: 'xml/broken-seg.dcm', kind: 'dicom-seg', error: expect.any(String) }]);
    expect(r.files).toBe(r.imported.length + r.skipped.filter((s) => !/loop|pipe/.test(s.file)).length + r.failed.length);
    expect(progress.at(-1)).toBe(r.files);
    expect(progress.every((d, i) => i === 0 || d >= progress[i - 1])).toBe(true);
    // the sources are the app's: listed, and the SEG's masks are on LIDC-IDRI-0001's slices
    expect(services.labels.sources().length).toBe(6);
    const seg = r.imported.find((i) => i.kind === 'dicom-seg')!;
    expect(seg.headline).toMatch(/^(\d+) of \1 frames matched indexed slices$/);
    // again: each file replaces its own labels, nothing doubles
    const again = await services.labels.importFolder(folder);
    expect(again.imported.length).toBe(6);
    expect(services.labels.sources().length).toBe(6);
  });

  it('labels.importFolder: progress events tagged with the request, cancel between files, a file instead of a folder refused', async () => {
    const h = services.handlers;
    events.length = 0;
    const r = await h['labels.importFolder'](folder, { requestId: 'f-1' });
    const ev = events.filter((e) => e.name === 'labels.folderProgress').map((e) => e.payload as Events['labels.folderProgress']);
    expect(ev.length).toBeGreaterThan(2);
    expect(ev.every((e) => e.requestId === 'f-1')).toBe(true);
    expect(ev.at(-1)).toMatchObject({ done: r.files, total: r.files });
    // cancel as soon as the first label file starts: the rest are not started
    const ac = new AbortController();
    const c = await importLabelFolder(services.db, folder, { signal: ac.signal, onProgress: (p) => p.file.endsWith('.xml') && ac.abort() });
    expect(c.cancelled).toBe(true);
    expect(c.notStarted).toBeGreaterThan(0);
    expect(c.imported.length).toBeLessThan(6);
    expect(await h['labels.cancelFolder']('nothing-running')).toBe(false);
    await expect(Promise.resolve().then(() => h['labels.importFolder'](join(folder, 'notes.txt'), {}))).rejects.toThrow(/not a folder|is a file|directory/);
    await expect(Promise.resolve().then(() => h['labels.importFolder']('relative/path', {}))).rejects.toThrow(/not an absolute path/);
  });

  it('ctssl labels import FOLDER: the same summary, and the files left out with their reasons in words', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'labels', 'import', ...args, '--db', join(tmp.dir, 'lib.sqlite')], {
        env: { ...process.env, CTSSL_DATA_DIR: join(tmp.dir, 'data') },
        encoding: 'utf8',
        timeout: 120_000,
      });
    const j = run(folder, '--json');
    expect(j.status, j.stderr).toBe(0);
    const r = JSON.parse(j.stdout) as LabelFolderImport;
    expect(r.byKind).toEqual({ 'lidc-xml': 3, 'rsna-csv': 1, 'attributes-csv': 1, 'dicom-seg': 1 });
    const t = run(folder);
    expect(t.stdout).toMatch(/6 imported \(.*3 lidc-xml.*\), \d+ skipped, 1 failed/);
    expect(t.stdout).toMatch(/failed xml\/broken-seg\.dcm: /);
    expect(t.stdout).toMatch(/skipped notes\.txt: not a label file/);
    expect(readFileSync(join(folder, 'notes.txt'), 'utf8')).toBe('reading notes\n');
  });
});
