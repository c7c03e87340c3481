/**
 * The indexer's header reading: inline, or in a worker thread (index-worker.ts) that reads the
 * next batch's headers while the indexer writes the previous one, with every failure of the
 * worker (a throw, a crash, running out of memory, a hang) pinned on the file it was reading.
 */
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../../platform/ts-worker';
import { readFileHeader, type ReadResult } from './file-header';
import type { ScannedFile } from './folder-walk';
import type { HeaderRequest, HeaderResults } from './header-worker-loop';

export interface HeaderReader {
  read(files: ScannedFile[]): Promise<Map<string, ReadResult>>;
  close(): Promise<void>;
}

/** Restarts of the worker in one job before the rest is read inline. */
const MAX_WORKER_RESTARTS = 10;

/** Reads one file inline; readFileHeader never throws, this guards against it anyway. */
function readInline(f: ScannedFile, headChunk: number, buf: Uint8Array): ReadResult {
  try {
    return readFileHeader(f.path, f.size, headChunk, buf);
  } catch (err) {
    return { skip: `could not read the header: ${(err as Error)?.message ?? String(err)}` };
  }
}

/** Ends a worker without waiting for it (one stuck in a system call may never finish ending). */
function dropWorker(w: Worker): void {
  w.removeAllListeners();
  w.on('error', () => {}); // late errors of a dropped worker are of no interest
  w.unref();
  void w.terminate().catch(() => {});
}

/**
 * Reads headers inline, or in a worker thread (falling back to inline if it cannot start).
 * Requests go to the worker as soon as they are made (it reads the next batch while this
 * thread records the previous one) and are answered in order, in chunks. The worker announces
 * each file in a shared progress word before reading it, so a failure is pinned on that file:
 * when the worker throws, crashes, runs out of memory, sends what cannot be received, or finishes
 * no file for `stallMs`, that file is skipped with the reason and the rest (files read but not
 * yet sent included) goes to a new worker, with the requests queued behind it. Cancelling (the signal) terminates the worker at once; the pending read resolves with
 * what it has.
 */
