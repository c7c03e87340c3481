/**
 * Pretraining recipes: 'ours' (the default) and 'reference' (everything as the authors' public
 * code does it, ../shared/docs/reference-model.md). A run config's `recipe` fills the fields the
 * recipe fixes when they are left out, and refuses a given value that differs (the run would not
 * be the recipe it says); the rest of the reference recipe (the masked term summed over the
 * batch, SSIM on the min-max-scaled output, 8-bit input) follows `recipe` itself in the trainer.
 * The table of differences, with the reason for ours, is read by the README, the pretrain form
 * and `ctssl pretrain --help`.
 */

export const RECIPES = ['ours', 'reference'] as const;
export type Recipe = (typeof RECIPES)[number];

/** The config fields a recipe fixes, and their values. Fields left out of a config take these. */
export interface RecipeFields {
  batchSize: number;
  maskDefinition: 'area' | 'side';
  codebookInit: 'data' | 'uniform';
  scaling: 'fixed' | 'minmax';
  optimizer: 'adam' | 'radam';
  lr: number;
  /** Input channels (absent in a config = 1). */
  channels: 1 | 3;
}

export const RECIPE_FIELDS: Record<Recipe, RecipeFields> = {
  ours: { batchSize: 8, maskDefinition: 'area', codebookInit: 'data', scaling: 'fixed', optimizer: 'radam', lr: 1e-3, channels: 1 },
  reference: { batchSize: 16, maskDefinition: 'side', codebookInit: 'uniform', scaling: 'minmax', optimizer: 'radam', lr: 1e-3, channels: 3 },
};

/** The public code's batch-summed masked term: each image's masked MSE summed over the batch. */
export function sumsMaskedMseOverBatch(c: { recipe?: Recipe }): boolean {
  return c.recipe === 'reference';
}

/** SSIM taken on the output min-max scaled to [0, 1] per image (the public code), not on the output as it is. */
export function ssimOnMinMaxOutput(c: { recipe?: Recipe }): boolean {
  return c.recipe === 'reference';
}

/** Bits the scaled input is quantised to (the public code's 8-bit slices), or null for none. */
export function inputBits(c: { recipe?: Recipe }): 8 | null {
  return c.recipe === 'reference' ? 8 : null;
}

/** One difference between the recipes: what, ours, the reference's, and why ours. */
export interface RecipeDifference {
  what: string;
  ours: string;
  reference: string;
  why: string;
}

export const RECIPE_DIFFERENCES: readonly RecipeDifference[] = [
  {
    what: 'batch',
    ours: '8',
    reference: '16',
    why: 'fits the small presets and CPU training; `ctssl doctor` says the largest batch per GPU memory for each recipe',
  },
  {
    what: 'masked region',
    ours: 'p % of the image area (`maskDefinition: area`)',
    reference: 'one square whose side is p % of the image side, off the bottom and right 100 px of 512 (`side`: 0.24/0.99/3.97/10.8 % of the area)',
    why: 'the paper says area; a 20 % square by side masks 4 % of the image',
  },
  {
    what: 'masked-region term',
    ours: '0.2 × the masked MSE over the batch\'s masked pixels',
    reference: '0.2 × each image\'s masked MSE summed over the batch (an effective weight of 3.2 at batch 16)',
    why: 'the weight of the term does not change with the batch size; 0.2 is the weight the code states',
  },
  {
    what: 'codebook start',
    ours: 'encoder outputs of the first batch (`codebookInit: data`)',
    reference: 'uniform ±1/512 (`uniform`)',
    why: 'with the uniform start the codes barely move in short runs (tiny preset, masked 20 %, 120 steps: validation SSIM 0.20 vs 0.007, VQ loss 0.12 vs 0.80)',
  },
  {
    what: 'input scaling',
    ours: 'fixed (HU + 125) / 350 after the 50/350 window (`scaling: fixed`)',
    reference: 'per-slice min-max after the window, quantised to 8 bits (`minmax`)',
    why: 'the same HU gives the same input in every slice and scan (reproducible); min-max stretches a slice without soft tissue',
  },
  {
    what: 'SSIM term',
    ours: 'on the output as it is (tanh, in [−1, 1])',
    reference: 'on the output min-max scaled to [0, 1] per image',
    why: 'the target is in [0, 1]; rescaling each output hides a shift or scale of its intensities from the SSIM term',
  },
  {
    what: 'input channels',
    ours: '1 (grey)',
    reference: '3: the grey slice repeated into 3 channels (101,353,673 parameters for `paper`, 16,390 more than 1 channel)',
    why: 'the repeated channels carry no more information: 1 channel is equivalent and smaller',
  },
  {
    what: 'optimizer',
    ours: 'RAdam, learning rate 1e-3, no schedule',
    reference: 'the same',
    why: '—',
  },
];
