/**
 * The one IPC contract. Every request the renderer can make and every event it can receive is
 * declared here, once. Electron main, the preload bridge, the `ctssl serve` WebSocket bridge and
 * the renderer are all typed from this table, and main/server validate every argument with the
 * schemas below before a service sees it: known keys only, every string and array bounded.
 *
 * Data is named by library ids (series, runs, label sources) and folder ids, never by paths. Six
 * channels take a path the user chose (see src/host/user-paths.ts for the policy the services
 * apply to each): `library.addFolder`, `labels.importFolder`, `jobs.export` (its folder) and
 * `jobs.import` (picked or typed), `labels.import` and `packages.import`
 * (Electron: picked in a native dialog or dropped on the window; server mode: typed server paths).
 * Browsers send label files as bytes instead (`labels.importBytes`; `labels.sniff` asks first
 * whether a file is one) and packages by an HTTP upload (src/server).
 */
import { z } from 'zod';
import type {
  AppInfo,
  CohortCounts,
  DoctorInfo,
  ExperimentSummary,
  ProbeSummary,
  FolderListing,
  HeldOutList,
  HeldOutSeriesImages,
  SyntheticCohortResult,
  FolderRow,
  IndexProgress,
  IndexSummary,
  LabelSource,
  LibraryStats,
  RunMetrics,
  RunSplit,
  RunSummary,
  SeriesLabels,
  SeriesRow,
  SkippedFile,
  PackedSlices,
  SliceBlock,
  SliceMasks,
  VolumeInfo,
} from './types';
import { ApiError, type Envelope, toEnvelope } from './envelope';
import { cohortFilterSchema, seriesIdsSchema } from './cohort-filter';
import { seriesPageRequestSchema, type SeriesPage } from './series-page';
import { SLICE_ENCODINGS } from './slice-packing';
import { experimentRequestSchema, finetuneRequestSchema, pretrainRequestSchema, runIdSchema, type ExperimentSpec } from './run-config';
import type { StepEvent, TrainerEvent } from './trainer-protocol';
import type { BiasProbeResult, ClusterJobExport, ClusterJobImport, LabelFolderImport, LabelImport, ModelCard, SavedExperimentReport, SslEvaluation } from './results';
import type { PredictionSummary, PredictProgress } from './predict';

export { ApiError, type Envelope, type ErrorEnvelope, toEnvelope, unwrap } from './envelope';
export { cohortFilterSchema };

/** Bumped on any incompatible change of channels, arguments, results or events. */
export const CONTRACT_VERSION = 1;

const id = z.number().int().nonnegative();
/** A folder name under the data folder (experiments/<id>, probes/<id>): no separators, not '.' or '..'. */
const folderId = z
  .string()
  .regex(/^[\w.-]+$/)
  .max(200)
  .refine((s) => !/^\.+$/.test(s), 'not a folder name');
/** Whether a string is a valid folder id (the rule the channels check their arguments with). */
export const isFolderId = (s: string): boolean => folderId.safeParse(s).success;
/** A bias probe folder name (probes/<id>). */
const probeId = folderId;

/**
 * A path the user chose (see the channels that take one): bounded, no NUL. Whether it is absolute,
 * exists, is of the right kind and was chosen by the user is the services' check (user-paths.ts).
 */
export const userPathSchema = z
  .string()
  .min(1)
  .max(4096)
  .refine((s) => !s.includes('\0'), 'a path cannot contain NUL');
/** A file name sent with its bytes (browser uploads): a base name, no separators, bounded. */
const uploadName = z
  .string()
  .min(1)
  .max(255)
  .refine((s) => !/[\/\\\0]/.test(s) && !/^\.+$/.test(s), 'a file name without folder separators');

/** Largest label file a browser may send as bytes (the services cap each kind again: user-paths.ts). */
export const MAX_LABEL_UPLOAD_BYTES = 1024 * 2 ** 20;

export const maskQuerySchema = z
  .object({
    sourceId: id.optional(),
    reader: z.string().max(32).optional(),
    consensusK: z.number().int().min(1).max(16).optional(),
  })
  .strict();