export async function headerReader(
  workers: number,
  headChunk: number,
  warn: (w: string) => void,
  signal: AbortSignal | undefined,
  stallMs: number,
  entry: URL,
): Promise<HeaderReader> {
  const inlineBuf = new Uint8Array(headChunk);
  const inline: HeaderReader = {
    async read(files) {
      return new Map(files.map((f) => [f.path, readInline(f, headChunk, inlineBuf)]));
    },
    async close() {},
  };
  if (workers <= 0) return inline;
  // The worker starts with the first batch that has something to read (a re-run of an unchanged
  // folder never starts it).
  let current: Promise<Worker | null> | null = null;
  let restarts = 0;
  let gaveUp = false;
  let nextId = 1;
  /** The worker in use; a failure seen by several requests ends it (and counts) once. */
  let live: Worker | null = null;
  const start = () =>
    (current ??= (async () => {
      let worker: Worker | null = null;
      try {
        worker = spawnWorker(entry, null, { resourceLimits: { maxOldGenerationSizeMb: 512 } });
        const w = worker;
        await new Promise<void>((res, rej) => {
          const t = setTimeout(() => rej(new Error('worker did not start in 30 s')), 30_000);
          const done = (err?: Error) => {
            clearTimeout(t);
            w.off('message', onMessage).off('error', done).off('exit', onExit);
            if (err) rej(err);
            else res();
          };
          const onMessage = (m: { type: string; message?: string }) => done(m.type === 'ready' ? undefined : new Error(m.message ?? 'worker failed'));
          const onExit = (code: number) => done(new Error(`worker exited with code ${code} while starting`));
          w.on('message', onMessage).on('error', done).on('exit', onExit);
        });
        w.on('error', () => {}); // reported through 'exit' during a read
        live = w;
        return w;
      } catch (err) {
        if (worker) dropWorker(worker);
        warn(`header reading in a worker thread is unavailable (${(err as Error).message}): reading inline`);
        gaveUp = true;
        return null;
      }
    })());
  /** Requests sent to each worker and not yet answered: a discarded worker sends them again. */
  const waitingOn = new Map<Worker, Set<() => void>>();
  const discard = (w: Worker) => {
    const waiting = waitingOn.get(w);
    waitingOn.delete(w);
    for (const abandon of waiting ?? []) abandon();
    dropWorker(w);
    if (live !== w) return;
    live = null;
    current = null;
    restarts++;
    if (restarts > MAX_WORKER_RESTARTS && !gaveUp) {
      gaveUp = true;
      warn(`the header-reading worker failed ${restarts} times: the remaining files are read inline`);
    }
  };

  /** failedAt -1: the worker failed before reaching this request (it is sent again whole). */
  type Outcome = { done: true } | { done: false; failedAt: number; reason: string } | { cancelled: true };
  /** Sends files to the worker; results arrive in order, in chunks, and `onResult` gets each. */
  const runOnWorker = (w: Worker, files: ScannedFile[], onResult: (i: number, r: ReadResult) => void): Promise<Outcome> =>
    new Promise((resolve) => {
      const id = nextId++;
      const progressBuf = new SharedArrayBuffer(8);
      const progress = new Int32Array(progressBuf);
      Atomics.store(progress, 0, -1);
      let received = 0;
      let error: Error | null = null;
      let timer: ReturnType<typeof setTimeout> | undefined;
      /** Whether the worker has reached this request (it takes requests in order). */
      const started = () => Atomics.load(progress, 0) === id;
      /** The file the worker is on in this request, or -1 before it reaches it. */
      const current = () => (started() ? Math.max(received, Atomics.load(progress, 1)) : -1);
      const abandon = () => finish({ done: false, failedAt: -1, reason: '' });
      const finish = (o: Outcome) => {
        waitingOn.get(w)?.delete(abandon);
        clearTimeout(timer);
        w.off('message', onMessage).off('messageerror', onMessageError).off('error', onError).off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
        resolve(o);
      };
      // A stall: the worker is on this request and finished no file for stallMs (an earlier request
      // being read is watched by its own timer).
      const arm = () => {
        clearTimeout(timer);
        const seen = current();
        timer = setTimeout(() => {
          if (!started() || current() !== seen) return arm();
          finish({ done: false, failedAt: current(), reason: `reading the header did not finish within ${Math.round(stallMs / 1000)} s (a hung drive or a file that blocks): skipped` });
        }, stallMs);
      };
      const onMessage = (m: HeaderResults) => {
        if (m.type !== 'results' || m.id !== id) return;
        m.results.forEach((r, k) => onResult(m.start + k, r));
        received = m.start + m.results.length;
        if (received >= files.length) finish({ done: true });
      };
      const onMessageError = (err: Error) =>
        finish({ done: false, failedAt: current(), reason: `the header reader's result could not be received: ${err.message}` });
      const onError = (err: Error) => {
        error = err; // 'exit' follows, after the messages sent before the failure
      };
      const onExit = (code: number) => {
        const why = error ? `${(error as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'ran out of memory' : 'failed'}: ${error.message}` : `exited with code ${code}`;
        finish({ done: false, failedAt: current(), reason: `the header reader ${why} while reading this file: skipped` });
      };
      const onAbort = () => finish({ cancelled: true });
      w.on('message', onMessage).on('messageerror', onMessageError).on('error', onError).on('exit', onExit);
      if (!waitingOn.has(w)) waitingOn.set(w, new Set());
      waitingOn.get(w)!.add(abandon);
      if (signal?.aborted) return finish({ cancelled: true });
      signal?.addEventListener('abort', onAbort, { once: true });
      arm();
      w.postMessage({ id, files: files.map((f) => ({ path: f.path, size: f.size })), headChunk, progress: progressBuf } satisfies HeaderRequest);
    });

  /** A promise, or undefined as soon as the job is cancelled. */
  const untilAborted = <T>(p: Promise<T>): Promise<T | undefined> =>
    !signal
      ? p
      : signal.aborted
        ? Promise.resolve(undefined)
        : new Promise((res, rej) => {
            const onAbort = () => res(undefined);
            signal.addEventListener('abort', onAbort, { once: true });
            p.then(res, rej).finally(() => signal.removeEventListener('abort', onAbort));
          });
  const readFiles = async (files: ScannedFile[]): Promise<Map<string, ReadResult>> => {
    const out = new Map<string, ReadResult>();
    let todo = files;
    while (todo.length > 0) {
      if (signal?.aborted) break;
      const w = gaveUp ? null : await untilAborted(start());
      if (signal?.aborted) break; // a starting worker is ended by close()
      if (!w) {
        for (const f of todo) {
          if (signal?.aborted) break;
          out.set(f.path, readInline(f, headChunk, inlineBuf));
        }
        break;
      }
      const batch = todo;
      const o = await runOnWorker(w, batch, (k, r) => out.set(batch[k].path, r));
      if ('cancelled' in o) {
        discard(w);
        break;
      }
      if (o.done) break;
      // The failed file is skipped; the rest, files read but not yet sent included, goes again.
      if (o.failedAt >= 0) out.set(batch[o.failedAt].path, { skip: o.reason });
      todo = batch.filter((f) => !out.has(f.path));
      discard(w);
    }
    return out;
  };
  return {
    read(files) {
      if (files.length === 0) return Promise.resolve(new Map());
      return readFiles(files);
    },
    async close() {
      const pending = current;
      current = null;
      if (!pending) return;
      // A worker still starting is ended once it has started; one stuck in a system call may not
      // end promptly: wait 2 s at most, then let it go (unreferenced).
      const sleep = () => new Promise<null>((r) => setTimeout(() => r(null), 2000).unref());
      const w = await Promise.race([pending, sleep()]);
      if (!w) {
        void pending.then((late) => late && dropWorker(late));
        return;
      }
      const ended = w.terminate().catch(() => {});
      await Promise.race([ended, sleep()]);
      dropWorker(w);
    },
  };
}
