/** What the indexing progress bar shows for an IndexProgress. Pure; unit-tested. */
import type { IndexProgress } from '../../../shared/types';
import { count, duration, millis, rate } from '../lib/format';

export interface ProgressView {
  running: boolean;
  /** 0..1, or null while the total is unknown (scanning): the bar is then indeterminate. */
  fraction: number | null;
  /** "Parsing headers: 1,204 / 20,000 files" */
  label: string;
  /** "812 files/s" or "" */
  speed: string;
  /** "ETA 21 s" or "" */
  eta: string;
  /** Final line once finished, e.g. "Done: 18 files (17 parsed), 17 instances, 1 series in 0.4 s; 1 skipped". */
  outcome: string;
  tone: 'active' | 'ok' | 'warn' | 'error';
}

const phaseLabel: Record<IndexProgress['phase'], string> = {
  scanning: 'Scanning folders',
  parsing: 'Parsing headers',
  geometry: 'Computing series geometry',
  done: 'Done',
  cancelled: 'Cancelled',
  error: 'Failed',
};

export function isRunning(p: IndexProgress | null): boolean {
  return !!p && (p.phase === 'scanning' || p.phase === 'parsing' || p.phase === 'geometry');
}

export function describeProgress(p: IndexProgress): ProgressView {
  const running = isRunning(p);
  const files = `${count(p.filesDone)} / ${count(p.filesFound)} files`;
  let fraction: number | null = null;
  if (p.phase === 'parsing' || p.phase === 'geometry') fraction = p.filesFound > 0 ? Math.min(1, p.filesDone / p.filesFound) : 1;
  if (p.phase === 'done') fraction = 1;
  if (p.phase === 'cancelled' || p.phase === 'error') fraction = p.filesFound > 0 ? Math.min(1, p.filesDone / p.filesFound) : 0;
  if (p.phase === 'geometry') fraction = 1;

  let label = `${phaseLabel[p.phase]}: ${p.phase === 'scanning' ? `${count(p.filesFound)} files found` : files}`;
  if (p.skipped > 0) label += `, ${count(p.skipped)} skipped`;

  const speed = running && p.filesPerSecond > 0 ? `${rate(p.filesPerSecond)} files/s` : '';
  const eta = running && p.phase === 'parsing' && p.etaSeconds !== null ? `ETA ${duration(p.etaSeconds)}` : '';

  let outcome = '';
  const s = p.summary;
  if (!running) {
    if (s) {
      outcome =
        `${phaseLabel[p.phase]}: ${count(s.files)} files (${count(s.parsed)} parsed), ${count(s.instances)} instances, ` +
        `${count(s.series)} series in ${s.seconds < 1 ? millis(s.seconds * 1000) : s.seconds < 10 ? s.seconds.toFixed(1) + ' s' : duration(s.seconds)}`;
      if (s.skipped.length > 0) outcome += `; ${count(s.skipped.length)} skipped`;
      if (s.duplicates > 0) outcome += `; ${count(s.duplicates)} duplicates`;
      if (s.removed > 0) outcome += `; ${count(s.removed)} removed`;
    } else {
      outcome = `${phaseLabel[p.phase]}: ${files}`;
    }
    if (p.message) outcome += ` (${p.message})`;
  }
  const tone = running ? 'active' : p.phase === 'done' ? 'ok' : p.phase === 'cancelled' ? 'warn' : 'error';
  return { running, fraction, label, speed, eta, outcome, tone };
}
