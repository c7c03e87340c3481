/**
 * A cluster job folder as one download: a tar stream of the job's own files (the program, the
 * config, job.json, init.safetensors, data/manifest.json, data/index.npy and the shards the
 * manifest lists), made while it is sent, for `ctssl serve`'s GET /files/jobs/<jobId>.tar.
 *
 * Why tar and not the zip the weights packages are (fflate's zipSync, in memory): a job folder
 * holds gigabytes of shards, which have to be streamed from disk, and zip without ZIP64 (fflate
 * writes none) stops at 4 GiB; a tar streams any size, `tar xf` and Python's tarfile read it on
 * any cluster, and its exact length is known before the first byte (so the browser shows
 * progress). The tar format is written by tar-stream.
 *
 * The folder is found from the job's home record (<data>/cluster-jobs/<jobId>/job.json, written by
 * the export), never from a path the client sends; every file is opened without following links
 * and must be a regular file; the shard names come from data/manifest.json and must be
 * shard-NNNNN.npy; the folder's job.json must name the same job.
 */
import { closeSync, createReadStream, lstatSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { jobHome } from './export-job';
import { PROGRAM_FILES } from './job-files';
import { openRegular, readRegularCapped } from './regular-file';

export interface JobArchiveEntry {
  /** Name inside the archive: the top folder, then the path in the job folder. */
  name: string;
  path: string;
  size: number;
  mtime: Date;
}

export interface JobArchive {
  jobId: string;
  /** The job folder on this machine. */
  dir: string;
  /** The download's file name (the job folder's name + .tar). */
  fileName: string;
  entries: JobArchiveEntry[];
  /** The archive's exact length in bytes. */
  bytes: number;
}

const BLOCK = 512;
/** Largest file a plain ustar header holds (11 octal digits); larger ones would need pax headers, which we do not count. */
const USTAR_MAX = 8 ** 11 - 1;
const JSON_CAP = 64 * 2 ** 20;

function readJsonCapped(path: string, what: string): unknown {
  const buf = readRegularCapped(path, what, JSON_CAP);
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
}

/** What the download of a job holds, and its length; throws a message naming what is wrong. */
export function jobArchive(dataDir: string, jobId: string): JobArchive {
  const home = jobHome(dataDir, jobId);
  const record = readJsonCapped(join(home, 'job.json'), `the record of job ${jobId}`) as { exportedTo?: unknown };
  if (typeof record?.exportedTo !== 'string') throw new Error(`the record of job ${jobId} names no job folder`);
  const dir = record.exportedTo;
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw new Error(`the folder of job ${jobId} (${dir}) is gone or is not a folder`);
  const inFolder = readJsonCapped(join(dir, 'job.json'), `${dir}/job.json`) as { jobId?: unknown };
  if (inFolder?.jobId !== jobId) throw new Error(`${dir} now holds another job (${String(inFolder?.jobId).slice(0, 40)}): export it again`);
  const manifest = readJsonCapped(join(dir, 'data', 'manifest.json'), `${dir}/data/manifest.json`) as { shards?: unknown };
  const shards = Array.isArray(manifest?.shards) ? manifest.shards : null;
  if (!shards || shards.length > 1_000_000) throw new Error(`${dir}/data/manifest.json lists no shards`);
  const shardFiles = shards.map((s: unknown) => {
    const f = (s as { file?: unknown })?.file;
    if (typeof f !== 'string' || !/^shard-\d{5,7}\.npy$/.test(f)) throw new Error(`${dir}/data/manifest.json: shard file ${JSON.stringify(f)} is not a shard name`);
    return `data/${f}`;
  });
  const top = basename(dir).replace(/[^\w.-]+/g, '_').replace(/^[._]+/, '').slice(0, 60) || `ctssl-job-${jobId.slice(0, 8)}`;
  const files = [...PROGRAM_FILES, 'config.json', 'job.json', 'init.safetensors', 'data/manifest.json', 'data/index.npy', ...shardFiles];
  let bytes = 2 * BLOCK;
  const entries = files.map((f) => {
    const { fd, size, mtime } = openRegular(join(dir, f), `${dir}/${f}`);
    closeSync(fd);
    if (size > USTAR_MAX) throw new Error(`${dir}/${f} is ${size} bytes: larger than a tar entry holds here (8 GiB); export with smaller shards`);
    bytes += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    return { name: `${top}/${f}`, path: join(dir, f), size, mtime };
  });
  return { jobId, dir, fileName: `${top}.tar`, entries, bytes };
}

/**
 * The archive as a stream: one entry after the other, each file read through a descriptor opened
 * without following links, exactly the size counted (a file that changed size since fails the
 * stream rather than sending a wrong archive).
 */
export function packJobArchive(a: JobArchive): Readable {
  const pack = tarPack();
  let current: Readable | null = null;
  const next = (i: number): void => {
    if (i === a.entries.length) {
      pack.finalize();
      return;
    }
    const e = a.entries[i];
    let opened: ReturnType<typeof openRegular>;
    try {
      opened = openRegular(e.path, e.path);
      if (opened.size !== e.size) {
        closeSync(opened.fd);
        throw new Error(`${e.path} changed size while the job was being sent (${e.size} -> ${opened.size} bytes)`);
      }
    } catch (err) {
      pack.destroy(err as Error);
      return;
    }
    const entry = pack.entry({ name: e.name, size: e.size, mode: 0o644, mtime: e.mtime, type: 'file' }, (err?: Error | null) => {
      if (err) pack.destroy(err);
      else next(i + 1);
    });
    const src = e.size === 0 ? Readable.from([]) : createReadStream('', { fd: opened.fd, start: 0, end: e.size - 1, autoClose: true });
    if (e.size === 0) closeSync(opened.fd);
    current = src;
    src.on('error', (err: Error) => pack.destroy(err));
    src.pipe(entry as unknown as NodeJS.WritableStream);
  };
  next(0);
  // A Node stream for pipeline(); a client that goes away ends the packing (and closes its files).
  const out = Readable.from(pack);
  out.on('close', () => {
    current?.destroy();
    pack.destroy();
  });
  return out;
}
