/**
 * Paths and other arguments from the renderer, as an attacker or a careless user sends them: the
 * real services (the handler table Electron main and `ctssl serve` dispatch to, through the same
 * `dispatch` with the contract's schemas) over a real SQLite library in a temp data folder. Every
 * hostile argument comes back as an error envelope naming the channel and the argument, and
 * nothing is indexed, imported or created.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispatch, type Envelope, type Handlers } from '../../src/shared/contract';
import { createServices, type Services } from '../../src/host/services';
import { indexFolders } from '../../src/library/indexing/indexer';
import { fixtures, root, tempDir } from '../helpers';
import { globSync } from '../glob';

const xml069 = globSync(join(fixtures, 'lidc-0001'), /069\.xml$/)[0];

type Refusal = { ok: false; error: { code: string; message: string } };

/** Calls a channel the way main and the server do: raw arguments through the contract. */
async function call(h: Handlers, channel: string, args: unknown[]): Promise<Envelope<unknown>> {
  return dispatch(h, channel, args);
}

/** Expects a refusal whose message names the channel and matches `what` (the argument and why). */
async function refused(h: Handlers, channel: string, args: unknown[], what: RegExp, code: string | RegExp = 'invalid-argument'): Promise<Refusal> {
  const env = await call(h, channel, args);
  expect(env.ok, `${channel} ${JSON.stringify(args).slice(0, 200)} should be refused`).toBe(false);
  const r = env as Refusal;
  expect(r.error.code).toMatch(code);
  expect(r.error.message.startsWith(`${channel}: `), r.error.message).toBe(true);
  expect(r.error.message).toMatch(what);
  return r;
}

