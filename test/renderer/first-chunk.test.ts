/**
 * The app's first chunk holds the shell and the Library page only (bench/index-scale.ts measures its
 * first rows): App.svelte imports no other page, nor anything of theirs, statically; each comes
 * through a dynamic import(), which Vite makes a chunk of its own. A static import of, say,
 * ./runs/RunsState would pull that page's code (and uPlot) back into the first chunk.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from '../helpers';

const app = readFileSync(join(root, 'src/renderer/src/App.svelte'), 'utf8');
const script = app.slice(app.indexOf('<script'), app.indexOf('</script>'));

/** Modules App.svelte imports at load (not `import type`, not `import(...)`). */
// Either quote: a double-quoted specifier must not slip past the check.
const staticImports = [...script.matchAll(/^\s*import\s+(?!type\b)[^'"]*?from\s+(['"])([^'"]+)\1|^\s*import\s+(['"])([^'"]+)\3/gm)].map((m) => m[2] ?? m[4]);
const dynamicImports = [...app.matchAll(/import\(\s*(['"])([^'"]+)\1\s*\)/g)].map((m) => m[2]);

describe("the app's first chunk", () => {
  it('imports the Library page and the shell statically, nothing of the other pages', () => {
    expect(staticImports).toContain('./library/LibraryPage.svelte');
    const others = staticImports.filter((m) => /^\.\/(viewer|runs|finetune|experiments|probe|evaluate|share)\/|^\.\/page-states/.test(m));
    expect(others, `static imports of other pages in App.svelte: ${others.join(', ')}`).toEqual([]);
    for (const m of staticImports) expect(m, m).toMatch(/^(svelte|\.\/lib\/|\.\/components\/(Toasts)\.svelte$|\.\/library\/)/);
  });

  it('loads every other page, and their state, through a dynamic import', () => {
    for (const page of ['./viewer/ViewerPage.svelte', './runs/PretrainPage.svelte', './finetune/FinetunePage.svelte', './experiments/ExperimentsPage.svelte', './probe/ProbePage.svelte', './evaluate/EvaluatePage.svelte', './share/SharePage.svelte', './page-states'])
      expect(dynamicImports).toContain(page);
  });
});
