/**
 * `npm run bench:index`: header indexing throughput on >= 20,000 real-sized CT files, cold and
 * warm, against a plain pydicom loop (Debian's python3-pydicom) over the same files in the same run;
 * peak memory at growing file counts to show it stays flat. Writes the "Header indexing" section
 * of docs/benchmarks.md.
 *
 * The corpus is made from real LIDC-IDRI slices (../shared/data, else the committed slab), copied
 * with new Study/Series/SOP UIDs and PatientID (same lengths, rewritten in place), into
 * bench/.work/corpus (kept between runs; delete it to rebuild).
 *
 * Options: --files N (default 20000), --skip-cold (when the page cache cannot be dropped anyway).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { root, replaceSection } from './common';

const args = process.argv.slice(2);
const target = Number(args[args.indexOf('--files') + 1]) || 20000;
const work = join(root, 'bench', '.work');
const corpus = join(work, 'corpus');
mkdirSync(work, { recursive: true });

function sourceSlices(): string[] {
  const shared = join(root, '..', 'shared', 'data', 'lidc-c2c-full');
  const base = existsSync(shared) ? shared : join(root, 'test', 'fixtures', 'dicom', 'lidc-0001');
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.dcm')) out.push(join(d, e.name));
    }
  };
  walk(base);
  return out.sort();
}

/** Overwrites a string element's value in place with a same-length variant carrying `tag`. */
function stamp(bytes: Uint8Array, ds: dicomParser.DataSet, tagName: string, mark: string) {
  const el = ds.elements[tagName];
  if (!el || el.length < mark.length + 4) return;
  let value = '';
  for (let i = 0; i < el.length; i++) value += String.fromCharCode(bytes[el.dataOffset + i]);
  const trimmed = value.replace(/[\0 ]+$/, '');
  // Replace a run of digits before the last 6 characters: keeps UIDs valid and distinct per slice.
  const at = Math.max(0, trimmed.length - 6 - mark.length);
  const next = trimmed.slice(0, at) + mark + trimmed.slice(at + mark.length);
  for (let i = 0; i < next.length; i++) bytes[el.dataOffset + i] = next.charCodeAt(i);
}

