/**
 * The indexer's header reader in a worker thread: reads and parses file headers while the main
 * thread writes the previous batch to the database (two cores, two jobs).
 */
import { parentPort } from 'node:worker_threads';
import { readFileHeader } from './file-header';

interface Request {
  id: number;
  files: { path: string; size: number }[];
  headChunk: number;
}

const buf = new Uint8Array(64 * 1024);
parentPort!.on('message', (m: Request) => {
  const results = m.files.map((f) => readFileHeader(f.path, f.size, m.headChunk, m.headChunk <= buf.length ? buf : undefined));
  parentPort!.postMessage({ type: 'result', id: m.id, results });
});
parentPort!.postMessage({ type: 'ready' });
