/**
 * Hostile weights packages: zip-slip in every spelling, symlinks, unlisted, missing and duplicate
 * entries, lying sizes and decompression bombs. Each must be refused naming the entry, with
 * nothing written outside the import's staging folder (a sentinel tree around the data folder,
 * holding a trained run and an earlier import, is byte-identical afterwards) and bounded memory.
 * The packages start from a real export of a real (tiny) trained run; hostile ones are written
 * byte by byte here, so the zip structure is exactly what an attacker would send.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { constants as zc, crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import { strToU8, unzipSync } from 'fflate';
import { openLibrary } from '../../src/library/db/schema';
import { indexFolders } from '../../src/library/indexing/indexer';
import { listRuns } from '../../src/host/runs/run-store';
import { createRun } from '../../src/host/runs/create-run';
import { startRun } from '../../src/host/runs/start-run';
import { exportRun } from '../../src/host/export-package';
import { importPackage, packageBaseName, PackageError, showName, unsafeNameReason } from '../../src/host/package-import';
import { RunService } from '../../src/host/run-service';
import { latestCheckpointDir } from '../../src/library/runs/checkpoint';
import { initBackend } from '../../src/trainer/backend';
import type { Database } from '../../src/library/db/sqlite';
import { fixtures, root, tempDir } from '../helpers';

// ---------------------------------------------------------------------------------------------
// A zip writer that writes whatever it is told (names, sizes, attributes), like an attacker's.

interface RawEntry {
  name: string;
  data?: Uint8Array;
  /** Compressed bytes as given (then `size` must be given too). */
  compressed?: Uint8Array;
  method?: 0 | 8;
  /** Declared inflated size (default: the real one). */
  size?: number;
  /** External attributes (unix mode << 16) and version-made-by (host << 8). */
  external?: number;
  madeBy?: number;
  /** A different name in the local header. */
  localName?: string;
}

function zipRaw(entries: RawEntry[]): Uint8Array {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const method = e.method ?? 8;
    const data = e.data ?? new Uint8Array(0);
    const comp = e.compressed ?? (method === 8 ? deflateRawSync(data) : data);
    const size = e.size ?? data.length;
    const crc = e.compressed ? 0 : crc32(data);
    const name = Buffer.from(e.name, 'utf8');
    const localName = Buffer.from(e.localName ?? e.name, 'utf8');
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0x800, 6);
    lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(comp.length, 18);
    lh.writeUInt32LE(size, 22);
    lh.writeUInt16LE(localName.length, 26);
    locals.push(lh, localName, Buffer.from(comp));
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(e.madeBy ?? (3 << 8) | 20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0x800, 8);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(comp.length, 20);
    ch.writeUInt32LE(size, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE((e.external ?? (0o100644 << 16)) >>> 0, 38);
    ch.writeUInt32LE(offset, 42);
    central.push(ch, name);
    offset += 30 + localName.length + comp.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, cd, end]));
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A deflate stream of `mib` MiB of zeros, about 1000:1 (built from full-flushed 1 MiB pieces). */
function zerosBomb(mib: number): Uint8Array {
  const piece = deflateRawSync(Buffer.alloc(1 << 20), { finishFlush: zc.Z_FULL_FLUSH });
  return new Uint8Array(Buffer.concat([...Array<Buffer>(mib).fill(piece), Buffer.from([0x03, 0x00])]));
}

// ---------------------------------------------------------------------------------------------
// What must not change: every file (type, bytes, link target) under a folder.

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const rel = p.slice(dir.length + 1);
      if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[rel] = 'dir';
        walk(p);
      } else out[rel] = `file ${st.size} ${sha(readFileSync(p))}`;
    }
  };
  walk(dir);
  return out;
}

