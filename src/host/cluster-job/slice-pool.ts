/**
 * Slices converted by `workers` worker threads (slice-worker.ts), or in process for 0: the
 * export's decoding and resizing spread over the machine's cores while the main thread writes.
 */
import type { Worker } from 'node:worker_threads';
import { siblingModule, spawnWorker } from '../../platform/ts-worker';
import { sliceBytes, type SliceRequest } from './slice-convert';

export interface SlicePool {
  convert(r: SliceRequest): Promise<Uint8Array>;
  close(): Promise<void>;
}

type Pending = { resolve: (b: Uint8Array) => void; reject: (e: Error) => void };

export function slicePool(workers: number, entry: URL = siblingModule(import.meta.url, 'slice-worker')): SlicePool {
  if (workers <= 0) return { convert: sliceBytes, close: async () => undefined };
  const idle: Worker[] = [];
  const queue: { id: number; request: SliceRequest }[] = [];
  const pending = new Map<number, Pending & { worker?: Worker }>();
  const all: Worker[] = [];
  let next = 0;
  let failed: Error | null = null;
  const pump = () => {
    while (idle.length && queue.length) {
      const w = idle.pop()!;
      const job = queue.shift()!;
      pending.get(job.id)!.worker = w;
      w.postMessage(job);
    }
  };
  const failAll = (err: Error) => {
    failed = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    queue.length = 0;
  };
  for (let i = 0; i < workers; i++) {
    const w = spawnWorker(entry, null);
    all.push(w);
    w.on('message', (m: { id: number; bytes?: Uint8Array; error?: string; ready?: boolean; type?: string; message?: string }) => {
      if (m.type === 'error') return failAll(new Error(`slice worker failed to start: ${m.message}`));
      if (m.id >= 0) {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (p) m.error !== undefined ? p.reject(new Error(m.error)) : p.resolve(m.bytes!);
      }
      idle.push(w);
      pump();
    });
    w.on('error', (err) => failAll(err));
  }
  return {
    convert(request) {
      if (failed) return Promise.reject(failed);
      return new Promise<Uint8Array>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        queue.push({ id, request });
        pump();
      });
    },
    async close() {
      await Promise.all(all.map((w) => w.terminate()));
    },
  };
}
