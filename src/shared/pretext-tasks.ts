/**
 * The pretext tasks, described: what every layer knows about a task without running it. The run
 * config's schema derives its task choices and task option fields from this list, the CLI its
 * `--task` choices and task flags, the renderer its task picker and option fields, the host the
 * names and package fields of a run, the trainer the model a task trains (`kind` and `classes`).
 *
 * What a task does (its input and target from a slice) lives in its module under
 * src/core/ssl/pretext/, found by id (`pretextBehaviour` of src/core/ssl/pretext/registry.ts). The
 * kind chooses the rest: 'reconstruction' trains the VQ-VAE with the composite loss (MSE, SSIM, VQ,
 * and masked-region MSE where the task gives a mask) and is scored by MSE, SSIM and masked MSE;
 * 'classification' trains the encoder-classifier with one output per class and cross-entropy, and
 * is scored by cross-entropy and one-vs-rest AUROC.
 *
 * Adding a task: a module in src/core/ssl/pretext/, its entry here, its line in that registry (the
 * type checker asks for it). Tests and plug-ins add one at run time with `registerPretextTask`.
 *
 * Pure data and tiny helpers, without the schema library (the CLI reads this at start-up).
 */

/** A number or string a task option takes. */
export type TaskOptionValue = number | string;

interface OptionBase {
  /** Field of the run config (flat: option keys are unique across tasks). */
  readonly key: string;
  /** Form label, and the test id of its field. */
  readonly label: string;
  readonly testId: string;
  readonly hint?: string;
  /** Command-line flag of `ctssl pretrain` (commander syntax) and its help. */
  readonly cli?: { readonly flag: string; readonly description: string };
  /**
   * How the value shows in a run's name: 'title' joins the task's name ('masked 20%', with
   * `format`); 'detail' is added in parentheses ('masked 20% (side)': in a run's label when not the
   * default, always in the Table II row).
   */
  readonly naming?: 'title' | 'detail';
  /** '{}' is replaced by the value, e.g. '{}%'. */
  readonly format?: string;
}

/** One of a fixed list of values (a select). */
export interface ChoiceOption extends OptionBase {
  readonly type: 'choice';
  readonly values: readonly TaskOptionValue[];
  readonly default: TaskOptionValue;
  /** Form text of each value (default: `format` of the value). */
  readonly valueLabels?: Readonly<Record<string, string>>;
  /** The values are the stages of a curriculum, in order (the masked-region 5-10-20-33 %). */
  readonly curriculum?: boolean;
}

/** A number in a range (an integer for 'int'). */
export interface NumberOption extends OptionBase {
  readonly type: 'int' | 'number';
  readonly min: number;
  readonly max: number;
  readonly step?: number;
  readonly default: number;
  /** Unit shown after the field. */
  readonly unit?: string;
  /** What the form says when the value is out of range. */
  readonly problem: string;
}

export type TaskOption = ChoiceOption | NumberOption;

/** A pretext task as every layer sees it. */
export interface PretextTaskInfo {
  readonly id: string;
  /** Form label. */
  readonly label: string;
  /** Form hint: what the task asks of the model. */
  readonly hint: string;
  /** Name in the paper's Table II ('next slice', 'denoising'). */
  readonly paperName: string;
  readonly kind: 'reconstruction' | 'classification';
  /** Classification: the class names, in label order; reconstruction: none. */
  readonly classes: readonly string[];
  /** Options of the task, with their defaults (flat fields of the run config). */
  readonly options: readonly TaskOption[];
  /** What the paper and its public code do, where this app follows or departs from them. */
  readonly paper: string;
}

const MASK_DEFINITION_HINT = 'area: p% of the image area (the paper); side: one square whose side is p% of the image side (the public code)';

