/**
 * The encoder of a pretraining run as a standard TensorFlow.js layers model, for a weights package
 * (src/host/export-package.ts asks for it with the 'export-encoder' message, so the host never
 * loads tfjs): built from the run's config and latest checkpoint, saved as `model.json` and
 * `weights.bin` into a folder the host made.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parsePretrainConfig } from '../shared/run-config';
import { buildEncoderModel, layersModelArtifacts, setEncoderWeights } from '../core/ml/encoder-layers';
import { pretrainArchitecture } from '../core/ml/specs/pretrain';
import { latestCheckpointDir, readCheckpoint } from '../library/runs/checkpoint';
import { initBackend, type BackendInfo } from './backend';

export interface ExportedEncoder {
  /** Files written into the folder: model.json (topology and weights manifest), weights.bin. */
  files: string[];
  /** Step of the checkpoint the weights come from. */
  step: number;
  backend: BackendInfo;
}

export async function exportEncoder(runDir: string, outDir: string): Promise<ExportedEncoder> {
  const dir = resolve(runDir);
  if (!existsSync(outDir) || !statSync(outDir).isDirectory()) throw new Error(`export-encoder: ${outDir} is not a folder`);
  const config = parsePretrainConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const ck = latestCheckpointDir(dir);
  if (!ck) throw new Error(`${dir} has no checkpoint to export`);
  const c = readCheckpoint(ck);
  const backend = await initBackend();
  const encoder = buildEncoderModel(pretrainArchitecture(config));
  let art: Awaited<ReturnType<typeof layersModelArtifacts>>;
  try {
    setEncoderWeights(encoder, c.weights);
    art = await layersModelArtifacts(encoder, 'weights.bin');
  } finally {
    encoder.dispose();
  }
  writeFileSync(join(outDir, 'model.json'), art.modelJson);
  writeFileSync(join(outDir, 'weights.bin'), art.weights);
  return { files: ['model.json', 'weights.bin'], step: c.state.step, backend };
}
