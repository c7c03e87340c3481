/**
 * Installing the authors' PyTorch checkpoint (`last.pth.tar` / `best.pth.tar`: torch.save of
 * {'epoch', 'model_state', 'model', 'optimizer_state'}, or a bare state_dict) as a run that
 * fine-tuning, eval-ssl, the bias probe and export start from, without Python and without
 * executing anything in the file (src/core/torch: the zip, a pickle reader that keeps unknown
 * classes opaque and calls only an allow-list, the reference model's naming rule).
 *
 * The one path for `ctssl import FILE.pth.tar`, `packages.import` (a drop,
 * a pick or a server upload in the app): `importKind` tells a checkpoint from a weights package, and RunService
 * sends each to its importer. Like a package (package-import.ts): everything is checked before a
 * byte is written (every key of the state dict known, none missing, each of its shape, every
 * storage's size and CRC), then the run is written into a fresh staging folder and installed by
 * one rename (`installStaged`); the same file imported again is the run already there.
 *
 * The run: config.json (the masked-region task at 20 % with the public code's side definition,
 * the preset the weights match with their channels, the input size the pickled module records
 * as `img_size` or the preset's, per-slice min-max scaling, RAdam 1e-3, batch 16: the public
 * code's settings), checkpoints/step-0000000 (our tensor names and layouts, safetensors),
 * run.json (where it came from: file name, SHA-256, epoch, the checkpoint's other keys and the
 * classes it names, all read as data). No manifest: the weights were trained elsewhere.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { moduleImageSize, readReferenceCheckpoint, sniffTorchFile, TORCH_LIMITS, TorchFormatError, type TorchCheckpointLimits } from '../core/torch';
import { readTorchZip } from '../core/torch/zip';
import { vqvaePreset, vqvaeSpecs } from '../core/ml/specs/vqvae';
import { configHash } from '../library/runs/run-hash';
import { buildManifest } from '../library/runs/manifest';
import { writeCheckpoint, writeJsonAtomic } from '../library/runs/checkpoint';
import { parsePretrainConfig } from '../shared/run-config';
import type { Database } from '../library/db/sqlite';
import { appMeta } from '../platform/app-meta';
import { cleanText as clean, type ImportResult, installStaged, openSource, PackageError, packageBaseName, type PackageSource, type Reader, removeStaleStaging } from './package-import';
import { registerImportedRun, type RunRow } from './runs/run-store';

const GiB = 2 ** 30;

/** A checkpoint file read at all: the paper's with its optimizer state is about 1.2 GB. */
export const MAX_CHECKPOINT_BYTES = 8 * GiB;

export interface CheckpointImportResult extends ImportResult {
  kind: 'pytorch-checkpoint';
  /** The checkpoint's `epoch`, when it has one. */
  epoch: number | null;
  /** Where the state dict was: 'model_state', 'state_dict' or '(top level)'. */
  stateKey: string;
  /** Other entries of the checkpoint, parsed and not used ('model', 'optimizer_state', ...). */
  ignored: string[];
  channels: number;
}

export interface CheckpointImportOptions {
  limits?: Partial<TorchCheckpointLimits>;
  /** Input side of the run (default: the module's img_size, else the preset's). */
  size?: number;
}

/** What a file to import is: the authors' PyTorch checkpoint, or (anything else) a weights package. */
export function importKind(source: PackageSource): 'checkpoint' | 'package' {
  const name = typeof source === 'string' ? source : source.name;
  const torchName = /\.(pth|pt|tar|ckpt)$/i.test(name);
  let r: Reader;
  try {
    r = openSource(source, { maxPackageBytes: MAX_CHECKPOINT_BYTES });
  } catch {
    return torchName ? 'checkpoint' : 'package'; // the importer says why it cannot be read
  }
  try {
    const kind = sniffTorchFile(r.read(0, 4));
    if (kind === 'legacy') return 'checkpoint';
    if (kind !== 'zip') return torchName ? 'checkpoint' : 'package';
    try {
      readTorchZip(r, TORCH_LIMITS);
      return 'checkpoint';
    } catch (err) {
      // a zip without <name>/data.pkl is a package; a damaged one goes where its name says
      return err instanceof TorchFormatError && /without <name>\/data\.pkl/.test(err.message) ? 'package' : torchName ? 'checkpoint' : 'package';
    }
  } finally {
    r.close();
  }
}

function sha256Of(r: Reader): string {
  const h = createHash('sha256');
  const step = 16 * 2 ** 20;
  for (let at = 0; at < r.size; at += step) h.update(r.read(at, Math.min(step, r.size - at)));
  return h.digest('hex');
}

