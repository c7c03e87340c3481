/**
 * Server mode as a full client (issue 13): packages download from and upload to a real
 * `ctssl serve` (in process) over /files/, with the token, and the folder picker lists the
 * server's folders through files.listFolder. The successful round trip of a real package (export,
 * download, upload, import) runs in e2e/server-client.e2e.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/server/serve';
import { tempDir } from '../helpers';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function http(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('ctssl serve: files between the browser and the server', () => {
  const tmp = tempDir('ctssl-files-');
  let server: RunningServer;
  const pkg = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
  beforeAll(async () => {
    const renderer = join(tmp.dir, 'renderer');
    mkdirSync(renderer);
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
    const data = join(tmp.dir, 'data');
    mkdirSync(join(data, 'exports'), { recursive: true });
    writeFileSync(join(data, 'exports', 'run-3-masked.ctssl.zip'), pkg);
    writeFileSync(join(tmp.dir, 'secret.ctssl.zip'), 'outside the exports folder');
    symlinkSync(join(tmp.dir, 'secret.ctssl.zip'), join(data, 'exports', 'escape.ctssl.zip'));
    server = await startServer({ dataDir: data, dbPath: join(tmp.dir, 'lib.sqlite'), rendererDir: renderer });
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });
  const q = () => `token=${encodeURIComponent(server.token)}`;

  it('downloads an export package with the token, as an attachment named after it, byte for byte', async () => {
    const r = await http(server.port, 'GET', `/files/exports/run-3-masked.ctssl.zip?${q()}`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/zip');
    expect(r.headers['content-disposition']).toBe(`attachment; filename="run-3-masked.ctssl.zip"; filename*=UTF-8''run-3-masked.ctssl.zip`);
    expect(r.headers['content-length']).toBe(String(pkg.length));
    expect(r.body.equals(pkg)).toBe(true);
    expect(r.headers['content-security-policy']).toMatch(/default-src 'none'/);
    const head = await http(server.port, 'HEAD', `/files/exports/run-3-masked.ctssl.zip?${q()}`);
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
  });

  it('refuses without the token, from another origin, outside the exports folder and for other names', async () => {
    expect((await http(server.port, 'GET', '/files/exports/run-3-masked.ctssl.zip')).status).toBe(403);
    expect((await http(server.port, 'GET', '/files/exports/run-3-masked.ctssl.zip?token=wrong')).status).toBe(403);
    expect((await http(server.port, 'GET', `/files/exports/run-3-masked.ctssl.zip?${q()}`, { origin: 'http://evil.example' })).status).toBe(403);
    const escape = await http(server.port, 'GET', `/files/exports/escape.ctssl.zip?${q()}`);
    expect(escape.status).toBe(404);
    expect(escape.body.toString()).not.toContain('outside');
    for (const bad of ['..%2Fsecret.ctssl.zip', '.hidden.zip', '%2e%2e', 'a%00b.zip', 'x%2Fy.zip'])
      expect((await http(server.port, 'GET', `/files/exports/${bad}?${q()}`)).status, bad).toBe(400);
    const missing = await http(server.port, 'GET', `/files/exports/run-9-flip.ctssl.zip?${q()}`);
    expect(missing.status).toBe(404);
    expect(missing.body.toString()).toMatch(/no export package named run-9-flip\.ctssl\.zip/);
    expect((await http(server.port, 'POST', `/files/exports/run-3-masked.ctssl.zip?${q()}`)).status).toBe(405);
  });

  it('takes an upload through the app import and refuses what it refuses, keeping nothing', async () => {
    const auth = { authorization: `Bearer ${server.token}` };
    const garbage = Buffer.from('PK\x03\x04 this is not a package');
    const r = await http(server.port, 'POST', '/files/packages?name=mine.ctssl.zip', { ...auth, 'content-length': String(garbage.length) }, garbage);
    expect(r.status).toBe(400);
    const envelope = JSON.parse(r.body.toString()) as { ok: boolean; error: { code: string; message: string } };
    expect(envelope.ok).toBe(false);
    expect(envelope.error.message).toMatch(/mine\.ctssl\.zip/);
    expect(envelope.error.message).not.toMatch(/uploads[\\/][0-9a-f]{24}/); // the temporary path is not shown
    const uploads = join(tmp.dir, 'data', 'uploads');
    expect(existsSync(uploads) ? readdirSync(uploads) : []).toEqual([]);

    // without the token, without a length, over the cap, without a name, with the wrong method
    expect((await http(server.port, 'POST', '/files/packages?name=a.zip', { 'content-length': '4' }, Buffer.from('abcd'))).status).toBe(403);
    expect((await http(server.port, 'POST', '/files/packages?name=a.zip', { ...auth, 'transfer-encoding': 'chunked' }, Buffer.from('abcd'))).status).toBe(411);
    const big = await http(server.port, 'POST', '/files/packages?name=a.zip', { ...auth, 'content-length': String(3 * 2 ** 30) });
    expect(big.status).toBe(413);
    expect(big.body.toString()).toMatch(/at most 2 GiB/);
    expect((await http(server.port, 'POST', '/files/packages', { ...auth, 'content-length': '4' }, Buffer.from('abcd'))).status).toBe(400);
    expect((await http(server.port, 'GET', `/files/packages?${q()}`)).status).toBe(405);
    // other paths still take no bodies, and the server still answers
    expect((await http(server.port, 'POST', '/', { 'content-length': '4' }, Buffer.from('abcd'))).status).toBeGreaterThanOrEqual(400);
    expect((await http(server.port, 'GET', '/')).status).toBe(200);
  });
});

describe('files.listFolder: the folder picker of server mode', () => {
  const tmp = tempDir('ctssl-picker-');
  let server: RunningServer;
  beforeAll(async () => {
    const renderer = join(tmp.dir, 'renderer');
    mkdirSync(renderer);
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
    const root = join(tmp.dir, 'root');
    for (const d of ['b-studies', 'a-labels', '.cache']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'notes.txt'), 'x');
    writeFileSync(join(root, 'scan.dcm'), 'x');
    mkdirSync(join(tmp.dir, 'elsewhere', 'ct'), { recursive: true });
    symlinkSync(join(tmp.dir, 'elsewhere'), join(root, 'linked'));
    symlinkSync(join(tmp.dir, 'nowhere'), join(root, 'dangling'));
    symlinkSync(join(root, 'notes.txt'), join(root, 'note-link'));
    server = await startServer({ dataDir: join(tmp.dir, 'data'), dbPath: join(tmp.dir, 'lib.sqlite'), rendererDir: renderer });
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('lists sub-folders only, sorted, links with their targets, files counted', async () => {
    const root = join(tmp.dir, 'root');
    const l = await server.services.handlers['files.listFolder'](root);
    expect(l.path).toBe(root);
    expect(l.parent).toBe(tmp.dir);
    expect(l.entries.map((e) => e.name)).toEqual(['.cache', 'a-labels', 'b-studies', 'dangling', 'linked']);
    expect(l.entries.find((e) => e.name === '.cache')!.hidden).toBe(true);
    expect(l.entries.find((e) => e.name === 'linked')!.link).toBe(join(tmp.dir, 'elsewhere'));
    expect(l.entries.find((e) => e.name === 'dangling')!.problem).toMatch(/broken link/);
    expect(l.files).toBe(3); // notes.txt, scan.dcm, and the link to a file
    // following a link lists where it leads, and says so
    const inside = await server.services.handlers['files.listFolder'](join(root, 'linked'));
    expect(inside.path).toBe(join(root, 'linked'));
    expect(inside.real).toBe(join(tmp.dir, 'elsewhere'));
    expect(inside.entries.map((e) => e.name)).toEqual(['ct']);
    // the default is the home folder
    const home = await server.services.handlers['files.listFolder'](undefined);
    expect(home.path).toBe(home.home);
  });

  it('refuses with clear messages: relative, missing, a file, a pseudo file system', async () => {
    const h = server.services.handlers['files.listFolder'];
    await expect(h('relative/path')).rejects.toThrow(/"relative\/path" is not an absolute path/);
    await expect(h(join(tmp.dir, 'root', 'nope'))).rejects.toThrow(/not found/);
    await expect(h(join(tmp.dir, 'root', 'notes.txt'))).rejects.toThrow(/is a regular file, not a folder/);
    await expect(h('/proc')).rejects.toThrow(/pseudo file system/);
  });
});
