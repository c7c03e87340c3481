/**
 * The cluster-job export's worker thread: converts slices (slice-convert.ts) while the main thread
 * writes the shards, one request at a time per worker, answering { id, bytes } (transferred) or
 * { id, error }.
 */
import { parentPort } from 'node:worker_threads';
import { sliceBytes, type SliceRequest } from './slice-convert';

parentPort!.on('message', (m: { id: number; request: SliceRequest }) => {
  sliceBytes(m.request).then(
    (bytes) => parentPort!.postMessage({ id: m.id, bytes }, [bytes.buffer as ArrayBuffer]),
    (err: unknown) => parentPort!.postMessage({ id: m.id, error: (err as Error)?.message ?? String(err) }),
  );
});
parentPort!.postMessage({ id: -1, ready: true });