/** Request channels: argument schemas (a tuple) and documentation. Results are typed in `Results`. */
export const channels = {
  /** Application name, version, mode and where its data lives. */
  'app.info': z.tuple([]),
  /**
   * Opens the native folder picker (Electron only) over the asking window, titled for what the folder
   * is for (default 'studies': a folder of DICOM studies to add); resolves to the chosen path or null.
   */
  'library.pickFolder': z.tuple([z.enum(['studies', 'labels', 'job-parent', 'job-output']).optional()]),
  /**
   * Adds a folder to the library and starts indexing it; resolves to the job id at once. The path
   * was picked in the native dialog or typed in the add-folder field; the services refuse it unless
   * it is absolute and an existing directory outside pseudo file systems (/proc, /sys, /dev).
   */
  'library.addFolder': z.tuple([userPathSchema]),
  /**
   * The sub-folders of a folder on the machine the services run on (default: the home folder), for
   * the folder picker of a browser on `ctssl serve`: folders only, links shown with their targets,
   * pseudo file systems refused (src/host/folder-browser.ts).
   */
  'files.listFolder': z.tuple([userPathSchema.optional()]),
  /**
   * "Try it on a synthetic cohort": writes a small labelled synthetic cohort into
   * <data>/synthetic/cohort-N, indexes it and imports its labels (src/host/first-minute.ts);
   * resolves when all is done. Progress as 'library.synthProgress' with `requestId`.
   */
  'library.synthCohort': z.tuple([z.object({ requestId: z.string().max(64).regex(/^[\w-]{1,64}$/).optional() }).strict()]),
  /** Cancels the synthetic cohort being made, by its request id (what is written stays). */
  'library.cancelSynth': z.tuple([z.string().max(64)]),
  /** Re-indexes every library folder (incremental); resolves to the job id. */
  'library.reindex': z.tuple([]),
  /** Cancels the running indexing job; what was committed stays. */
  'library.cancel': z.tuple([z.string().max(64)]),
  /** The current indexing job's last progress, or null when idle. */
  'library.progress': z.tuple([]),
  'library.folders': z.tuple([]),
  /** Removes a folder and everything indexed from it (source files are never touched). */
  'library.removeFolder': z.tuple([id]),
  'library.stats': z.tuple([]),
  /** Series matching a cohort filter. */
  'library.series': z.tuple([cohortFilterSchema]),
  /**
   * One page of the series matching a cohort filter, sorted by a column, and how many match: the
   * Library page asks for the rows it shows (sorted and cut in SQL) instead of every series.
   */
  'library.seriesPage': z.tuple([seriesPageRequestSchema]),
  /** Counts of series per filter, for the "what qualifies" panel. */
  'library.cohortCounts': z.tuple([cohortFilterSchema]),
  'library.skipped': z.tuple([z.number().int().positive().max(100000).optional()]),
  /** Geometry and metadata of one series, ready for the viewer. */
  'viewer.open': z.tuple([id]),
  /** HU voxels of consecutive slices in display orientation. */
  'viewer.slices': z.tuple([id, z.number().int().nonnegative(), z.number().int().positive().max(256)]),
  /** The same slices in a compact lossless wire form (src/shared/slice-packing.ts), for the viewer's worker. */
  'viewer.packed': z.tuple([id, z.number().int().nonnegative(), z.number().int().positive().max(256), z.enum(SLICE_ENCODINGS)]),
  /** Opens the native file picker for label files (Electron only); resolves to the chosen paths. */
  'labels.pickFiles': z.tuple([]),
  /**
   * Imports a label file (LIDC XML, RSNA PE CSV, DICOM SEG, attributes CSV); resolves to its report.
   * Electron: a path picked with labels.pickFiles or dropped on this window; server mode: a typed
   * server path. Checked as an absolute, regular label file under its kind's size cap.
   */
  'labels.import': z.tuple([userPathSchema]),
  /** Imports a label file sent as bytes (server mode: a file chosen or dropped in the browser). */
  'labels.importBytes': z.tuple([
    uploadName,
    z.instanceof(Uint8Array).refine((b) => b.length <= MAX_LABEL_UPLOAD_BYTES, 'label file larger than 1 GiB'),
  ]),
  /**
   * Whether a file is a label file this app reads, from its name and first KiB (the same rule every
   * import applies): its kind, or why not. A browser asks before sending the files of a dropped folder.
   */
  'labels.sniff': z.tuple([uploadName, z.instanceof(Uint8Array).refine((b) => b.length <= 1024, 'more than the first KiB')]),
  /**
   * Imports every label file under a folder (recursively), each as labels.import would; resolves to
   * what happened to every file (imported, skipped and why, failed and why). Electron: a folder
   * picked with library.pickFolder; server mode: a typed server path. Progress as
   * 'labels.folderProgress' with `requestId`; labels.cancelFolder stops it between files.
   */
  'labels.importFolder': z.tuple([userPathSchema, z.object({ requestId: z.string().max(64).regex(/^[\w-]{1,64}$/).optional() }).strict()]),
  /** Cancels a folder import by its request id (files imported so far stay). */
  'labels.cancelFolder': z.tuple([z.string().max(64)]),
  'labels.sources': z.tuple([]),
  'labels.removeSource': z.tuple([id]),
  /** Findings and per-slice label badges of a series. */
  'labels.series': z.tuple([id]),
  /** Masks of one slice (display index) in display orientation. */
  'labels.masks': z.tuple([id, z.number().int().nonnegative(), maskQuerySchema]),
  /** Compute backends present, memory, and the presets and batches that fit (runs in a trainer process). */
  'system.doctor': z.tuple([]),
  'runs.list': z.tuple([]),
  /**
   * Builds the manifest (split by patient) and the run folder; does not start training. `init` is
   * the id of the run whose weights start this one (the services find its folder), `filter` the
   * cohort filter.
   */
  'runs.create': z.tuple([z.discriminatedUnion('kind', [finetuneRequestSchema, pretrainRequestSchema])]),
  /** Starts or resumes a run in a trainer process (utility process in Electron). */
  'runs.start': z.tuple([id]),
  'runs.pause': z.tuple([id]),
  'runs.resume': z.tuple([id]),
  'runs.stop': z.tuple([id]),
  /** Loss and validation curves recorded for a run. */
  'runs.metrics': z.tuple([id]),
  /** Which patients and series are in each split of a run, the runs it descends from and the split's warnings; null for an imported encoder. */
  'runs.split': z.tuple([id]),
  /** Moves a run (not training) to the trash: its folder goes under <data>/trash/runs; undone by runs.restore. */
  'runs.delete': z.tuple([id]),
  'runs.restore': z.tuple([id]),
  /** Runs in the trash. */
  'runs.trash': z.tuple([]),
  /** Deletes the runs in the trash for good. */
  'runs.emptyTrash': z.tuple([z.array(id).max(10000).optional()]),
  /** The latest input/output/target sample of a running run, or null. */
  'runs.sample': z.tuple([id]),
  /** The sample PNGs of a run's last Table II evaluation (files in <run>/eval/), as bytes. */
  'runs.evalImages': z.tuple([id]),
  /** The held-out patients of a pretraining run and their series (the split the evaluation uses), for the Evaluate page's browser. */
  'runs.heldOutList': z.tuple([id]),
  /**
   * Every slice of one held-out series of a pretraining run through its latest checkpoint: input,
   * output, target and difference as PNG bytes (a trainer process computes them; cached per run,
   * checkpoint and series).
   */
  'runs.heldOut': z.tuple([id, z.number().int().nonnegative().max(1_000_000)]),
  /** Table II evaluation on held-out scans (runs in a trainer process). */
  'runs.evaluate': z.tuple([id, z.object({ split: z.enum(['test', 'val', 'train']).optional(), maxSlices: z.number().int().positive().max(1_000_000).optional() }).strict()]),
  /** Exports a run as a weights package into the data folder's exports/ (refuses if identifiers would leak). */
  'runs.export': z.tuple([id, z.object({ licence: z.string().min(1).max(100), author: z.string().max(200).optional() }).strict()]),
  /**
   * Imports a weights package from a path (Electron: picked with packages.pick or dropped on this
   * window; server mode: a typed server path). Checked as an absolute, regular .zip file of at most 2 GiB.
   */
  'packages.import': z.tuple([userPathSchema]),
  /** Imports a weights package sent as bytes (server mode: a file dropped in the browser). */
  /** Opens the native file picker for a weights package (Electron only). */
  'packages.pick': z.tuple([]),
  /**
   * Starts an experiment grid (initialisations x fractions x seeds); progress as 'experiment.event'.
   * `inits` are 'random', 'cnn' or run ids (the services write the runs' folders into spec.json).
   */
  'experiments.start': z.tuple([experimentRequestSchema]),
  'experiments.stop': z.tuple([folderId]),
  /** Continues a stopped, failed or interrupted experiment (finished runs kept, a cut-off run resumes). */
  'experiments.resume': z.tuple([folderId]),
  'experiments.list': z.tuple([]),
  /** Report numbers and SVG plots of an experiment. */
  'experiments.report': z.tuple([folderId]),
  /** Moves an experiment (folder, runs, report) to the trash; undone by experiments.restore. */
  'experiments.delete': z.tuple([folderId]),
  'experiments.restore': z.tuple([folderId]),
  /** Experiments in the trash. */
  'experiments.trash': z.tuple([]),
  /** Deletes experiments in the trash for good (all, or the listed ids). */
  'experiments.emptyTrash': z.tuple([z.array(folderId).max(10000).optional()]),
  /** The bias probe over a cohort and encoders (run ids); progress as 'probe.progress'. */
  'probe.run': z.tuple([
    z
      .object({
        runIds: z.array(runIdSchema).max(16),
        seriesIds: seriesIdsSchema.optional(),
        filter: cohortFilterSchema.optional(),
        attributes: z.array(z.enum(['sex', 'ethnicGroup', 'ageGroup'])).min(1).max(3).optional(),
        folds: z.number().int().min(2).max(20).optional(),
        seed: z.number().int().nonnegative().optional(),
        /** Probe the scans the encoders trained or validated on too (default: left out, from their run manifests). */
        includeTrainingScans: z.boolean().optional(),
        /** Made by the caller; comes back in this probe's 'probe.progress' events, so a window tells its own probe from another's. */
        requestId: z.string().max(64).regex(/^[\w-]{1,64}$/).optional(),
      })
      .strict(),
  ]),
  /** Cancels a running bias probe (its id comes with its 'probe.progress' events). */
  'probe.cancel': z.tuple([probeId]),
  /** Finished bias probes in the data folder, newest first. */
  'probe.list': z.tuple([]),
  /** The result and chart of a finished bias probe. */
  'probe.result': z.tuple([probeId]),
  /** Moves a finished probe to the trash; undone by probe.restore. */
  'probe.delete': z.tuple([probeId]),
  'probe.restore': z.tuple([probeId]),
  'probe.trash': z.tuple([]),
  'probe.emptyTrash': z.tuple([z.array(probeId).max(10000).optional()]),
  /**
   * Runs a fine-tuned run's model on a series in a trainer process (src/host/predict.ts): per-slice
   * scores, a U-Net's masks; kept with the run. Progress as 'predict.progress' with `requestId`.
   */
  'predict.run': z.tuple([
    z.object({ runId: id, seriesId: id, threshold: z.number().gt(0).lt(1).optional(), requestId: z.string().max(64).regex(/^[\w-]{1,64}$/).optional() }).strict(),
  ]),
  /** Cancels a running prediction by its request id. */
  'predict.cancel': z.tuple([z.string().max(64)]),
  /** The kept prediction of a run on a series, or null. */
  'predict.get': z.tuple([id, id]),
  /** The predicted mask of one slice (display index) in display orientation, as labels.masks gives label masks. */
  'predict.mask': z.tuple([id, id, z.number().int().nonnegative()]),
  /** Writes a kept prediction into <data>/exports: scores as JSON or CSV, a U-Net's mask as NIfTI or DICOM SEG. */
  'predict.export': z.tuple([id, id, z.enum(['json', 'csv', 'nifti', 'seg'])]),
  /**
   * Exports a pretraining configuration as a cluster job for PyTorch DDP (src/host/cluster-job/):
   * either `request`, the pretrain form's request as runs.create takes it (the cohort and patient
   * split planned as for a new run), or `runId`, an existing pretraining run (its config, data and
   * split). A new folder job-<task>-<preset>-<time> is made under `folder` (a folder picked or
   * typed, checked as library.addFolder's; default <data>/jobs). Long (every slice decoded):
   * progress as 'jobs.exportProgress' with `requestId`; jobs.cancelExport stops it and removes the
   * folder. Server mode: the folder downloads as one tar from GET /files/jobs/<jobId>.tar.
   */
  'jobs.export': z.tuple([
    z
      .object({
        request: pretrainRequestSchema.optional(),
        runId: id.optional(),
        folder: userPathSchema.optional(),
        dtype: z.enum(['int16', 'uint8']).optional(),
        requestId: z.string().max(64).regex(/^[\w-]{1,64}$/).optional(),
      })
      .strict()
      .refine((o) => (o.request === undefined) !== (o.runId === undefined), 'give request (a configuration) or runId (an existing run), one of them'),
  ]),
  /** Cancels a cluster job export by its request id (its folder is removed). */
  'jobs.cancelExport': z.tuple([z.string().max(64)]),
  /**
   * Imports a cluster job's output (the job folder holding output/, or the output folder) as a
   * pretraining run with its curves: picked (Electron: library.pickFolder or a folder dropped on the
   * window) or typed (server mode: a server path), checked as library.addFolder's folder; the
   * output itself is checked as hostile by src/host/cluster-job/import-job.ts.
   */
  'jobs.import': z.tuple([userPathSchema]),
} as const;

