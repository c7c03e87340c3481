/**
 * The five self-supervision tasks of the paper, pure, on square [0, 1] images (size x size,
 * row-major), every random choice from the Rng passed in.
 *
 * - masked region: one square set to 0; the target is the original. Two definitions (see
 *   docs in ../shared/docs/reference-model.md): 'area' (the paper: the square covers p% of the
 *   image area) and 'side' (the public code: the square's side is p% of the image side, and the
 *   bottom and right 100 px of a 512 image, scaled to the size, are never masked).
 * - next slice: input slice n, target slice n + gap of the same series (pairs come from the manifest).
 * - denoising: salt-and-pepper on a fraction of pixels (half set to 1, half to 0).
 * - rotation: 0/90/180/270 degrees, 4 classes.
 * - flip: none/horizontal/vertical, 3 classes.
 */
import type { Rng } from '../random';

export type TaskName = 'masked' | 'next-slice' | 'denoise' | 'rotation' | 'flip';
export const TASKS: TaskName[] = ['masked', 'next-slice', 'denoise', 'rotation', 'flip'];
export type MaskPercent = 5 | 10 | 20 | 33;
export type MaskDefinition = 'area' | 'side';

export function isReconstructionTask(t: TaskName): boolean {
  return t === 'masked' || t === 'next-slice' || t === 'denoise';
}

export function taskClasses(t: TaskName): number {
  return t === 'rotation' ? 4 : t === 'flip' ? 3 : 0;
}

export interface MaskBox {
  x: number;
  y: number;
  side: number;
}

/** Side of the masked square, in pixels, for an image of `size`. */
export function maskSide(size: number, percent: number, definition: MaskDefinition): number {
  const f = percent / 100;
  return Math.max(1, Math.round(definition === 'area' ? Math.sqrt(f) * size : f * size));
}

/** Where the square may go: the public code keeps it off the bottom and right 100 px (of 512). */
export function maskBox(size: number, percent: number, definition: MaskDefinition, rng: Rng): MaskBox {
  const side = maskSide(size, percent, definition);
  const margin = definition === 'side' ? Math.round((100 / 512) * size) : 0;
  const room = Math.max(0, size - margin - side);
  return { x: rng.int(room + 1), y: rng.int(room + 1), side };
}

export function applyMask(img: Float32Array, size: number, box: MaskBox): { input: Float32Array; mask: Float32Array } {
  const input = img.slice();
  const mask = new Float32Array(size * size);
  for (let y = box.y; y < Math.min(size, box.y + box.side); y++)
    for (let x = box.x; x < Math.min(size, box.x + box.side); x++) {
      input[y * size + x] = 0;
      mask[y * size + x] = 1;
    }
  return { input, mask };
}

/** Salt-and-pepper noise on `fraction` of the pixels: half of them set to 1, half to 0. */
export function saltAndPepper(img: Float32Array, fraction: number, rng: Rng): Float32Array {
  const out = img.slice();
  const n = img.length;
  const count = Math.round(fraction * n);
  // Choose `count` distinct pixels by a partial Fisher-Yates over indices.
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(n - i);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
    out[idx[i]] = i < count / 2 ? 1 : 0;
  }
  return out;
}

/** Rotates counter-clockwise by k x 90 degrees. */
export function rotate90(img: Float32Array, size: number, k: number): Float32Array {
  const r = ((k % 4) + 4) % 4;
  if (r === 0) return img.slice();
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const v = img[y * size + x];
      // counter-clockwise: (x, y) -> (y, size-1-x) for one turn
      if (r === 1) out[(size - 1 - x) * size + y] = v;
      else if (r === 2) out[(size - 1 - y) * size + (size - 1 - x)] = v;
      else out[x * size + (size - 1 - y)] = v;
    }
  return out;
}

/** 0: none, 1: horizontal (left-right), 2: vertical (up-down). */
export function flipImage(img: Float32Array, size: number, kind: number): Float32Array {
  if (kind === 0) return img.slice();
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const sx = kind === 1 ? size - 1 - x : x;
      const sy = kind === 2 ? size - 1 - y : y;
      out[y * size + x] = img[sy * size + sx];
    }
  return out;
}

export interface TaskOptions {
  task: TaskName;
  maskPercent: MaskPercent;
  maskDefinition: MaskDefinition;
  /** Fraction of pixels hit by salt-and-pepper noise. */
  noiseFraction: number;
  /** Slice distance for next-slice. */
  gap: number;
}

export const DEFAULT_TASK_OPTIONS: Omit<TaskOptions, 'task'> = { maskPercent: 20, maskDefinition: 'area', noiseFraction: 0.5, gap: 1 };

export interface ReconExample {
  input: Float32Array;
  target: Float32Array;
  mask?: Float32Array;
}
export interface ClassExample {
  input: Float32Array;
  label: number;
}

/** One training example of a task. `next` is slice n + gap, required for next-slice. */
export function makeExample(o: TaskOptions, img: Float32Array, size: number, rng: Rng, next?: Float32Array): ReconExample | ClassExample {
  switch (o.task) {
    case 'masked': {
      const { input, mask } = applyMask(img, size, maskBox(size, o.maskPercent, o.maskDefinition, rng));
      return { input, target: img, mask };
    }
    case 'next-slice':
      if (!next) throw new Error('next-slice needs the slice at n + gap');
      return { input: img, target: next };
    case 'denoise':
      return { input: saltAndPepper(img, o.noiseFraction, rng), target: img };
    case 'rotation': {
      const label = rng.int(4);
      return { input: rotate90(img, size, label), label };
    }
    case 'flip': {
      const label = rng.int(3);
      return { input: flipImage(img, size, label), label };
    }
  }
}

/** Stacks examples into NHWC (C = 1) batches, the layout the models take. */
export function stackRecon(examples: ReconExample[], size: number) {
  const n = examples.length;
  const input = new Float32Array(n * size * size);
  const target = new Float32Array(n * size * size);
  const hasMask = examples.some((e) => e.mask);
  const mask = hasMask ? new Float32Array(n * size * size) : undefined;
  examples.forEach((e, i) => {
    input.set(e.input, i * size * size);
    target.set(e.target, i * size * size);
    if (mask && e.mask) mask.set(e.mask, i * size * size);
  });
  return { shape: [n, size, size, 1] as [number, number, number, number], input, target, mask };
}

export function stackClass(examples: ClassExample[], size: number) {
  const n = examples.length;
  const input = new Float32Array(n * size * size);
  const labels = new Int32Array(n);
  examples.forEach((e, i) => {
    input.set(e.input, i * size * size);
    labels[i] = e.label;
  });
  return { shape: [n, size, size, 1] as [number, number, number, number], input, labels };
}
