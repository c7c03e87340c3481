/**
 * `ctssl serve`'s GET /files/jobs/<jobId>.tar under hostile requests and a tampered job folder:
 * the token is required, only a job id names a job (no paths, no traversal), the folder comes from
 * the job's home record, a shard name that is a path or a shard that is a link is refused, and a
 * good job arrives as a tar of exactly the announced length holding the job's files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/server/serve';
import { PROGRAM_FILES } from '../../src/host/cluster-job/job-files';
import { tempDir } from '../helpers';

const JOB = '0a1b2c3d-0000-4000-8000-00000000abcd';

function get(port: number, path: string, o: { method?: string; token?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.token ? { authorization: `Bearer ${o.token}` } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The entry names and sizes of a tar (ustar headers, as tar-stream writes them). */
function tarEntries(tar: Buffer): { name: string; size: number }[] {
  const out: { name: string; size: number }[] = [];
  for (let at = 0; at + 512 <= tar.length; ) {
    const name = tar.subarray(at, at + 100).toString('latin1').replace(/\0.*$/s, '');
    if (!name) break;
    const size = parseInt(tar.subarray(at + 124, at + 136).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
    out.push({ name, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

describe('ctssl serve: GET /files/jobs/<jobId>.tar', () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, 'data');
  const jobDir = join(tmp.dir, 'my job');
  let server: RunningServer;

  const writeJob = (shards: unknown[]) => {
    mkdirSync(join(jobDir, 'data'), { recursive: true });
    for (const f of PROGRAM_FILES) writeFileSync(join(jobDir, f), `# ${f}\n`);
    writeFileSync(join(jobDir, 'config.json'), '{"task":"masked"}');
    writeFileSync(join(jobDir, 'job.json'), JSON.stringify({ jobId: JOB }));
    writeFileSync(join(jobDir, 'init.safetensors'), Buffer.alloc(1000, 7));
    writeFileSync(join(jobDir, 'data', 'index.npy'), Buffer.alloc(700, 1));
    writeFileSync(join(jobDir, 'data', 'shard-00000.npy'), Buffer.alloc(513, 2));
    writeFileSync(join(jobDir, 'data', 'manifest.json'), JSON.stringify({ shards }));
  };

  beforeAll(async () => {
    const renderer = join(tmp.dir, 'renderer');
    mkdirSync(renderer);
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
    mkdirSync(join(dataDir, 'cluster-jobs', JOB), { recursive: true });
    writeFileSync(join(dataDir, 'cluster-jobs', JOB, 'job.json'), JSON.stringify({ jobId: JOB, exportedTo: jobDir }));
    writeJob([{ file: 'shard-00000.npy', slices: 1 }]);
    server = await startServer({ dataDir, dbPath: join(tmp.dir, 'lib.sqlite'), rendererDir: renderer, log: () => undefined });
  });
  afterAll(async () => {
    await server?.close();
    tmp.cleanup();
  });

  it('streams the job as a tar of the announced length, with the token only', async () => {
    const r = await get(server.port, `/files/jobs/${JOB}.tar`, { token: server.token });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/x-tar');
    expect(r.headers['content-disposition']).toContain('filename="my_job.tar"');
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
    const entries = tarEntries(r.body);
    expect(entries.map((e) => e.name)).toEqual([...PROGRAM_FILES, 'config.json', 'job.json', 'init.safetensors', 'data/manifest.json', 'data/index.npy', 'data/shard-00000.npy'].map((f) => `my_job/${f}`));
    expect(entries.find((e) => e.name.endsWith('shard-00000.npy'))!.size).toBe(513);
    // HEAD: the same length, no body
    const head = await get(server.port, `/files/jobs/${JOB}.tar`, { method: 'HEAD', token: server.token });
    expect(head.headers['content-length']).toBe(r.headers['content-length']);
    expect(head.body.length).toBe(0);
    // the token as a query parameter, as a download link sends it
    expect((await get(server.port, `/files/jobs/${JOB}.tar?token=${server.token}`)).status).toBe(200);
  });

  it('refuses requests without the token, by another method, or naming anything but a job id', async () => {
    expect((await get(server.port, `/files/jobs/${JOB}.tar`)).status).toBe(403);
    expect((await get(server.port, `/files/jobs/${JOB}.tar`, { token: 'x'.repeat(43) })).status).toBe(403);
    expect((await get(server.port, `/files/jobs/${JOB}.tar`, { method: 'POST', token: server.token })).status).toBe(405);
    for (const path of ['/files/jobs/../../etc/passwd', `/files/jobs/${JOB}`, `/files/jobs/${JOB}.tar/x`, '/files/jobs/%2e%2e%2fcluster-jobs.tar', `/files/jobs/${JOB.toUpperCase()}.tar`])
      expect((await get(server.port, path, { token: server.token })).status, path).toBe(400);
    const unknown = await get(server.port, '/files/jobs/00000000-0000-4000-8000-000000000000.tar', { token: server.token });
    expect(unknown.status).toBe(404);
    expect(unknown.body.toString()).toMatch(/record of job .* is missing/);
  });

  it('refuses a tampered folder: a shard name that is a path, a shard that is a link', async () => {
    writeJob([{ file: '../../../etc/passwd', slices: 1 }]);
    const path = await get(server.port, `/files/jobs/${JOB}.tar`, { token: server.token });
    expect(path.status).toBe(404);
    expect(path.body.toString()).toMatch(/is not a shard name/);
    writeJob([{ file: 'shard-00000.npy', slices: 1 }]);
    rmSync(join(jobDir, 'data', 'shard-00000.npy'));
    symlinkSync('/etc/hostname', join(jobDir, 'data', 'shard-00000.npy'));
    const link = await get(server.port, `/files/jobs/${JOB}.tar`, { token: server.token });
    expect(link.status).toBe(404);
    expect(link.body.toString()).toMatch(/shard-00000\.npy is a symbolic link: refused/);
    // a folder that now holds another job
    writeJob([{ file: 'shard-00000.npy', slices: 1 }]);
    writeFileSync(join(jobDir, 'job.json'), JSON.stringify({ jobId: '11111111-0000-4000-8000-000000000000' }));
    expect((await get(server.port, `/files/jobs/${JOB}.tar`, { token: server.token })).body.toString()).toMatch(/now holds another job/);
  });
});