export type Channel = keyof typeof channels;
export type Args<C extends Channel> = z.infer<(typeof channels)[C]>;

/** Result type of each channel. */
export interface Results {
  'app.info': AppInfo;
  'library.pickFolder': string | null;
  'library.addFolder': { jobId: string };
  'files.listFolder': FolderListing;
  'library.synthCohort': SyntheticCohortResult;
  'library.cancelSynth': boolean;
  'library.reindex': { jobId: string };
  'library.cancel': boolean;
  'library.progress': IndexProgress | null;
  'library.folders': FolderRow[];
  'library.removeFolder': IndexSummary;
  'library.stats': LibraryStats;
  'library.series': SeriesRow[];
  'library.seriesPage': SeriesPage;
  'library.cohortCounts': CohortCounts;
  'library.skipped': SkippedFile[];
  'viewer.open': VolumeInfo;
  'viewer.slices': SliceBlock;
  'viewer.packed': PackedSlices;
  'labels.pickFiles': string[];
  'labels.import': LabelImport;
  'labels.importBytes': LabelImport;
  'labels.sniff': { kind: string; reason: null } | { kind: null; reason: string };
  'labels.importFolder': LabelFolderImport;
  'labels.cancelFolder': boolean;
  'labels.sources': LabelSource[];
  'labels.removeSource': boolean;
  'labels.series': SeriesLabels;
  'labels.masks': SliceMasks;
  'system.doctor': DoctorInfo;
  'runs.list': RunSummary[];
  'runs.create': RunSummary;
  'runs.start': RunSummary;
  'runs.pause': boolean;
  'runs.resume': boolean;
  'runs.stop': boolean;
  'runs.metrics': RunMetrics;
  'runs.split': RunSplit | null;
  'runs.delete': { id: number; movedTo: string | null };
  'runs.restore': RunSummary;
  'runs.trash': RunSummary[];
  'runs.emptyTrash': { removed: number; failed: { id: number; error: string }[] };
  'runs.sample': Extract<TrainerEvent, { type: 'sample' }> | null;
  'runs.evaluate': SslEvaluation;
  'runs.heldOutList': HeldOutList;
  'runs.heldOut': HeldOutSeriesImages;
  'runs.evalImages': { samples: { input: Uint8Array; output: Uint8Array; target: Uint8Array | null; diff: Uint8Array | null }[] };
  'runs.export': { file: string; bytes: number; sha256: string; modelCard: ModelCard };
  'packages.import': { dir: string; name: string; preset: string; task: string; size: number; licence: string; run: RunSummary };
  'packages.pick': string | null;
  'experiments.start': ExperimentSummary;
  'experiments.stop': boolean;
  'experiments.list': ExperimentSummary[];
  'experiments.resume': ExperimentSummary;
  'experiments.report': { summary: ExperimentSummary; spec: ExperimentSpec; report: SavedExperimentReport | null; svgs: Record<string, string>; error: string | null };
  'experiments.delete': { id: string };
  'experiments.restore': ExperimentSummary;
  'experiments.trash': ExperimentSummary[];
  'experiments.emptyTrash': { removed: number };
  'probe.run': ProbeOutcome;
  'probe.cancel': boolean;
  'probe.list': ProbeSummary[];
  'probe.result': ProbeOutcome;
  'probe.delete': { id: string };
  'probe.restore': ProbeSummary;
  'probe.trash': ProbeSummary[];
  'probe.emptyTrash': { removed: number };
  'predict.run': PredictionSummary;
  'predict.cancel': boolean;
  'predict.get': PredictionSummary | null;
  'predict.mask': SliceMasks;
  'predict.export': { file: string; format: 'json' | 'csv' | 'nifti' | 'seg'; slices: number; maskSlices: number };
  'jobs.export': ClusterJobExport;
  'jobs.cancelExport': boolean;
  'jobs.import': ClusterJobImport & { run: RunSummary };
}

