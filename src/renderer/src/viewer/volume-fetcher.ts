/**
 * Where the viewer's slice blocks come from (the `fetch` of a VolumeLoader). Blocks travel in a
 * compact lossless wire form (`viewer.packed`, src/shared/slice-packing.ts) and are decoded in the
 * volume worker (volume-worker.ts), which in a browser also receives them itself (HTTP or its own socket): the
 * page's thread only copies the finished Int16Array into the volume. The first slice comes over
 * the page's own connection, already open, uncompressed (no worker start-up before the first paint).
 *
 * Encoding: 'delta8' (byte differences: about half the bytes of 'int16', read back by a plain loop)
 * unless localStorage 'ctssl-viewer-encoding' says 'int16' or 'deflate' (the benchmark measures
 * them; inflating costs the worker more time than the bytes it saves on loopback). Without a worker
 * (it failed to start) blocks are decoded on the page's thread.
 */
import { storedChoice, storedInt } from './stored-knob';
import type { ApiClient } from '../../../shared/contract';
import { ApiError } from '../../../shared/envelope';
import { SLICE_ENCODINGS, type SliceEncoding } from '../../../shared/slice-packing';
import { serverToken, socketUrl } from '../lib/api';
import { browserInflate, unpackSlices } from './packed-slices';
import type { Block } from './volume-loader';
import type { BlockTiming, WorkerReply, WorkerRequest } from './volume-worker';

/**
 * Each block's way to the page as User Timing measures (DevTools' Timings track; the benchmark reads
 * them): `ctssl-block:to-worker` (the page asked, the worker got it), `:server` (request sent to
 * response headers), `:body`, `:decode`, `:to-page` (transfer back and the page's turn),
 * `:insert` (copy into the volume and the view's update), and `ctssl-block` from the ask to the
 * insert; `detail` holds the block's first slice, its count and the server's own time.
 */
function measureBlock(asked: number, t: BlockTiming, received: number, start: number, count: number): void {
  const o = performance.timeOrigin;
  const detail = { start, count, serverMs: t.serverMs };
  const steps: [string, number, number | undefined][] = [
    ['to-worker', asked, t.got],
    ['server', t.got, t.headers],
    ['body', t.headers ?? t.got, t.body],
    ['decode', t.body ?? t.got, t.decoded],
    ['to-page', t.decoded, received],
  ];
  try {
    for (const [name, a, b] of steps) if (b !== undefined && b >= a) performance.measure(`ctssl-block:${name}`, { start: a - o, end: b - o, detail });
  } catch {
    // no User Timing: nothing to record
  }
}

export function chosenEncoding(): SliceEncoding {
  return storedChoice('ctssl-viewer-encoding', SLICE_ENCODINGS, 'delta8');
}

