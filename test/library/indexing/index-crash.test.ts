import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { linkSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openLibrary } from '../../../src/library/db/schema';
import { indexFolders } from '../../../src/library/indexing/indexer';
import { fixtures, root, tempDir } from '../../helpers';

/** Builds a folder of many real files (hard links to the LIDC slab, in subfolders). */
function manyFiles(dir: string, copies: number): number {
  const slab = join(fixtures, 'lidc-0001');
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.dcm')) found.push(join(d, e.name));
    }
  };
  walk(slab);
  let n = 0;
  for (let c = 0; c < copies; c++) {
    const sub = join(dir, `copy-${String(c).padStart(4, '0')}`);
    mkdirSync(sub, { recursive: true });
    for (const f of found) linkSync(f, join(sub, `${n++}.dcm`));
  }
  return n;
}

describe('a killed indexing run (kill -9)', () => {
  it('leaves an intact database, and a re-run completes the job with the same result as a clean run', async () => {
    const tmp = tempDir();
    try {
      const data = join(tmp.dir, 'data');
      const total = manyFiles(data, 240); // 4080 files
      const dbFile = join(tmp.dir, 'killed.sqlite');
      const child = spawn(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'index', data, '--db', dbFile], { stdio: 'ignore' });
      // Wait until some batches are committed, then kill without warning.
      const watcher = openLibrary(dbFile);
      let committed = 0;
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        committed = watcher.prepare('SELECT COUNT(*) FROM files').pluck().get() as number;
        if (committed > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      watcher.close();
      expect(committed).toBeGreaterThan(0);

      const db = openLibrary(dbFile);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const before = db.prepare('SELECT COUNT(*) FROM files').pluck().get() as number;
      expect(before).toBeLessThan(total); // it really was killed mid-run
      const resumed = await indexFolders(db, [data]);
      expect(resumed.parsed).toBeLessThanOrEqual(total - before);
      db.close();

      const clean = openLibrary(join(tmp.dir, 'clean.sqlite'));
      const reference = await indexFolders(clean, [data]);
      clean.close();
      const pick = (s: typeof reference) => [s.files, s.instances, s.series, s.studies, s.patients, s.duplicates, s.skipped.length];
      expect(pick(resumed)).toEqual(pick(reference));
      expect(reference.instances).toBe(17);
      expect(reference.duplicates).toBe(total - 17);
    } finally {
      tmp.cleanup();
    }
  });
});
