/**
 * The CLI's event sink: the events the host services push to a renderer in the app (indexing,
 * run and experiment progress) printed as progress on stderr, so stdout keeps only the results.
 * A command that needs an event's data for its result (a fine-tuning run's held-out results)
 * listens with `on`.
 */
import type { EventName, Events } from '../shared/contract';
import type { TrainerEvent } from '../shared/trainer-protocol';
import { bar, formatEta, progressLine } from './progress';

type Listener = <E extends EventName>(event: E, payload: Events[E]) => void;

/** "loss 0.0123  mse 1.20e-4": every term of a step or validation. */
export function fmtLosses(l: Record<string, number>): string {
  return Object.entries(l)
    .map(([k, v]) => `${k} ${Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : v.toFixed(4)}`)
    .join('  ');
}

export class ConsoleSink {
  readonly line: ReturnType<typeof progressLine>;
  private listeners = new Set<Listener>();
  /** Per run: its folder (named in the 'started' line), backend and total steps. */
  private runs = new Map<number, { dir?: string; backend?: string; total?: number }>();

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.line = progressLine(stream);
  }

  /** Names a run's folder in its progress lines. */
  watchRun(runId: number, dir: string): void {
    this.runs.set(runId, { ...this.runs.get(runId), dir });
  }

  /** Calls `fn` with every event after it is printed; returns the unsubscribe. */
  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }

  /** The services' `emit`. */
  readonly emit = <E extends EventName>(event: E, payload: Events[E]): void => {
    try {
      this.print(event, payload);
    } finally {
      for (const fn of this.listeners) fn(event, payload);
    }
  };

  private print<E extends EventName>(event: E, payload: Events[E]): void {
    const line = this.line;
    switch (event) {
      case 'index.progress': {
        const p = payload as Events['index.progress'];
        if (p.phase === 'scanning') line.update(`scanning: ${p.filesFound} files found`);
        else if (p.phase === 'parsing')
          line.update(`${bar(p.filesFound ? p.filesDone / p.filesFound : 0)} ${p.filesDone}/${p.filesFound} files  ${p.filesPerSecond.toFixed(0)} files/s  ETA ${formatEta(p.etaSeconds)}`);
        else if (p.phase === 'geometry') line.update('computing series geometry...');
        else line.done();
        break;
      }
      case 'run.event': {
        const { runId, event: e } = payload as Events['run.event'];
        this.runEvent(runId, e);
        break;
      }
      case 'experiment.event': {
        const x = payload as Events['experiment.event'];
        const cell = `run ${x.index + 1}/${x.total} (${x.init === 'random' || x.init === 'cnn' ? x.init : 'pretrained'}, fraction ${x.fraction}, seed ${x.seed})`;
        if (x.kind === 'run-event' && x.event?.type === 'step') line.update(`${cell}: step ${x.event.step}  loss ${x.event.losses.loss?.toFixed(4)}`);
        else if (x.kind === 'run-event' && x.event?.type === 'error') line.done(`${cell}: error: ${x.event.message}`);
        else if (x.kind === 'cell') line.done(`${cell} ${x.status}${x.init !== 'random' && x.init !== 'cnn' ? `: ${x.init}` : ''}`);
        // The experiment's own end: its report, or its error, is the command's result.
        else if (x.kind === 'done' || x.kind === 'stopped' || x.kind === 'error') line.done();
        break;
      }
      case 'probe.progress': {
        const p = payload as Events['probe.progress'];
        line.update(`${p.what}: ${p.done}/${p.total}`);
        break;
      }
    }
  }

  private runEvent(runId: number, e: TrainerEvent): void {
    const r = this.runs.get(runId) ?? {};
    this.runs.set(runId, r);
    const line = this.line;
    if (e.type === 'ready') r.backend = `${e.backend.package}@${e.backend.version}`;
    if (e.type === 'started') {
      r.total = e.totalSteps;
      line.done(`${r.dir ?? `run ${runId}`}: ${e.params.toLocaleString()} parameters, ${e.totalSteps} steps on ${r.backend ?? '?'}${e.resumedFrom !== null ? `, resuming at step ${e.resumedFrom}` : ''}`);
    }
    if (e.type === 'step')
      line.update(`${bar(e.step / Math.max(1, r.total ?? 1))} step ${e.step}  ${fmtLosses(e.losses)}  ${e.slicesPerSecond} slices/s  ETA ${formatEta(e.etaSeconds)}`);
    if (e.type === 'eval') line.done(`step ${e.step} validation: ${fmtLosses(e.metrics)}`);
    if (e.type === 'error') line.done(`error: ${e.message}`);
  }
}
