/** Shared test helpers: temp folders, fixture paths, the optional full data set. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const fixtures = join(root, 'test', 'fixtures', 'dicom');
/** The complete real data set beside the project, when present. */
export const sharedData = resolve(process.env.CTSSL_SHARED_DATA ?? join(root, '..', 'shared', 'data'));
export const hasSharedData = existsSync(join(sharedData, 'README.md'));
if (!hasSharedData) console.warn(`[tests] ${sharedData} not found: tests over the complete data set are skipped`);

export function tempDir(prefix = 'ctssl-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
