/**
 * The PHI check of weight export cannot be dodged (issue 10). Each leak found on main is
 * reproduced against real DICOM (written here, in ISO_IR 100 and ISO_IR 192), indexed by the real
 * indexer into a real SQLite library, pretrained a few steps on the tiny preset and exported:
 *  (a) a UTF-8 non-ASCII name (MÜLLER^HANS in latin1 in the source) in the package;
 *  (b) a run folder named after the patient (eval/table2.json holds the folder and PNG paths);
 *  (c) a missing source file at export time;
 *  (d) inexact matches (case, diacritics, order of name components, punctuation), accession
 *      numbers and other IDs, dates in written forms;
 *  (e) the app's export file named after the run folder.
 * Plus the normaliser and matcher alone, with what must not match.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { unzipSync, zlibSync } from 'fflate';
import { openLibrary, SCHEMA_VERSION } from '../../src/library/db/schema';
import { openSqlite } from '../../src/library/db/sqlite';
import { indexFolders, removeFolder } from '../../src/library/indexing/indexer';
import { createRun } from '../../src/host/runs/create-run';
import { startRun } from '../../src/host/runs/start-run';
import { exportRun, PrivacyError, scanForIdentifiers, type ExportOptions } from '../../src/host/export-package';
import { evaluateRun } from '../../src/trainer/eval-ssl';
import { initBackend } from '../../src/trainer/backend';
import { RunService } from '../../src/host/run-service';
import { parseDicom } from '../../src/core/dicom/parse';
import { readHeader } from '../../src/core/dicom/header';
import { decodeDicomText } from '../../src/core/dicom/charset';
import { alnum, buildMatcher, fold, type PhiIdentifier, scanFiles, scanText } from '../../src/core/privacy/phi';
import type { Database } from '../../src/library/db/sqlite';
import { tempDir } from '../helpers';

// ---------------------------------------------------------------------------------------------
// A minimal DICOM writer (explicit VR little endian, Part 10), so the bytes of every text value,
// and its character set, are exactly what the test says.

type Value = string | Uint8Array | number[] | Item[];
type Item = [string, string, Value][];

const LONG_VR = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN', 'UC', 'UR']);

function tagBytes(tag: string): number[] {
  const g = parseInt(tag.slice(0, 4), 16);
  const e = parseInt(tag.slice(4, 8), 16);
  return [g & 0xff, g >> 8, e & 0xff, e >> 8];
}
const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];

function encodeValue(vr: string, v: Value): Uint8Array {
  if (vr === 'SQ') {
    const parts: number[] = [];
    for (const item of v as Item[]) {
      const body = encodeElements(item);
      parts.push(0xfe, 0xff, 0x00, 0xe0, ...u32(body.length), ...body);
    }
    return Uint8Array.from(parts);
  }
  if (vr === 'US') return Uint8Array.from((v as number[]).flatMap((n) => [n & 0xff, n >> 8]));
  let b = typeof v === 'string' ? Uint8Array.from(Buffer.from(v, 'latin1')) : (v as Uint8Array);
  if (b.length % 2) {
    const padded = new Uint8Array(b.length + 1);
    padded.set(b);
    padded[b.length] = vr === 'UI' || vr === 'OB' ? 0 : 0x20;
    b = padded;
  }
  return b;
}

function encodeElements(els: Item): number[] {
  const out: number[] = [];
  for (const [tag, vr, v] of [...els].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const val = encodeValue(vr, v);
    out.push(...tagBytes(tag), vr.charCodeAt(0), vr.charCodeAt(1));
    if (LONG_VR.has(vr)) out.push(0, 0, ...u32(val.length));
    else out.push(val.length & 0xff, val.length >> 8);
    for (let i = 0; i < val.length; i++) out.push(val[i]);
  }
  return out;
}

function part10(sopUid: string, els: Item): Uint8Array {
  const meta = encodeElements([
    ['00020001', 'OB', Uint8Array.from([0, 1])],
    ['00020002', 'UI', '1.2.840.10008.5.1.4.1.1.2'],
    ['00020003', 'UI', sopUid],
    ['00020010', 'UI', '1.2.840.10008.1.2.1'],
    ['00020012', 'UI', '1.2.826.0.1.3680043.10.1234'],
  ]);
  const group = [...tagBytes('00020000'), 0x55, 0x4c, 4, 0, ...u32(meta.length)];
  const body = encodeElements(els);
  const out = new Uint8Array(132 + group.length + meta.length + body.length);
  out.set(Buffer.from('DICM'), 128);
  out.set(group, 132);
  out.set(meta, 132 + group.length);
  out.set(body, 132 + group.length + meta.length);
  return out;
}

const latin1Bytes = (s: string) => Uint8Array.from(Buffer.from(s, 'latin1'));
const utf8Bytes = (s: string) => Uint8Array.from(Buffer.from(s, 'utf8'));

interface PatientSpec {
  folder: string;
  charset: string;
  name: Uint8Array;
  patientId: string;
  birthDate: string;
  studyDate: string;
  accession: string;
  institution: Uint8Array;
  referring: Uint8Array;
  otherIds?: Item[];
  n: number;
}

/** One CT series of `slices` 64 x 64 slices (a body-like disc in HU) for a patient. */
function writeSeries(root: string, p: PatientSpec, slices = 6): string {
  const dir = join(root, p.folder);
  mkdirSync(dir, { recursive: true });
  const base = `1.2.826.0.1.3680043.10.4242.${p.n}`;
  for (let k = 0; k < slices; k++) {
    const px = new Int16Array(64 * 64);
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++) {
        const r = Math.hypot(x - 32, y - 32 - p.n);
        px[y * 64 + x] = (r < 26 ? 40 + ((x * 7 + y * 13 + k * 5 + p.n) % 60) : -1000) + 1024 + (r < 6 + k ? 300 : 0);
      }
    const sop = `${base}.3.${k + 1}`;
    const els: Item = [
      ['00080005', 'CS', p.charset],
      ['00080016', 'UI', '1.2.840.10008.5.1.4.1.1.2'],
      ['00080018', 'UI', sop],
      ['00080020', 'DA', p.studyDate],
      ['00080021', 'DA', p.studyDate],
      ['00080050', 'SH', p.accession],
      ['00080060', 'CS', 'CT'],
      ['00080070', 'LO', 'SYNTH'],
      ['00080080', 'LO', p.institution],
      ['00080090', 'PN', p.referring],
      ['00081090', 'LO', 'PHANTOM 1'],
      ['00100010', 'PN', p.name],
      ['00100020', 'LO', p.patientId],
      ['00100030', 'DA', p.birthDate],
      ['00100040', 'CS', p.n % 2 ? 'F' : 'M'],
      ['00180050', 'DS', '2.5'],
      ['0020000D', 'UI', `${base}.1`],
      ['0020000E', 'UI', `${base}.2`],
      ['00200010', 'SH', `S${p.n}`],
      ['00200011', 'IS', '1'],
      ['00200013', 'IS', String(k + 1)],
      ['00200032', 'DS', `-22.4\\-22.4\\${(-k * 2.5).toFixed(1)}`],
      ['00200037', 'DS', '1\\0\\0\\0\\1\\0'],
      ['00200052', 'UI', `${base}.4`],
      ['00280002', 'US', [1]],
      ['00280004', 'CS', 'MONOCHROME2'],
      ['00280010', 'US', [64]],
      ['00280011', 'US', [64]],
      ['00280030', 'DS', '0.7\\0.7'],
      ['00280100', 'US', [16]],
      ['00280101', 'US', [16]],
      ['00280102', 'US', [15]],
      ['00280103', 'US', [1]],
      ['00281052', 'DS', '-1024'],
      ['00281053', 'DS', '1'],
      ['7FE00010', 'OW', new Uint8Array(px.buffer)],
    ];
    if (p.otherIds) els.push(['00101002', 'SQ', p.otherIds]);
    writeFileSync(join(dir, `IM${k + 1}.dcm`), part10(sop, els));
  }
  return dir;
}