describe('paths and arguments from the renderer', () => {
  const tmp = tempDir('ctssl-paths-');
  const outside = join(tmp.dir, 'outside');
  let server: Services;
  let electron: Services;
  let fifo = '';
  const picked: string[] = [];

  beforeAll(async () => {
    mkdirSync(outside, { recursive: true });
    server = createServices({ mode: 'server', dataDir: join(tmp.dir, 'server-data'), dbPath: join(tmp.dir, 'server.sqlite'), emit: () => {} });
    electron = createServices({
      mode: 'electron',
      dataDir: join(tmp.dir, 'electron-data'),
      dbPath: join(tmp.dir, 'electron.sqlite'),
      emit: () => {},
      // The native dialogs (what the user picks), as main passes them in.
      pickFolder: async () => join(fixtures, 'lidc-0001'),
      pickFiles: async () => [...picked],
      pickPackage: async () => null,
    });
    fifo = join(outside, 'labels.csv');
    execFileSync('mkfifo', [fifo]);
    writeFileSync(join(outside, 'notes.exe'), 'MZ');
    writeFileSync(join(outside, 'pkg.zip'), 'PK');
    mkdirSync(join(outside, 'folder.csv'));
    symlinkSync('/proc/self', join(outside, 'proc-link'));
  });
  afterAll(async () => {
    await server.close();
    await electron.close();
    tmp.cleanup();
  });

  it('library.addFolder: refuses relative, special, missing, NUL, file-for-folder and huge paths; nothing is indexed', async () => {
    const h = server.handlers;
    await refused(h, 'library.addFolder', ['test/fixtures/dicom/lidc-0001'], /folder "test\/fixtures\/dicom\/lidc-0001" is not an absolute path/);
    await refused(h, 'library.addFolder', ['./x'], /is not an absolute path/);
    await refused(h, 'library.addFolder', ['/proc/self'], /folder \/proc\/self is on a pseudo file system \(\/proc\)/);
    await refused(h, 'library.addFolder', ['/proc'], /pseudo file system/);
    await refused(h, 'library.addFolder', ['/sys/kernel'], /pseudo file system/);
    await refused(h, 'library.addFolder', ['/dev'], /pseudo file system/);
    await refused(h, 'library.addFolder', [join(outside, 'proc-link')], /proc-link is on a pseudo file system/);
    await refused(h, 'library.addFolder', [fifo], /labels\.csv is a FIFO, not a folder/);
    await refused(h, 'library.addFolder', [xml069], /069\.xml is a regular file, not a folder/);
    await refused(h, 'library.addFolder', ['/definitely/not/here'], /folder not found: \/definitely\/not\/here/);
    await refused(h, 'library.addFolder', [`${fixtures}\0/etc`], /argument 0: a path cannot contain NUL/);
    await refused(h, 'library.addFolder', ['/' + 'a'.repeat(5000)], /argument 0/);
    await refused(h, 'library.addFolder', [''], /argument 0/);
    await refused(h, 'library.addFolder', [{ path: fixtures }], /argument 0/);
    await refused(h, 'library.addFolder', [fixtures, 'extra'], /argument/);
    expect(await h['library.folders']()).toEqual([]);
    expect(await h['library.progress']()).toBeNull();
  });

  it('library.addFolder: a typed absolute folder is accepted (an explicit act of the user)', async () => {
    const env = await call(electron.handlers, 'library.addFolder', [join(fixtures, 'lidc-0001')]);
    expect(env.ok).toBe(true);
    for (let i = 0; i < 400 && (await electron.handlers['library.progress']())?.phase !== 'done'; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await electron.handlers['library.folders']()).map((f) => f.path)).toEqual([join(fixtures, 'lidc-0001')]);
  });

  it('labels.import: refuses relative, special, missing, NUL, folder-for-file and wrong-kind paths at once; nothing is imported', async () => {
    const h = server.handlers;
    const started = Date.now();
    await refused(h, 'labels.import', ['069.xml'], /label file "069\.xml" is not an absolute path/);
    await refused(h, 'labels.import', ['../../etc/passwd'], /is not an absolute path/);
    await refused(h, 'labels.import', ['/proc/self/status'], /label file \/proc\/self\/status is on a pseudo file system \(\/proc\)/);
    await refused(h, 'labels.import', ['/dev/zero'], /pseudo file system \(\/dev\)/);
    await refused(h, 'labels.import', [fifo], /label file .*labels\.csv is a FIFO, not a regular file/);
    await refused(h, 'labels.import', [join(outside, 'folder.csv')], /folder\.csv is a folder, not a regular file/);
    await refused(h, 'labels.import', [outside], /is a folder, not a regular file/);
    await refused(h, 'labels.import', ['/nope/labels.xml'], /label file not found: \/nope\/labels\.xml/);
    await refused(h, 'labels.import', [join(outside, 'notes.exe')], /notes\.exe: a \.exe is not a label file/);
    await refused(h, 'labels.import', [`${xml069}\0.csv`], /argument 0: a path cannot contain NUL/);
    await refused(h, 'labels.import', ['/' + 'x'.repeat(4097)], /argument 0/);
    // a FIFO never blocks the services: refused from stat data, never opened for reading
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await h['labels.sources']()).toEqual([]);
  });

  it('labels.importBytes: refuses file names with folders and bytes that are no label file, naming the file', async () => {
    const h = server.handlers;
    await refused(h, 'labels.importBytes', ['../../069.xml', new Uint8Array([60])], /argument 0: a file name without folder separators/);
    await refused(h, 'labels.importBytes', ['..', new Uint8Array([60])], /argument 0/);
    await refused(h, 'labels.importBytes', ['a\\b.csv', new Uint8Array([60])], /argument 0/);
    await refused(h, 'labels.importBytes', ['x.csv', 'not bytes'], /argument 1/);
    await refused(h, 'labels.importBytes', ['notes.csv', new TextEncoder().encode('hello,world\n1,2\n')], /notes\.csv: not a label file this app reads/);
    expect(await h['labels.sources']()).toEqual([]);
  });

  it('Electron: a label file is imported only when picked or dropped in that window', async () => {
    const w1 = electron.forWindow(1);
    const w2 = electron.forWindow(2);
    // typed (or forged by a compromised page): refused although the file is fine
    await refused(w1, 'labels.import', [xml069], /label file .*069\.xml was not chosen in this window/);
    await refused(electron.handlers, 'labels.import', [xml069], /was not chosen in this window/);
    expect(await w1['labels.sources']()).toEqual([]);
    // picked in window 1's dialog: accepted there, not in window 2
    picked.splice(0, picked.length, xml069);
    expect(await call(w1, 'labels.pickFiles', [])).toEqual({ ok: true, value: [xml069] });
    const ok = await call(w1, 'labels.import', [xml069]);
    expect(ok.ok, JSON.stringify(ok)).toBe(true);
    await refused(w2, 'labels.import', [xml069], /was not chosen in this window/);
    // dropped on window 2 (the preload reports the File's path): checked, then accepted there
    expect(() => electron.grantDropped(2, fifo)).toThrow(/drop: dropped file .*labels\.csv is a FIFO/);
    expect(() => electron.grantDropped(2, 'relative.xml')).toThrow(/not an absolute path/);
    expect(() => electron.grantDropped(2, '/proc/self/environ')).toThrow(/pseudo file system/);
    expect(electron.grantDropped(2, xml069)).toBe(xml069);
    expect((await call(w2, 'labels.import', [xml069])).ok).toBe(true);
    // a closed window's grants go with it
    electron.closeWindow(2);
    await refused(electron.forWindow(2), 'labels.import', [xml069], /was not chosen in this window/);
  });

  it('packages.import: refuses relative, special, missing, folder and non-package paths, and ungranted files in Electron; nothing is imported', async () => {
    const h = server.handlers;
    await refused(h, 'packages.import', ['exports/run.ctssl.zip'], /package "exports\/run\.ctssl\.zip" is not an absolute path/);
    await refused(h, 'packages.import', ['/proc/self/cmdline'], /package \/proc\/self\/cmdline is on a pseudo file system/);
    await refused(h, 'packages.import', [fifo], /is a FIFO, not a regular file/);
    await refused(h, 'packages.import', [outside], /is a folder, not a regular file/);
    await refused(h, 'packages.import', [join(outside, 'missing.zip')], /package not found/);
    await refused(h, 'packages.import', [xml069], /a \.xml is not a package/);
    await refused(h, 'packages.import', [`${outside}/pkg.zip\0`], /argument 0: a path cannot contain NUL/);
    await refused(electron.forWindow(1), 'packages.import', [join(outside, 'pkg.zip')], /package .*pkg\.zip was not chosen in this window/);
    expect(await h['runs.list']()).toEqual([]);
  });

  it('runs.create: init is a run id (a folder path is refused), the filter is the strict cohort filter; nothing is created', async () => {
    const h = server.handlers;
    const base = { kind: 'pretrain', task: 'flip', preset: 'tiny', size: 32, steps: 1 };
    await refused(h, 'runs.create', [{ ...base, init: join(tmp.dir, 'runs', 'some-run') }], /argument 0\.init: .*expected number/);
    await refused(h, 'runs.create', [{ ...base, init: '../../runs/x' }], /argument 0\.init/);
    await refused(h, 'runs.create', [{ ...base, init: 424242 }], /argument 0\.init: no run with id 424242/, 'not-found');
    await refused(h, 'runs.create', [{ ...base, init: -1 }], /argument 0\.init/);
    await refused(h, 'runs.create', [{ ...base, filter: { modality: 'CT', evil: 1 } }], /argument 0\.filter: Unrecognized key: "evil"/);
    await refused(h, 'runs.create', [{ ...base, filter: { modality: "CT' OR '1'='1" } }], /argument 0\.filter\.modality: a DICOM modality/);
    await refused(h, 'runs.create', [{ ...base, filter: { modality: 'CT; DROP TABLE series' } }], /argument 0\.filter\.modality/);
    await refused(h, 'runs.create', [{ ...base, filter: { text: 'a'.repeat(201) } }], /argument 0\.filter\.text/);
    await refused(h, 'runs.create', [{ ...base, filter: { text: "x'\n; DROP TABLE runs;--" } }], /argument 0\.filter\.text: no control characters/);
    await refused(h, 'runs.create', [{ ...base, filter: { orientation: 'sideways' } }], /argument 0\.filter\.orientation/);
    await refused(h, 'runs.create', [{ ...base, filter: { labels: 'pe', where: '1=1' } }], /argument 0\.filter/);
    await refused(h, 'runs.create', [{ ...base, seriesIds: new Array(100_001).fill(1) }], /argument 0\.seriesIds/);
    await refused(h, 'runs.create', [{ ...base, name: 'n'.repeat(121) }], /argument 0\.name/);
    await refused(h, 'runs.create', [{ ...base, dir: '/tmp/elsewhere' }], /argument 0: Unrecognized key: "dir"/);
    await refused(h, 'runs.create', [{ ...base, lossWeights: { evil: 1 } }], /argument 0\.lossWeights/);
    await refused(
      h,
      'runs.create',
      [{ kind: 'finetune', task: 'classification', model: 'encoder-classifier', label: { kind: 'image-label', name: 'pe' }, steps: 1, init: '/data/runs/pretrained' }],
      /argument 0\.init/,
    );
    // called directly (as the handler table is also used), a path is still not taken for an id
    await expect(Promise.resolve().then(() => h['runs.create']({ ...base, init: '/data/runs/x' } as never))).rejects.toThrow(/runs\.create: argument 0\.init: a run id, not a path/);
    expect(await h['runs.list']()).toEqual([]);
  });

  it('experiments.start: inits are run ids, random or cnn; the filter is strict; nothing starts', async () => {
    const h = server.handlers;
    const base = { name: 'x', task: 'classification', label: 'pe', steps: 1 };
    await refused(h, 'experiments.start', [{ ...base, inits: ['random', join(tmp.dir, 'runs', 'r')] }], /argument 0\.inits\.1/);
    await refused(h, 'experiments.start', [{ ...base, inits: ['random', 77] }], /argument 0\.inits\.1: no run with id 77/, 'not-found');
    await refused(h, 'experiments.start', [{ ...base, inits: new Array(65).fill('random') }], /argument 0\.inits/);
    await refused(h, 'experiments.start', [{ ...base, inits: ['random'], filter: { sql: 'DROP' } }], /argument 0\.filter/);
    await refused(h, 'experiments.start', [{ ...base, inits: ['random'], seeds: new Array(101).fill(1) }], /argument 0\.seeds/);
    await refused(h, 'experiments.start', [{ ...base, inits: ['random'], out: '/etc' }], /argument 0: Unrecognized key/);
    await expect(Promise.resolve().then(() => h['experiments.start']({ ...base, inits: ['random', '/data/runs/x'] } as never))).rejects.toThrow(/argument 0\.inits\.1: a run id, not a path/);
    expect(await h['experiments.list']()).toEqual([]);
  });

  it('library filters: unknown keys and SQL in the modality are refused; free text is matched as text, never as SQL', async () => {
    const h = electron.handlers;
    await refused(h, 'library.series', [{ modality: 'CT', evil: true }], /argument 0: Unrecognized key: "evil"/);
    await refused(h, 'library.series', [{ modality: "CT' OR 1=1 --" }], /argument 0\.modality/);
    await refused(h, 'library.cohortCounts', [{ text: 'a\u0000b' }], /argument 0\.text/);
    await refused(h, 'probe.run', [{ runIds: [], filter: { modality: 'CT', extra: 1 } }], /argument 0\.filter/);
    await refused(h, 'probe.run', [{ runIds: ['/data/runs/x'] }], /argument 0\.runIds\.0/);
    const all = await call(h, 'library.series', [{}]);
    expect(all.ok).toBe(true);
    const n = (all as { value: unknown[] }).value.length;
    expect(n).toBeGreaterThan(0);
    for (const text of ["' OR '1'='1", '%', '_', "'; DROP TABLE series; --"]) {
      const r = await call(h, 'library.series', [{ text }]);
      expect(r).toEqual({ ok: true, value: [] });
    }
    expect(((await call(h, 'library.series', [{}])) as { value: unknown[] }).value).toHaveLength(n);
  });

  it('every path channel is refused the same way through the WebSocket bridge as in-process (one code path)', async () => {
    // The server bridge and main both call dispatch(handlers, ...); the handler table is the one above.
    const { startServer } = await import('../../src/server/serve');
    const { existsSync } = await import('node:fs');
    const rendererDir = join(root, 'out', 'renderer');
    if (!existsSync(join(rendererDir, 'index.html'))) return; // the renderer is not built: covered in-process above
    const { WebSocket } = await import('ws');
    const { decodeMessage, encodeMessage } = await import('../../src/shared/wire');
    const s = await startServer({ dataDir: join(tmp.dir, 'ws-data'), dbPath: join(tmp.dir, 'ws.sqlite'), rendererDir, token: 'x'.repeat(40) });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/api?token=${'x'.repeat(40)}`, { headers: { origin: `http://127.0.0.1:${s.port}` } });
      await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
      const ask = (id: number, channel: string, args: unknown[]) =>
        new Promise<Envelope<unknown>>((resolve) => {
          ws.on('message', (d: Buffer) => {
            const m = decodeMessage<{ id?: number; envelope?: Envelope<unknown> }>(d);
            if (m.id === id) resolve(m.envelope!);
          });
          ws.send(encodeMessage({ id, channel, args }));
        });
      expect(await ask(1, 'library.addFolder', ['/proc/self'])).toMatchObject({ ok: false, error: { message: expect.stringMatching(/^library\.addFolder: folder \/proc\/self is on a pseudo file system/) } });
      expect(await ask(2, 'labels.import', ['rel.csv'])).toMatchObject({ ok: false, error: { message: expect.stringMatching(/^labels\.import: label file "rel\.csv" is not an absolute path/) } });
      expect(await ask(3, 'runs.create', [{ kind: 'pretrain', task: 'flip', steps: 1, init: '/x' }])).toMatchObject({ ok: false, error: { message: expect.stringMatching(/argument 0\.init/) } });
      ws.close();
    } finally {
      await s.close();
    }
  });
});
