import { describe, expect, it } from 'vitest';
import { LoadAborted, planNext, VolumeLoader, type Block } from '../../src/renderer/src/viewer/volume-loader';

/** A synthetic Int16 volume: voxel (i, j, k) = k * 700 + j * 10 + i - 12000 (distinct per slice and pixel). */
const C = 5;
const R = 4;
const N = 37;
const hu = (i: number, j: number, k: number) => k * 700 + j * 10 + i - 12000;

function block(start: number, count: number): Block {
  const data = new Int16Array(C * R * count);
  for (let k = 0; k < count; k++) for (let j = 0; j < R; j++) for (let i = 0; i < C; i++) data[k * C * R + j * C + i] = hu(i, j, start + k);
  return { start, count, data };
}

function fakeServer(opts: { delay?: number; failAt?: number } = {}) {
  const calls: [number, number][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const fetch = async (start: number, count: number): Promise<Block> => {
    calls.push([start, count]);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, opts.delay ?? 0));
    inFlight--;
    if (opts.failAt !== undefined && start <= opts.failAt && opts.failAt < start + count)
      throw Object.assign(new Error(`cannot decode slice ${opts.failAt}`), { code: 'internal' });
    return block(start, count);
  };
  return { calls, fetch, maxInFlight: () => maxInFlight };
}

describe('planNext', () => {
  it('takes the missing run around the focus, within its aligned block', () => {
    const s = new Uint8Array(40);
    expect(planNext(s, 19, 16)).toEqual([16, 16]);
    s[19] = 2;
    expect(planNext(s, 19, 16)).toEqual([20, 12]);
    s.fill(1, 20, 32);
    expect(planNext(s, 19, 16)).toEqual([16, 3]);
    s.fill(1, 16, 19);
    // Nearest missing to 19 is 15 (4 away) before 32 (13 away).
    expect(planNext(s, 19, 16)).toEqual([0, 16]);
    expect(planNext(s, 39, 16)).toEqual([32, 8]);
  });

  it('prefers the slice ahead on ties and returns null when nothing is missing', () => {
    const s = new Uint8Array(10).fill(2);
    s[3] = 0;
    s[7] = 0;
    expect(planNext(s, 5, 4)).toEqual([7, 1]);
    expect(planNext(new Uint8Array(5).fill(2), 2, 16)).toBeNull();
    expect(planNext(new Uint8Array(0), 0, 16)).toBeNull();
  });
});

