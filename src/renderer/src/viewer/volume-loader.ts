/**
 * Loads a series' HU voxels slice block by slice block into one Int16Array, nearest-first around a
 * focus slice (the one on screen), so that scrolling ahead of the download still shows the slice
 * soon. Plain TypeScript on purpose: the voxel buffer must never sit in reactive state. Pure (no
 * DOM); unit-tested against a synthetic volume in test/renderer/volume-loader.test.ts.
 */

export interface Block {
  start: number;
  count: number;
  /** The slices' voxels; absent when the fetch wrote them into the loader's `voxels` itself (a shared buffer, see VolumeLoaderOptions.voxels). */
  data?: Int16Array;
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
  /** Requests in flight for the slices near the focus; default 2 (one decoding while the other travels). */
  concurrency?: number;
  /**
   * Further requests in flight that fill in the rest of the volume, each only for a block more than
   * two blocks from the focus (default 0): more requests keep the connection busy, while the slices
   * near the one on screen stay with the first `concurrency`, so a jump still reorders what comes next.
   */
  background?: number;
  /**
   * The buffer to hold the volume (columns x rows x slices voxels), e.g. on a SharedArrayBuffer that
   * the volume worker writes into directly; default: a new Int16Array. Only with it may a fetch
   * answer a Block without `data`.
   */
  voxels?: Int16Array;
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
  private readonly background: number;
  /** Wakes background requests waiting for a far block (a request ended, the focus moved, abort). */
  private wake: (() => void) | null = null;
  private changed: Promise<void> = Promise.resolve();

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
    if (opts.voxels && opts.voxels.length !== c * r * n) throw new Error(`the volume buffer holds ${opts.voxels.length} voxels, expected ${c * r * n} (${c} x ${r} x ${n})`);
    this.voxels = opts.voxels ?? new Int16Array(c * r * n);
    this.state = new Uint8Array(n);
    this.blockSize = Math.max(1, opts.blockSize ?? 16);
    this.concurrency = Math.max(1, opts.concurrency ?? 2);
    this.background = Math.max(0, Math.floor(opts.background ?? 0));
    this.rearm();
  }

  private rearm(): void {
    this.changed = new Promise((r) => (this.wake = r));
  }

  private signal(): void {
    this.wake?.();
    this.rearm();
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
    this.signal();
  }

  /** Stops issuing requests; pending `load*` promises reject with LoadAborted. */
  abort(): void {
    this.aborted = true;
    this.signal();
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
    // A background request: only for a block more than two blocks from the focus; else it waits for a change.
    const far = async () => {
      while (!this.aborted && !failure) {
        const next = planNext(this.state, this.focus, this.blockSize);
        if (!next) return;
        const f = Math.round(this.focus);
        const gap = next[0] > f ? next[0] - f : f - (next[0] + next[1] - 1);
        if (gap <= 2 * this.blockSize) {
          await this.changed;
          continue;
        }
        try {
          await this.request(next[0], next[1]);
        } catch (err) {
          failure ??= { err };
          this.signal();
          return;
        }
      }
    };
    const near = async () => {
      await worker();
      // Done or failed: let waiting background requests see it.
      this.signal();
    };
    await Promise.all([...Array.from({ length: this.concurrency }, near), ...Array.from({ length: this.background }, far)]);
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
    // Written in place: only into a buffer the caller gave (one a worker can write into).
    const inPlace = block.data === undefined && this.opts.voxels !== undefined;
    if (block.start !== start || block.count !== count || (!inPlace && (!(block.data instanceof Int16Array) || block.data.length !== expected))) {
      this.state.fill(0, start, start + count);
      const got = block.data instanceof Int16Array ? `${block.data.length} Int16 voxels` : 'no Int16Array';
      throw new Error(
        `viewer.slices(${start}, ${count}) returned slices ${block.start}..${block.start + block.count - 1} with ${got}; ` +
          `expected ${expected} voxels (${this.columns} x ${this.rows} x ${count})`,
      );
    }
    if (block.data) this.voxels.set(block.data, start * this.sliceLength);
    let fresh = 0;
    for (let k = start; k < start + count; k++) if (this.state[k] !== 2) fresh++;
    this.state.fill(2, start, start + count);
    this.loaded += fresh;
    this.signal();
    this.opts.onSlices?.(start, count);
  }
}
