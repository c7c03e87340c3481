/**
 * The indexer against hostile and odd files (issue 10): a sparse 2.5 GiB DICOM-looking file, a
 * sparse 1.9 GiB one whose header never ends, a 1.5 MiB header that never ends, a deflated bomb
 * (1.2 MB inflating to 1.1 GiB), a FIFO, a socket, links to a device, into /proc, in a loop and
 * dangling, beside one real slice: each is skipped with a reason naming the file, the real slice
 * is indexed, the job ends, and the indexing process stays under 600 MB. Also: a header worker
 * that exits, throws or hangs fails that file only; cancel ends a job even while the worker is
 * stuck; the pixel decoder refuses deflate bombs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, ftruncateSync, linkSync, mkdirSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateRawSync, constants as zc } from 'node:zlib';
import { openLibrary } from '../../src/library/db/schema';
import { indexFolders } from '../../src/library/indexing/indexer';
import { IndexJobs } from '../../src/host/index-job';
import { readFileHeader } from '../../src/library/indexing/file-header';
import { openPixelSource } from '../../src/library/volumes/pixels';
import { createServices } from '../../src/host/services';
import type { IndexProgress, IndexSummary } from '../../src/shared/types';
import { fixtures, root, tempDir } from '../helpers';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const realSlice = join(fixtures, 'lidc-small', 'small', 'LIDC-IDRI-0002', '1.3.6.1.4.1.14519.5.2.1.6279.6001.490157381160200744295382098329', '1.3.6.1.4.1.14519.5.2.1.6279.6001.619372068417051974713149104919');
const realSlices = () => ['-85.750000.dcm', '-94.500000.dcm'].map((n) => join(realSlice, n));

/** One explicit VR little endian element. */
function el(group: number, element: number, vr: string, value: Buffer | string): Buffer {
  let v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (v.length % 2) v = Buffer.concat([v, Buffer.from(vr === 'UI' ? [0] : vr === 'OB' || vr === 'OW' ? [0] : [0x20])]);
  const long = ['OB', 'OW', 'OF', 'SQ', 'UT', 'UN'].includes(vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(element, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(v.length, 8);
  else head.writeUInt16LE(v.length, 6);
  return Buffer.concat([head, v]);
}

/** Preamble, "DICM" and a file meta naming the transfer syntax. */
function part10(ts: string): Buffer {
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(0x0002, 0x0010, 'UI', ts)]);
}

/** `n` bytes of well-formed private elements: a header that never reaches its pixel data. */
function endlessElements(n: number): Buffer {
  const one = el(0x0009, 0x1010, 'LO', 'ABCDEFGH'); // 16 bytes
  return Buffer.concat(Array.from({ length: Math.ceil(n / one.length) }, () => one)).subarray(0, n);
}

/** A small image dataset (16x16, 16 bits) with its pixel data element. */
function imageDataset(pixelData: Buffer, vr: 'OW' | 'OB' = 'OW'): Buffer {
  return Buffer.concat([
    el(0x0008, 0x0016, 'UI', '1.2.840.10008.5.1.4.1.1.2'),
    el(0x0008, 0x0018, 'UI', '1.2.3.4.5.6.7.8.9'),
    el(0x0008, 0x0060, 'CS', 'CT'),
    el(0x0020, 0x000d, 'UI', '1.2.3.4.5.6.7.8.1'),
    el(0x0020, 0x000e, 'UI', '1.2.3.4.5.6.7.8.2'),
    el(0x0028, 0x0002, 'US', Buffer.from([1, 0])),
    el(0x0028, 0x0004, 'CS', 'MONOCHROME2'),
    el(0x0028, 0x0010, 'US', Buffer.from([16, 0])),
    el(0x0028, 0x0011, 'US', Buffer.from([16, 0])),
    el(0x0028, 0x0100, 'US', Buffer.from([16, 0])),
    el(0x0028, 0x0101, 'US', Buffer.from([16, 0])),
    el(0x0028, 0x0102, 'US', Buffer.from([15, 0])),
    el(0x0028, 0x0103, 'US', Buffer.from([0, 0])),
    el(0x7fe0, 0x0010, vr, pixelData),
  ]);
}

/**
 * A raw deflate stream of `prefix` followed by `zeroChunks` x 16 MiB of zeros, built without
 * holding the zeros: each 16 MiB chunk is deflated once on its own (its back-references stay
 * inside it) and the compressed chunk repeated; a final empty block ends the stream.
 */
