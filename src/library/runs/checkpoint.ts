/**
 * Checkpoints of a run, written atomically: a new folder is written under a temporary name and
 * renamed into place, then `latest.json` is replaced by rename. A run killed at any moment leaves
 * either the previous or the new checkpoint, never a half-written one. Each checkpoint holds the
 * weights (safetensors), the optimizer state (moments as safetensors + step/options) and the data
 * position, which is all a resumed run needs to continue exactly as if it had not stopped.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeSafetensors, encodeSafetensors } from '../../core/ml/safetensors';
import type { OptimizerState } from '../../core/ml/specs/optimizer';
import type { WeightEntry } from '../../core/ml/specs/params';

export interface CheckpointState {
  step: number;
  epoch: number;
  /** Next batch index within the epoch. */
  batch: number;
  configHash: string;
  manifestHash: string;
  losses: Record<string, number>;
  savedAt: string;
}

export interface Checkpoint {
  dir: string;
  state: CheckpointState;
  weights: WeightEntry[];
  optimizer: OptimizerState | null;
}

function writeAtomic(path: string, data: string | Uint8Array) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function checkpointsDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

export function writeCheckpoint(runDir: string, state: CheckpointState, weights: WeightEntry[], optimizer: OptimizerState | null, keep = 2): string {
  const root = checkpointsDir(runDir);
  mkdirSync(root, { recursive: true });
  const name = `step-${String(state.step).padStart(7, '0')}`;
  const final = join(root, name);
  const tmp = join(root, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeFileSync(join(tmp, 'weights.safetensors'), encodeSafetensors(weights.map((w) => ({ name: w.name, shape: w.shape, data: w.data }))));
  if (optimizer) {
    const slots = optimizer.slots.flatMap((s) => [
      { name: `${s.name}:m`, shape: s.shape, data: s.m },
      { name: `${s.name}:v`, shape: s.shape, data: s.v },
    ]);
    writeFileSync(join(tmp, 'optimizer.safetensors'), encodeSafetensors(slots));
    writeFileSync(join(tmp, 'optimizer.json'), JSON.stringify({ kind: optimizer.kind, step: optimizer.step, options: optimizer.options, names: optimizer.slots.map((s) => s.name) }));
  }
  writeFileSync(join(tmp, 'state.json'), JSON.stringify(state, null, 2));
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  writeAtomic(join(root, 'latest.json'), JSON.stringify({ step: state.step, dir: name }));
  // Keep the newest `keep` checkpoints.
  const all = readdirSync(root)
    .filter((d) => /^step-\d+$/.test(d))
    .sort();
  for (const d of all.slice(0, Math.max(0, all.length - keep))) rmSync(join(root, d), { recursive: true, force: true });
  return final;
}

export function latestCheckpointDir(runDir: string): string | null {
  const p = join(checkpointsDir(runDir), 'latest.json');
  if (!existsSync(p)) return null;
  const { dir } = JSON.parse(readFileSync(p, 'utf8')) as { dir: string };
  const full = join(checkpointsDir(runDir), dir);
  return existsSync(join(full, 'state.json')) ? full : null;
}

export function readCheckpoint(dir: string): Checkpoint {
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as CheckpointState;
  const weights = decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'weights.safetensors')))).tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: 'float32' as const,
    data: t.data,
  }));
  let optimizer: OptimizerState | null = null;
  if (existsSync(join(dir, 'optimizer.json'))) {
    const meta = JSON.parse(readFileSync(join(dir, 'optimizer.json'), 'utf8')) as Omit<OptimizerState, 'slots'> & { names: string[] };
    const byName = new Map(decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'optimizer.safetensors')))).tensors.map((t) => [t.name, t]));
    optimizer = {
      kind: meta.kind,
      step: meta.step,
      options: meta.options,
      slots: meta.names.map((n) => ({ name: n, shape: byName.get(`${n}:m`)!.shape, m: byName.get(`${n}:m`)!.data, v: byName.get(`${n}:v`)!.data })),
    };
  }
  return { dir, state, weights, optimizer };
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeAtomic(path, JSON.stringify(value, null, 2));
}
