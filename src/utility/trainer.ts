/**
 * The trainer process entry: an Electron utility process (`process.parentPort`) or a Node child
 * process (`process.send`). It waits for a 'start' message, runs the training loop, and exits.
 * It also evaluates runs ('evaluate') and builds a run's TF.js encoder for export ('export-encoder').
 * It reads its data itself from the run's manifest; the host never sends pixels.
 */
import { TRAINER_PROTOCOL, type HostMessage, type TrainerEvent } from '../shared/trainer-protocol';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runPretrain } from '../trainer/pretrain/pretrain-loop';
import type { TrainerPort } from '../trainer/step-loop';

interface ParentPort {
  postMessage(m: unknown): void;
  on(event: 'message', cb: (e: { data: unknown }) => void): void;
}

const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;

function send(e: TrainerEvent) {
  if (parentPort) parentPort.postMessage(e);
  else if (process.send) process.send(e);
}

function onMessage(cb: (m: HostMessage) => void) {
  if (parentPort) parentPort.on('message', (e) => cb(e.data as HostMessage));
  else process.on('message', (m) => cb(m as HostMessage));
}

if (!parentPort && !process.send) {
  console.error('trainer: start me from CT SSL Studio (Electron utility process or a Node child process with IPC)');
  process.exit(2);
}

const control: TrainerPort['control'] = { paused: false, stop: false, wake: null };
let started = false;

onMessage((m) => {
  if (!m || m.v !== TRAINER_PROTOCOL) {
    send({ v: 1, type: 'error', message: `protocol mismatch: expected version ${TRAINER_PROTOCOL}, got ${JSON.stringify((m as { v?: unknown })?.v)}` });
    return;
  }
  switch (m.type) {
    case 'start':
      if (started) return;
      started = true;
      runKind(m.runDir)(m, { send, control })
        .then(() => exit(0))
        .catch((err: Error) => {
          send({ v: 1, type: 'error', message: err.message });
          exit(1);
        });
      break;
    case 'evaluate':
      if (started) return;
      started = true;
      reply(import('../trainer/eval-ssl').then(async ({ evaluateRun }) => ({ v: 1, type: 'evaluation', result: await evaluateRun(m.runDir, { split: m.split, maxSlices: m.maxSlices, cacheDir: m.cacheDir, backend: m.backend }) })));
      break;
    case 'held-out':
      if (started) return;
      started = true;
      reply(import('../trainer/held-out').then(async ({ heldOutImages }) => ({ v: 1, type: 'held-out-images', result: await heldOutImages(m.runDir, { series: m.series, cacheDir: m.cacheDir, backend: m.backend }) })));
      break;
    case 'doctor':
      reply(import('../trainer/doctor').then(async ({ doctor }) => ({ v: 1, type: 'doctor', info: await doctor() })));
      break;
    case 'probe':
      if (started) return;
      started = true;
      reply(
        import('../trainer/bias-probe').then(async ({ computeBiasProbe }) => ({
          v: 1,
          type: 'probe-result',
          result: await computeBiasProbe(m.manifest, {
            encoders: m.encoders,
            attributes: m.attributes,
            folds: m.folds,
            seed: m.seed,
            backend: m.backend,
            cnn: m.cnn,
            onProgress: (done, total, what) => send({ v: 1, type: 'probe-progress', done, total, what }),
          }),
        })),
      );
      break;
    case 'export-encoder':
      if (started) return;
      started = true;
      reply(
        import('../trainer/export-encoder').then(async ({ exportEncoder }) => {
          const { files, step, backend } = await exportEncoder(m.runDir, m.outDir);
          return { v: 1, type: 'encoder-exported', files, step, backend: { name: backend.name, version: backend.version, package: backend.package } };
        }),
      );
      break;
    case 'predict':
      if (started) return;
      started = true;
      reply(
        import('../trainer/predict').then(async ({ predictSeries }) => ({
          v: 1,
          type: 'prediction',
          result: await predictSeries(m.runDir, m.series, {
            backend: m.backend,
            threshold: m.threshold,
            shouldStop: () => control.stop,
            onProgress: (done, total) => send({ v: 1, type: 'predict-progress', done, total }),
          }),
        })),
      );
      break;
    case 'pause':
      control.paused = true;
      break;
    case 'resume':
      control.paused = false;
      control.wake?.();
      break;
    case 'stop':
      control.stop = true;
      control.paused = false;
      control.wake?.();
      break;
  }
});

/** Pretraining or fine-tuning, by the run's config. */
function runKind(runDir: string): typeof runPretrain {
  const kind = (JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as { kind?: string }).kind;
  if (kind === 'finetune') return (msg, port) => import('../trainer/finetune/finetune-loop').then((f) => f.runFinetune(msg, port));
  return runPretrain;
}

/**
 * The one answer of a one-shot request (evaluate, held-out, doctor, probe, export-encoder,
 * predict), then exit: its result event, or an error event. Results can be megabytes (masks,
 * images): over a Node IPC channel the process leaves only once the message has gone.
 */
function reply(work: Promise<TrainerEvent>): void {
  work.then(
    (msg) => {
      if (parentPort || !process.send) {
        send(msg);
        exit(0);
      } else process.send(msg, () => exit(0));
    },
    (err: Error) => {
      send({ v: 1, type: 'error', message: err.message });
      exit(1);
    },
  );
}

function exit(code: number) {
  // Let the last messages flush before leaving.
  setTimeout(() => process.exit(code), 50);
}