function buildCorpus(): number {
  const marker = join(work, 'corpus.complete');
  if (existsSync(marker) && Number(readFileSync(marker, 'utf8')) >= target) return Number(readFileSync(marker, 'utf8'));
  rmSync(corpus, { recursive: true, force: true });
  const slices = sourceSlices().map((p) => new Uint8Array(readFileSync(p)));
  const copies = Math.ceil(target / slices.length);
  let n = 0;
  const t0 = Date.now();
  for (let c = 0; c < copies; c++) {
    const dir = join(corpus, `patient-${String(c).padStart(5, '0')}`);
    mkdirSync(dir, { recursive: true });
    const mark = String(c).padStart(6, '0');
    slices.forEach((src, i) => {
      const bytes = src.slice();
      const ds = dicomParser.parseDicom(bytes, { untilTag: 'x7fe00010' });
      for (const t of ['x00020003', 'x00080018', 'x0020000d', 'x0020000e']) stamp(bytes, ds, t, mark);
      const pid = ds.elements['x00100020'];
      if (pid) {
        const v = `B${mark}`.padEnd(pid.length, ' ');
        for (let k = 0; k < pid.length; k++) bytes[pid.dataOffset + k] = v.charCodeAt(k);
      }
      writeFileSync(join(dir, `${String(i).padStart(4, '0')}`), bytes); // no extension, like many exports
      n++;
    });
    if (c % 20 === 0) process.stderr.write(`\rcorpus: ${n} files`);
  }
  writeFileSync(marker, String(n));
  process.stderr.write(`\rcorpus: ${n} files written in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return n;
}

function dropCaches(): boolean {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

interface Run {
  label: string;
  files: number;
  seconds: number;
  filesPerSecond: number;
  maxRssMb: number;
}

function timed(label: string, cmd: string, cmdArgs: string[]): { run: Run; stdout: string } {
  const res = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...cmdArgs], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (res.status !== 0) throw new Error(`${label} failed: ${res.stderr}`);
  const last = res.stderr.trim().split('\n').pop()!;
  const [secs, rssKb] = last.split(' ').map(Number);
  return { run: { label, files: 0, seconds: secs, filesPerSecond: 0, maxRssMb: Math.round(rssKb / 1024) }, stdout: res.stdout };
}

function ctssl(label: string, db: string, folders: string[], expectFiles: number): Run {
  const { run, stdout } = timed(label, process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'index', ...folders, '--db', db, '--json']);
  const s = JSON.parse(stdout) as { files: number; instances: number; seconds: number; parsed: number };
  if (s.files !== expectFiles) throw new Error(`${label}: indexed ${s.files} files, expected ${expectFiles}`);
  run.files = s.files;
  run.filesPerSecond = Math.round(s.files / run.seconds);
  return run;
}

function pydicom(label: string, folders: string[]): Run {
  const { run, stdout } = timed(label, '/usr/bin/python3', [join(root, 'bench', 'index_pydicom.py'), ...folders]);
  const r = JSON.parse(stdout) as { files: number; read: number; pydicom: string };
  run.files = r.files;
  run.filesPerSecond = Math.round(r.files / run.seconds);
  pydicomVersion = r.pydicom;
  return run;
}
let pydicomVersion = '?';

const total = buildCorpus();
const dirs = readdirSync(corpus)
  .filter((d) => d.startsWith('patient-'))
  .sort()
  .map((d) => join(corpus, d));
const perDir = total / dirs.length;
const db = (name: string) => {
  const p = join(work, `${name}.sqlite`);
  for (const ext of ['', '-wal', '-shm']) rmSync(p + ext, { force: true });
  return p;
};

// Each measurement is repeated (interleaving ctssl and pydicom) and the fastest kept, so that
// other work on a shared machine disturbs the comparison less.
const repeats = Number(args[args.indexOf('--repeats') + 1]) || 3;
const best = (xs: Run[]) => xs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
const runs: Run[] = [];
const canDrop = !args.includes('--skip-cold') && dropCaches();
if (canDrop) {
  const a: Run[] = [];
  const b: Run[] = [];
  for (let r = 0; r < repeats; r++) {
    dropCaches();
    a.push(ctssl('ctssl index, cold cache, new database', db('cold'), [corpus], total));
    dropCaches();
    b.push(pydicom('pydicom loop, cold cache', [corpus]));
  }
  runs.push(best(a), best(b));
}
// Warm the cache, then measure both again.
pydicom('warm-up', [corpus]);
{
  const a: Run[] = [];
  const b: Run[] = [];
  const c: Run[] = [];
  for (let r = 0; r < repeats; r++) {
    a.push(ctssl('ctssl index, warm cache, new database', db('warm'), [corpus], total));
    b.push(pydicom('pydicom loop, warm cache', [corpus]));
    c.push(ctssl('ctssl index, re-run on the same database (nothing changed)', join(work, 'warm.sqlite'), [corpus], total));
  }
  runs.push(best(a), best(b), best(c));
}

// Memory against the number of files.
const memory: Run[] = [];
for (const frac of [0.125, 0.25, 0.5, 1]) {
  const k = Math.max(1, Math.round(dirs.length * frac));
  memory.push(ctssl(`${Math.round(k * perDir)} files`, db(`mem-${k}`), dirs.slice(0, k), Math.round(k * perDir)));
}

const byLabel = (l: string) => runs.find((r) => r.label.startsWith(l));
const ratio = (a?: Run, b?: Run) => (a && b ? (a.filesPerSecond / b.filesPerSecond).toFixed(1) + 'x' : 'n/a');
const cpu = cpus()[0]?.model ?? 'unknown CPU';
const lines = [
  `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC (load average ${loadavg()[0].toFixed(1)} at the end; each row is the fastest of ${repeats} interleaved runs) on ${cpus().length} x ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, pydicom ${pydicomVersion}. Command: \`npm run bench:index\`.`,
  '',
  `Corpus: ${total} real-sized CT files (${perDir} LIDC-IDRI-0001 slices of 512x512, ~0.5 MB each, copied ${dirs.length} times with new UIDs and patient IDs, no file extension).` +
    (canDrop ? ' Cold = page cache dropped before the run.' : ' The page cache could not be dropped here, so no cold numbers.'),
  '',
  '| run | files | seconds | files/s | peak RSS (MB) |',
  '|---|---|---|---|---|',
  ...runs.map((r) => `| ${r.label} | ${r.files} | ${r.seconds.toFixed(2)} | ${r.filesPerSecond} | ${r.maxRssMb} |`),
  '',
  `ctssl / pydicom throughput: warm cache ${ratio(byLabel('ctssl index, warm'), byLabel('pydicom loop, warm'))}` +
    (canDrop ? `, cold cache ${ratio(byLabel('ctssl index, cold'), byLabel('pydicom loop, cold'))}` : '') +
    ' (target: at least 3x).',
  '',
  'Peak memory of `ctssl index` (new database) against the number of files:',
  '',
  '| files | seconds | files/s | peak RSS (MB) |',
  '|---|---|---|---|',
  ...memory.map((r) => `| ${r.files} | ${r.seconds.toFixed(2)} | ${r.filesPerSecond} | ${r.maxRssMb} |`),
];
replaceSection('Header indexing', lines.join('\n'));
console.log(lines.join('\n'));
