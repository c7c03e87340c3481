/**
 * Label import under hostile or careless input: the kind is told from the first KiB (a 200 MB
 * file with a wrong header is refused without being read), each kind has a size cap (refused before
 * reading, naming the file), CSVs stream with bounded memory (a 100 MB train.csv imports in seconds
 * with RSS growth under 300 MB), a CSV without line breaks is refused at its first long record
 * naming the file and line, and a failed import leaves the library as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, existsSync, openSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../src/library/db/schema';
import { importLabels, LABEL_SIZE_CAPS, MAX_CSV_RECORD, SNIFF_BYTES, sniffLabelKind, type CsvImportReport } from '../../src/library/labels/label-import';
import { createServices, type Services } from '../../src/host/services';
import type { Database } from '../../src/library/db/sqlite';
import { fixtures, tempDir } from '../helpers';
import { globSync } from '../glob';

const MB = 1e6;
const xml069 = globSync(join(fixtures, 'lidc-0001'), /069\.xml$/)[0];
const ctSlice = globSync(join(fixtures, 'lidc-0001'), /\.dcm$/)[0];
const RSNA_HEADER = 'StudyInstanceUID,SeriesInstanceUID,SOPInstanceUID,pe_present_on_image,negative_exam_for_pe\n';

/** Bytes this process has read so far (Linux /proc/self/io), or null elsewhere. */
function bytesRead(): number | null {
  try {
    return Number(/rchar:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
  } catch {
    return null;
  }
}

/** A file of `size` bytes that starts with `head` and is a hole after it (sparse: no disk, no reading cost). */
function sparse(path: string, head: string, size: number): string {
  writeFileSync(path, head);
  truncateSync(path, size);
  return path;
}

/** Writes a file of about `bytes` from repeated `line(n)` calls, in 1 MiB writes. */
function generate(path: string, head: string, bytes: number, line: (n: number) => string): number {
  const fd = openSync(path, 'w');
  let rows = 0;
  try {
    writeSync(fd, head);
    let written = head.length;
    let buf = '';
    while (written < bytes) {
      buf += line(rows++);
      if (buf.length >= 1 << 20) {
        writeSync(fd, buf);
        written += buf.length;
        buf = '';
      }
    }
    if (buf) writeSync(fd, buf);
  } finally {
    closeSync(fd);
  }
  return rows;
}

/** Runs `fn`, sampling RSS every 20 ms; resolves with its value, the seconds it took and the RSS growth in MB. */
async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; rssGrowthMB: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, seconds: (performance.now() - t0) / 1000, rssGrowthMB: (peak - before) / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

const labelRows = (db: Database) => (db.prepare('SELECT COUNT(*) AS n FROM image_labels').get() as { n: number }).n;

describe('label import: sniffing, caps and streaming', () => {
  const tmp = tempDir('ctssl-labels-sec-');
  let db: Database;
  let services: Services;

  beforeAll(() => {
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    services = createServices({ mode: 'server', dataDir: join(tmp.dir, 'data'), dbPath: join(tmp.dir, 'services.sqlite'), emit: () => {} });
  });
  afterAll(async () => {
    db.close();
    await services.close();
    tmp.cleanup();
  });

  it('tells the kind from the first KiB: XML root, CSV header columns, DICM at 128', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(sniffLabelKind(enc('\uFEFF<?xml version="1.0"?>\n<!-- c -->\n<LidcReadMessage uid="1">'), 'a.xml')).toBe('lidc-xml');
    expect(sniffLabelKind(enc('<nih:LidcReadMessage xmlns:nih="x">'), 'a.xml')).toBe('lidc-xml');
    expect(() => sniffLabelKind(enc('<?xml version="1.0"?><svg><LidcReadMessage/></svg>'), 'b.xml')).toThrow(/b\.xml: an XML file whose root element is <svg>/);
    expect(sniffLabelKind(enc(RSNA_HEADER), 'train.csv')).toBe('rsna-csv');
    expect(sniffLabelKind(enc('"patient_id",Sex,age\nP1,M,3\n'), 'attr.csv')).toBe('attributes-csv');
    const dicm = new Uint8Array(200);
    dicm.set(enc('DICM'), 128);
    expect(sniffLabelKind(dicm, 'seg.dcm')).toBe('dicom-seg');
    expect(() => sniffLabelKind(enc('patient_id\nP1\n'), 'one.csv')).toThrow(/one\.csv: not a label file/);
    // a header line longer than the sniffed KiB is not a header this app reads
    expect(() => sniffLabelKind(enc('a'.repeat(SNIFF_BYTES + 10)), 'long.csv')).toThrow(/long\.csv: not a label file this app reads: line 1 is longer than 1024 bytes, no CSV header/);
    // what lies past the first KiB is never looked at
    expect(() => sniffLabelKind(enc(' '.repeat(SNIFF_BYTES) + RSNA_HEADER), 'late.csv')).toThrow(/late\.csv/);
  });

  it('refuses a 200 MB file with a wrong header after reading its first KiB only', async () => {
    for (const [name, head] of [
      ['big.csv', 'hello,world\n1,2\n'],
      ['big.xml', '<?xml version="1.0"?>\n<Report>'],
      ['big.dcm', 'not a DICOM preamble'],
    ] as const) {
      const file = sparse(join(tmp.dir, name), head, 200 * MB);
      const before = bytesRead();
      const t0 = performance.now();
      await expect(importLabels(db, file)).rejects.toThrow(new RegExp(`${name.replace('.', '\\.')}: .*not .*label file`));
      expect(performance.now() - t0).toBeLessThan(1000);
      if (before !== null) expect(bytesRead()! - before, `${name}: bytes read`).toBeLessThan(2 * 2 ** 20);
    }
    expect(labelRows(db)).toBe(0);
  });

  it('refuses a file over its kind’s cap before reading it, naming the file (directly and through the services)', async () => {
    const xml = sparse(join(tmp.dir, 'huge-lidc.xml'), '<?xml version="1.0" encoding="UTF-8"?>\n<LidcReadMessage uid="1">', LABEL_SIZE_CAPS['lidc-xml'] + 1);
    const csv = sparse(join(tmp.dir, 'huge-train.csv'), RSNA_HEADER, LABEL_SIZE_CAPS['rsna-csv'] + 1);
    for (const [file, what] of [
      [xml, /huge-lidc\.xml: 52428801 bytes, over the 50 MiB cap of a LIDC-IDRI XML file/],
      [csv, /huge-train\.csv: 1073741825 bytes, over the 1024 MiB cap of an? RSNA PE CSV/],
    ] as const) {
      const before = bytesRead();
      const t0 = performance.now();
      await expect(importLabels(db, file)).rejects.toThrow(what);
      expect(performance.now() - t0).toBeLessThan(1000);
      if (before !== null) expect(bytesRead()! - before).toBeLessThan(2 * 2 ** 20);
    }
    // the services: over the path policy's 1 GiB label cap, refused before the kind is looked at
    await expect(Promise.resolve().then(() => services.handlers['labels.import'](csv))).rejects.toThrow(
      /^labels\.import: label file .*huge-train\.csv is 1073741825 bytes \(1\.0 GiB\): over the 1\.0 GiB cap of a label file/,
    );
    expect(labelRows(db)).toBe(0);
  });

  it('refuses a 100 MB one-field CSV at once (its header names no label columns)', async () => {
    const file = join(tmp.dir, 'one-field.csv');
    generate(file, 'patient_id\n', 100 * MB, (n) => `P${n}\n`);
    const { seconds, rssGrowthMB } = await measured(() => expect(importLabels(db, file)).rejects.toThrow(/one-field\.csv: not a label file/));
    expect(seconds).toBeLessThan(1);
    expect(rssGrowthMB).toBeLessThan(50);
  });

  it('streams a 100 MB RSNA train.csv: seconds, bounded memory, every row counted', async () => {
    const file = join(tmp.dir, 'train.csv');
    const uid = '1.2.826.0.1.3680043.8.498.12345678901234567890123456789012';
    const rows = generate(file, RSNA_HEADER, 100 * MB, (n) => `${uid},${uid}.${Math.floor(n / 200)},${uid}.${n}.1,${n % 7 === 0 ? 1 : 0},0\n`);
    expect(statSync(file).size).toBeGreaterThan(100 * MB);
    const { value, seconds, rssGrowthMB } = await measured(() => importLabels(db, file));
    const r = value as CsvImportReport;
    expect(r).toMatchObject({ kind: 'rsna-csv', rows, matchedRows: 0, unmatchedRows: rows, exams: Math.ceil(rows / 200), positiveImages: Math.ceil(rows / 7) });
    expect(r.unmatched).toHaveLength(200);
    expect(labelRows(db)).toBe(rows);
    console.log(`100 MB train.csv (${rows} rows): ${seconds.toFixed(1)} s, RSS +${rssGrowthMB.toFixed(0)} MB`);
    expect(seconds).toBeLessThan(60);
    expect(rssGrowthMB).toBeLessThan(300);
  }, 120_000);

  it('refuses a CSV without line breaks at its first long record, naming the file and line, in bounded time and memory', async () => {
    const noBreaks = join(tmp.dir, 'no-breaks.csv');
    generate(noBreaks, RSNA_HEADER, 100 * MB, () => 'x'.repeat(4096));
    const quoted = join(tmp.dir, 'open-quote.csv');
    // an opening quote never closed: its line breaks are inside one field, one record of 100 MB
    generate(quoted, `${RSNA_HEADER}1,2,3,0,0\n1,2,"`, 100 * MB, (n) => `line ${n}\n`);
    for (const [file, line] of [
      [noBreaks, 2],
      [quoted, 3],
    ] as const) {
      const before = bytesRead();
      const { seconds, rssGrowthMB } = await measured(() =>
        expect(importLabels(db, file)).rejects.toThrow(new RegExp(`${file.replace(/[.]/g, '\\.')}: line ${line} is longer than 1 MiB without a line break`)),
      );
      expect(seconds).toBeLessThan(5);
      expect(rssGrowthMB).toBeLessThan(100);
      if (before !== null) expect(bytesRead()! - before).toBeLessThan(MAX_CSV_RECORD + 8 * 2 ** 20);
    }
  });

  it('reads quoted fields as Papa does across chunks: escaped quotes, line breaks inside quotes, stray quotes as text', async () => {
    const file = join(tmp.dir, 'attributes.csv');
    const rows = ['patient_id,sex,age,ethnic_group', 'P1,M,30,"Group ""A"", north"', 'P2,F,40,Group "B" 5"', '"P3",F,"50","multi', 'line"'];
    // past the first 1 MiB chunk, with a stray quote on every row
    for (let i = 0; i < 80_000; i++) rows.push(`Q${i},M,${i % 90},Group "x"`);
    writeFileSync(file, rows.join('\n') + '\n');
    expect(statSync(file).size).toBeGreaterThan(1.5 * 2 ** 20);
    const r = (await importLabels(db, file)) as CsvImportReport;
    expect(r).toMatchObject({ kind: 'attributes-csv', rows: 80_003 });
    const got = db.prepare('SELECT key, sex, age_years AS age, ethnic_group AS ethnic FROM patient_attributes WHERE source_ref = ? ORDER BY rowid').all(r.sourceId) as {
      key: string;
      ethnic: string;
    }[];
    expect(got.slice(0, 3)).toEqual([
      { key: 'P1', sex: 'M', age: 30, ethnic: 'Group "A", north' },
      { key: 'P2', sex: 'F', age: 40, ethnic: 'Group "B" 5"' },
      { key: 'P3', sex: 'F', age: 50, ethnic: 'multi\nline' },
    ]);
    expect(got.at(-1)).toEqual({ key: 'Q79999', sex: 'M', age: 79999 % 90, ethnic: 'Group "x"' });
  });

  it('a failed streamed import leaves the earlier import of the same file, and nothing of its own', async () => {
    const tmpDb = openLibrary(join(tmp.dir, 'replace.sqlite'));
    try {
      const file = join(tmp.dir, 'replace.csv');
      writeFileSync(file, `${RSNA_HEADER}1.2,1.2.3,1.2.3.4,1,0\n1.2,1.2.3,1.2.3.5,0,0\n`);
      const first = (await importLabels(tmpDb, file)) as CsvImportReport;
      expect(first.rows).toBe(2);
      // the same file again, now with 5000 good rows and then a record without end
      const good = Array.from({ length: 5000 }, (_, i) => `1.2,1.2.3,1.2.3.${i + 10},1,0\n`).join('');
      writeFileSync(file, RSNA_HEADER + good + 'z'.repeat(MAX_CSV_RECORD + 10));
      await expect(importLabels(tmpDb, file)).rejects.toThrow(/replace\.csv: line 5002 is longer than 1 MiB/);
      const sources = tmpDb.prepare('SELECT id, path FROM label_sources').all() as { id: number; path: string }[];
      expect(sources).toEqual([{ id: first.sourceId, path: file }]);
      expect(labelRows(tmpDb)).toBe(2);
      // and a good re-import replaces it
      writeFileSync(file, RSNA_HEADER + good);
      const again = (await importLabels(tmpDb, file)) as CsvImportReport;
      expect(again.rows).toBe(5000);
      expect((tmpDb.prepare('SELECT COUNT(*) AS n FROM label_sources').get() as { n: number }).n).toBe(1);
      expect(labelRows(tmpDb)).toBe(5000);
      // a provisional source of a process that died mid-import is removed by the next import
      tmpDb.prepare("INSERT INTO label_sources (kind, path, sha1, imported_at) VALUES ('rsna-csv', 'importing:999999999:x:/gone.csv', '', '')").run();
      await importLabels(tmpDb, file);
      expect((tmpDb.prepare("SELECT COUNT(*) AS n FROM label_sources WHERE path LIKE 'importing:%'").get() as { n: number }).n).toBe(0);
    } finally {
      tmpDb.close();
    }
  });

  it('labels.importBytes: a browser upload is sniffed, capped and imported like a file; removing it removes the kept copy', async () => {
    const h = services.handlers;
    const report = await h['labels.importBytes']('069.xml', new Uint8Array(readFileSync(xml069)));
    expect(report).toMatchObject({ kind: 'lidc-xml', readers: 4 });
    const kept = String(report.file);
    expect(kept.startsWith(join(tmp.dir, 'data', 'labels'))).toBe(true);
    expect(existsSync(kept)).toBe(true);
    // the same bytes again replace the labels (one source)
    await h['labels.importBytes']('069.xml', new Uint8Array(readFileSync(xml069)));
    const sources = await h['labels.sources']();
    expect(sources).toHaveLength(1);
    await expect(Promise.resolve().then(() => h['labels.importBytes']('notes.xml', new TextEncoder().encode('<?xml version="1.0"?><notes/>')))).rejects.toThrow(
      /^labels\.importBytes: notes\.xml: an XML file whose root element is <notes>/,
    );
    await expect(Promise.resolve().then(() => h['labels.importBytes']('t.csv', new TextEncoder().encode(RSNA_HEADER + 'q'.repeat(MAX_CSV_RECORD + 1))))).rejects.toThrow(
      /^labels\.importBytes: t\.csv: line 2 is longer than 1 MiB/,
    );
    expect(await h['labels.sources']()).toHaveLength(1);
    expect(await h['labels.removeSource'](sources[0].id)).toBe(true);
    expect(existsSync(kept)).toBe(false);
  });

  it('labels.sniff: a browser asks of the first KiB of a file whether it is a label file, by the rule every import applies', async () => {
    const h = services.handlers;
    const head = (p: string) => new Uint8Array(readFileSync(p)).subarray(0, 1024);
    expect(await h['labels.sniff']('069.xml', head(xml069))).toEqual({ kind: 'lidc-xml', reason: null });
    expect(await h['labels.sniff']('train.csv', new TextEncoder().encode(RSNA_HEADER))).toEqual({ kind: 'rsna-csv', reason: null });
    const ct = await h['labels.sniff']('1-001.dcm', head(ctSlice));
    expect(ct.kind).toBeNull();
    expect(ct.reason).toMatch(/^a DICOM object of SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2 \(CT image\), not a DICOM SEG/);
    expect((await h['labels.sniff']('notes.xml', new TextEncoder().encode('<?xml version="1.0"?><notes/>'))).reason).toMatch(/root element is <notes>/);
    expect((await h['labels.sniff']('a.bin', new Uint8Array([0, 1, 2, 255]))).reason).toMatch(/not a label file/);
    // nothing recorded
    expect(await h['labels.sources']()).toHaveLength(0);
  });
});