/** The paper's five tasks (Tariq, Patel, Banerjee), in the order the app lists them. */
export const BUILTIN_PRETEXT_TASKS = [
  {
    id: 'masked',
    label: 'Masked region',
    hint: 'reconstruct a slice with a region set to 0 (composite loss with masked-region MSE)',
    paperName: 'masked',
    kind: 'reconstruction',
    classes: [],
    options: [
      {
        key: 'maskPercent',
        type: 'choice',
        values: [5, 10, 20, 33],
        default: 20,
        label: 'Mask',
        testId: 'mask-percent',
        format: '{}%',
        naming: 'title',
        curriculum: true,
        cli: { flag: '--mask <percent>', description: 'masked region size, % (with --mask-definition)' },
      },
      {
        key: 'maskDefinition',
        type: 'choice',
        values: ['area', 'side'],
        default: 'area',
        label: 'of the',
        testId: 'mask-definition',
        hint: MASK_DEFINITION_HINT,
        valueLabels: { area: 'area (paper)', side: 'side (public code)' },
        naming: 'detail',
        cli: { flag: '--mask-definition <d>', description: "'area' = the paper (p% of the area), 'side' = the public code (p% of the side)" },
      },
    ],
    paper:
      'One square set to 0, the target the original; trained as a 5-10-20-33 % curriculum. The square covers p % of the area as the paper says; the public code takes p % of the side and keeps the square off the bottom and right 100 px of 512 (maskDefinition "side").',
  },
  {
    id: 'next-slice',
    label: 'Next slice',
    hint: 'predict slice n + gap of the same series',
    paperName: 'next slice',
    kind: 'reconstruction',
    classes: [],
    options: [
      {
        key: 'gap',
        type: 'int',
        min: 1,
        max: 20,
        default: 1,
        label: 'Gap',
        unit: 'slices',
        testId: 'gap',
        problem: 'a gap of 1 to 20 slices',
        cli: { flag: '--gap <n>', description: 'next-slice distance' },
      },
    ],
    paper: 'Input slice n, target slice n + 1 of the same series (slices ordered along the slice normal).',
  },
  {
    id: 'denoise',
    label: 'Denoising',
    hint: 'remove salt-and-pepper noise',
    paperName: 'denoising',
    kind: 'reconstruction',
    classes: [],
    options: [
      {
        key: 'noiseFraction',
        type: 'number',
        min: 0,
        max: 1,
        step: 0.05,
        default: 0.5,
        label: 'Noise fraction',
        testId: 'noise',
        problem: 'a fraction from 0 to 1',
        cli: { flag: '--noise-fraction <f>', description: 'denoising: fraction of the pixels hit by salt-and-pepper noise' },
      },
    ],
    paper: 'Salt-and-pepper noise on a fraction of the pixels (half set to 1, half to 0); the target is the clean slice.',
  },
  {
    id: 'rotation',
    label: 'Rotation',
    hint: '0/90/180/270 degrees, 4-way classification',
    paperName: 'rotation',
    kind: 'classification',
    classes: ['0°', '90°', '180°', '270°'],
    options: [],
    paper: 'The slice turned counter-clockwise by 0, 90, 180 or 270 degrees; the encoder-classifier names the turn.',
  },
  {
    id: 'flip',
    label: 'Flip',
    hint: 'none/horizontal/vertical, 3-way classification',
    paperName: 'flip',
    kind: 'classification',
    classes: ['none', 'horizontal', 'vertical'],
    options: [],
    paper: 'The slice as it is, flipped left-right or flipped up-down; the encoder-classifier names the flip.',
  },
] as const satisfies readonly PretextTaskInfo[];

type Builtin = (typeof BUILTIN_PRETEXT_TASKS)[number];
/** The tasks this app ships with. */
export type BuiltinPretextTaskId = Builtin['id'];
/** A registered task's id: a built-in one, or one added with `registerPretextTask`. */
export type PretextTaskId = BuiltinPretextTaskId | (string & {});

type BuiltinOption = Builtin['options'][number];
type ValueOf<O> = O extends { type: 'choice'; values: readonly (infer V)[] } ? V : number;
/** The option fields of a run config, typed from the built-in tasks (maskPercent: 5 | 10 | 20 | 33, ...). */
export type TaskOptionValues = { -readonly [O in BuiltinOption as O['key']]: ValueOf<O> };

const registry: PretextTaskInfo[] = [...BUILTIN_PRETEXT_TASKS];

/** Every registered task, built-in ones first, in the order the app lists them. */
export function pretextTasks(): readonly PretextTaskInfo[] {
  return registry;
}

/** The registered task ids, in order. */
export function pretextTaskIds(): string[] {
  return registry.map((t) => t.id);
}

export function isPretextTask(id: unknown): id is PretextTaskId {
  return typeof id === 'string' && registry.some((t) => t.id === id);
}

/** The task of this id; throws naming the known ones. */
export function pretextTask(id: string): PretextTaskInfo {
  const t = registry.find((x) => x.id === id);
  if (!t) throw new Error(`unknown pretext task '${id}' (known: ${pretextTaskIds().join(', ')})`);
  return t;
}

/**
 * Adds a task's description (src/core/ssl/pretext/registry.ts `registerPretextTask` adds its
 * behaviour with it). Its options must be ones the run config already has (option fields are
 * built into the config's schema when it loads); ids must be new.
 */
export function registerPretextTaskInfo(info: PretextTaskInfo): void {
  if (isPretextTask(info.id)) throw new Error(`pretext task '${info.id}' is registered already`);
  const known = new Set(allTaskOptions().map((o) => o.key));
  const added = info.options.filter((o) => !known.has(o.key));
  if (added.length) throw new Error(`pretext task '${info.id}': option ${added.map((o) => o.key).join(', ')} is not a field of the run config`);
  registry.push(info);
}

/** Removes a task added with `registerPretextTaskInfo` (tests); built-in tasks stay. */
export function unregisterPretextTaskInfo(id: string): void {
  const i = registry.findIndex((t) => t.id === id);
  if (i >= BUILTIN_PRETEXT_TASKS.length) registry.splice(i, 1);
}

/** Every option of every built-in task, once per key, in order (the run config's option fields). */
export function allTaskOptions(): readonly TaskOption[] {
  const seen = new Map<string, TaskOption>();
  for (const t of BUILTIN_PRETEXT_TASKS as readonly PretextTaskInfo[]) for (const o of t.options) if (!seen.has(o.key)) seen.set(o.key, o);
  return [...seen.values()];
}

