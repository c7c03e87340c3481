/**
 * The header worker's side of its protocol with header-reader.ts, shared by the real worker
 * (index-worker.ts) and test workers. A request is a batch of files; the answers go back in
 * chunks (every RESULT_CHUNK files or RESULT_FLUSH_MS), in order, because a message per file
 * cost more than a fifth of the indexing time. Before each file the worker writes its index into
 * the shared progress word, so that when the worker dies or hangs the indexer knows which file it
 * was reading without waiting for a message.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ReadResult } from './file-header';

export interface HeaderRequest {
  id: number;
  files: { path: string; size: number }[];
  headChunk: number;
  /** Int32Array over it: [0] the request id, [1] the index of the file being read. */
  progress: SharedArrayBuffer;
}

export interface HeaderResults {
  type: 'results';
  id: number;
  /** Index in the request's files of results[0]. */
  start: number;
  results: ReadResult[];
}

export const RESULT_CHUNK = 64;
export const RESULT_FLUSH_MS = 50;

export function answerHeaderRequests(port: MessagePort, readOne: (f: { path: string; size: number }, headChunk: number) => ReadResult): void {
  port.on('message', (m: HeaderRequest) => {
    const progress = new Int32Array(m.progress);
    Atomics.store(progress, 0, m.id);
    let pending: ReadResult[] = [];
    let start = 0;
    let last = Date.now();
    const flush = () => {
      if (pending.length) port.postMessage({ type: 'results', id: m.id, start, results: pending } satisfies HeaderResults);
      start += pending.length;
      pending = [];
      last = Date.now();
    };
    m.files.forEach((f, index) => {
      Atomics.store(progress, 1, index);
      // A throw of readOne ends the thread: the indexer pins it on this file (readOne guards itself).
      pending.push(readOne(f, m.headChunk));
      if (pending.length >= RESULT_CHUNK || Date.now() - last >= RESULT_FLUSH_MS) flush();
    });
    flush();
  });
  port.postMessage({ type: 'ready' });
}