// The cohort: names with ü, ß and é in both character sets, a name of 2-letter components.
const MULLER: PatientSpec = {
  folder: 'src/mueller',
  charset: 'ISO_IR 100',
  name: latin1Bytes('MÜLLER^HANS'),
  patientId: 'PID-40017',
  birthDate: '19800128',
  studyDate: '20190315',
  accession: 'ACC778899',
  institution: latin1Bytes('Klinikum Süd'),
  referring: latin1Bytes('SCHRÖDINGER^ERWIN'),
  otherIds: [
    [
      ['00100020', 'LO', 'KIS-991357'],
      ['00100021', 'LO', 'KISNORD'],
    ],
  ],
  n: 1,
};
const WEISS: PatientSpec = {
  folder: 'src/weiss',
  charset: 'ISO_IR 192',
  name: utf8Bytes('WEIß^RENÉE'),
  patientId: 'PID-40018',
  birthDate: '19750704',
  studyDate: '20200102',
  accession: 'ACC445566',
  institution: utf8Bytes('Hôpital Saint-Éloi'),
  referring: utf8Bytes('DUPONT^AMÉLIE'),
  n: 2,
};
const LI: PatientSpec = {
  folder: 'src/li',
  charset: 'ISO_IR 100',
  name: latin1Bytes('LI^AN'),
  patientId: 'PID-40019',
  birthDate: '19911111',
  studyDate: '20210607',
  accession: 'ACC112233',
  institution: latin1Bytes('Klinikum Süd'),
  referring: latin1Bytes(''),
  n: 3,
};