/** The default of every option field. */
export function defaultTaskOptions(): TaskOptionValues {
  return Object.fromEntries(allTaskOptions().map((o) => [o.key, o.default])) as TaskOptionValues;
}

/** A config's task and every option field (what a batch stream makes examples from). */
export function taskOptionsOf(config: { task: PretextTaskId } & TaskOptionValues): { task: PretextTaskId } & TaskOptionValues {
  const o = Object.fromEntries(allTaskOptions().map((x) => [x.key, config[x.key as keyof TaskOptionValues]]));
  return { task: config.task, ...(o as TaskOptionValues) };
}

/** True when a task takes the option (maskPercent is the masked task's). */
export function taskHasOption(task: string, key: string): boolean {
  return isPretextTask(task) && pretextTask(task).options.some((o) => o.key === key);
}

/** A task's option value when the task takes it, else null (package fields, evaluation results). */
export function taskOption<K extends keyof TaskOptionValues>(config: { task: string } & Partial<TaskOptionValues>, key: K): TaskOptionValues[K] | null {
  return taskHasOption(config.task, key) ? ((config[key] as TaskOptionValues[K] | undefined) ?? null) : null;
}

/** Every option field, the task's value where it takes the option and null elsewhere (a package's task fields). */
export function taskOptionFields(config: { task: string } & TaskOptionValues): { [K in keyof TaskOptionValues]: TaskOptionValues[K] | null } {
  return Object.fromEntries(allTaskOptions().map((o) => [o.key, taskOption(config, o.key as keyof TaskOptionValues)])) as { [K in keyof TaskOptionValues]: TaskOptionValues[K] | null };
}

export function isReconstructionTask(task: string): boolean {
  return pretextTask(task).kind === 'reconstruction';
}

/** Classes of a classification task; 0 for a reconstruction task. */
export function taskClasses(task: string): number {
  return pretextTask(task).classes.length;
}

/** Class k of a task by name ('90°'), or '—' without one. */
export function className(task: string, k: number | undefined | null): string {
  if (k === undefined || k === null) return '—';
  const names = isPretextTask(task) ? pretextTask(task).classes : [];
  return names[k] ?? String(k);
}

const formatted = (o: TaskOption, v: unknown) => (o.format ?? '{}').replace('{}', String(v));

/** A value as the form lists it ('20%', 'area (paper)'). */
export function optionValueLabel(o: TaskOption, v: TaskOptionValue): string {
  return (o.type === 'choice' && o.valueLabels?.[String(v)]) || formatted(o, v);
}

/** A run config, an evaluation or a form: its task and option fields. */
type Named = { readonly task: string };
const field = (config: Named, key: string): unknown => (config as unknown as Record<string, unknown>)[key];

function named(config: Named, style: 'title' | 'label' | 'table', name?: string): string {
  const t = isPretextTask(config.task) ? pretextTask(config.task) : null;
  let s = name ?? config.task;
  if (!t) return s;
  for (const o of t.options) {
    const v = field(config, o.key);
    if (o.naming === 'title') s += ` ${formatted(o, v ?? '?')}`;
    else if (o.naming === 'detail' && style !== 'title' && v !== undefined && v !== null && (style === 'table' || v !== o.default)) s += ` (${v})`;
  }
  return s;
}

/** A run's task in a few words: 'masked 20%', 'rotation'. */
export function taskTitle<C extends Named>(config: C): string {
  return named(config, 'title');
}

/** As `taskTitle`, with any option that is not its default: 'masked 20% (side)'. */
export function taskLabel<C extends Named>(config: C): string {
  return named(config, 'label');
}

/**
 * A Table II row's name: 'masked 20% (area)'; with `paper`, the paper's names ('next slice',
 * 'denoising').
 */
export function taskTableName<C extends Named>(config: C, o: { paper?: boolean } = {}): string {
  const t = isPretextTask(config.task) ? pretextTask(config.task) : null;
  return named(config, 'table', o.paper && t ? t.paperName : config.task);
}

/** The task in a run folder's name: 'masked20', 'rotation'. */
export function taskFolderName<C extends Named>(config: C): string {
  const t = isPretextTask(config.task) ? pretextTask(config.task) : null;
  return config.task + (t?.options.filter((o) => o.naming === 'title').map((o) => String(field(config, o.key))).join('') ?? '');
}

/** The next stage of a task's curriculum (masked 5 -> 10 -> 20 -> 33 %), or null after the last or without one. */
export function nextCurriculumStage<C extends Named>(config: C): { key: string; value: TaskOptionValue } | null {
  if (!isPretextTask(config.task)) return null;
  for (const o of pretextTask(config.task).options) {
    if (o.type !== 'choice' || !o.curriculum) continue;
    const i = o.values.indexOf(field(config, o.key) as TaskOptionValue);
    return i >= 0 && i < o.values.length - 1 ? { key: o.key, value: o.values[i + 1] } : null;
  }
  return null;
}
