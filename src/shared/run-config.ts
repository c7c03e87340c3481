/**
 * What a pretraining run is: task, model preset, data, optimisation, seeds. Validated with zod
 * wherever it enters (CLI, IPC, the trainer process); saved with the run and hashed into its ledger.
 */
import { z } from 'zod';

import { cohortFilterSchema, seriesIdsSchema } from './cohort-filter';
import { allTaskOptions, pretextTaskIds, type PretextTaskId, type TaskOption, type TaskOptionValues } from './pretext-tasks';
import { PRESETS } from './presets';
import { RECIPE_FIELDS, RECIPES, type Recipe, type RecipeFields } from './recipes';

export { PRESETS };

/**
 * One of the registered pretext tasks (src/shared/pretext-tasks.ts), checked against the registry
 * when a config is parsed, so a task registered at run time is accepted; the error lists the
 * registered ids as an enum's would.
 */
export const pretextTaskSchema = z.custom<PretextTaskId>().check((ctx) => {
  const ids = pretextTaskIds();
  if (typeof ctx.value !== 'string' || !ids.includes(ctx.value)) ctx.issues.push({ code: 'invalid_value', values: ids, input: ctx.value });
});

/** The schema of a task option, from its description (numbers in a list as literals, strings as an enum). */
export function taskOptionSchema(o: TaskOption): z.ZodType<string | number> {
  if (o.type === 'choice') {
    if (o.values.every((v) => typeof v === 'string')) return z.enum(o.values as [string, ...string[]]);
    return z.union(o.values.map((v) => z.literal(v)) as unknown as [z.ZodLiteral<number>, z.ZodLiteral<number>, ...z.ZodLiteral<number>[]]);
  }
  const n = o.type === 'int' ? z.number().int() : z.number();
  return n.min(o.min).max(o.max);
}

/** The option fields of every task (maskPercent, maskDefinition, gap, noiseFraction), with their defaults. */
function taskOptionFields() {
  return Object.fromEntries(allTaskOptions().map((o) => [o.key, taskOptionSchema(o).default(o.default)])) as unknown as {
    [K in keyof TaskOptionValues]: z.ZodDefault<z.ZodType<TaskOptionValues[K]>>;
  };
}

/** A run as the renderer names it: its library id (the services find its folder). */
export const runIdSchema = z.number().int().nonnegative();
/** A run folder (CLI, trainer, saved configs): paths come from the user's own shell or from the services. */
const runDirSchema = z.string().min(1).max(4096);
/** Initialisations of an experiment other than a run: random weights, the supervised CNN baseline. */
export const BASELINE_INITS = ['random', 'cnn'] as const;

const needsLength = [(c: { steps?: number; epochs?: number }) => c.steps !== undefined || c.epochs !== undefined, { message: 'give steps or epochs' }] as const;

/**
 * A pretraining config whose `init` is `init` (a run folder in configs, a run id in requests);
 * `strict` refuses unknown keys (requests) instead of dropping them (saved configs).
 */
