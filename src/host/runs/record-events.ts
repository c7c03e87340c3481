/**
 * Recording a trainer's events in the library as they come: backend, progress, the curves (each
 * loss term and validation metric per step), checkpoints, pause and resume, held-out results and
 * the final status; and, after a killed host, the points of metrics.jsonl it had not recorded.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { FinetuneResults, RecordedResults } from '../../shared/results';
import type { TrainerEvent } from '../../shared/trainer-protocol';
import type { Database } from '../../library/db/sqlite';
import type { RunRow } from './run-store';

/**
 * Held-out results as kept in the run's summary (listed with every run): the numbers and a ROC
 * curve of at most 256 points for the plot; the per-slice scores, labels and patients stay in results.json.
 */
export function summaryResults(results: FinetuneResults): RecordedResults {
  if (results.task !== 'classification' || 'error' in results) return results;
  const { scores: _scores, labels: _labels, patientOfSlice: _patients, ...rest } = results;
  const max = 256;
  const n = rest.roc.fpr.length;
  if (n > max && rest.roc.tpr.length === n) {
    const keep = Array.from({ length: max }, (_, i) => Math.round((i * (n - 1)) / (max - 1)));
    rest.roc = Object.fromEntries(Object.entries(rest.roc).map(([k, v]) => [k, v.length === n ? keep.map((i) => v[i]) : v])) as typeof rest.roc;
  }
  return rest;
}

/**
 * Records the points of `metrics.jsonl` up to `upToStep` in the run's curve (INSERT OR REPLACE:
 * points already recorded stay as they are). Reads the file in 1 MiB chunks, so a long run's file
 * costs no more memory than one chunk; a malformed line is skipped. Returns the points written.
 */
export function backfillMetrics(db: Database, runId: number, path: string, upToStep: number): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return 0;
  }
  const metric = db.prepare('INSERT OR IGNORE INTO run_metrics (run_ref, step, split, name, value) VALUES (?, ?, ?, ?, ?)');
  let written = 0;
  const record = (line: string) => {
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      return;
    }
    if (!row || typeof row !== 'object') return;
    const { step, split, ...values } = row as Record<string, unknown>;
    if (typeof step !== 'number' || !Number.isInteger(step) || step > upToStep || (split !== 'train' && split !== 'val')) return;
    for (const [k, v] of Object.entries(values)) {
      if (typeof v === 'number' && Number.isFinite(v) && k.length <= 64) written += metric.run(runId, step, split, k, v).changes;
    }
  };
  try {
    db.transaction(() => {
      const buf = Buffer.alloc(1 << 20);
      const decoder = new StringDecoder('utf8');
      let rest = '';
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n <= 0) break;
        const lines = (rest + decoder.write(buf.subarray(0, n))).split('\n');
        rest = lines.pop() ?? '';
        // A line longer than a chunk is not ours: drop it rather than grow without bound.
        if (rest.length > buf.length) rest = '';
        for (const l of lines) if (l) record(l);
      }
      if (rest) record(rest);
    })();
  } finally {
    closeSync(fd);
  }
  return written;
}

/** How a run's trainer ended. */
export interface RunEnd {
  status: RunRow['status'];
  step: number;
  finalLosses: Record<string, number>;
  error?: string;
}

/** Records one run's trainer events in the library: marks it running when made. */
export class RunEventRecorder {
  private readonly setStatus;
  private readonly setProgress;
  private readonly setBackend;
  private readonly setSummary;
  private readonly metric;
  private readonly artifact;
  private total: number;
  private step: number;
  private finalLosses: Record<string, number> = {};
  private results: FinetuneResults | undefined;
  private terminal: { status: RunRow['status']; error?: string } | null = null;

  constructor(
    private readonly db: Database,
    private readonly run: RunRow,
    /** The run folder, absolute. */
    private readonly dir: string,
  ) {
    this.setStatus = db.prepare('UPDATE runs SET status = ?, updated_at = ?, error = ? WHERE id = ?');
    this.setProgress = db.prepare('UPDATE runs SET step = ?, total_steps = ?, updated_at = ? WHERE id = ?');
    this.setBackend = db.prepare('UPDATE runs SET backend = ? WHERE id = ?');
    this.setSummary = db.prepare('UPDATE runs SET summary = ? WHERE id = ?');
    this.metric = db.prepare('INSERT OR REPLACE INTO run_metrics (run_ref, step, split, name, value) VALUES (?, ?, ?, ?, ?)');
    this.artifact = db.prepare('INSERT OR REPLACE INTO run_artifacts (run_ref, kind, path, step, created_at) VALUES (?, ?, ?, ?, ?)');
    this.total = run.totalSteps;
    this.step = run.step;
    this.setStatus.run('running', now(), '', run.id);
  }

  /** Records one event; recording never throws (it must never kill the run). */
  record(e: TrainerEvent): void {
    const { db, run } = this;
    try {
      switch (e.type) {
        case 'ready':
          this.setBackend.run(`${e.backend.package}@${e.backend.version} (${e.backend.name}${e.backend.simd ? ', SIMD' : ''})`, run.id);
          break;
        case 'started':
          this.total = e.totalSteps;
          this.step = e.step;
          this.setProgress.run(this.step, this.total, now(), run.id);
          if (e.resumedFrom !== null) {
            db.prepare('DELETE FROM run_metrics WHERE run_ref = ? AND step > ?').run(run.id, e.resumedFrom);
            // Points the trainer wrote before a killed host could record them are in metrics.jsonl.
            backfillMetrics(db, run.id, join(this.dir, 'metrics.jsonl'), e.resumedFrom);
          }
          break;
        case 'step':
          this.step = e.step;
          db.transaction(() => {
            for (const [k, v] of Object.entries(e.losses)) if (Number.isFinite(v)) this.metric.run(run.id, e.step, 'train', k, v);
            this.metric.run(run.id, e.step, 'train', 'slicesPerSecond', e.slicesPerSecond);
            this.setProgress.run(e.step, this.total, now(), run.id);
          })();
          break;
        case 'eval':
          db.transaction(() => {
            for (const [k, v] of Object.entries(e.metrics)) if (Number.isFinite(v)) this.metric.run(run.id, e.step, 'val', k, v);
          })();
          break;
        case 'checkpoint':
          this.artifact.run(run.id, 'checkpoint', e.dir, e.step, now());
          break;
        case 'paused':
          this.setStatus.run('paused', now(), '', run.id);
          break;
        case 'resumed':
          this.setStatus.run('running', now(), '', run.id);
          break;
        case 'results':
          // Fine-tuning's held-out results, kept with the run so the app shows them later.
          this.results = e.results;
          break;
        case 'done':
          this.finalLosses = e.finalLosses;
          this.terminal = { status: e.stopped ? 'stopped' : 'done' };
          this.setSummary.run(JSON.stringify({ finalLosses: e.finalLosses, step: e.step, ...(this.results && { results: summaryResults(this.results) }) }), run.id);
          break;
        case 'error':
          this.terminal = { status: 'failed', error: e.message };
          break;
      }
    } catch {
      /* recording must never kill the run */
    }
  }

  /** Records the final status once the trainer has exited (crashed, when it never said done). */
  exited(code: number | null, signal: string | null): RunEnd {
    const t = this.terminal ?? { status: 'crashed' as const, error: `trainer exited (${signal ?? 'code ' + code}) without finishing: resume the run to continue` };
    this.setStatus.run(t.status, now(), t.error ?? '', this.run.id);
    return { status: t.status, step: this.step, finalLosses: this.finalLosses, error: t.error };
  }
}

const now = () => new Date().toISOString();