describe('VolumeLoader', () => {
  it('loads the first slice alone, then every slice once in blocks of at most 16, into the right place', async () => {
    const server = fakeServer();
    const landed: [number, number][] = [];
    const loader = new VolumeLoader({ dims: [C, R, N], fetch: server.fetch, onSlices: (s, c) => landed.push([s, c]) });
    const mid = Math.floor((N - 1) / 2);
    await loader.loadFirst(mid);
    expect(server.calls).toEqual([[mid, 1]]);
    expect(loader.isLoaded(mid)).toBe(true);
    expect(loader.slice(mid - 1)).toBeNull();
    expect(loader.value(mid, 2, 3)).toBe(hu(2, 3, mid));
    await loader.loadAll();
    expect(loader.complete).toBe(true);
    expect(loader.loadedCount).toBe(N);
    const seen = new Array<number>(N).fill(0);
    for (const [s, c] of server.calls) {
      expect(c).toBeLessThanOrEqual(16);
      for (let k = s; k < s + c; k++) seen[k]++;
    }
    expect(seen).toEqual(new Array(N).fill(1));
    expect(landed).toEqual(server.calls);
    for (let k = 0; k < N; k++) {
      const sl = loader.slice(k)!;
      expect(sl.length).toBe(C * R);
      expect(sl[0]).toBe(hu(0, 0, k));
      expect(sl[C * R - 1]).toBe(hu(C - 1, R - 1, k));
    }
    expect(loader.value(0, C, 0)).toBeNull();
    expect(loader.value(0, -1, 0)).toBeNull();
  });

  it('fills a buffer it is given; a block without data is one the fetch wrote there itself', async () => {
    const voxels = new Int16Array(new SharedArrayBuffer(C * R * N * 2));
    // As the volume worker does: the slices written into their place, the answer without data.
    const fetch = async (start: number, count: number): Promise<Block> => {
      voxels.set(block(start, count).data!, start * C * R);
      return { start, count };
    };
    const loader = new VolumeLoader({ dims: [C, R, N], voxels, fetch });
    expect(loader.voxels).toBe(voxels);
    await loader.loadFirst(3);
    await loader.loadAll();
    expect(loader.complete).toBe(true);
    for (let k = 0; k < N; k++) expect(loader.value(k, 4, 3)).toBe(hu(4, 3, k));
    // Without a buffer of the caller's, a block without data is refused.
    const own = new VolumeLoader({ dims: [C, R, N], fetch: async (s, c) => ({ start: s, count: c }) });
    await expect(own.loadFirst(0)).rejects.toThrow(/returned slices 0\.\.0 with no Int16Array; expected 20 voxels/);
    expect(() => new VolumeLoader({ dims: [C, R, N], voxels: new Int16Array(5), fetch })).toThrow('the volume buffer holds 5 voxels, expected 740 (5 x 4 x 37)');
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const server = fakeServer({ delay: 5 });
    const loader = new VolumeLoader({ dims: [C, R, N], fetch: server.fetch, blockSize: 4, concurrency: 2 });
    await loader.loadFirst(0);
    await loader.loadAll();
    expect(server.maxInFlight()).toBe(2);
    expect(loader.complete).toBe(true);
  });

  it('background requests take only blocks far from the focus; near it, `concurrency` alone', async () => {
    // 200 slices in blocks of 4: background requests start far away at once.
    const server = fakeServer({ delay: 5 });
    const loader = new VolumeLoader({ dims: [C, R, 200], fetch: server.fetch, blockSize: 4, concurrency: 2, background: 2 });
    await loader.loadFirst(100);
    await loader.loadAll();
    expect(server.maxInFlight()).toBe(4);
    expect(loader.complete).toBe(true);
    // 40 slices in blocks of 16, focus 19 (the e2e series): every other block is within two blocks of it, so 2 in flight only.
    const small = fakeServer({ delay: 5 });
    const l2 = new VolumeLoader({ dims: [C, R, 40], fetch: small.fetch, concurrency: 2, background: 2 });
    await l2.loadFirst(19);
    await l2.loadAll();
    expect(small.maxInFlight()).toBe(2);
    expect(small.calls.map(([st]) => st)).toEqual([19, 20, 16, 0, 32]);
    // A failure ends background requests too.
    const failing = new VolumeLoader({ dims: [C, R, 200], fetch: fakeServer({ delay: 2, failAt: 150 }).fetch, blockSize: 4, background: 2 });
    await failing.loadFirst(100);
    await expect(failing.loadAll()).rejects.toThrow('cannot decode slice 150');
  });

  it('follows the focus: after a jump to the end, the last block comes before the start', async () => {
    const server = fakeServer({ delay: 5 });
    const loader = new VolumeLoader({ dims: [C, R, N], fetch: server.fetch, concurrency: 1 });
    await loader.loadFirst(18);
    const all = loader.loadAll();
    loader.setFocus(N - 1);
    await all;
    const starts = server.calls.map(([s]) => s);
    expect(starts.indexOf(32)).toBeGreaterThan(0);
    expect(starts.indexOf(32)).toBeLessThan(starts.indexOf(0));
  });

  it('stops at the first failure and reports it; the failed slices stay missing', async () => {
    const server = fakeServer({ failAt: 3 });
    const loader = new VolumeLoader({ dims: [C, R, N], fetch: server.fetch });
    await loader.loadFirst(18);
    await expect(loader.loadAll()).rejects.toThrow('cannot decode slice 3');
    expect(loader.isLoaded(3)).toBe(false);
    expect(loader.complete).toBe(false);
  });

  it('rejects a block of the wrong size with a message naming the request', async () => {
    const loader = new VolumeLoader({ dims: [C, R, N], fetch: async (s, c) => ({ ...block(s, c), data: new Int16Array(3) }) });
    await expect(loader.loadFirst(0)).rejects.toThrow(/viewer\.slices\(0, 1\) returned slices 0\.\.0 with 3 Int16 voxels; expected 20 voxels \(5 x 4 x 1\)/);
    expect(loader.isLoaded(0)).toBe(false);
  });

  it('abort() stops loading with LoadAborted', async () => {
    const server = fakeServer({ delay: 5 });
    const loader = new VolumeLoader({ dims: [C, R, N], fetch: server.fetch });
    await loader.loadFirst(0);
    const all = loader.loadAll();
    loader.abort();
    await expect(all).rejects.toBeInstanceOf(LoadAborted);
    expect(server.calls.length).toBeLessThan(5);
  });

  it('refuses dimensions that are not positive integers, naming them', () => {
    expect(() => new VolumeLoader({ dims: [C, 0, N], fetch: async () => block(0, 1) })).toThrow('volume rows must be a positive integer, got 0');
  });
});