function pretrainSchema<I extends z.ZodType>(init: I, strict: boolean) {
  const o = z.object({
    kind: z.literal('pretrain').default('pretrain'),
    name: z.string().max(120).default(''),
    task: pretextTaskSchema,
    /** The tasks' options (src/shared/pretext-tasks.ts): maskPercent, maskDefinition ('area': the paper, p% of the image area; 'side': the public code, p% of the side), gap, noiseFraction. */
    ...taskOptionFields(),
    /**
     * 'ours' or 'reference': everything as the authors' public code (src/shared/recipes.ts); absent
     * = 'ours' (configs written before recipes; a new run records it). The fields a recipe fixes
     * (batchSize, maskDefinition, codebookInit, scaling, optimizer, lr, channels) take its values
     * when left out; with 'reference' a different given value is refused.
     */
    recipe: z.enum(RECIPES).optional(),
    /** The task option, left out = the recipe's ('area' ours, 'side' reference). */
    maskDefinition: z.enum(['area', 'side']).optional(),
    preset: z.enum(PRESETS).default('tiny'),
    /** Input side; defaults to the preset's. */
    size: z.number().int().min(16).max(1024).optional(),
    /** Input channels of the model: 1 (grey), or 3 (the reference's: the grey slice repeated into 3); absent = 1. */
    channels: z.union([z.literal(1), z.literal(3)]).optional(),
    /** Left out = the recipe's (8 ours, 16 reference). */
    batchSize: z.number().int().min(1).max(256).optional(),
    /** Length of training: steps, or epochs over the training split. */
    steps: z.number().int().positive().optional(),
    epochs: z.number().positive().optional(),
    optimizer: z.enum(['adam', 'radam']).optional(),
    lr: z.number().positive().max(1).optional(),
    lossWeights: z
      .object({ mse: z.number(), maskedMse: z.number(), vq: z.number(), ssim: z.number() })
      .partial()
      .strict()
      .default({}),
    /** VQ-VAE codebook start: 'data' = encoder outputs of the first batch; 'uniform' = the reference's +-1/K. */
    codebookInit: z.enum(['data', 'uniform']).optional(),
    seed: z.number().int().nonnegative().default(1),
    /** Window and scaling of the input. */
    windowLevel: z.number().default(50),
    windowWidth: z.number().positive().default(350),
    scaling: z.enum(['fixed', 'minmax']).optional(),
    /** Cohort: series ids, or the filter of the library page. */
    seriesIds: seriesIdsSchema.optional(),
    filter: cohortFilterSchema.optional(),
    fractions: z.object({ train: z.number().min(0), val: z.number().min(0), test: z.number().min(0) }).strict().default({ train: 0.8, val: 0.1, test: 0.1 }),
    sliceStride: z.number().int().min(1).max(1000).default(1),
    /** Start from another run's weights (curriculum chaining): that run (folder in a config, id in a request). */
    init: init.optional(),
    /** With init: select the cohort and split it anew (the parent's training patients stay in training) instead of keeping the parent's manifest. */
    newCohort: z.boolean().optional(),
    /** Let patients a parent run trained on into validation and held-out (recorded as a warning) instead of refusing a split without clean ones. */
    allowOverlap: z.boolean().optional(),
    checkpointEvery: z.number().int().positive().default(50),
    evalEvery: z.number().int().positive().default(50),
    /** Validation batches per evaluation (0 = the whole validation split). */
    evalBatches: z.number().int().nonnegative().default(4),
    useCache: z.boolean().default(true),
  });
  // The filled fields in the schema's key order, as a config read back from config.json has them (its hash checks resumes).
  const order = Object.keys(o.shape);
  return (strict ? o.strict() : o)
    .refine(...needsLength)
    .superRefine(recipeConflicts)
    .transform((c) => inKeyOrder(withRecipe(c), order));
}

/** The object with `order`'s keys first, in that order. */
function inKeyOrder<T extends object>(c: T, order: string[]): T {
  const out: Record<string, unknown> = {};
  for (const k of order) if (k in c) out[k] = (c as Record<string, unknown>)[k];
  for (const [k, v] of Object.entries(c)) if (!(k in out)) out[k] = v;
  return out as T;
}

const RECIPE_KEYS = Object.keys(RECIPE_FIELDS.ours) as (keyof RecipeFields)[];

/** A value given for a field the reference recipe fixes that differs from the recipe's: refused, naming the field. */
function recipeConflicts(c: { recipe?: Recipe } & Partial<RecipeFields>, ctx: z.RefinementCtx): void {
  if (c.recipe !== 'reference') return;
  for (const k of RECIPE_KEYS) {
    const want = RECIPE_FIELDS.reference[k];
    if (c[k] !== undefined && c[k] !== want)
      ctx.addIssue({ code: 'custom', path: [k], message: `the reference recipe uses ${k} ${want} (got ${String(c[k])}): leave it out, or use recipe 'ours'` });
  }
}

/** The fields left out, from the config's recipe (channels: only the reference recipe writes it; absent = 1). */
function withRecipe<T extends { recipe?: Recipe } & Partial<RecipeFields>>(c: T) {
  const r = RECIPE_FIELDS[c.recipe ?? 'ours'];
  return {
    ...c,
    batchSize: c.batchSize ?? r.batchSize,
    maskDefinition: c.maskDefinition ?? r.maskDefinition,
    codebookInit: c.codebookInit ?? r.codebookInit,
    scaling: c.scaling ?? r.scaling,
    optimizer: c.optimizer ?? r.optimizer,
    lr: c.lr ?? r.lr,
    ...(c.recipe === 'reference' && { channels: c.channels ?? r.channels }),
  };
}

export const pretrainConfigSchema = pretrainSchema(runDirSchema, false);
/** runs.create from the renderer: a pretraining config whose `init` is a run id; unknown keys refused. */
export const pretrainRequestSchema = pretrainSchema(runIdSchema, true);
export type PretrainRequest = z.infer<typeof pretrainRequestSchema>;

