/**
 * Starting (or resuming) a run: takes its folder's lock, starts a trainer process on it, records
 * the trainer's events in the library, and hands back pause, resume and stop.
 */
import { resolve } from 'node:path';
import { TRAINER_PROTOCOL, type TrainerEvent } from '../../shared/trainer-protocol';
import type { Database } from '../../library/db/sqlite';
import { RunEventRecorder, type RunEnd } from './record-events';
import { lockRunFolder } from './run-lock';
import type { RunRow } from './run-store';
import { spawnNodeTrainer, type SpawnTrainer, type TrainerChild } from './trainer-host';
import type { BackendName } from '../../shared/backends';

export interface RunHandle {
  run: RunRow;
  child: TrainerChild;
  pause(): void;
  resume(): void;
  stop(): void;
  /** Resolves when the trainer exits, with the final status. */
  done: Promise<RunEnd>;
}

export interface StartOptions {
  resume?: boolean;
  cacheDir?: string | null;
  backend?: BackendName;
  spawn?: SpawnTrainer;
  onEvent?: (e: TrainerEvent) => void;
}

/** Starts (or resumes) a run in a trainer process and records its events in the database. */
export function startRun(db: Database, run: RunRow, o: StartOptions = {}): RunHandle {
  const abs = resolve(run.dir);
  // Two trainers in one folder would write the same checkpoints, metrics and results.
  const release = lockRunFolder(abs);
  if (!release) throw new Error(`run "${run.name}" is already training (${abs})`);
  let child: TrainerChild;
  try {
    child = (o.spawn ?? spawnNodeTrainer)();
  } catch (err) {
    release();
    throw err;
  }
  const recorder = new RunEventRecorder(db, run, abs);
  const done = new Promise<RunEnd>((resolveDone) => {
    child.onEvent((e) => {
      recorder.record(e);
      o.onEvent?.(e);
    });
    child.onExit((code, signal) => {
      release();
      resolveDone(recorder.exited(code, signal));
    });
  });
  child.send({ v: TRAINER_PROTOCOL, type: 'start', runDir: run.dir, resume: o.resume ?? true, cacheDir: o.cacheDir ?? null, backend: o.backend });
  return {
    run,
    child,
    pause: () => child.send({ v: 1, type: 'pause' }),
    resume: () => child.send({ v: 1, type: 'resume' }),
    stop: () => child.send({ v: 1, type: 'stop' }),
    done,
  };
}