function deflateBomb(prefix: Buffer, zeroChunks: number): Buffer {
  const sync = { finishFlush: zc.Z_SYNC_FLUSH, level: 9 };
  const zeros = deflateRawSync(Buffer.alloc(16 * MiB), sync);
  return Buffer.concat([deflateRawSync(prefix, sync), ...Array.from({ length: zeroChunks }, () => zeros), deflateRawSync(Buffer.alloc(0))]);
}

/** A file of `size` bytes that starts with `head` and is sparse after it (no disk used). */
function sparseFile(path: string, head: Buffer, size: number): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head, 0, head.length, 0);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

const reasonOf = (s: IndexSummary, name: string) => s.skipped.find((k) => basename(k.path) === name)?.reason ?? '(not skipped)';

describe('indexing hostile and odd files beside a real slice', () => {
  const tmp = tempDir('ctssl-sec-index-');
  const dir = join(tmp.dir, 'data');
  let socket: Server | null = null;
  const isLinux = process.platform === 'linux';
  const expected: Record<string, RegExp> = {
    'huge-2.5GiB.dcm': /^larger than 2 GiB \(2684354560 bytes\)/,
    'sparse-1.9GiB.dcm': /^header does not end within the first 1 MiB/,
    'long-header-1.5MiB.dcm': /^header does not end within the first 1 MiB/,
    'deflate-bomb.dcm': /deflated header does not end within its first 1048576 inflated bytes/,
    fifo: /^a named pipe \(FIFO\), not a file: never opened/,
    'link-to-dev-zero.dcm': /^a symbolic link to \/dev\/zero, a character device, not a file: never opened/,
    'loop-a': /symbolic link loop/,
    dangling: /dangling symbolic link/,
    'link-to-folder': /symbolic link to a folder: not followed/,
    'empty.dcm': /^empty file$/,
  };

  beforeAll(async () => {
    mkdirSync(dir);
    copyFileSync(realSlices()[0], join(dir, 'real.dcm'));
    sparseFile(join(dir, 'huge-2.5GiB.dcm'), Buffer.concat([part10('1.2.840.10008.1.2.1'), endlessElements(64 * 1024)]), 2.5 * GiB);
    sparseFile(join(dir, 'sparse-1.9GiB.dcm'), Buffer.concat([part10('1.2.840.10008.1.2.1'), endlessElements(64 * 1024)]), Math.round(1.9 * GiB));
    writeFileSync(join(dir, 'long-header-1.5MiB.dcm'), Buffer.concat([part10('1.2.840.10008.1.2.1'), endlessElements(1.5 * MiB)]));
    const bomb = Buffer.concat([part10('1.2.840.10008.1.2.1.99'), deflateBomb(endlessElements(4096), 72)]);
    expect(bomb.length).toBeLessThan(1.5 * MiB); // 1.2 MB that inflate to 1.1 GiB
    writeFileSync(join(dir, 'deflate-bomb.dcm'), bomb);
    writeFileSync(join(dir, 'empty.dcm'), '');
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    symlinkSync('/dev/zero', join(dir, 'link-to-dev-zero.dcm'));
    symlinkSync(join(dir, 'loop-b'), join(dir, 'loop-a'));
    symlinkSync(join(dir, 'loop-a'), join(dir, 'loop-b'));
    symlinkSync(join(dir, 'nothing-here'), join(dir, 'dangling'));
    symlinkSync(tmp.dir, join(dir, 'link-to-folder'));
    if (isLinux) {
      symlinkSync('/proc/self/status', join(dir, 'link-into-proc'));
      expected['link-into-proc'] = /a pseudo file under \/proc: never opened/;
    }
    // A listening Unix socket (the path must stay short).
    const sockPath = join(dir, 'sock');
    if (sockPath.length < 100) {
      socket = createServer();
      await new Promise<void>((res, rej) => socket!.once('error', rej).listen(sockPath, res));
      expected.sock = /^a socket, not a file: never opened/;
    }
  });
  afterAll(async () => {
    await new Promise((r) => (socket ? socket.close(r) : r(null)));
    tmp.cleanup();
  });

  it('ctssl index: every odd file skipped with its reason, the real slice indexed, exit 0, peak RSS under 600 MB', async () => {
    // Runs the real CLI in a child process that reports its own peak RSS (worker threads included).
    const wrapper = join(tmp.dir, 'rss-wrapper.mjs');
    const rssFile = join(tmp.dir, 'maxrss');
    writeFileSync(
      wrapper,
      `import { writeFileSync } from 'node:fs';\n` +
        `process.on('exit', () => writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n` +
        `await import(${JSON.stringify(pathToFileURL(join(root, 'bin', 'ctssl.mjs')).href)});\n`,
    );
    const started = Date.now();
    const child = spawn(process.execPath, [wrapper, 'index', dir, '--db', join(tmp.dir, 'cli.sqlite'), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((res) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.once('exit', (c) => {
        clearTimeout(t);
        res(c);
      });
    });
    const seconds = (Date.now() - started) / 1000;
    expect(code, `exit code; stderr: ${stderr.slice(-2000)}`).toBe(0);
    const summary = JSON.parse(stdout) as IndexSummary;
    const peakMB = Number(readFileSync(rssFile, 'utf8')) / 1024;
    console.log(`[security/indexer] ctssl index of the hostile folder: ${seconds.toFixed(1)} s, peak RSS ${peakMB.toFixed(0)} MB`);
    for (const [name, re] of Object.entries(expected)) expect(reasonOf(summary, name), name).toMatch(re);
    for (const k of summary.skipped) expect(k.path.startsWith(dir + '/')).toBe(true); // every reason names its file
    expect(summary.instances).toBe(1);
    expect(summary.cancelled).toBe(false);
    expect(summary.skipped.some((k) => basename(k.path) === 'real.dcm')).toBe(false);
    expect(peakMB).toBeLessThan(600);
  }, 150_000);

  it('the header reader stays bounded on the deflate bomb and the never-ending headers (time and memory)', () => {
    for (const name of ['deflate-bomb.dcm', 'sparse-1.9GiB.dcm', 'long-header-1.5MiB.dcm']) {
      const before = process.memoryUsage().rss;
      const t = Date.now();
      const r = readFileHeader(join(dir, name), statSync(join(dir, name)).size);
      expect('skip' in r, name).toBe(true);
      expect(Date.now() - t, name).toBeLessThan(5000);
      expect(process.memoryUsage().rss - before, name).toBeLessThan(200 * MiB);
    }
  });

  it('the app service: adding the folder ends with every odd file skipped, and the next job may start', async () => {
    const events: IndexProgress[] = [];
    const services = createServices({
      mode: 'server',
      dataDir: join(tmp.dir, 'app'),
      dbPath: join(tmp.dir, 'app.sqlite'),
      emit: (name, payload) => name === 'index.progress' && events.push(payload as IndexProgress),
    });
    try {
      const h = services.handlers;
      const { jobId } = (await h['library.addFolder'](dir)) as { jobId: string };
      const end = await waitForEnd(() => h['library.progress']() as IndexProgress | null, jobId, 60_000);
      expect(end.phase).toBe('done');
      expect(end.summary?.instances).toBe(1);
      for (const [name, re] of Object.entries(expected)) expect(reasonOf(end.summary!, name), name).toMatch(re);
      // Not busy any more: the folder can be indexed again (and removed).
      const again = (await h['library.reindex']()) as { jobId: string };
      expect((await waitForEnd(() => h['library.progress']() as IndexProgress | null, again.jobId, 60_000)).phase).toBe('done');
    } finally {
      await services.close();
    }
  }, 150_000);
});

/** Polls a job's progress until it ends (done, cancelled or error); fails after `ms`. */
async function waitForEnd(progress: () => IndexProgress | null, jobId: string, ms: number): Promise<IndexProgress> {
  const deadline = Date.now() + ms;
  for (;;) {
    const p = progress();
    if (p && p.jobId === jobId && ['done', 'cancelled', 'error'].includes(p.phase)) return p;
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not end within ${ms} ms (last: ${JSON.stringify(p)})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('a failing header worker fails that file, never the job', () => {
  const tmp = tempDir('ctssl-sec-worker-');
  const hostile = new URL('./fixtures/hostile-index-worker.ts', import.meta.url);
  afterAll(() => tmp.cleanup());

  it('a worker that exits, throws or hangs: that file is skipped with the reason, the others are indexed', async () => {
    const dir = join(tmp.dir, 'mixed');
    mkdirSync(dir);
    const [a, b] = realSlices();
    for (const name of ['crash-exit.dcm', 'crash-throw.dcm', 'hang.dcm']) copyFileSync(a, join(dir, name));
    copyFileSync(a, join(dir, 'real-a.dcm'));
    copyFileSync(b, join(dir, 'real-b.dcm'));
    const db = openLibrary(join(tmp.dir, 'mixed.sqlite'));
    try {
      const t = Date.now();
      const s = await indexFolders(db, [dir], { workers: 1, workerEntry: hostile, readerStallMs: 1500 });
      expect(s.cancelled).toBe(false);
      expect(reasonOf(s, 'crash-exit.dcm')).toMatch(/the header reader exited with code 7 while reading this file/);
      expect(reasonOf(s, 'crash-throw.dcm')).toMatch(/the header reader failed: hostile worker: thrown on purpose/);
      expect(reasonOf(s, 'hang.dcm')).toMatch(/did not finish within 2 s/);
      expect(s.skipped).toHaveLength(3);
      expect(s.instances).toBe(2);
      expect(Date.now() - t).toBeLessThan(30_000);
    } finally {
      db.close();
    }
  }, 60_000);

  it('cancel ends a job (the library job API) while the header worker is stuck', async () => {
    const dir = join(tmp.dir, 'stuck');
    mkdirSync(dir);
    copyFileSync(realSlices()[0], join(dir, 'hang.dcm'));
    copyFileSync(realSlices()[1], join(dir, 'real.dcm'));
    const db = openLibrary(join(tmp.dir, 'stuck.sqlite'));
    const events: IndexProgress[] = [];
    const jobs = new IndexJobs(db, (p) => events.push(p), { index: { workers: 1, workerEntry: hostile, readerStallMs: 600_000 } });
    try {
      const mark = join(tmp.dir, 'worker-is-spinning');
      process.env.HOSTILE_WORKER_MARK = mark; // the worker copies the environment when it starts
      const { jobId } = jobs.start([dir]);
      // Wait until the worker spins on hang.dcm.
      const deadline = Date.now() + 30_000;
      while (!existsSync(mark) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      delete process.env.HOSTILE_WORKER_MARK;
      expect(existsSync(mark)).toBe(true);
      expect(jobs.busy).toBe(true);
      const t = Date.now();
      expect(jobs.cancel(jobId)).toBe(true);
      await Promise.race([jobs.idle(), new Promise((_, rej) => setTimeout(() => rej(new Error('the job did not end after cancel')), 15_000))]);
      const ms = Date.now() - t;
      console.log(`[security/indexer] cancel with a stuck worker: job ended in ${ms} ms`);
      expect(jobs.busy).toBe(false);
      expect(jobs.progress()?.phase).toBe('cancelled');
      expect(ms).toBeLessThan(5000); // the indexer stopped itself: no need for the 10 s release
      // The slot is free: a new job starts.
      const next = jobs.start([dir]);
      expect(jobs.cancel(next.jobId)).toBe(true);
      await jobs.idle();
    } finally {
      db.close();
    }
  }, 60_000);

  it('cancel right after the start ends the job, even while the worker is still starting', async () => {
    const dir = join(tmp.dir, 'starting');
    mkdirSync(dir);
    copyFileSync(realSlices()[0], join(dir, 'real.dcm'));
    const db = openLibrary(join(tmp.dir, 'starting.sqlite'));
    try {
      const ac = new AbortController();
      const t = Date.now();
      const job = indexFolders(db, [dir], { workers: 1, signal: ac.signal });
      setTimeout(() => ac.abort(), 5);
      const s = await job;
      expect(s.cancelled).toBe(true);
      expect(Date.now() - t).toBeLessThan(5000);
    } finally {
      db.close();
    }
  });

  it('the app service: cancel ends a running job, and a new one may start', async () => {
    const dir = join(tmp.dir, 'many');
    let n = 0;
    for (let c = 0; c < 40; c++) {
      const sub = join(dir, `copy-${c}`);
      mkdirSync(sub, { recursive: true });
      for (let k = 0; k < 50; k++) for (const f of realSlices()) linkSync(f, join(sub, `${n++}.dcm`));
    }
    const services = createServices({ mode: 'server', dataDir: join(tmp.dir, 'app'), dbPath: join(tmp.dir, 'many.sqlite'), emit: () => {} });
    try {
      const h = services.handlers;
      const { jobId } = (await h['library.addFolder'](dir)) as { jobId: string };
      await expect(Promise.resolve().then(() => h['library.addFolder'](dir))).rejects.toThrow(/already running/);
      expect(await h['library.cancel'](jobId)).toBe(true);
      const end = await waitForEnd(() => h['library.progress']() as IndexProgress | null, jobId, 15_000);
      expect(end.phase).toBe('cancelled');
      const next = (await h['library.addFolder'](dir)) as { jobId: string };
      expect(next.jobId).not.toBe(jobId);
      expect(await h['library.cancel'](next.jobId)).toBe(true);
      await waitForEnd(() => h['library.progress']() as IndexProgress | null, next.jobId, 15_000);
    } finally {
      await services.close();
    }
  }, 60_000);
});

describe.skipIf(process.platform !== 'linux')('pseudo file systems', () => {
  it('refuses /proc/self, /sys and /dev as folders to index, naming the folder and why (nothing is read)', async () => {
    const tmp = tempDir('ctssl-sec-proc-');
    const db = openLibrary(join(tmp.dir, 'proc.sqlite'));
    try {
      const t = Date.now();
      await expect(indexFolders(db, ['/proc/self'])).rejects.toThrow(/^not a folder of files: \/proc\/self is under \/proc: its entries are pseudo files/);
      await expect(indexFolders(db, ['/sys'])).rejects.toThrow(/not a folder of files: \/sys is under \/sys/);
      await expect(indexFolders(db, ['/dev'])).rejects.toThrow(/not a folder of files: \/dev is under \/dev/);
      expect(Date.now() - t).toBeLessThan(2000);
      expect(db.prepare('SELECT COUNT(*) FROM files').pluck().get()).toBe(0);
      // Through the app service: an invalid argument, and no job is left running.
      const services = createServices({ mode: 'server', dataDir: join(tmp.dir, 'app'), dbPath: join(tmp.dir, 'app.sqlite'), emit: () => {} });
      try {
        await expect(Promise.resolve().then(() => services.handlers['library.addFolder']('/proc/self'))).rejects.toThrow(/\/proc\/self/);
        expect(services.handlers['library.progress']()).toBeNull();
      } finally {
        await services.close();
      }
    } finally {
      db.close();
      tmp.cleanup();
    }
  });
});

describe('the pixel decoder refuses deflate bombs', () => {
  it('a deflated dataset whose trailing data inflates to 1.1 GiB: refused at its header + pixel bytes + 1 MiB', async () => {
    const bytes = Buffer.concat([part10('1.2.840.10008.1.2.1.99'), deflateBomb(imageDataset(Buffer.alloc(512)), 72)]);
    const before = process.memoryUsage().rss;
    const t = Date.now();
    expect(() => openPixelSource(new Uint8Array(bytes), { source: 'bomb.dcm' })).toThrow(/bomb\.dcm: .*inflates to more than \d+ bytes: refused/);
    expect(Date.now() - t).toBeLessThan(5000);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * MiB);
    // The same dataset without the bomb decodes.
    const fine = Buffer.concat([part10('1.2.840.10008.1.2.1.99'), deflateRawSync(imageDataset(Buffer.alloc(512, 1)))]);
    const frame = await openPixelSource(new Uint8Array(fine)).decode(0);
    expect(frame.rows).toBe(16);
    expect(frame.pixels[0]).toBe(257);
  });

  it('a deflated image frame (1.2.840.10008.1.2.8.1) that inflates beyond one frame: refused', async () => {
    const frameBomb = deflateBomb(Buffer.alloc(512), 64); // 1 GiB
    const item = (b: Buffer) => {
      const h = Buffer.alloc(8);
      h.writeUInt16LE(0xfffe, 0);
      h.writeUInt16LE(0xe000, 2);
      h.writeUInt32LE(b.length, 4);
      return Buffer.concat([h, b]);
    };
    const pixelHead = Buffer.alloc(12);
    pixelHead.writeUInt16LE(0x7fe0, 0);
    pixelHead.writeUInt16LE(0x0010, 2);
    pixelHead.write('OB', 4, 'latin1');
    pixelHead.writeUInt32LE(0xffffffff, 8);
    const delim = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
    const fragment = frameBomb.length % 2 ? Buffer.concat([frameBomb, Buffer.alloc(1)]) : frameBomb;
    const header = imageDataset(Buffer.alloc(0)).subarray(0, -12); // the elements before the pixel data
    const bytes = Buffer.concat([part10('1.2.840.10008.1.2.8.1'), header, pixelHead, item(Buffer.alloc(0)), item(fragment), delim]);
    const src = openPixelSource(new Uint8Array(bytes), { source: 'frame-bomb.dcm' });
    const before = process.memoryUsage().rss;
    await expect(src.decode(0)).rejects.toThrow(/inflates to more than the 512 bytes it needs: refused/);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * MiB);
  });
});
