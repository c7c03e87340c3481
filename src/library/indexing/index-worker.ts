/**
 * The indexer's header reader in a worker thread: reads and parses file headers while the main
 * thread writes the previous batch to the database (two cores, two jobs). The protocol, with the
 * progress word that pins a failure on the file being read, is in header-worker-loop.ts.
 */
import { parentPort } from 'node:worker_threads';
import { readFileHeader, type ReadResult } from './file-header';
import { answerHeaderRequests } from './header-worker-loop';

const buf = new Uint8Array(64 * 1024);
answerHeaderRequests(parentPort!, (f, headChunk): ReadResult => {
  try {
    return readFileHeader(f.path, f.size, headChunk, headChunk <= buf.length ? buf : undefined);
  } catch (err) {
    return { skip: `could not read the header: ${(err as Error)?.message ?? String(err)}` };
  }
});