// ---------------------------------------------------------------------------------------------
// The normaliser and the matcher alone

const find = (text: string, ids: PhiIdentifier[], o: Parameters<typeof scanText>[3] = {}, paths: string[] = []) =>
  [...new Set(scanText('t.txt', text, buildMatcher(ids, paths), o).map((f) => f.kind))];

describe('normaliser and matcher', () => {
  it('folds case, diacritics, ß, ligatures and width, and compares letters and digits only', () => {
    expect(fold('MÜLLER')).toBe('muller');
    expect(fold('Weiß')).toBe('weiss');
    expect(fold('WEIẞ')).toBe('weiss');
    expect(fold('Renée')).toBe('renee');
    expect(fold('Ｍüｌｌｅｒ')).toBe('muller');
    expect(fold('Søren Æbelø')).toBe('soren aebelo');
    expect(alnum('LIDC-IDRI-0001')).toBe('lidcidri0001');
  });

  it('finds a DICOM person name in any order, case, spelling and punctuation', () => {
    const ids: PhiIdentifier[] = [{ kind: 'patient-name', value: 'MÜLLER^HANS' }];
    for (const t of ['by Hans Müller', 'MULLER HANS', 'müller, hans', 'HansMuller', 'Mueller Hans', 'hans_mueller', 'Dr. H. Müller', 'run-muller-3', 'MÜLLER^HANS', 'see Hans.', 'mullerlab'])
      expect(find(t, ids), t).toContain('patient-name');
  });

  it('finds ß and é names from either spelling', () => {
    const ids: PhiIdentifier[] = [{ kind: 'patient-name', value: 'WEIß^RENÉE' }];
    for (const t of ['Renee Weiss', 'WEISS', 'weiß', 'Renée', 'renee-weiss']) expect(find(t, ids), t).toContain('patient-name');
  });

  it('does not fire on 2-letter components, the word CT, or 3-letter components inside words', () => {
    expect(find('CT of the chest; lithium; an example; Li et al. is cited nowhere', [{ kind: 'patient-name', value: 'LI^AN' }])).toEqual([]);
    // the whole name is still a name
    expect(find('reviewed by Li An', [{ kind: 'patient-name', value: 'LI^AN' }])).toContain('patient-name');
    expect(find('CT SSL Studio, a CT encoder', [{ kind: 'patient-name', value: 'CT^JO' }])).toEqual([]);
    const lee: PhiIdentifier[] = [{ kind: 'patient-name', value: 'LEE^ANN' }];
    expect(find('channels, annotation, sleep, planning, Anneal', lee)).toEqual([]);
    expect(find('Dr. Lee', lee)).toContain('patient-name');
    expect(find('Ann', lee)).toContain('patient-name');
    // titles and placeholder names are not names
    expect(find('Dr. Prof. anonymous test patient', [{ kind: 'patient-name', value: 'ANONYMOUS^TEST^^DR' }])).toEqual([]);
  });

  it("does not report a single component that is one of the package's own words, but does the whole name", () => {
    const ids: PhiIdentifier[] = [{ kind: 'patient-name', value: 'FINE^JOHANNES' }];
    const fixedWords = new Set(['fine', 'tuning']);
    expect(find('for fine-tuning', ids, { fixedWords })).toEqual([]);
    expect(find('Johannes Fine', ids, { fixedWords })).toContain('patient-name');
    expect(find('for fine-tuning', ids)).toContain('patient-name');
  });

  it('finds IDs whatever the punctuation, numbers only as whole numbers', () => {
    expect(find('case acc-778899 here', [{ kind: 'accession', value: 'ACC778899' }])).toEqual(['accession']);
    expect(find('LIDC IDRI 0001', [{ kind: 'patient-id', value: 'LIDC-IDRI-0001' }])).toEqual(['patient-id']);
    const n: PhiIdentifier[] = [{ kind: 'patient-id', value: '4711' }];
    expect(find('"lr": 0.4711, "steps": 47110', n)).toEqual([]);
    expect(find('patient 4711.', n)).toEqual(['patient-id']);
    expect(find('patient4711', n)).toEqual(['patient-id']);
    // not across the numbers of an array, nor inside hashes and UUIDs
    expect(find('"shape": [3, 3, 47, 11], "x": 4, "y": 711', n)).toEqual([]);
    expect(find('"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08ab4711cd", "uid": "3f2a9c1e-4711-4abc-8def-0123456789ab"', n)).toEqual([]);
    expect(find('"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "runUid": "3f2a9c1e-ab12-4abc-8def-0123cd4711ab"', n)).toEqual([]);
    // a number with its own punctuation is found as written
    expect(find('see 12-3456 here', [{ kind: 'patient-id', value: '12-3456' }])).toEqual(['patient-id']);
    expect(find('see 123456 here', [{ kind: 'patient-id', value: '12-3456' }])).toEqual(['patient-id']);
    expect(find('[12, 34, 56]', [{ kind: 'accession', value: '123456' }])).toEqual([]);
    // StudyIDs are short sequence numbers: below 6 digits they are not looked for
    expect(find('"steps": 100', [{ kind: 'study-id', value: '100' }])).toEqual([]);
    expect(find('seen 1.2.840.99999.1 and 12840999991', [{ kind: 'uid', value: '1.2.840.99999.1' }])).toEqual(['uid']);
  });

  it('finds dates in DICOM and written forms, and not in other numbers', () => {
    const birth: PhiIdentifier[] = [{ kind: 'birth-date', value: '19800128' }];
    for (const t of ['19800128', '1980-01-28', '28.01.1980', '28/01/1980', '01/28/1980', '1980/01/28', '28-01-1980', 'Jan 28, 1980', '28 Jan 1980', 'January 28 1980', '28th of January, 1980', '28. Januar 1980', '28.01.80', 'born 1980-01-28T00:00:00Z'])
      expect(find(`x ${t} y`, birth), t).toEqual(['birth-date']);
    for (const t of ['1980', '0.19800128', '1.2.840.19800128.5', '28.01', 'Jan 1980', '19800129', '281980']) expect(find(`x ${t} y`, birth), t).toEqual([]);
  });

  it("does not report a study date inside the app's own timestamps, but does elsewhere; birth dates always", () => {
    const stamps = ['2019-03-15T10:22:01.123Z'];
    expect(find('"exportedAt": "2019-03-15T10:22:01.123Z"', [{ kind: 'study-date', value: '20190315' }], { timestamps: stamps })).toEqual([]);
    expect(find('"exportedAt": "2019-03-15T10:22:01.123Z", "note": "15.03.2019"', [{ kind: 'study-date', value: '20190315' }], { timestamps: stamps })).toEqual(['study-date']);
    expect(find('"exportedAt": "2019-03-15T10:22:01.123Z"', [{ kind: 'birth-date', value: '20190315' }], { timestamps: stamps })).toEqual(['birth-date']);
  });

  it('refuses absolute paths and the folders of the user, not relative names', () => {
    for (const t of ['/home/alice/scans', 'C:\\Users\\bob\\ct', '"C:\\\\Users\\\\bob"', 'D:/data/x', '~/ct/run', '\\\\server\\share\\ct', 'file:///tmp/x', '$HOME/ct'])
      expect(find(`x ${t} y`, []), t).toEqual(['path']);
    for (const t of ['weights/TENSORS.md', "tf.loadLayersModel('file://.../tfjs/encoder/model.json')", '(HU - (level - width/2)) / width', 'https://example.org/a/b', 'and/or', 'conv1/kernel'])
      expect(find(`x ${t} y`, []), t).toEqual([]);
    expect(find('from work/scans/run-3 here', [], {}, ['/work/scans/run-3'])).toEqual(['path']);
    expect(find('from work/scans/run-30 here', [], {}, ['/work/scans/run-3'])).toEqual([]);
  });

  it('reads PNG text chunks (tEXt, zTXt, iTXt) and finds names in binary data as UTF-8 and latin1', () => {
    const m = buildMatcher([{ kind: 'patient-name', value: 'MÜLLER^HANS' }]);
    const chunk = (type: string, data: Uint8Array) => {
      const out = new Uint8Array(12 + data.length);
      new DataView(out.buffer).setUint32(0, data.length);
      out.set(Buffer.from(type, 'latin1'), 4);
      out.set(data, 8);
      return out;
    };
    const png = (c: Uint8Array) => Uint8Array.from([...[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], ...chunk('IHDR', new Uint8Array(13)), ...c, ...chunk('IEND', new Uint8Array(0))]);
    const zt = Uint8Array.from([...Buffer.from('Comment\0\0'), ...zlibSync(Buffer.from('patient Hans Müller', 'latin1'))]);
    const it = Uint8Array.from([...Buffer.from('Author\0\x01\0de\0Autor\0'), ...zlibSync(Buffer.from('MÜLLER, Hans', 'utf8'))]);
    const files = {
      'a.png': png(chunk('tEXt', Uint8Array.from(Buffer.from('Author\0H. Muller', 'latin1')))),
      'b.png': png(chunk('zTXt', zt)),
      'c.png': png(chunk('iTXt', it)),
      'clean.png': png(chunk('tEXt', Uint8Array.from(Buffer.from('Software\0CT SSL Studio', 'latin1')))),
    };
    expect([...new Set(scanFiles(files, m).map((f) => f.file.split(' ')[0]))].sort()).toEqual(['a.png', 'b.png', 'c.png']);
    const noise = new Float32Array(1 << 20).map((_, i) => Math.sin(i * 12.9898) * 0.05);
    const bytes = new Uint8Array(noise.buffer);
    expect(scanFiles({ 'w.bin': bytes }, m)).toEqual([]);
    for (const enc of [utf8Bytes('MÜLLER^HANS'), latin1Bytes('Müller Hans'), utf8Bytes('hans müller')]) {
      const b = bytes.slice();
      b.set(enc, 123457);
      expect([...new Set(scanFiles({ 'w.bin': b }, m).map((f) => f.kind))], Buffer.from(enc).toString('hex')).toEqual(['patient-name']);
    }
  });

  it('decodes names with the declared character set, and UTF-8 mislabelled as latin1', () => {
    expect(decodeDicomText(latin1Bytes('MÜLLER^HANS '), ['ISO_IR 100'])).toEqual(['MÜLLER^HANS']);
    expect(decodeDicomText(utf8Bytes('WEIß^RENÉE'), ['ISO_IR 192'])).toEqual(['WEIß^RENÉE']);
    expect(decodeDicomText(utf8Bytes('WEIß^RENÉE'), ['ISO_IR 100'])).toContain('WEIß^RENÉE');
    expect(decodeDicomText(Uint8Array.from([0xb4, 0xd5, 0xd4]), ['ISO_IR 144'])).toEqual(['Дед']);
    expect(decodeDicomText(latin1Bytes('PLAIN^ASCII'), [])).toEqual(['PLAIN^ASCII']);
  });
});

