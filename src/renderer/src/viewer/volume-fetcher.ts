/**
 * Where the viewer's slice blocks come from (the `fetch` of a VolumeLoader). Blocks travel in a
 * compact lossless wire form (`viewer.packed`, src/shared/slice-packing.ts) and are decoded in the
 * volume worker (volume-worker.ts), which in a browser also receives them itself (HTTP or its own socket): the
 * page's thread only copies the finished Int16Array into the volume. The first slice comes over
 * the page's own connection, already open, uncompressed (no worker start-up before the first paint).
 *
 * Encoding: 'deflate' unless localStorage 'ctssl-viewer-encoding' says 'int16' (the benchmark
 * measures both). Without a worker (it failed to start) blocks are decoded on the page's thread.
 */
import type { ApiClient } from '../../../shared/contract';
import { ApiError } from '../../../shared/envelope';
import { SLICE_ENCODINGS, type SliceEncoding } from '../../../shared/slice-packing';
import { serverToken, socketUrl } from '../lib/api';
import { browserInflate, unpackSlices } from './packed-slices';
import type { Block } from './volume-loader';
import type { WorkerReply, WorkerRequest } from './volume-worker';

export function chosenEncoding(): SliceEncoding {
  try {
    const v = localStorage.getItem('ctssl-viewer-encoding');
    if (v && (SLICE_ENCODINGS as readonly string[]).includes(v)) return v as SliceEncoding;
  } catch {
    // no storage: the default
  }
  return 'deflate';
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
  try {
    const v = localStorage.getItem('ctssl-viewer-transport');
    if (v && (TRANSPORTS as readonly string[]).includes(v)) return v as Transport;
  } catch {
    // no storage: the default
  }
  return 'http';
}

export class VolumeFetcher {
  readonly encoding: SliceEncoding;
  private worker: Worker | null = null;
  /** Blocks are fetched by the worker itself (HTTP or its socket), not handed to it by the page. */
  private byWorker = false;
  private nextId = 1;
  private pending = new Map<number, { resolve: (b: Block) => void; reject: (e: Error) => void }>();

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

  /** One slice (or a few) over the page's connection, uncompressed: the fastest first paint. */
  fetchNow(start: number, count: number): Promise<Block> {
    return this.fetchHere(start, count, 'int16');
  }

  /** A block, decoded off the page's thread where possible. */
  async fetch(start: number, count: number): Promise<Block> {
    if (!this.worker) return this.fetchHere(start, count, this.encoding);
    const id = this.nextId++;
    const done = new Promise<Block>((resolve, reject) => this.pending.set(id, { resolve, reject }));
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
    else p.resolve({ start: r.start, count: r.count, data: r.data });
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