/** A finished bias probe: its folder id, result and bar chart (SVG text). */
export interface ProbeOutcome {
  id: string;
  result: BiasProbeResult;
  svg: string;
}

/** Experiment progress: a run step, a finished cell, or the end. */
export interface ExperimentEvent {
  id: string;
  kind: 'run-event' | 'cell' | 'done' | 'stopped' | 'error';
  index: number;
  total: number;
  init?: string;
  fraction?: number;
  seed?: number;
  status?: string;
  event?: TrainerEvent;
  /** With a 'step' event: the steps before it since the last one sent (step events are sent at most every 100 ms). */
  earlierSteps?: StepEvent[];
  message?: string;
}

/** An event's payload type, carried by its entry in `events` (the value itself is never read). */
interface Payload<T> {
  readonly payload?: T;
}
const payload = <T>(): Payload<T> => ({});

/**
 * Events pushed from services to every connected renderer: the one list of event names (the
 * bridges and the contract test read its keys) with each payload's type.
 */
export const events = {
  /** Progress of the indexing job, a few times a second. */
  'index.progress': payload<IndexProgress>(),
  /** Making the synthetic cohort: writing patients, indexing, importing label files; then done, error or cancelled. */
  'library.synthProgress': payload<{ requestId: string | null; phase: 'writing' | 'indexing' | 'labels' | 'done' | 'error' | 'cancelled'; done: number; total: number; message: string }>(),
  /** Every event of every running trainer, tagged with its run. */
  'run.event': payload<{ runId: number; event: TrainerEvent; /** With a 'step' event: the steps before it since the last one sent (sent at most every 100 ms). */ earlierSteps?: StepEvent[] }>(),
  /** Experiment progress: a run step, a finished cell, or the end. */
  'experiment.event': payload<ExperimentEvent>(),
  /** Bias probe progress, with the id of the request that started it. */
  'probe.progress': payload<{ id: string; requestId: string | null; done: number; total: number; what: string }>(),
  /** Progress of a folder of label files (files done of total, the file being imported). */
  'labels.folderProgress': payload<{ requestId: string | null; done: number; total: number; file: string }>(),
  /** Prediction progress (slices done), with the id of the request that started it. */
  'predict.progress': payload<PredictProgress>(),
  /** Cluster job export progress (slices written of the training and validation slices), with the id of the request that started it. */
  'jobs.exportProgress': payload<{ requestId: string | null; done: number; total: number }>(),
} as const;

