/**
 * The Evaluate page's held-out browser: which patients and series a pretraining run held out (from
 * its manifest.json), and every slice of one of them through the latest checkpoint as PNG bytes,
 * computed by a trainer process (src/trainer/held-out.ts: the only process with TensorFlow.js) and
 * kept in memory for the last few series asked (per run folder, checkpoint and series), so that
 * browsing slices and going back to a patient is immediate.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../shared/envelope';
import type { HeldOutList, HeldOutSeriesImages } from '../shared/types';
import { latestCheckpointDir } from '../library/runs/checkpoint';
import { trainerRequest, type SpawnTrainer } from './runs/trainer-host';

type Split = HeldOutList['split'];
interface ManifestView {
  series: { seriesUid: string; patientKey: string; split: Split; slices: unknown[] }[];
  counts: Record<Split, { slices: number }>;
}

/** Series kept in memory (a 128 px series of 64 slices is about 1 MB of PNG). */
const CACHE = 8;

export class HeldOutService {
  private cache = new Map<string, Promise<HeldOutSeriesImages>>();

  constructor(
    private readonly spawn: SpawnTrainer,
    private readonly cacheDir: string | null,
  ) {}

  private manifest(dir: string): ManifestView {
    const file = join(dir, 'manifest.json');
    if (!existsSync(file)) throw new ApiError('invalid-argument', 'this run has no manifest: only pretraining runs trained here hold patients out');
    const m = JSON.parse(readFileSync(file, 'utf8')) as ManifestView;
    if (!Array.isArray(m?.series) || !m.counts) throw new ApiError('invalid-argument', `${file} is not a run manifest`);
    return m;
  }

  /** The held-out split's patients and their series (the validation or training split when it is empty, as the evaluation does). */
  list(dir: string): HeldOutList {
    const m = this.manifest(dir);
    const split = (['test', 'val', 'train'] as Split[]).find((s) => (m.counts[s]?.slices ?? 0) > 0) ?? 'test';
    const byPatient = new Map<string, HeldOutList['patients'][number]>();
    m.series.forEach((s, index) => {
      if (s.split !== split) return;
      const p = byPatient.get(s.patientKey) ?? { patient: s.patientKey, series: [] };
      p.series.push({ index, seriesUid: s.seriesUid, slices: s.slices.length });
      byPatient.set(s.patientKey, p);
    });
    return { split, patients: [...byPatient.values()].sort((a, b) => a.patient.localeCompare(b.patient, 'en', { numeric: true })) };
  }

  /** Every slice of one held-out series (its manifest index) through the run's latest checkpoint. */
  images(dir: string, series: number): Promise<HeldOutSeriesImages> {
    const ck = latestCheckpointDir(dir);
    if (!ck) return Promise.reject(new ApiError('invalid-argument', 'this run has no checkpoint yet: let it train a few steps'));
    if (!this.list(dir).patients.some((p) => p.series.some((s) => s.index === series)))
      return Promise.reject(new ApiError('invalid-argument', `runs.heldOut: series ${series} is not held out by this run`));
    const key = `${ck}\n${series}`;
    let hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    hit = trainerRequest(this.spawn, { v: 1, type: 'held-out', runDir: dir, series, cacheDir: this.cacheDir }, 'held-out-images').then(
      (e) => e.result,
      (err: unknown) => {
        this.cache.delete(key);
        throw new ApiError('internal', `held-out images: ${(err as Error)?.message ?? String(err)}`);
      },
    );
    this.cache.set(key, hit);
    while (this.cache.size > CACHE) this.cache.delete(this.cache.keys().next().value!);
    return hit;
  }
}
