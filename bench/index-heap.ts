/**
 * Where the indexer's memory goes: indexes the first N patient folders of the bench corpus
 * (bench/.work/corpus, made by `npm run bench:index`) in this process and prints peak RSS and the
 * live JS heap after a full GC. Run: `node --expose-gc --import tsx bench/index-heap.ts 151`.
 * Measured 2026-11-27: 19 folders (2.5k files) peak RSS 146 MB, heap after GC 7 MB; 151 folders
 * (20k files) peak RSS 220 MB, heap after GC 7 MB: nothing is kept per file; RSS grows because
 * V8 collects garbage lazily while allocation is fast.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { openLibrary } from '../src/library/db/schema';
import { indexFolders } from '../src/library/indexing/indexer';
import { root } from './common';

const n = Number(process.argv[2] ?? 151);
const corpus = join(root, 'bench', '.work', 'corpus');
const dirs = readdirSync(corpus).sort().slice(0, n).map((d) => join(corpus, d));
const dbPath = join(tmpdir(), `ctssl-index-heap-${process.pid}.sqlite`);
const db = openLibrary(dbPath);
let peak = 0;
const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
const s = await indexFolders(db, dirs);
clearInterval(t);
(globalThis as { gc?: () => void }).gc?.();
const mb = (x: number) => (x / 2 ** 20).toFixed(0);
console.log(`${dirs.length} folders, ${s.files} files: peak RSS ${mb(Math.max(peak, process.resourceUsage().maxRSS * 1024))} MB, JS heap after GC ${mb(process.memoryUsage().heapUsed)} MB`);
db.close();
for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) rmSync(f, { force: true });