export type PretrainConfig = z.infer<typeof pretrainConfigSchema>;
export type PretrainConfigInput = z.input<typeof pretrainConfigSchema>;

/** Validates a config; the error names the field. */
export function parsePretrainConfig(raw: unknown): PretrainConfig {
  const r = pretrainConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`run config: ${i.path.join('.') || 'config'}: ${i.message}`);
  }
  return r.data;
}

function finetuneSchema<I extends z.ZodType>(init: I, strict: boolean) {
  const o = z.object({
    kind: z.literal('finetune'),
    name: z.string().max(120).default(''),
    /** Slice classification (e.g. PE) or nodule segmentation. */
    task: z.enum(['classification', 'segmentation']),
    /** encoder-classifier: pretrained encoder + dense head; cnn: supervised CNN from scratch; unet: encoder as the down branch. */
    model: z.enum(['encoder-classifier', 'cnn', 'unet']),
    label: z.union([
      z.object({ kind: z.literal('image-label'), name: z.string().min(1).max(64), threshold: z.number().optional() }).strict(),
      z.object({ kind: z.literal('nodule'), consensusK: z.number().int().min(1).max(16).optional(), minAreaPx: z.number().int().min(1).optional(), sourceId: z.number().int().optional() }).strict(),
    ]),
    preset: z.enum(PRESETS).default('tiny'),
    size: z.number().int().min(16).max(1024).optional(),
    /** Pretrained run whose encoder initialises the model (folder in a config, id in a request); absent = random initialisation. */
    init: init.optional(),
    /** Let patients the pretrained run(s) trained on into validation and held-out (recorded as a warning) instead of refusing a split without clean ones. */
    allowOverlap: z.boolean().optional(),
    /** Epochs during which the encoder stays frozen (0 = train everything from the start). */
    freezeEpochs: z.number().min(0).default(0),
    /** Encoder-classifier head pooling: 'mean' (the paper's, default) or 'mean-max' (keeps small findings; see ClassifierConfig.pool). */
    pool: z.enum(['mean', 'mean-max']).optional(),
    /** Class imbalance: weight the loss by inverse class frequency, or not. */
    classWeights: z.enum(['balanced', 'none']).default('balanced'),
    /** Fraction of the training slices used (the paper's training-set fractions). */
    trainFraction: z.number().gt(0).max(1).default(1),
    negativesPerPositive: z.number().min(0).max(20).default(1),
    batchSize: z.number().int().min(1).max(256).default(8),
    steps: z.number().int().positive().optional(),
    epochs: z.number().positive().optional(),
    optimizer: z.enum(['adam', 'radam']).default('adam'),
    lr: z.number().positive().max(1).default(1e-3),
    lossWeights: z.object({ dice: z.number().min(0), bce: z.number().min(0) }).partial().strict().default({}),
    seed: z.number().int().nonnegative().default(1),
    /** Seed of the patient split (default: seed); an experiment keeps it fixed across runs. */
    splitSeed: z.number().int().nonnegative().optional(),
    windowLevel: z.number().default(50),
    windowWidth: z.number().positive().default(350),
    scaling: z.enum(['fixed', 'minmax']).default('fixed'),
    seriesIds: seriesIdsSchema.optional(),
    filter: cohortFilterSchema.optional(),
    /** Labelled series added to the training split only, after the cohort (seriesIds or filter) is split: more training patients, the same validation and held-out ones. */
    trainSeriesIds: seriesIdsSchema.optional(),
    fractions: z.object({ train: z.number().min(0), val: z.number().min(0), test: z.number().min(0) }).strict().default({ train: 0.6, val: 0.2, test: 0.2 }),
    sliceStride: z.number().int().min(1).max(1000).default(1),
    checkpointEvery: z.number().int().positive().default(50),
    evalEvery: z.number().int().positive().default(25),
    evalBatches: z.number().int().nonnegative().default(0),
    /**
     * Early stopping: stop after this many validation evaluations (every `evalEvery` steps) in a
     * row without a gain in validation AUROC (classification) or Dice (segmentation), and keep the
     * weights of the best evaluation as the run's result; absent = train every step, keep the last.
     */
    earlyStopPatience: z.number().int().positive().max(10_000).optional(),
    useCache: z.boolean().default(true),
  });
  return (strict ? o.strict() : o)
    .refine(...needsLength)
    .refine((c) => (c.task === 'segmentation') === (c.model === 'unet'), { message: "segmentation uses model 'unet'; classification uses 'encoder-classifier' or 'cnn'" })
    .refine((c) => !(c.model === 'cnn' && c.init !== undefined), { message: "the 'cnn' baseline trains from scratch: it takes no init" });
}

