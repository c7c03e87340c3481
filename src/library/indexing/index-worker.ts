/**
 * The indexer's header reader in a worker thread: reads and parses file headers while the main
 * thread writes the previous batch to the database (two cores, two jobs). Answers file by file,
 * in order, so that when this thread dies or hangs the indexer knows which file did it.
 */
import { parentPort } from 'node:worker_threads';
import { readFileHeader, type ReadResult } from './file-header';

interface Request {
  id: number;
  files: { path: string; size: number }[];
  headChunk: number;
}

const buf = new Uint8Array(64 * 1024);
parentPort!.on('message', (m: Request) => {
  m.files.forEach((f, index) => {
    let result: ReadResult;
    try {
      result = readFileHeader(f.path, f.size, m.headChunk, m.headChunk <= buf.length ? buf : undefined);
    } catch (err) {
      result = { skip: `could not read the header: ${(err as Error)?.message ?? String(err)}` };
    }
    parentPort!.postMessage({ type: 'result', id: m.id, index, result });
  });
});
parentPort!.postMessage({ type: 'ready' });
