/**
 * Loads a series' HU voxels slice block by slice block into one Int16Array, nearest-first around a
 * focus slice (the one on screen), so that scrolling ahead of the download still shows the slice
 * soon. Plain TypeScript on purpose: the voxel buffer must never sit in reactive state. Pure (no
 * DOM); unit-tested against a synthetic volume in test/renderer/volume-loader.test.ts.
 */

export interface Block {
  start: number;
  count: number;
  data: Int16Array;
}

/** Fetches `count` slices from `start` (the `viewer.slices` channel). */
export type FetchSlices = (start: number, count: number) => Promise<Block>;

export interface VolumeLoaderOptions {
  /** [columns, rows, slices]. */
  dims: [number, number, number];
  fetch: FetchSlices;
  /** Fetches the first slice (default: `fetch`), e.g. over a path with no start-up cost. */
  fetchFirst?: FetchSlices;
  /** Slices per request after the first one; default 16. */
  blockSize?: number;
  /** Requests in flight at once; default 2 (one decoding while the other travels). */
  concurrency?: number;
  /** Called after slices [start, start + count) have landed in the buffer. */
  onSlices?: (start: number, count: number) => void;
}

export class LoadAborted extends Error {
  constructor() {
    super('loading was stopped');
    this.name = 'LoadAborted';
  }
}

/**
 * Next run of slices to request: the missing slice nearest to `focus` (ahead first on ties),
 * extended to the contiguous missing run inside its aligned block of `blockSize`. Null when
 * nothing is missing. `state[k]`: 0 missing, 1 requested, 2 loaded.
 */
export function planNext(state: Uint8Array, focus: number, blockSize: number): [start: number, count: number] | null {
  const n = state.length;
  if (n === 0) return null;
  const f = Math.min(n - 1, Math.max(0, Math.round(focus)));
  let k = -1;
  for (let d = 0; d < n; d++) {
    if (f + d < n && state[f + d] === 0) {
      k = f + d;
      break;
    }
    if (f - d >= 0 && state[f - d] === 0) {
      k = f - d;
      break;
    }
  }
  if (k < 0) return null;
  const lo = Math.floor(k / blockSize) * blockSize;
  const hi = Math.min(n, lo + blockSize);
  let a = k;
  while (a - 1 >= lo && state[a - 1] === 0) a--;
  let b = k + 1;
  while (b < hi && state[b] === 0) b++;
  return [a, b - a];
}

export class VolumeLoader {
  readonly columns: number;
  readonly rows: number;
  readonly slices: number;
  readonly sliceLength: number;
  /** All voxels, slice after slice, row after row (display orientation). */
  readonly voxels: Int16Array;
  private readonly state: Uint8Array;
  private loaded = 0;
  private focus = 0;
  private aborted = false;
  private readonly blockSize: number;
  private readonly concurrency: number;

  constructor(private readonly opts: VolumeLoaderOptions) {
    const [c, r, n] = opts.dims;
    for (const [name, v] of [
      ['columns', c],
      ['rows', r],
      ['slices', n],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`volume ${name} must be a positive integer, got ${v}`);
    }
    this.columns = c;
    this.rows = r;
    this.slices = n;
    this.sliceLength = c * r;
    this.voxels = new Int16Array(c * r * n);
    this.state = new Uint8Array(n);
    this.blockSize = Math.max(1, opts.blockSize ?? 16);
    this.concurrency = Math.max(1, opts.concurrency ?? 2);
  }

  get loadedCount(): number {
    return this.loaded;
  }

  get complete(): boolean {
    return this.loaded === this.slices;
  }

  isLoaded(k: number): boolean {
    return k >= 0 && k < this.slices && this.state[k] === 2;
  }

  /** Slice k as a view into the buffer (no copy), or null until it has loaded. */
  slice(k: number): Int16Array | null {
    if (!this.isLoaded(k)) return null;
    return this.voxels.subarray(k * this.sliceLength, (k + 1) * this.sliceLength);
  }

  /** HU at column i, row j of slice k, or null when not loaded or outside. */
  value(k: number, i: number, j: number): number | null {
    if (!this.isLoaded(k) || i < 0 || j < 0 || i >= this.columns || j >= this.rows) return null;
    return this.voxels[k * this.sliceLength + j * this.columns + i];
  }

  /** Moves the loading priority to slice k (the one on screen). */
  setFocus(k: number): void {
    this.focus = k;
  }

  /** Stops issuing requests; pending `load*` promises reject with LoadAborted. */
  abort(): void {
    this.aborted = true;
  }

  /** Loads slice k alone (fast first paint). */
  async loadFirst(k: number): Promise<void> {
    this.focus = k;
    if (this.state[k] !== 0) return;
    await this.request(k, 1, this.opts.fetchFirst);
  }

  /** Loads every missing slice, nearest to the focus first; resolves when the volume is complete. */
  async loadAll(): Promise<void> {
    // The first failure stops every worker; it is what the caller sees.
    let failure: { err: unknown } | null = null;
    const worker = async () => {
      while (!this.aborted && !failure) {
        const next = planNext(this.state, this.focus, this.blockSize);
        if (!next) return;
        try {
          await this.request(next[0], next[1]);
        } catch (err) {
          failure ??= { err };
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: this.concurrency }, worker));
    if (this.aborted) throw new LoadAborted();
    if (failure) throw (failure as { err: unknown }).err;
  }

  private async request(start: number, count: number, fetch: FetchSlices = this.opts.fetch): Promise<void> {
    this.state.fill(1, start, start + count);
    let block: Block;
    try {
      block = await fetch(start, count);
    } catch (err) {
      this.state.fill(0, start, start + count);
      throw err;
    }
    if (this.aborted) throw new LoadAborted();
    const expected = count * this.sliceLength;
    if (block.start !== start || block.count !== count || !(block.data instanceof Int16Array) || block.data.length !== expected) {
      this.state.fill(0, start, start + count);
      const got = block.data instanceof Int16Array ? `${block.data.length} Int16 voxels` : 'no Int16Array';
      throw new Error(
        `viewer.slices(${start}, ${count}) returned slices ${block.start}..${block.start + block.count - 1} with ${got}; ` +
          `expected ${expected} voxels (${this.columns} x ${this.rows} x ${count})`,
      );
    }
    this.voxels.set(block.data, start * this.sliceLength);
    let fresh = 0;
    for (let k = start; k < start + count; k++) if (this.state[k] !== 2) fresh++;
    this.state.fill(2, start, start + count);
    this.loaded += fresh;
    this.opts.onSlices?.(start, count);
  }
}