// ---------------------------------------------------------------------------------------------
// Real files, real index, real training, real export

describe('export refuses to ship patient identifiers (the five leaks of issue 10)', () => {
  // Each export starts a trainer process for the TF.js encoder (a second or more each on a busy
  // machine): the tests that export once per spelling get more time.
  const LOOP_TIMEOUT = 180_000;
  const tmp = tempDir('ctssl-phi-');
  let db: Database;
  let runDir: string;
  let runId: number;
  const folders: string[] = [];
  const out = (name: string) => join(tmp.dir, 'out', name);
  const exportWith = (o: Partial<ExportOptions>, d: Database | null = db) => exportRun(d, runDir, out('x.ctssl.zip'), { licence: 'CC-BY-4.0', dataDir: join(tmp.dir, 'data'), ...o });
  const refusal = async (p: Promise<unknown>): Promise<PrivacyError> => {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PrivacyError);
    return err as PrivacyError;
  };

  beforeAll(async () => {
    await initBackend({ force: 'wasm' });
    for (const p of [MULLER, WEISS, LI]) folders.push(writeSeries(tmp.dir, p));
    db = openLibrary(join(tmp.dir, 'data', 'library.sqlite'));
    const summary = await indexFolders(db, [join(tmp.dir, 'src')]);
    expect(summary.instances).toBe(18);
    // (b) the run folder is named after a patient, with her birth date
    runDir = join(tmp.dir, 'runs', 'Mueller_Hans 1980-01-28');
    const run = createRun(
      db,
      { task: 'masked', preset: 'tiny', size: 32, steps: 2, batchSize: 2, checkpointEvery: 2, evalEvery: 2, evalBatches: 1, useCache: false, filter: { modality: 'CT' } },
      { dataDir: join(tmp.dir, 'data'), dir: runDir },
    );
    runId = run.id;
    expect((await startRun(db, run).done).status).toBe('done');
    await evaluateRun(runDir, { maxSlices: 4, samples: 1 });
  }, 240_000);
  afterAll(() => {
    db?.close();
    tmp.cleanup();
  });

  it('stores decoded identifiers per series at index time, not per instance', () => {
    const rows = db.prepare('SELECT se.series_uid AS s, kind, value FROM phi_identifiers p JOIN series se ON se.id = p.series_ref').all() as { s: string; kind: string; value: string }[];
    const of = (kind: string) => rows.filter((r) => r.kind === kind).map((r) => r.value);
    expect(of('patient-name')).toEqual(expect.arrayContaining(['MÜLLER^HANS', 'WEIß^RENÉE', 'LI^AN']));
    expect(of('physician')).toEqual(expect.arrayContaining(['SCHRÖDINGER^ERWIN', 'DUPONT^AMÉLIE']));
    expect(of('institution')).toEqual(expect.arrayContaining(['Klinikum Süd', 'Hôpital Saint-Éloi']));
    expect(of('other-patient-id')).toContain('KIS-991357');
    expect(of('issuer')).toContain('KISNORD');
    expect(of('accession')).toEqual(expect.arrayContaining(['ACC778899', 'ACC445566']));
    expect(of('birth-date')).toContain('19800128');
    expect(of('uid')).toEqual(expect.arrayContaining(['1.2.826.0.1.3680043.10.4242.1.1', '1.2.826.0.1.3680043.10.4242.1.2', '1.2.826.0.1.3680043.10.4242.1.4']));
    // no SOP Instance UIDs (instances has them), and the same rows for 6 instances as for one
    expect(of('uid').some((u) => /\.4242\.\d\.3\.\d+$/.test(u))).toBe(false);
    const perSeries = db.prepare('SELECT COUNT(*) FROM phi_identifiers GROUP BY series_ref').pluck().all() as number[];
    expect(Math.max(...perSeries)).toBeLessThan(20);
    expect(db.prepare('SELECT COUNT(*) FROM instances WHERE identifiers_indexed = 0').pluck().get()).toBe(0);
    // the header reader gives the same, straight from a file
    const h = readHeader(parseDicom(new Uint8Array(readFileSync(join(folders[0], 'IM1.dcm'))), { headerOnly: true }));
    expect(h.identifiers).toEqual(expect.arrayContaining([{ kind: 'patient-name', value: 'MÜLLER^HANS' }]));
  });

  it('(b) ships nothing of a run folder named after the patient: metrics only, no paths; the package scans clean', async () => {
    const table2 = readFileSync(join(runDir, 'eval', 'table2.json'), 'utf8');
    expect(table2).toContain('Mueller_Hans'); // the local evaluation keeps its paths
    const r = await exportWith({ author: 'Imaging Lab' });
    const files = unzipSync(new Uint8Array(readFileSync(r.file)));
    const pretext = JSON.parse(Buffer.from(files['metrics/pretext.json']).toString()) as { evaluation: Record<string, unknown> };
    expect(pretext.evaluation.perVolume).toHaveProperty('mse');
    expect(Object.keys(pretext.evaluation)).not.toContain('runDir');
    expect(Object.keys(pretext.evaluation)).not.toContain('samples');
    for (const [name, b] of Object.entries(files)) {
      for (const text of [Buffer.from(b).toString('utf8'), Buffer.from(b).toString('latin1')]) {
        for (const bad of [tmp.dir, 'Mueller', 'MÜLLER', 'Müller', 'Hans', 'PID-4001', 'ACC778899', '1980-01-28', '19800128', '.png', '1.2.826.0.1.3680043.10.4242'])
          expect(text.includes(bad), `${name} holds ${bad}`).toBe(false);
      }
    }
  });

  it('(a, d) refuses a UTF-8 name from an ISO_IR 100 source, in any case, spelling and order', async () => {
    for (const author of ['Hans Müller', 'MÜLLER', 'mueller, hans', 'H. Muller', 'Dr Müller-Lab']) {
      const e = await refusal(exportWith({ author }));
      expect(e.message, author).toMatch(/model-card\.json: patient-name/);
      expect(e.message).toMatch(/model-card\.md: patient-name/);
    }
    expect(existsSync(out('x.ctssl.zip.tmp-' + process.pid))).toBe(false);
  }, LOOP_TIMEOUT);

  it('(a, d) refuses ß and é names from an ISO_IR 192 source, and physicians and institutions', async () => {
    for (const [author, kind] of [
      ['Renee Weiss', 'patient-name'],
      ['WEISS group', 'patient-name'],
      ['Erwin Schrodinger', 'physician'],
      ['Amelie Dupont', 'physician'],
      ['Hopital Saint Eloi', 'institution'],
      ['klinikum sued', 'institution'],
    ]) {
      expect((await refusal(exportWith({ author }))).message, author).toContain(`model-card.json: ${kind}`);
    }
  }, LOOP_TIMEOUT);

  it('(d) refuses accession numbers, other IDs and dates in written forms', async () => {
    for (const [author, kind] of [
      ['case acc-778899', 'accession'],
      ['KIS 991357', 'other-patient-id'],
      ['pid40018', 'patient-id'],
      ['born 28.01.1980', 'birth-date'],
      ['born 1980-01-28', 'birth-date'],
      ['born Jan 28, 1980', 'birth-date'],
      ['scanned 15/03/2019', 'study-date'],
      ['uid 1.2.826.0.1.3680043.10.4242.2.1', 'uid'],
    ]) {
      expect((await refusal(exportWith({ author }))).message, author).toContain(`model-card.json: ${kind}`);
    }
  }, LOOP_TIMEOUT);

  it('does not refuse on 2-letter name components or the word CT', async () => {
    await expect(exportWith({ author: 'Li Lab, CT group (an AI team)' })).resolves.toHaveProperty('bytes');
  });

  it('refuses any absolute path and the folders of the user', async () => {
    expect((await refusal(exportWith({ author: '/home/someone/else' }))).message).toContain('model-card.json: path');
    expect((await refusal(exportWith({ author: 'C:\\Users\\someone' }))).message).toContain('model-card.json: path');
    // the data folder without its root is still the data folder
    expect((await refusal(exportWith({ author: `see ${join(tmp.dir, 'data').slice(1)}` }))).message).toContain('model-card.json: path');
  });

  it('(c) still refuses with a source folder moved away: identifiers come from the index', async () => {
    const moved = `${folders[0]}-gone`;
    renameSync(folders[0], moved);
    try {
      expect((await refusal(exportWith({ author: 'Hans Müller' }))).message).toContain('patient-name');
      expect((await refusal(exportWith({ author: 'ACC778899' }))).message).toContain('accession');
    } finally {
      renameSync(moved, folders[0]);
    }
  });

  it('refuses when it cannot verify: no library, a series no longer indexed', async () => {
    expect((await refusal(exportWith({ author: 'Imaging Lab' }, null))).message).toMatch(/cannot check .* no library database.*Re-index/s);
    const copy = join(tmp.dir, 'removed.sqlite');
    db.exec(`VACUUM INTO '${copy}'`);
    const other = openLibrary(copy);
    try {
      const id = other.prepare('SELECT id FROM folders').pluck().get() as number;
      // a series without any identifier (fully de-identified) is verified, not refused
      other.exec('DELETE FROM phi_identifiers WHERE series_ref = (SELECT MIN(id) FROM series)');
      await expect(exportWith({ author: 'Imaging Lab' }, other)).resolves.toHaveProperty('bytes');
      removeFolder(other, id);
      expect((await refusal(exportWith({ author: 'Imaging Lab' }, other))).message).toMatch(/3 series of the run are not in the library.*Re-index/s);
    } finally {
      other.close();
    }
  });

  it('upgrades a library indexed before identifiers were stored: refuses until re-indexed, then checks', async () => {
    const copy = join(tmp.dir, 'old.sqlite');
    db.exec(`VACUUM INTO '${copy}'`);
    const raw = openSqlite(copy);
    raw.exec('DROP TABLE phi_identifiers; ALTER TABLE instances DROP COLUMN identifiers_indexed; PRAGMA user_version = 4;');
    raw.close();
    const old = openLibrary(copy);
    try {
      expect(old.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION); // brought up to date
      expect((await refusal(exportWith({ author: 'Imaging Lab' }, old))).message).toMatch(/indexed before identifiers were stored.*Re-index/s);
      const again = await indexFolders(old, [join(tmp.dir, 'src')]);
      expect(again.parsed).toBe(18); // unchanged files are read again once
      expect((await refusal(exportWith({ author: 'Renée Weiß' }, old))).message).toContain('patient-name');
      await expect(exportWith({ author: 'Imaging Lab' }, old)).resolves.toHaveProperty('bytes');
      expect((await indexFolders(old, [join(tmp.dir, 'src')])).parsed).toBe(0);
    } finally {
      old.close();
    }
  });

  it('(e) the app names the export from the run id and task, never the folder, and refuses like the CLI', async () => {
    const dataDir = join(tmp.dir, 'data');
    const service = new RunService(db, dataDir, () => {});
    const r = await service.exportRun(runId, { licence: 'CC0-1.0', author: 'Imaging Lab' });
    expect(basename(r.file)).toBe(`run-${runId}-masked.ctssl.zip`);
    expect(r.file).not.toContain('Mueller');
    expect(readdirSync(join(dataDir, 'exports'))).toEqual([`run-${runId}-masked.ctssl.zip`]);
    await expect(service.exportRun(runId, { licence: 'CC0-1.0', author: 'Hans Mueller' })).rejects.toMatchObject({ code: 'invalid-argument', message: expect.stringContaining('patient-name') });
  });

  it('a package scans clean against every stored identifier and the patient-named run folder', async () => {
    // The same run copied to a neutral folder: nothing of either folder, nor of any source identifier, is inside.
    const neutral = join(tmp.dir, 'runs', 'r2');
    cpSync(runDir, neutral, { recursive: true });
    const r = await exportRun(db, neutral, out('r2.ctssl.zip'), { licence: 'CC0-1.0', dataDir: join(tmp.dir, 'data') });
    const files = unzipSync(new Uint8Array(readFileSync(r.file)));
    const ids: PhiIdentifier[] = (db.prepare('SELECT kind, value FROM phi_identifiers').all() as PhiIdentifier[]).concat([{ kind: 'patient-name', value: 'MUELLER HANS' }]);
    expect(scanForIdentifiers(files, { values: ids, paths: [tmp.dir, runDir, neutral] })).toEqual([]);
  });
});
