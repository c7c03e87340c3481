/**
 * Installing a weights package made by `export-package.ts` (ours or a stranger's) as a run that
 * can initialise fine-tuning. The package is hostile until verified.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { unzipSync } from 'fflate';
import { parsePretrainConfig } from '../../shared/run-config';
import { classifierPreset, classifierSpecs } from '../ml/classifier';
import { decodeSafetensors } from '../ml/safetensors';
import { vqvaePreset, vqvaeSpecs, type VqvaePresetName } from '../ml/vqvae';
import { writeJsonAtomic } from './checkpoint';
import { PACKAGE_FORMAT, PACKAGE_VERSION } from './export-package';
import { configHash } from './run-hash';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface ImportResult {
  dir: string;
  name: string;
  preset: string;
  task: string;
  size: number;
  tensors: number;
  licence: string;
}

export class PackageError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'PackageError';
  }
}

/**
 * Verifies a package (checksums, format, architecture against this app's models) and installs it
 * as an importable run under `into`. Nothing is written unless every check passes; the final
 * folder appears by rename, so a failure never leaves a half-imported run.
 */
export function importPackage(file: string, into: string): ImportResult {
  const path = resolve(file);
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(new Uint8Array(readFileSync(path)));
  } catch (err) {
    throw new PackageError(path, `not a readable package (corrupt or truncated zip): ${(err as Error).message}`);
  }
  const need = ['checksums.json', 'config.json', 'ledger.json', 'model-card.json', 'weights/model.safetensors'];
  for (const n of need) if (!entries[n]) throw new PackageError(path, `missing ${n}: not a CT SSL Studio weights package`);
  const sums = JSON.parse(Buffer.from(entries['checksums.json']).toString('utf8')) as { format: string; formatVersion: number; sha256: Record<string, string> };
  if (sums.format !== PACKAGE_FORMAT) throw new PackageError(path, `unknown package format ${sums.format}`);
  if (sums.formatVersion > PACKAGE_VERSION) throw new PackageError(path, `package format version ${sums.formatVersion} is newer than this app understands (${PACKAGE_VERSION}): update the app`);
  for (const [name, want] of Object.entries(sums.sha256)) {
    if (!entries[name]) throw new PackageError(path, `missing ${name} listed in checksums.json`);
    if (sha256(entries[name]) !== want) throw new PackageError(path, `checksum mismatch for ${name}: the file was altered or damaged`);
  }
  const config = JSON.parse(Buffer.from(entries['config.json']).toString('utf8')) as {
    architecture: Record<string, unknown> & { model: 'vqvae' | 'classifier'; preset: VqvaePresetName; size: number; channels: number; classes?: number };
    preprocessing: { window: { level: number; width: number }; scalingMode: 'fixed' | 'minmax'; size: number };
    task: { name: string; maskPercent: number | null; maskDefinition: string | null; gap: number | null; noiseFraction: number | null };
    training: { optimizer: 'adam' | 'radam'; lr: number; batchSize: number; steps: number; seed: number };
  };
  const card = JSON.parse(Buffer.from(entries['model-card.json']).toString('utf8')) as { name: string; licence: string };
  const a = config.architecture;
  let specs;
  try {
    specs = a.model === 'vqvae' ? vqvaeSpecs({ ...vqvaePreset(a.preset), ...(a as object) } as never) : classifierSpecs({ ...classifierPreset(a.preset, a.classes ?? 2), ...(a as object) } as never);
  } catch (err) {
    throw new PackageError(path, `architecture not supported by this app: ${(err as Error).message}`);
  }
  if (config.preprocessing.size !== a.size) throw new PackageError(path, `input size ${config.preprocessing.size} does not match the architecture (${a.size})`);
  let weights;
  try {
    weights = decodeSafetensors(entries['weights/model.safetensors']).tensors;
  } catch (err) {
    throw new PackageError(path, `weights/model.safetensors: ${(err as Error).message}`);
  }
  const byName = new Map(weights.map((w) => [w.name, w]));
  for (const s of specs) {
    const w = byName.get(s.name);
    if (!w) throw new PackageError(path, `incompatible weights: tensor ${s.name} is missing`);
    if (w.shape.join(',') !== s.shape.join(',')) throw new PackageError(path, `incompatible weights: ${s.name} has shape [${w.shape}], this app's ${a.preset} model expects [${s.shape}]`);
  }
  const uid = sha256(entries['weights/model.safetensors']).slice(0, 16);
  const final = join(resolve(into), `${basename(path).replace(/\.[^.]+$/, '').replace(/[^\w.-]+/g, '_')}-${uid}`);
  if (existsSync(join(final, 'config.json'))) return describeImport(final, config, card, weights.length);
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'checkpoints', 'step-imported'), { recursive: true });
  // A run folder the trainer can start from (config.init) and the app can list.
  const runConfig = parsePretrainConfig({
    name: card.name,
    task: config.task.name,
    ...(config.task.maskPercent ? { maskPercent: config.task.maskPercent } : {}),
    ...(config.task.maskDefinition ? { maskDefinition: config.task.maskDefinition } : {}),
    ...(config.task.gap ? { gap: config.task.gap } : {}),
    ...(config.task.noiseFraction !== null ? { noiseFraction: config.task.noiseFraction } : {}),
    preset: a.preset,
    size: a.size,
    steps: Math.max(1, config.training.steps),
    batchSize: config.training.batchSize,
    optimizer: config.training.optimizer,
    lr: config.training.lr,
    seed: config.training.seed,
    windowLevel: config.preprocessing.window.level,
    windowWidth: config.preprocessing.window.width,
    scaling: config.preprocessing.scalingMode,
  });
  writeJsonAtomic(join(tmp, 'config.json'), runConfig);
  writeFileSync(join(tmp, 'checkpoints', 'step-imported', 'weights.safetensors'), entries['weights/model.safetensors']);
  writeJsonAtomic(join(tmp, 'checkpoints', 'step-imported', 'state.json'), {
    step: config.training.steps,
    epoch: 0,
    batch: 0,
    configHash: configHash(runConfig),
    manifestHash: '',
    losses: {},
    savedAt: new Date().toISOString(),
  });
  writeJsonAtomic(join(tmp, 'checkpoints', 'latest.json'), { step: config.training.steps, dir: 'step-imported' });
  for (const n of Object.keys(entries)) {
    if (n.startsWith('weights/')) continue;
    mkdirSync(dirname(join(tmp, 'package', n)), { recursive: true });
    writeFileSync(join(tmp, 'package', n), entries[n]);
  }
  writeJsonAtomic(join(tmp, 'run.json'), { ...JSON.parse(Buffer.from(entries['ledger.json']).toString('utf8')), importedFrom: basename(path), importedAt: new Date().toISOString() });
  renameSync(tmp, final);
  return describeImport(final, config, card, weights.length);
}

function describeImport(dir: string, config: { architecture: { preset: string; size: number }; task: { name: string } }, card: { name: string; licence: string }, tensors: number): ImportResult {
  return { dir, name: card.name, preset: config.architecture.preset, task: config.task.name, size: config.architecture.size, tensors, licence: card.licence };
}