/** Verifies a checkpoint and installs it as a run folder under `into`. */
export function importCheckpoint(source: PackageSource, into: string, o: CheckpointImportOptions = {}): CheckpointImportResult {
  const limits: TorchCheckpointLimits = { ...TORCH_LIMITS, ...o.limits };
  const r = openSource(source, { maxPackageBytes: MAX_CHECKPOINT_BYTES });
  const label = r.label;
  try {
    // 1. Everything checked, nothing written.
    let read;
    try {
      read = readReferenceCheckpoint(r, { limits, size: o.size });
      // the weights do not fix the input side: the module's img_size (read as data), else the preset's
      const size = o.size ?? moduleImageSize(read.checkpoint);
      if (size && size !== read.matched.config.size) {
        read.matched.config = vqvaePreset(read.matched.preset, { channels: read.matched.config.channels, size });
        vqvaeSpecs(read.matched.config); // validates the size
      }
    } catch (err) {
      if (err instanceof TorchFormatError) throw new PackageError(label, err.message);
      throw err;
    }
    const { checkpoint: ck, matched, weights } = read;
    const fileName = clean(basename(r.fileName.replace(/\\/g, '/')), 255);
    const sha256 = sha256Of(r);
    const name = clean(`PyTorch checkpoint ${fileName}`, 120);
    const config = parsePretrainConfig({
      name,
      task: 'masked',
      maskPercent: 20,
      maskDefinition: 'side',
      preset: matched.preset,
      size: matched.config.size,
      // The authors' checkpoint (3 channels) was trained by the public code: the reference recipe,
      // whose fields below it matches; a 1-channel state dict keeps the same fields under 'ours'.
      ...(matched.config.channels === 3 ? { channels: 3, recipe: 'reference' as const } : {}),
      steps: 1,
      batchSize: 16,
      optimizer: 'radam',
      lr: 1e-3,
      codebookInit: 'uniform',
      scaling: 'minmax',
      windowLevel: 50,
      windowWidth: 350,
    });
    const ignored = ck.otherKeys.filter((k) => k !== 'epoch');
    const result = (dir: string): CheckpointImportResult => ({
      kind: 'pytorch-checkpoint',
      dir,
      name,
      preset: matched.preset,
      task: config.task,
      size: matched.config.size,
      tensors: weights.length,
      licence: 'not stated (a PyTorch checkpoint carries none: ask its authors)',
      epoch: ck.epoch,
      stateKey: ck.stateKey,
      ignored,
      channels: matched.config.channels,
    });

    // 2. A fresh staging folder, 3. one rename.
    const root = resolve(into);
    mkdirSync(root, { recursive: true });
    removeStaleStaging(root);
    const staging = mkdtempSync(join(root, '.import-'));
    try {
      writeJsonAtomic(join(staging, 'config.json'), config);
      writeCheckpoint(staging, { step: 0, epoch: ck.epoch ?? 0, batch: 0, configHash: configHash(config), manifestHash: '', losses: {}, savedAt: new Date().toISOString() }, weights, null);
      writeJsonAtomic(join(staging, 'run.json'), {
        app: appMeta().name,
        appVersion: appMeta().version,
        importedFrom: fileName,
        importedAt: new Date().toISOString(),
        source: {
          kind: 'pytorch-checkpoint',
          sha256,
          bytes: r.size,
          epoch: ck.epoch,
          stateKey: ck.stateKey,
          ignoredEntries: ignored,
          // class names the pickle mentions, kept opaque, never loaded
          opaqueClasses: ck.report.opaqueClasses.slice(0, 200).map((c) => clean(c, 200)),
          architecture: matched.arch,
          tensors: weights.length,
          droppedKeys: matched.mapping.filter((m) => m.ours === null).length,
        },
        configHash: configHash(config),
      });
      const stem = `${packageBaseName(fileName.replace(/\.pth\.tar$/i, '.tar'))}-${sha256.slice(0, 16)}`;
      const same = (dir: string) => {
        try {
          const j = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { source?: { sha256?: string } };
          return j.source?.sha256 === sha256 && existsSync(join(dir, 'config.json')) && statSync(dir).isDirectory();
        } catch {
          return false;
        }
      };
      return result(installStaged(staging, root, stem, same, label));
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      if (err instanceof PackageError) throw err;
      throw new PackageError(label, `could not install: ${(err as Error).message}`);
    }
  } catch (err) {
    if (err instanceof PackageError) throw err;
    if (err instanceof TorchFormatError) throw new PackageError(label, err.message);
    throw new PackageError(label, `could not import: ${(err as Error).message}`);
  } finally {
    r.close();
  }
}

/**
 * The cohort eval-ssl evaluates a run trained elsewhere on (an imported package or checkpoint has
 * no manifest): this library's cohort by the run's filter (the paper's rule by default), every
 * patient held out since none trained it, written as `<run>/eval/manifest.json`, which the trainer
 * reads in place of the run's manifest (readPretrainRun). Returns the path.
 */
export function writeEvaluationCohort(db: Database, runDir: string): string {
  const config = parsePretrainConfig(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')));
  const manifest = buildManifest(db, { filter: config.filter, seriesIds: config.seriesIds, seed: config.seed, fractions: { train: 0, val: 0, test: 1 }, sliceStride: config.sliceStride });
  mkdirSync(join(runDir, 'eval'), { recursive: true });
  const path = join(runDir, 'eval', 'manifest.json');
  writeJsonAtomic(path, manifest);
  return path;
}

/** Imports a checkpoint and records it in the library: the one path for the CLI and the app. */
export function importCheckpointAsRun(db: Database, source: PackageSource, dataDir: string, o: CheckpointImportOptions = {}): CheckpointImportResult & { run: RunRow } {
  const r = importCheckpoint(source, join(resolve(dataDir), 'imported'), o);
  return { ...r, run: registerImportedRun(db, r.dir) };
}
