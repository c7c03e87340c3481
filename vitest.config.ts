import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Two projects, both run by `vitest run` (and `npm test`):
 * - `unit` (`npm run test:unit`, seconds): pure tests of src/core and of the renderer's logic
 *   (test/core, test/renderer), in process: no child processes, no database, no files written.
 * - `integration` (`npm run test:integration`, minutes): everything else, on real DICOM, SQLite,
 *   trainer processes, the server and the CLI (test/library, test/host, test/server,
 *   test/security and the end-to-end tests of a run at the top of test/).
 * Test folders mirror src/. Tests under test/core that run another program or write files
 * belong to integration and are listed here.
 */
const UNIT_FOLDERS = ['test/core/', 'test/renderer/'];
const NOT_UNIT = [
  'test/core/metrics/metrics-reference.test.ts', // runs python3 with sklearn
  'test/core/metrics/metrics-cluster-reference.test.ts', // runs python3 with numpy and scipy
  'test/core/plots/plots.test.ts', // writes test/artifacts, runs rsvg-convert
  'test/core/dicom/geometry-lps.test.ts', // indexes real DICOM into SQLite, runs python3 with pydicom
];

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'fixtures' ? [] : testFiles(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const root = dirname(fileURLToPath(import.meta.url));
const unit = testFiles(join(root, 'test'))
  .map((p) => p.slice(root.length + 1))
  .filter((p) => UNIT_FOLDERS.some((f) => p.startsWith(f)) && !NOT_UNIT.includes(p));

export default defineConfig({
  test: {
    environment: 'node',
    // Generous: integration tests train real models in real processes, and a shared or slow CI box
    // can take several times as long as a quiet one (speed is measured by the benchmarks, not here).
    testTimeout: 180_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // Two cores here: keep heavy suites from starving each other.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: unit } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...unit] } },
    ],
  },
});
