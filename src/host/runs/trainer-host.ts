/**
 * Trainer processes seen from the host: the interface of a trainer child (an Electron utility
 * process in the app, a Node child process in the CLI, the server and tests), starting one as a
 * Node child process, and one-shot requests (evaluation, doctor, bias probe, export) answered by
 * a fresh trainer. The host never loads TensorFlow.js: it starts the trainer by path.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { trainerExecArgv } from '../../platform/trainer-flags';
import type { HostMessage, TrainerEvent } from '../../shared/trainer-protocol';

export interface TrainerChild {
  readonly pid: number | undefined;
  send(m: HostMessage): void;
  onEvent(cb: (e: TrainerEvent) => void): void;
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  kill(signal?: NodeJS.Signals): void;
}

export type SpawnTrainer = () => TrainerChild;

const here = dirname(fileURLToPath(import.meta.url));

/**
 * tsx's loader as a file URL, resolved from this module: a bare '--import tsx' is resolved from the
 * child's working directory, so `ctssl` run from a data folder outside the project started trainers
 * that died at once ("Cannot find package 'tsx' imported from <cwd>").
 */
export function tsxLoader(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
}

/** The trainer as a Node child process: from the sources through tsx, or the built bundle. */
export function spawnNodeTrainer(env: NodeJS.ProcessEnv = process.env): TrainerChild {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = fromSources ? resolve(here, '../../utility/trainer.ts') : join(here, 'trainer.js');
  if (!existsSync(entry)) throw new Error(`trainer entry not found: ${entry} (run "npm run build")`);
  const child: ChildProcess = fork(entry, [], {
    execArgv: [...trainerExecArgv(), ...(fromSources ? ['--import', tsxLoader()] : [])],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env,
  });
  return {
    pid: child.pid,
    send: (m) => child.send(m),
    onEvent: (cb) => child.on('message', (m) => cb(m as TrainerEvent)),
    onExit: (cb) => child.on('exit', (code, signal) => cb(code, signal)),
    kill: (signal) => child.kill(signal),
  };
}

/**
 * Runs one request in a fresh trainer process (evaluation, doctor, bias probe) and resolves with
 * the answer of type `want`; other events go to `onEvent`; an error event or an early exit rejects.
 */
export function trainerRequest<T extends TrainerEvent['type']>(
  spawn: SpawnTrainer,
  msg: HostMessage,
  want: T,
  onEvent?: (e: TrainerEvent) => void,
  signal?: AbortSignal,
): Promise<Extract<TrainerEvent, { type: T }>> {
  if (signal?.aborted) return Promise.reject(new TrainerRequestError('cancelled', false, true));
  const child = spawn();
  return new Promise((resolve, reject) => {
    let settled = false;
    let exited = false;
    let cancelled = false;
    // Cancelled: the trainer process is killed; the request rejects once it has exited, so that
    // the caller can remove what it wrote without the process writing again behind it.
    signal?.addEventListener(
      'abort',
      () => {
        if (settled) return;
        settled = true;
        cancelled = true;
        if (exited) reject(new TrainerRequestError('cancelled', false, true));
        else child.kill('SIGKILL');
      },
      { once: true },
    );
    child.onEvent((e) => {
      if (settled) return;
      if (e.type === want) {
        settled = true;
        resolve(e as Extract<TrainerEvent, { type: T }>);
      } else if (e.type === 'error') {
        settled = true;
        reject(new TrainerRequestError(e.message, false));
      } else onEvent?.(e);
    });
    child.onExit((code, signal) => {
      exited = true;
      if (cancelled) reject(new TrainerRequestError('cancelled', false, true));
      else if (!settled) {
        settled = true;
        reject(new TrainerRequestError(`the trainer process exited (${signal ?? 'code ' + code}) before answering`, true));
      }
    });
    child.send(msg);
  });
}

/**
 * A failed trainer request: `crashed` when the process died rather than reporting an error,
 * `cancelled` when the caller aborted it.
 */
export class TrainerRequestError extends Error {
  constructor(
    message: string,
    readonly crashed: boolean,
    readonly cancelled = false,
  ) {
    super(message);
    this.name = 'TrainerRequestError';
  }
}
