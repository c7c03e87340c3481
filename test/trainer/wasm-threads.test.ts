/**
 * tfjs-backend-wasm's threaded build in Node (src/trainer/wasm-threads.ts): real training steps in
 * child processes (the bench's child mode: the masked-region VQ-VAE step, Adam), one thread against
 * two, and the fall back to one thread when threads cannot run.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { initBackend, wasmThreadCount } from '../../src/trainer/backend';

const root = join(__dirname, '..', '..');

interface StepResult {
  firstLoss: number;
  lastLoss: number;
  threadCount: number;
  fallback?: string;
  numTensorsStable: boolean;
}

function trainInChild(threads: number): StepResult {
  const job = { label: 'test', preset: 'tiny', backend: 'wasm', threads, batch: 4, warmup: 1, steps: 2 };
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'train.ts'), '--child', JSON.stringify(job)], {
    cwd: root, encoding: 'utf8', timeout: 170_000, env: { ...process.env, CTSSL_WASM_THREADS: '' },
  });
  // the child must exit by itself: the pool's workers do not keep it alive
  expect(r.error, r.stderr).toBeUndefined();
  expect(r.status, r.stderr).toBe(0);
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  expect(line, r.stderr).toBeDefined();
  return JSON.parse(line!.slice(7)) as StepResult;
}

describe('wasm threads', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.unstubAllEnvs();
  });

  it('the threaded build runs 2 threads and trains the same losses as one thread', () => {
    const one = trainInChild(1);
    const two = trainInChild(2);
    expect(one.threadCount).toBe(1);
    expect(two.fallback).toBeUndefined();
    expect(two.threadCount).toBe(2);
    expect(two.numTensorsStable).toBe(true);
    // XNNPACK splits work by output tiles: every sum is taken in the same order, so the steps agree exactly
    expect(two.firstLoss).toBe(one.firstLoss);
    expect(two.lastLoss).toBe(one.lastLoss);
  }, 360_000);

  it('falls back to the single-threaded build, saying why, when threads cannot run', async () => {
    vi.stubGlobal('SharedArrayBuffer', undefined);
    const info = await initBackend({ force: 'wasm', wasmThreads: 2 });
    expect(info).toMatchObject({ name: 'wasm', simd: true, threads: false, threadCount: 1 });
    expect(info.skipped).toContainEqual({ package: '@tensorflow/tfjs-backend-wasm (threaded build)', reason: '2 wasm threads asked for, running 1: no SharedArrayBuffer' });
  }, 60_000);

  it('reads the thread count from CTSSL_WASM_THREADS and refuses a bad one naming it', () => {
    vi.stubEnv('CTSSL_WASM_THREADS', '2');
    expect(wasmThreadCount()).toBe(2);
    expect(wasmThreadCount(3)).toBe(3);
    vi.stubEnv('CTSSL_WASM_THREADS', 'two');
    expect(() => wasmThreadCount()).toThrow("CTSSL_WASM_THREADS must be a whole number >= 1 (got 'two')");
    vi.stubEnv('CTSSL_WASM_THREADS', '');
    expect(wasmThreadCount()).toBe(1);
    expect(() => wasmThreadCount(0)).toThrow('wasm threads must be a whole number >= 1 (got 0)');
  });
});
