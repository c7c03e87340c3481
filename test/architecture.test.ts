/**
 * The layers of src/ and who may import whom (README "Layout", each folder's README.md). Read off
 * the real import graph (static and dynamic imports, .ts and .svelte), so a wrong arrow fails CI.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { root } from './helpers';

type Layer = 'shared' | 'core' | 'platform' | 'library' | 'trainer' | 'host' | 'cli' | 'server' | 'main' | 'utility' | 'preload' | 'renderer';

/** Which layers each layer may import (itself included). */
const ALLOWED: Record<Layer, Layer[]> = {
  shared: ['shared'],
  core: ['core', 'shared'],
  platform: ['platform', 'shared'],
  library: ['library', 'platform', 'core', 'shared'],
  trainer: ['trainer', 'library', 'platform', 'core', 'shared'],
  host: ['host', 'library', 'platform', 'core', 'shared'],
  cli: ['cli', 'server', 'host', 'platform', 'core', 'shared'],
  server: ['server', 'host', 'platform', 'shared'],
  main: ['main', 'host', 'platform', 'shared'],
  utility: ['utility', 'trainer', 'shared'],
  preload: ['preload', 'shared'],
  renderer: ['renderer', 'core', 'shared'],
};

/**
 * Files that may import one more layer than their own, each for a reason its layer's README gives.
 * The CLI's commands with no app equivalent use the library directly; every other command goes
 * through the host's services (src/cli/README.md).
 */
const ALSO_ALLOWED: Record<string, Layer[]> = {
  'src/cli/commands/nifti.ts': ['library'], // export-nifti
  'src/cli/commands/labels-export.ts': ['library'], // labels export
  'src/cli/commands/synth.ts': ['library'], // synth
};

/** Layers whose processes never load TensorFlow.js, not even through another module. */
const NO_TFJS: Layer[] = ['shared', 'platform', 'library', 'host', 'cli', 'server', 'main', 'preload'];
/** Layers that run in plain Node or the browser: no Electron. */
const ELECTRON: Layer[] = ['main', 'preload'];
/** Layers with no Node built-ins or native modules (the pure core also has a tsconfig of its own). */
const PURE: Layer[] = ['shared', 'core', 'renderer'];

/**
 * Arrows that break the rules today, each with the reason it is still there. The test fails when
 * one is added and when one is mended without being removed from this list.
 */
const KNOWN: string[] = [];

const src = join(root, 'src');
const layerOf = (file: string): Layer | null => {
  const top = relative(src, file).split(/[\\/]/)[0];
  return top in ALLOWED ? (top as Layer) : null;
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.(ts|svelte)$/.test(n) && !n.endsWith('.d.ts') ? [p] : [];
  });
}

function importsOf(file: string): string[] {
  let text = readFileSync(file, 'utf8');
  if (file.endsWith('.svelte')) text = [...text.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]).join('\n');
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

function resolveLocal(from: string, spec: string): string | null {
  const base = resolve(dirname(from), spec);
  for (const c of [base, `${base}.ts`, join(base, 'index.ts')]) if (existsSync(c) && statSync(c).isFile()) return c;
  return null;
}

interface Graph {
  local: Map<string, string[]>;
  external: Map<string, string[]>;
}

function buildGraph(): Graph {
  const local = new Map<string, string[]>();
  const external = new Map<string, string[]>();
  for (const f of sourceFiles(src)) {
    const specs = importsOf(f);
    local.set(
      f,
      specs.filter((s) => s.startsWith('.')).map((s) => resolveLocal(f, s)).filter((x): x is string => x !== null),
    );
    external.set(f, specs.filter((s) => !s.startsWith('.')));
  }
  return { local, external };
}

const rel = (f: string) => relative(root, f).split('\\').join('/');
const nodeBuiltin = (s: string) => s.startsWith('node:') || builtinModules.includes(s.split('/')[0]);

describe('the layers of src/', () => {
  const g = buildGraph();

  it('finds every file in a layer', () => {
    const outside = [...g.local.keys()].filter((f) => layerOf(f) === null).map(rel);
    expect(outside).toEqual([]);
    expect(g.local.size).toBeGreaterThan(150);
  });

  it('has no arrow against the layer rules, no TensorFlow.js outside the trainer and renderer-free layers, Electron only in main and preload', () => {
    const found: string[] = [];
    for (const [f, deps] of g.local) {
      const from = layerOf(f)!;
      for (const d of deps) {
        const to = layerOf(d);
        if (to && !ALLOWED[from].includes(to) && !ALSO_ALLOWED[rel(f)]?.includes(to)) found.push(`${rel(f)} -> ${rel(d)}`);
      }
      for (const s of g.external.get(f)!) {
        if (s === 'electron' && !ELECTRON.includes(from)) found.push(`${rel(f)} -> electron`);
        if (PURE.includes(from) && (nodeBuiltin(s) || s === 'better-sqlite3')) found.push(`${rel(f)} -> ${s}`);
      }
    }
    // TensorFlow.js reached from a file of a layer that must never load it, through any chain.
    const tfjs = new Map<string, string[] | null>();
    const pathToTf = (f: string, seen: Set<string>): string[] | null => {
      if (tfjs.has(f)) return tfjs.get(f)!;
      if (seen.has(f)) return null;
      seen.add(f);
      let path: string[] | null = null;
      const ext = g.external.get(f) ?? [];
      const direct = ext.find((s) => s.startsWith('@tensorflow/'));
      if (direct) path = [rel(f), direct];
      else
        for (const d of g.local.get(f) ?? []) {
          const p = pathToTf(d, seen);
          if (p) {
            path = [rel(f), ...p];
            break;
          }
        }
      tfjs.set(f, path);
      return path;
    };
    // Reported where the chain leaves the tfjs-free layers: the import of a tfjs-bound module.
    for (const f of g.local.keys()) {
      if (!NO_TFJS.includes(layerOf(f)!)) continue;
      const direct = (g.external.get(f) ?? []).find((s) => s.startsWith('@tensorflow/'));
      if (direct) found.push(`tfjs: ${rel(f)} -> ${direct}`);
      for (const d of g.local.get(f) ?? []) {
        if (NO_TFJS.includes(layerOf(d)!)) continue;
        const p = pathToTf(d, new Set());
        if (p) found.push(`tfjs: ${rel(f)} -> ${p.join(' -> ')}`);
      }
    }
    const unexpected = found.filter((x) => !KNOWN.includes(x));
    const mended = KNOWN.filter((x) => !found.includes(x));
    expect({ unexpected, mended }).toEqual({ unexpected: [], mended: [] });
  });

  it('can fail: a made-up arrow from the library to the host and from the host to the trainer is caught', () => {
    const from = join(src, 'library', 'x.ts');
    expect(ALLOWED[layerOf(from)!].includes(layerOf(join(src, 'host', 'runs.ts'))!)).toBe(false);
    expect(ALLOWED.host.includes('trainer')).toBe(false);
  });

  it('gives every layer a README that says what lives there and what it may import', () => {
    for (const layer of Object.keys(ALLOWED)) {
      const readme = join(src, layer, 'README.md');
      expect(existsSync(readme), readme).toBe(true);
      expect(readFileSync(readme, 'utf8')).toMatch(/may import/i);
    }
  });
});