export const TRANSPORTS = ['http', 'worker', 'page'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/**
 * Where blocks travel in a browser: 'http' (the worker fetches them over HTTP, the default),
 * 'worker' (the worker's own socket) or 'page' (the page's connection, the worker only decodes: the
 * path Electron takes), from localStorage 'ctssl-viewer-transport' (the benchmark measures them; an
 * e2e test uses 'page' to hold blocks back at the page's socket).
 */
export function chosenTransport(): Transport {
  return storedChoice('ctssl-viewer-transport', TRANSPORTS, 'http');
}

/**
 * Background requests beside the 2 near the slice on screen (VolumeLoader's `background`): none, or
 * localStorage 'ctssl-viewer-background' (0-6). The benchmark compares 2 and 4 in flight: with the
 * CPU shared, 4 gave no faster volume and slower keys (docs/benchmarks.md, Opening a series).
 */
export function chosenBackground(): number {
  return storedInt('ctssl-viewer-background', 0, 6, 0);
}

export class VolumeFetcher {
  readonly encoding: SliceEncoding;
  private worker: Worker | null = null;
  /** Blocks are fetched by the worker itself (HTTP or its socket), not handed to it by the page. */
  private byWorker = false;
  private nextId = 1;
  private pending = new Map<number, { resolve: (b: Block) => void; reject: (e: Error) => void; asked: number }>();
  /** When each block (by first slice) was asked for and reached the page, for `inserted`. */
  private times = new Map<number, { asked: number; received: number }>();

  constructor(
    private readonly api: ApiClient,
    private readonly seriesId: number,
    encoding: SliceEncoding = chosenEncoding(),
  ) {
    this.encoding = encoding;
    try {
      this.worker = new Worker(new URL('./volume-worker.ts', import.meta.url), { type: 'module', name: 'ctssl-volume' });
      this.worker.onmessage = (e: MessageEvent<WorkerReply>) => this.settle(e.data);
      this.worker.onerror = (e) => this.failAll(new Error(`the volume worker stopped: ${e.message || 'unknown error'}`));
      const url = socketUrl();
      const token = serverToken();
      const transport = chosenTransport();
      if (url && token !== null && transport === 'http') {
        this.post({ type: 'http', token });
        this.byWorker = true;
      } else if (url && transport !== 'page') {
        this.post({ type: 'connect', url });
        this.byWorker = true;
      }
    } catch {
      this.worker = null;
    }
  }

  /**
   * The volume's buffer shared with the worker (a SharedArrayBuffer: the worker writes each block
   * into its place, the page copies nothing), when the page is cross-origin isolated (`ctssl serve`
   * sends COOP and COEP) and the worker runs; otherwise undefined (blocks are transferred and copied).
   */
  sharedVolume(dims: [number, number, number]): Int16Array | undefined {
    if (!this.worker || typeof SharedArrayBuffer !== 'function' || !globalThis.crossOriginIsolated) return undefined;
    try {
      const buffer = new SharedArrayBuffer(dims[0] * dims[1] * dims[2] * 2);
      this.post({ type: 'volume', buffer, sliceLength: dims[0] * dims[1] });
      return new Int16Array(buffer);
    } catch {
      return undefined; // no memory for it: the transferred path
    }
  }

  /** One slice (or a few) over the page's connection, uncompressed: the fastest first paint. */
  fetchNow(start: number, count: number): Promise<Block> {
    return this.fetchHere(start, count, 'int16');
  }

  /** A block, decoded off the page's thread where possible. */
  async fetch(start: number, count: number): Promise<Block> {
    if (!this.worker) return this.fetchHere(start, count, this.encoding);
    const id = this.nextId++;
    const asked = performance.timeOrigin + performance.now();
    const done = new Promise<Block>((resolve, reject) => this.pending.set(id, { resolve, reject, asked }));
    if (this.byWorker) {
      this.post({ type: 'fetch', id, seriesId: this.seriesId, start, count, encoding: this.encoding });
    } else {
      try {
        const packed = await this.api.invoke('viewer.packed', this.seriesId, start, count, this.encoding);
        this.post({ type: 'unpack', id, packed }, [packed.bytes.buffer as ArrayBuffer]);
      } catch (err) {
        this.pending.delete(id);
        throw err;
      }
    }
    return done;
  }

  /** A block over the page's connection, decoded on the page's thread. */
  private async fetchHere(start: number, count: number, encoding: SliceEncoding): Promise<Block> {
    const p = await this.api.invoke('viewer.packed', this.seriesId, start, count, encoding);
    return { start: p.start, count: p.count, data: await unpackSlices(p, browserInflate) };
  }

  /** Slices from `start` are in the volume and the view knows: the block's last measures. */
  inserted(start: number, count: number): void {
    const t = this.times.get(start);
    if (!t) return;
    this.times.delete(start);
    const o = performance.timeOrigin;
    try {
      performance.measure('ctssl-block:insert', { start: t.received - o, detail: { start, count } });
      performance.measure('ctssl-block', { start: t.asked - o, detail: { start, count } });
    } catch {
      // no User Timing
    }
  }

  dispose(): void {
    this.failAll(new Error('the viewer was closed'));
    this.worker?.terminate();
    this.worker = null;
  }

  private post(m: WorkerRequest, transfer: Transferable[] = []): void {
    this.worker?.postMessage(m, transfer);
  }

  private settle(r: WorkerReply): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    if ('error' in r) p.reject(new ApiError(r.error.code as ApiError['code'], r.error.message));
    else {
      const received = performance.timeOrigin + performance.now();
      measureBlock(p.asked, r.timing, received, r.start, r.count);
      this.times.set(r.start, { asked: p.asked, received });
      p.resolve({ start: r.start, count: r.count, data: r.data });
    }
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