export const finetuneConfigSchema = finetuneSchema(runDirSchema, false);
/** runs.create from the renderer: a fine-tuning config whose `init` is a run id; unknown keys refused. */
export const finetuneRequestSchema = finetuneSchema(runIdSchema, true);
export type FinetuneRequest = z.infer<typeof finetuneRequestSchema>;

export type FinetuneConfig = z.infer<typeof finetuneConfigSchema>;
export type FinetuneConfigInput = z.input<typeof finetuneConfigSchema>;

export function parseFinetuneConfig(raw: unknown): FinetuneConfig {
  const r = finetuneConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`fine-tune config: ${i.path.join('.') || 'config'}: ${i.message}`);
  }
  return r.data;
}

/** Any run config, by its kind. */
export function parseRunConfig(raw: unknown): PretrainConfig | FinetuneConfig {
  return (raw as { kind?: string })?.kind === 'finetune' ? parseFinetuneConfig(raw) : parsePretrainConfig(raw);
}

/**
 * An experiment: fine-tuning runs over initialisations x training fractions x seeds, one report.
 * 'random' = the same network from random weights; 'cnn' = the supervised CNN baseline
 * (classification); any other entry is a pretrained (or imported) run: its folder in a spec (CLI,
 * spec.json), its id in a request from the renderer.
 */
function experimentSchema<I extends z.ZodType>(init: I) {
  return z
    .object({
      name: z.string().max(200).default('experiment'),
      task: z.enum(['classification', 'segmentation']),
      label: z.union([z.literal('pe'), z.literal('nodule'), z.string().min(1).max(64)]).default('nodule'),
      consensusK: z.number().int().min(1).max(16).optional(),
      preset: z.enum(PRESETS).default('tiny'),
      size: z.number().int().min(16).max(1024).optional(),
      inits: z.array(z.union([z.enum(BASELINE_INITS), init])).min(1).max(64),
      fractions: z.array(z.number().gt(0).max(1)).min(1).max(100).default([1]),
      seeds: z.array(z.number().int().nonnegative()).min(1).max(100).default([1]),
      splitSeed: z.number().int().nonnegative().default(1),
      /** Let patients the pretrained inits trained on into validation and held-out (recorded as a warning) instead of refusing. */
      allowOverlap: z.boolean().optional(),
      steps: z.number().int().positive().optional(),
      epochs: z.number().positive().optional(),
      batchSize: z.number().int().min(1).max(256).default(8),
      lr: z.number().positive().max(1).default(1e-3),
      freezeEpochs: z.number().min(0).default(0),
      evalEvery: z.number().int().positive().default(25),
      /** Every run stops early on validation and keeps its best weights (the fine-tuning config's earlyStopPatience); absent = every step. */
      earlyStopPatience: z.number().int().positive().max(10_000).optional(),
      splitFractions: z.object({ train: z.number().min(0), val: z.number().min(0), test: z.number().min(0) }).strict().default({ train: 0.6, val: 0.2, test: 0.2 }),
      seriesIds: seriesIdsSchema.optional(),
      filter: cohortFilterSchema.optional(),
      /** Segmentation: the Dice level for "iterations to reach". */
      diceLevel: z.number().gt(0).lt(1).default(0.5),
      /** Input window and scaling of every run; default: the first pretrained init's, else 50/350 fixed. */
      windowLevel: z.number().optional(),
      windowWidth: z.number().positive().optional(),
      scaling: z.enum(['fixed', 'minmax']).optional(),
    })
    .strict()
    .refine(...needsLength)
    .refine((c) => c.task === 'classification' || !c.inits.includes('cnn'), { message: "the 'cnn' baseline is for classification" });
}

export const experimentSpecSchema = experimentSchema(runDirSchema);
/** experiments.start from the renderer: `inits` are 'random', 'cnn' or run ids. */
export const experimentRequestSchema = experimentSchema(runIdSchema);
export type ExperimentRequest = z.infer<typeof experimentRequestSchema>;

export type ExperimentSpec = z.infer<typeof experimentSpecSchema>;
export type ExperimentSpecInput = z.input<typeof experimentSpecSchema>;

export function parseExperimentSpec(raw: unknown): ExperimentSpec {
  const r = experimentSpecSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`experiment spec: ${i.path.join('.') || 'spec'}: ${i.message}`);
  }
  return r.data;
}
