import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { createServices, type Services } from '../../src/host/services';
import { dispatch, type Events } from '../../src/shared/contract';
import { indexFolders } from '../../src/library/indexing/indexer';
import { writeCohort } from '../../src/library/synth/synth-writer';
import { defaultOptions } from '../../src/core/synth/plan';
import { jobArchive, packJobArchive } from '../../src/host/cluster-job/job-archive';
import { tempDir } from '../helpers';

/**
 * The cluster job from the app's side: jobs.export / jobs.cancelExport / jobs.import through the
 * handler table every door dispatches to (arguments validated by the contract), progress events,
 * a cancelled export leaving nothing behind, and the job as one tar download (what the server's
 * GET /files/jobs/<jobId>.tar streams), read back by a tar reader: the same files, byte for byte,
 * and exactly the length announced. (Training the job and importing its output: cluster-job-ddp
 * and e2e/cluster-job.e2e.ts.)
 */
describe('cluster job from the app: jobs.export, cancel, the tar download, jobs.import refusals', () => {
  const tmp = tempDir();
  const cohort = join(tmp.dir, 'cohort');
  const dataDir = join(tmp.dir, 'data');
  let services: Services;
  const progress: Events['jobs.exportProgress'][] = [];
  const request = { kind: 'pretrain' as const, task: 'masked' as const, preset: 'tiny' as const, steps: 4, batchSize: 2, seed: 3, filter: { modality: 'CT' }, fractions: { train: 0.5, val: 0.17, test: 0.33 } };

  beforeAll(async () => {
    await writeCohort({ ...defaultOptions(6, 3), slices: 6, size: 64, peFraction: 0 }, cohort, { jobs: 1 });
    services = createServices({
      mode: 'server',
      dataDir,
      dbPath: join(tmp.dir, 'lib.sqlite'),
      emit: (event, payload) => {
        if (event === 'jobs.exportProgress') progress.push(payload as Events['jobs.exportProgress']);
      },
    });
    await indexFolders(services.db, [cohort]);
  }, 120_000);

  afterAll(async () => {
    await services?.close();
    tmp.cleanup();
  });

  const call = async (channel: string, ...args: unknown[]) => dispatch(services.handlers, channel, args);

  it('exports the form request into a new folder under <data>/jobs with progress, and streams it as a tar', async () => {
    const env = await call('jobs.export', { request, requestId: 'e1' });
    expect(env.ok, JSON.stringify(env)).toBe(true);
    const r = (env as { value: import('../../src/shared/results').ClusterJobExport }).value;
    expect(r.dir.startsWith(join(dataDir, 'jobs', 'job-masked-tiny-'))).toBe(true);
    for (const f of ['train.py', 'job.json', 'config.json', 'init.safetensors', 'data/manifest.json', 'data/index.npy', 'data/shard-00000.npy']) expect(existsSync(join(r.dir, f)), f).toBe(true);
    expect(r.commands.oneNode).toBe(`cd ${r.dir} && torchrun --nproc_per_node=N train.py`);
    expect(r.commands.importBack).toBe(`ctssl import ${r.dir}/output`);
    const total = r.slices.train + r.slices.val;
    expect(progress.filter((p) => p.requestId === 'e1').at(-1)).toEqual({ requestId: 'e1', done: total, total });

    const archive = jobArchive(dataDir, r.jobId);
    expect(archive.fileName).toBe(`${r.dir.split('/').pop()}.tar`);
    const chunks: Buffer[] = [];
    for await (const c of packJobArchive(archive)) chunks.push(c as Buffer);
    const tar = Buffer.concat(chunks);
    expect(tar.length).toBe(archive.bytes);
    const seen = new Map<string, Buffer>();
    const ex = extract();
    ex.on('entry', (h, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => {
        seen.set(h.name, Buffer.concat(parts));
        next();
      });
    });
    await new Promise<void>((res, rej) => {
      ex.on('finish', () => res());
      ex.on('error', rej);
      Readable.from([tar]).pipe(ex);
    });
    const top = archive.fileName.replace(/\.tar$/, '');
    expect([...seen.keys()].sort()).toEqual(
      ['README.md', 'config.json', 'data/index.npy', 'data/manifest.json', 'data/shard-00000.npy', 'init.safetensors', 'job.json', 'model.py', 'slurm.sbatch', 'train.py'].map((f) => `${top}/${f}`),
    );
    for (const [name, bytes] of seen) expect(Buffer.compare(bytes, readFileSync(join(r.dir, name.slice(top.length + 1)))), name).toBe(0);

    // a shard replaced by a link is refused, naming it; so is a folder that now holds another job
    const shard = join(r.dir, 'data', 'shard-00000.npy');
    renameSync(shard, `${shard}.real`);
    symlinkSync(`${shard}.real`, shard);
    expect(() => jobArchive(dataDir, r.jobId)).toThrow(/shard-00000\.npy is a symbolic link: refused/);
    rmSync(shard);
    renameSync(`${shard}.real`, shard);
    expect(() => jobArchive(dataDir, '00000000-0000-4000-8000-000000000000')).toThrow(/record of job 00000000-0000-4000-8000-000000000000 is missing/);
  }, 120_000);

  it('exports an existing run with its own config and split (runId); request and runId are one or the other', async () => {
    const created = await call('runs.create', { ...request, name: 'to the cluster' });
    expect(created.ok, JSON.stringify(created)).toBe(true);
    const run = (created as { value: { id: number; dir: string } }).value;
    const env = await call('jobs.export', { runId: run.id, requestId: 'r1' });
    expect(env.ok, JSON.stringify(env)).toBe(true);
    const r = (env as { value: import('../../src/shared/results').ClusterJobExport }).value;
    const job = JSON.parse(readFileSync(join(r.dir, 'job.json'), 'utf8')) as { manifestHash: string };
    const manifest = JSON.parse(readFileSync(join(run.dir, 'manifest.json'), 'utf8')) as { hash: string };
    expect(job.manifestHash).toBe(manifest.hash);
    expect(JSON.parse(readFileSync(join(r.dir, 'config.json'), 'utf8')).name).toBe('to the cluster');
    expect(JSON.stringify(await call('jobs.export', { request, runId: run.id }))).toMatch(/jobs\.export: argument 0: give request \(a configuration\) or runId/);
    expect(JSON.stringify(await call('jobs.export', {}))).toMatch(/give request \(a configuration\) or runId/);
    expect(JSON.stringify(await call('jobs.export', { runId: 9999 }))).toMatch(/jobs\.export: argument 0\.runId: no run with id 9999/);
  }, 120_000);

  it('a cancelled export leaves no folder; bad arguments are refused naming the field', async () => {
    const parent = join(tmp.dir, 'jobs-here');
    const before = existsSync(parent) ? readdirSync(parent).length : 0;
    expect(before).toBe(0);
    // no such folder for the job
    const missing = await call('jobs.export', { request, folder: parent });
    expect(missing.ok).toBe(false);
    expect(JSON.stringify(missing)).toMatch(/jobs\.export: folder for the job not found/);
    // cancelled as soon as it reports progress
    const { mkdirSync } = await import('node:fs');
    mkdirSync(parent);
    const running = call('jobs.export', { request, folder: parent, requestId: 'c1', dtype: 'uint8' });
    expect(await call('jobs.cancelExport', 'c1')).toEqual({ ok: true, value: true });
    const env = await running;
    expect(env.ok).toBe(false);
    expect((env as { error: { code: string } }).error.code).toBe('cancelled');
    expect(readdirSync(parent)).toEqual([]);
    expect(await call('jobs.cancelExport', 'c1')).toEqual({ ok: true, value: false });
    // unknown keys, a path as init, a bad dtype: refused by the contract or the services
    expect(JSON.stringify(await call('jobs.export', { request, out: '/tmp' }))).toMatch(/jobs\.export: arguments?/);
    expect(JSON.stringify(await call('jobs.export', { request, dtype: 'float64' }))).toMatch(/jobs\.export: argument 0\.dtype/);
    expect(JSON.stringify(await call('jobs.export', { request: { ...request, init: '/etc' } }))).toMatch(/jobs\.export: argument 0\.request\.init/);
  }, 120_000);

  it('jobs.import refuses what is not a job output, naming the folder', async () => {
    const notOutput = join(tmp.dir, 'cohort');
    const env = await call('jobs.import', notOutput);
    expect(env.ok).toBe(false);
    expect(JSON.stringify(env)).toMatch(/no checkpoint/);
    expect(JSON.stringify(await call('jobs.import', 'relative/path'))).toMatch(/not an absolute path/);
    expect(JSON.stringify(await call('jobs.import', join(tmp.dir, 'lib.sqlite')))).toMatch(/not a folder/);
    expect(statSync(dataDir).isDirectory()).toBe(true);
  });

  it('Electron: a folder dropped on a window is granted as a folder (a job output), files as before, pseudo file systems refused', async () => {
    const electron = createServices({ mode: 'electron', dataDir: join(tmp.dir, 'edata'), dbPath: join(tmp.dir, 'e.sqlite'), emit: () => {} });
    try {
      expect(electron.grantDropped(7, cohort)).toBe(cohort);
      expect(electron.grantDropped(7, join(tmp.dir, 'lib.sqlite'))).toBe(join(tmp.dir, 'lib.sqlite'));
      expect(() => electron.grantDropped(7, '/proc/self')).toThrow(/drop: dropped folder \/proc\/self is on a pseudo file system/);
      // the dropped folder reaches jobs.import of that window, which checks it as a job output
      const env = await dispatch(electron.forWindow(7), 'jobs.import', [cohort]);
      expect(JSON.stringify(env)).toMatch(/no checkpoint/);
    } finally {
      await electron.close();
    }
  });
});
