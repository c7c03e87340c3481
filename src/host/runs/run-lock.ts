/**
 * One trainer per run folder: while a run trains, its folder holds `trainer.lock` (the host's
 * pid), touched every 20 s; a lock whose process is gone or that has not been touched for 90 s
 * does not count. Checked by every door (the app, `ctssl serve`, the CLI, experiment grids).
 */
import { readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Run folders whose trainer this host process drives (run service and experiment grids alike). */
const training = new Set<string>();
const LOCK = 'trainer.lock';
/** The host touches the lock this often while it trains; a lock not touched for LOCK_STALE_MS is stale. */
const LOCK_HEARTBEAT_MS = 20_000;
const LOCK_STALE_MS = 90_000;

/**
 * Whether a trainer is working in this run folder: driven by this process, or by another live
 * process (the CLI, another `ctssl serve` or app window) whose trainer.lock is fresh. A lock goes
 * stale when its host stops touching it (killed, crashed, machine rebooted) or its pid is gone, so
 * a reused pid cannot hold a run for ever.
 */
export function isTraining(dir: string): boolean {
  const abs = resolve(dir);
  if (training.has(abs)) return true;
  return lockHolder(abs) !== null;
}

/** The live host holding the folder's lock, or null (no lock, stale, or this process's own). */
function lockHolder(abs: string): number | null {
  try {
    const path = join(abs, LOCK);
    if (Date.now() - statSync(path).mtimeMs > LOCK_STALE_MS) return null;
    const { pid } = JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown };
    if (typeof pid !== 'number' || pid === process.pid) return null;
    process.kill(pid, 0); // throws when no such process
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? -1 : null;
  }
}

/**
 * Takes the folder's lock atomically (create-exclusive; a stale lock is replaced once). False when
 * another live host holds it. A folder that cannot hold a lock (read-only, vanished) is not
 * refused: the trainer reports what is wrong with it.
 */
function takeLock(abs: string): boolean {
  const path = join(abs, LOCK);
  const body = JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, body, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return true;
      if (lockHolder(abs) !== null) return false;
      rmSync(path, { force: true });
    }
  }
  return false;
}

/**
 * Takes the run folder's lock for this process and keeps it fresh; returns the function that
 * releases it, or null when a trainer already works in the folder (here or in another process).
 */
export function lockRunFolder(abs: string): (() => void) | null {
  if (training.has(abs) || !takeLock(abs)) return null;
  training.add(abs);
  const heartbeat = setInterval(() => {
    try {
      const t = new Date();
      utimesSync(join(abs, LOCK), t, t);
    } catch {
      // the folder went away; the trainer reports it
    }
  }, LOCK_HEARTBEAT_MS);
  heartbeat.unref?.();
  return () => {
    clearInterval(heartbeat);
    training.delete(abs);
    try {
      const held = JSON.parse(readFileSync(join(abs, LOCK), 'utf8')) as { pid?: unknown };
      if (held.pid === process.pid) rmSync(join(abs, LOCK), { force: true });
    } catch {
      // already gone
    }
  };
}