export type EventName = keyof typeof events;
export type Events = { [E in EventName]: (typeof events)[E] extends Payload<infer T> ? T : never };
export const eventNames = Object.keys(events) as EventName[];

export function isEventName(name: unknown): name is EventName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(events, name);
}

/** What services implement: one async method per channel. */
export type Handlers = { [C in Channel]: (...args: Args<C>) => Promise<Results[C]> | Results[C] };

/** What the renderer holds: `invoke` for requests, `on` for events. */
export interface ApiClient {
  invoke<C extends Channel>(channel: C, ...args: Args<C>): Promise<Results[C]>;
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void;
}

export function isChannel(name: unknown): name is Channel {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(channels, name);
}

/** Validates raw arguments for a channel; throws ApiError('invalid-argument') naming the field. */
export function parseArgs<C extends Channel>(channel: C, raw: unknown): Args<C> {
  const schema = channels[channel];
  const res = schema.safeParse(raw);
  if (!res.success) {
    const issue = res.error.issues[0];
    const where = issue.path.length ? `argument ${issue.path.join('.')}` : 'arguments';
    throw new ApiError('invalid-argument', `${channel}: ${where}: ${issue.message}`);
  }
  return res.data as Args<C>;
}

/** Runs a handler and wraps its outcome in an envelope (used by main and the server bridge). */
export async function dispatch(handlers: Handlers, channel: unknown, rawArgs: unknown): Promise<Envelope<unknown>> {
  try {
    if (!isChannel(channel)) throw new ApiError('invalid-argument', `unknown channel: ${String(channel)}`);
    const args = parseArgs(channel, rawArgs);
    const fn = handlers[channel] as (...a: unknown[]) => unknown;
    const value = await fn(...(args as unknown[]));
    return { ok: true, value };
  } catch (err) {
    return { ok: false, error: toEnvelope(err) };
  }
}