/** Runs `fn` (synchronous) while a worker thread samples the process's RSS every millisecond. */
async function peakRss(fn: () => void): Promise<{ error: unknown; baseMb: number; peakMb: number; deltaMb: number; arrayBuffersMb: number }> {
  const shared = new SharedArrayBuffer(12);
  const a = new Int32Array(shared);
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const a = new Int32Array(workerData);
     Atomics.store(a, 2, 1); Atomics.notify(a, 2);
     while (Atomics.load(a, 1) === 0) {
       const kb = Math.round(process.memoryUsage.rss() / 1024);
       if (kb > Atomics.load(a, 0)) Atomics.store(a, 0, kb);
       Atomics.wait(a, 1, 0, 1);
     }`,
    { eval: true, workerData: shared },
  );
  while (Atomics.load(a, 2) === 0) await new Promise((r) => setTimeout(r, 5));
  const base = process.memoryUsage();
  Atomics.store(a, 0, Math.round(base.rss / 1024));
  let error: unknown = null;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  const after = process.memoryUsage();
  Atomics.store(a, 1, 1);
  Atomics.notify(a, 1);
  await worker.terminate();
  const peakMb = Atomics.load(a, 0) / 1024;
  const baseMb = base.rss / 2 ** 20;
  return { error, baseMb, peakMb, deltaMb: peakMb - baseMb, arrayBuffersMb: (after.arrayBuffers - base.arrayBuffers) / 2 ** 20 };
}

function thrown(fn: () => unknown): PackageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PackageError);
    return err as PackageError;
  }
  throw new Error('expected the import to be refused');
}

// ---------------------------------------------------------------------------------------------

describe('package import: hostile packages are refused and nothing outside staging changes', () => {
  const tmp = tempDir('ctssl-pkgsec-');
  /** The sentinel tree: a data folder with a trained run and an earlier import. */
  const world = join(tmp.dir, 'world');
  const data = join(world, 'data');
  const into = join(data, 'imported');
  const pkgs = join(tmp.dir, 'pkgs');
  const MARK = `SLIPMARK${process.pid}`;
  let db: Database;
  let pkg: string;
  let good: Record<string, Uint8Array>;
  let goodDir: string;
  let runs: RunService;

  beforeAll(async () => {
    await initBackend({ force: 'wasm' });
    mkdirSync(pkgs, { recursive: true });
    mkdirSync(world, { recursive: true });
    writeFileSync(join(world, 'sentinel.txt'), 'must stay');
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    await indexFolders(db, [join(fixtures, 'lidc-0001'), join(fixtures, 'lidc-small')]);
    const run = createRun(
      db,
      { task: 'masked', preset: 'tiny', size: 32, steps: 2, batchSize: 2, checkpointEvery: 2, evalEvery: 2, evalBatches: 1, useCache: false, filter: { modality: 'CT' } },
      { dataDir: data, dir: join(data, 'runs', 'existing') },
    );
    expect((await startRun(db, run).done).status).toBe('done');
    pkg = join(pkgs, 'enc.ctssl.zip');
    await exportRun(db, run.dir, pkg, { licence: 'CC-BY-4.0', author: 'Test Lab' });
    good = unzipSync(new Uint8Array(readFileSync(pkg)));
    goodDir = importPackage(pkg, into).dir;
    runs = new RunService(db, data, () => {});
  }, 180_000);
  afterAll(() => {
    db?.close();
    tmp.cleanup();
  });

  /**
   * A package: the good files (changed by `files`), then `extra` entries. checksums.json lists
   * every file and extra entry (as an attacker who knows the format would), then `sums` edits it.
   */
  function craft(label: string, o: { files?: (f: Record<string, Uint8Array>) => void; extra?: RawEntry[]; listExtra?: boolean; sums?: (s: Record<string, string>) => void } = {}): string {
    const files: Record<string, Uint8Array> = { ...good };
    delete files['checksums.json'];
    o.files?.(files);
    const sums: Record<string, string> = {};
    for (const [n, b] of Object.entries(files)) sums[n] = sha(b);
    if (o.listExtra !== false) for (const e of o.extra ?? []) if (e.data) sums[e.name] = sha(e.data);
    o.sums?.(sums);
    const checksums = strToU8(JSON.stringify({ format: 'ct-ssl-studio-weights', formatVersion: 1, sha256: sums }));
    const entries: RawEntry[] = [...Object.entries(files).map(([name, d]) => ({ name, data: d })), { name: 'checksums.json', data: checksums }, ...(o.extra ?? [])];
    const file = join(pkgs, `${label}.ctssl.zip`);
    writeFileSync(file, zipRaw(entries));
    return file;
  }

  /** Every way an import could be reached, refusing the same package the same way. */
  function expectRefused(file: string, entry: string | RegExp, why: RegExp): PackageError {
    const before = snapshot(world);
    const runsBefore = listRuns(db).length;
    const err = thrown(() => importPackage(file, into));
    if (typeof entry === 'string') {
      expect(err.entry).toBe(entry);
      // "entry "<name>": why" for zip entries, "<file>: why" for the package's own files
      expect(err.message.includes(`entry ${showName(entry)}: `) || err.message.includes(`: ${entry}: `), err.message).toBe(true);
    } else expect(err.message).toMatch(entry);
    expect(err.message).toMatch(why);
    // the app's route (a path: picked, dropped, or the file a server upload wrote), and the bytes, through the same function
    expect(() => runs.importPackage(file)).toThrow(err.message);
    expect(() => importPackage({ name: basename(file), bytes: new Uint8Array(readFileSync(file)) }, into)).toThrow(why);
    expect(snapshot(world)).toEqual(before);
    expect(listRuns(db).length).toBe(runsBefore);
    expect(readdirSync(into).filter((n) => n.startsWith('.import-'))).toEqual([]);
    return err;
  }

  it('imports a valid package: package files under package/, the weights only as the checkpoint', () => {
    expect(readdirSync(goodDir).sort()).toEqual(['checkpoints', 'config.json', 'package', 'run.json']);
    const weights = readFileSync(join(latestCheckpointDir(goodDir)!, 'weights.safetensors'));
    expect(sha(weights)).toBe(sha(good['weights/model.safetensors']));
    expect(existsSync(join(goodDir, 'package', 'weights', 'model.safetensors'))).toBe(false);
    for (const n of Object.keys(good).filter((n) => n !== 'weights/model.safetensors')) expect(sha(readFileSync(join(goodDir, 'package', n)))).toBe(sha(good[n]));
    expect(basename(goodDir)).toMatch(/^enc\.ctssl-[0-9a-f]{16}$/);
    // again: the run already there, nothing new
    const before = snapshot(world);
    expect(importPackage(pkg, into).dir).toBe(goodDir);
    expect(snapshot(world)).toEqual(before);
  });

  const slips = [
    `../${MARK}`,
    `a/../../${MARK}`,
    `..\\${MARK}`,
    `/tmp/${MARK}`,
    `C:/${MARK}`,
    `C:\\${MARK}`,
    `c:${MARK}`,
    `//server/share/${MARK}`,
    `\\\\server\\share\\${MARK}`,
    `./../${MARK}`,
    `../../../../../../${MARK}`,
    `../../../../../../../../../../../../tmp/${MARK}`,
    `weights/../../../${MARK}`,
    '../checkpoints/step-imported/weights.safetensors',
    `%2e%2e%2f${MARK}`,
    `..%2f${MARK}`,
    `..`,
    `.`,
    `a/./${MARK}`,
    `a//${MARK}`,
    `${MARK}\u0000.txt`,
    `${MARK}\n`,
    `\u001b]0;${MARK}\u0007`,
    `${MARK}.`,
    `.${MARK}`,
    'CON',
    'aux.json',
    `${MARK}:stream`,
    `\u00fc${MARK}`,
    `\uff0e\uff0e/${MARK}`,
    `${'a/'.repeat(10)}${MARK}`,
    `${'a'.repeat(300)}`,
  ];
  it.each(slips)('refuses the entry %j, writing nothing anywhere', (name) => {
    const file = craft(`slip-${slips.indexOf(name)}`, { extra: [{ name, data: strToU8('pwned') }] });
    expectRefused(file, name, /the name|segment/);
    // and the same entry not listed in checksums.json
    const unlisted = craft(`slip-unlisted-${slips.indexOf(name)}`, { extra: [{ name, data: strToU8('pwned') }], listExtra: false });
    expect(thrown(() => importPackage(unlisted, into)).entry).toBe(name);
  });

  it('wrote no slip target anywhere it could have landed', () => {
    const hits: string[] = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        if (n.includes(MARK)) hits.push(join(d, n));
        if (lstatSync(join(d, n)).isDirectory()) walk(join(d, n));
      }
    };
    walk(tmp.dir);
    for (const d of ['/', tmpdir(), dirname(tmp.dir), root, homedir(), process.cwd()]) for (const n of readdirSync(d)) if (n.includes(MARK)) hits.push(join(d, n));
    expect(hits).toEqual([]);
  });

  it('refuses a folder entry that would leave the package, and accepts harmless folder entries', () => {
    expectRefused(craft('dir-slip', { extra: [{ name: '../', external: (0o040755 << 16) >>> 0 }] }), '../', /'\.\.' segment/);
    const withDirs = craft('dirs', { extra: [{ name: 'weights/', external: (0o040755 << 16) >>> 0 }, { name: 'extra/', external: (0o040755 << 16) >>> 0 }] });
    const r = importPackage(withDirs, into);
    expect(existsSync(join(r.dir, 'package', 'extra'))).toBe(false);
    expect(readFileSync(join(r.dir, 'package', 'model-card.json'))).toEqual(Buffer.from(good['model-card.json']));
  });

  it('refuses symlinks and other special files, whatever host made the zip', () => {
    const link = { name: 'model-card.md', data: strToU8('/etc/passwd'), external: (0o120777 << 16) >>> 0 };
    expectRefused(craft('symlink', { files: (f) => delete f['model-card.md'], extra: [link] }), 'model-card.md', /symbolic link/);
    expectRefused(craft('symlink-dos-host', { files: (f) => delete f['model-card.md'], extra: [{ ...link, madeBy: 20 }] }), 'model-card.md', /symbolic link/);
    expectRefused(craft('symlink-dir', { extra: [{ name: 'tfjs/evil', data: strToU8('../../..'), external: (0o120755 << 16) >>> 0 }] }), 'tfjs/evil', /symbolic link/);
    expectRefused(craft('fifo', { extra: [{ name: 'fifo', data: strToU8(''), external: (0o010644 << 16) >>> 0 }] }), 'fifo', /special file/);
    expectRefused(craft('dir-attr-file', { extra: [{ name: 'notes.txt', data: strToU8('x'), external: (0o040755 << 16) >>> 0 }] }), 'notes.txt', /folder attributes/);
  });

  it('refuses entries not listed in checksums.json, listed entries that are missing, and a list of unsafe names', () => {
    expectRefused(craft('unlisted', { extra: [{ name: 'notes.txt', data: strToU8('hello') }], listExtra: false }), 'notes.txt', /not listed in checksums\.json/);
    expectRefused(craft('missing', { sums: (s) => (s['gone.txt'] = sha(strToU8('x'))) }), 'gone.txt', /entry "gone\.txt": listed in checksums\.json but not in the package/);
    expectRefused(craft('missing-weights', { files: (f) => delete f['weights/model.safetensors'] }), 'weights/model.safetensors', /missing, so this is not a CT SSL Studio weights package/);
    expectRefused(craft('lists-slip', { sums: (s) => (s['../x'] = sha(strToU8('x'))) }), /checksums\.json lists "\.\.\/x"/, /'\.\.' segment/);
    expectRefused(craft('lists-itself', { sums: (s) => (s['checksums.json'] = sha(strToU8('x'))) }), /checksums\.json lists itself/, /lists itself/);
    expectRefused(craft('bad-hash', { files: (f) => (f['weights/TENSORS.md'] = strToU8('changed')), sums: (s) => (s['weights/TENSORS.md'] = sha(strToU8('original'))) }), 'weights/TENSORS.md', /checksum mismatch/);
  });

  it('refuses duplicate entries: same name, names differing in case, a file that is also a folder', () => {
    const card = { name: 'model-card.md', data: strToU8('# evil card') };
    expectRefused(craft('duplicate', { extra: [card], listExtra: false }), 'model-card.md', /two entries of this name/);
    expectRefused(craft('duplicate-case', { extra: [{ name: 'readme.md', data: strToU8('evil') }] }), 'readme.md', /differ only in case/);
    expectRefused(craft('duplicate-weights-case', { extra: [{ name: 'Weights/Model.safetensors', data: strToU8('evil') }] }), 'Weights/Model.safetensors', /differ only in case/);
    expectRefused(craft('file-and-folder', { extra: [{ name: 'model-card.md/x', data: strToU8('evil') }] }), 'model-card.md/x', /also a file/);
  });

  it('refuses a local header that names another file than the central directory', () => {
    const file = join(pkgs, 'local-name.ctssl.zip');
    const sums: Record<string, string> = {};
    const entries: RawEntry[] = Object.entries(good)
      .filter(([n]) => n !== 'checksums.json')
      .map(([name, d]) => {
        sums[name] = sha(d);
        return { name, data: d, ...(name === 'README.md' ? { localName: `../../${MARK}` } : {}) };
      });
    entries.push({ name: 'checksums.json', data: strToU8(JSON.stringify({ format: 'ct-ssl-studio-weights', formatVersion: 1, sha256: sums })) });
    writeFileSync(file, zipRaw(entries));
    expectRefused(file, 'README.md', /local header names it/);
  });

  it('caps the number of entries and the declared sizes', () => {
    const many = Array.from({ length: 60 }, (_, i) => ({ name: `extra/f${i}.txt`, data: strToU8(`${i}`) }));
    expectRefused(craft('many', { extra: many }), /entries, more than the 64/, /more than the 64 a package may have/);
    const big = zerosBomb(32);
    expectRefused(craft('big-md', { extra: [{ name: 'notes.md', compressed: big, size: 32 * 2 ** 20 }], listExtra: false }), 'notes.md', /more than the 16 MiB allowed/);
    expectRefused(craft('big-json', { extra: [{ name: 'notes.json', compressed: big, size: 5 * 2 ** 20 }], listExtra: false }), 'notes.json', /more than the 4 MiB allowed/);
    expectRefused(craft('huge-weights', { extra: [{ name: 'tfjs/encoder/weights.bin', compressed: big, size: 2 ** 31 }], files: (f) => delete f['tfjs/encoder/weights.bin'], listExtra: false }), 'tfjs/encoder/weights.bin', /more than the 1 GiB allowed/);
    const small = thrown(() => importPackage(pkg, join(tmp.dir, 'elsewhere'), { limits: { maxPackageBytes: 1000 } }));
    expect(small.message).toMatch(/more than the 1000 bytes a package may have/);
    expect(existsSync(join(tmp.dir, 'elsewhere'))).toBe(false);
  });

  describe('decompression bombs (1 GiB of zeros in about 1 MiB: 1000:1)', () => {
    let bomb: Uint8Array;
    beforeAll(() => {
      bomb = zerosBomb(1024);
      // the stream is what it claims: 4 of its pieces inflate to 4 MiB of zeros
      const piece = bomb.subarray(0, (bomb.length - 2) / 1024);
      const four = inflateRawSync(Buffer.concat([piece, piece, piece, piece, Buffer.from([3, 0])]));
      expect(four.length).toBe(4 << 20);
      expect(four.every((b) => b === 0)).toBe(true);
    });
    const gib = 2 ** 30;

    it('refuses a bomb that declares its size, before inflating anything', async () => {
      const file = craft('bomb-honest', { files: (f) => delete f['tfjs/encoder/weights.bin'], extra: [{ name: 'tfjs/encoder/weights.bin', compressed: bomb, size: gib }], listExtra: false });
      const m = await peakRss(() => importPackage(file, into));
      expect((m.error as Error).message).toMatch(/"tfjs\/encoder\/weights\.bin": declares 1 GiB from [\d.]+ MiB compressed \(\d+:1, more than 100:1\): a decompression bomb/);
      expect(m.deltaMb).toBeLessThan(100);
      expectRefused(file, 'tfjs/encoder/weights.bin', /decompression bomb/);
    });

    it.each([
      ['metrics/pretext.json', 1000, /inflates to more than the 1000 bytes its zip header declares/],
      ['checksums.json', 300, /inflates to more than the 300 bytes/],
      // passes the declared-ratio check (100:1) and the header check reads 8 bytes; the checksum check inflates up to the declared ~100 MiB and stops
      ['weights/model.safetensors', -1, /inflates to more than the \d+ bytes its zip header declares/],
    ])('stops a bomb in %s that lies about its size (declared %d), in bounded memory', async (name, declared, why) => {
      const size = declared > 0 ? declared : 100 * bomb.length;
      const file = join(pkgs, `bomb-lie-${basename(name)}.ctssl.zip`);
      if (name === 'checksums.json') {
        const entries: RawEntry[] = Object.entries(good).filter(([n]) => n !== 'checksums.json').map(([n, d]) => ({ name: n, data: d }));
        writeFileSync(file, zipRaw([...entries, { name, compressed: bomb, size }]));
      } else {
        // listed with some digest: the attacker's list is not what stops it
        craft(`bomb-lie-${basename(name)}`, { files: (f) => delete f[name], extra: [{ name, compressed: bomb, size }], listExtra: false, sums: (s) => (s[name] = sha(strToU8('claimed'))) });
      }
      const started = Date.now();
      const m = await peakRss(() => importPackage(file, into));
      const seconds = (Date.now() - started) / 1000;
      expect(m.error).toBeInstanceOf(PackageError);
      expect((m.error as PackageError).entry).toBe(name);
      expect((m.error as Error).message).toMatch(why);
      console.log(`[bomb] ${name} declared ${size} B, 1 GiB real: refused in ${seconds.toFixed(2)} s, RSS ${m.baseMb.toFixed(0)} -> peak ${m.peakMb.toFixed(0)} MB (+${m.deltaMb.toFixed(1)} MB), arrayBuffers +${m.arrayBuffersMb.toFixed(1)} MB`);
      expect(m.deltaMb).toBeLessThan(100);
      expect(m.arrayBuffersMb).toBeLessThan(100);
      expectRefused(file, name, why);
    });

    it('refuses an entry that inflates to less than it declares', () => {
      const data = strToU8('# short');
      const file = craft('short', { files: (f) => delete f['model-card.md'], extra: [{ name: 'model-card.md', data, size: 5000 }] });
      expectRefused(file, 'model-card.md', /inflates to 7 bytes, not the 5000/);
    });
  });

  it('refuses untrusted JSON that does not fit its schema, naming file and field', () => {
    const json = (f: Record<string, Uint8Array>, name: string, edit: (v: any) => unknown) => (f[name] = strToU8(JSON.stringify(edit(JSON.parse(Buffer.from(good[name]).toString())))));
    expectRefused(craft('cfg-preset', { files: (f) => json(f, 'config.json', (c) => ({ ...c, architecture: { ...c.architecture, preset: 'huge' } })) }), 'config.json', /config\.json: architecture\.preset/);
    expectRefused(craft('cfg-key', { files: (f) => json(f, 'config.json', (c) => ({ ...c, architecture: { ...c.architecture, evil: 1 } })) }), 'config.json', /config\.json: architecture: Unrecognized key/);
    expectRefused(craft('cfg-blocks', { files: (f) => json(f, 'config.json', (c) => ({ ...c, architecture: { ...c.architecture, resBlocks: 1e9 } })) }), 'config.json', /architecture\.resBlocks/);
    expectRefused(craft('cfg-leak', { files: (f) => json(f, 'config.json', (c) => ({ ...c, architecture: { ...c.architecture, leak: 0.2 } })) }), 'config.json', /architecture\.leak is 0\.2, this app's tiny model has 0\.01/);
    expectRefused(craft('cfg-notjson', { files: (f) => (f['config.json'] = strToU8('{"architecture": ')) }), 'config.json', /config\.json: not valid JSON/);
    expectRefused(craft('cfg-lr', { files: (f) => json(f, 'config.json', (c) => ({ ...c, training: { ...c.training, lr: 'fast' } })) }), 'config.json', /config\.json: training\.lr/);
    expectRefused(craft('ledger-proto', { files: (f) => (f['ledger.json'] = strToU8('{"__proto__": {"polluted": true}}')) }), 'ledger.json', /__proto__/);
    expectRefused(craft('ledger-type', { files: (f) => json(f, 'ledger.json', (l) => ({ ...l, seeds: 'many' })) }), 'ledger.json', /ledger\.json: seeds/);
    expectRefused(craft('card-licence', { files: (f) => json(f, 'model-card.json', (c) => ({ ...c, licence: 42 })) }), 'model-card.json', /model-card\.json: licence/);
    expectRefused(craftSums('sums-format', { format: 'zip-of-anything', formatVersion: 1, sha256: {} }), 'checksums.json', /unknown package format/);
    expectRefused(craftSums('sums-digest', { format: 'ct-ssl-studio-weights', formatVersion: 1, sha256: { 'config.json': 'abc' } }), 'checksums.json', /sha256\.config\.json: expected a lowercase SHA-256/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  /** A package whose checksums.json is `sums` as given. */
  function craftSums(label: string, sums: unknown): string {
    const file = join(pkgs, `${label}.ctssl.zip`);
    const entries: RawEntry[] = Object.entries(good).filter(([n]) => n !== 'checksums.json').map(([n, d]) => ({ name: n, data: d }));
    writeFileSync(file, zipRaw([...entries, { name: 'checksums.json', data: strToU8(JSON.stringify(sums)) }]));
    return file;
  }

  it('imports a card whose name is long and full of control characters as a clean, capped run name', () => {
    const evilName = `\u001b[31mred\u001b[0m\u202eevil\n${'x'.repeat(500)}`;
    const file = craft('long-name', { files: (f) => (f['model-card.json'] = strToU8(JSON.stringify({ ...JSON.parse(Buffer.from(good['model-card.json']).toString()), name: evilName }))) });
    const r = importPackage(file, into);
    expect(Array.from(r.name).length).toBeLessThanOrEqual(120);
    expect(r.name).not.toMatch(/[\u0000-\u001f\u202e]/);
    const config = JSON.parse(readFileSync(join(r.dir, 'config.json'), 'utf8'));
    expect(config.name).toBe(r.name);
  });

  it('never writes into an existing folder of the same name: a new one is made beside it', () => {
    const stem = basename(goodDir).replace(/^enc\.ctssl/, 'collide.ctssl');
    const taken = join(into, stem);
    mkdirSync(taken);
    writeFileSync(join(taken, 'keep.txt'), 'not an import');
    const outside = join(tmp.dir, 'outside');
    mkdirSync(outside);
    symlinkSync(outside, join(into, `${stem}-2`));
    const before = snapshot(world);
    const copy = join(pkgs, 'collide.ctssl.zip');
    writeFileSync(copy, readFileSync(pkg));
    const r = importPackage(copy, into);
    expect(r.dir).toBe(join(into, `${stem}-3`));
    const after = snapshot(world);
    for (const [k, v] of Object.entries(before)) expect(after[k]).toBe(v);
    expect(readdirSync(outside)).toEqual([]);
    // the same package again: that run, nothing new
    expect(importPackage(copy, into).dir).toBe(r.dir);
  });

  it('names the installed folder from a sanitised file name, whatever the upload is called', () => {
    expect(packageBaseName('../../etc/passwd')).toBe('passwd');
    expect(packageBaseName('C:\\Users\\x\\enc.ctssl.zip')).toBe('enc.ctssl');
    for (const n of ['', '.', '..', '...zip', '../..', '/', '\\', '.zip', '\u0000']) expect(packageBaseName(n)).toBe('package');
    expect(packageBaseName('a'.repeat(500) + '.zip').length).toBeLessThanOrEqual(64);
    const bytes = new Uint8Array(readFileSync(pkg));
    for (const name of ['../../../../evil.ctssl.zip', '..\\..\\evil.ctssl.zip', '/etc/evil.ctssl.zip', '..', '']) {
      const r = importPackage({ name, bytes }, into);
      expect(dirname(r.dir)).toBe(into);
      expect(basename(r.dir)).toMatch(/^(evil\.ctssl|package)-[0-9a-f]{16}$/);
    }
    const tooBig = thrown(() => importPackage({ name: 'x.zip', bytes }, into, { limits: { maxPackageBytes: bytes.length - 1 } }));
    expect(tooBig.message).toMatch(/more than the \d+ bytes a package may have/);
  });

  it('checks every name the same way (unit)', () => {
    for (const ok of ['config.json', 'weights/model.safetensors', 'tfjs/encoder/weights.bin', 'a-b_c.d/e']) expect(unsafeNameReason(ok)).toBeNull();
    for (const bad of slips) expect(unsafeNameReason(bad)).not.toBeNull();
  });

  it('ctssl import refuses a hostile package and installs a valid one, through the same function', () => {
    const evil = craft('cli-slip', { extra: [{ name: `../../../${MARK}`, data: strToU8('pwned') }] });
    const before = snapshot(world);
    const env = { ...process.env, CTSSL_DATA_DIR: data };
    const bad = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'import', evil, '--db', join(tmp.dir, 'lib.sqlite'), '--json'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`entry "../../../${MARK}": the name has a '..' segment`);
    expect(snapshot(world)).toEqual(before);
    const ok = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'import', pkg, '--db', join(tmp.dir, 'lib.sqlite'), '--json'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).dir).toBe(goodDir);
  });
});
