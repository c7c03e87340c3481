/**
 * A pretext example as grey PNGs, the same for eval-ssl's sample images (written to the run's
 * eval/ folder) and the Evaluate page's held-out browser (held-out.ts): [0, 1] values clipped to 8
 * bits, and the difference image |output − target| × 4 of the images as shown (each clipped to
 * [0, 1], so a tanh output below 0 shows the difference a reader sees).
 */
import { encodePngGray } from '../core/synth/png';

/** [0, 1] values as 8-bit grey (clipped). */
export function toGray(a: ArrayLike<number>): Uint8Array {
  return Uint8Array.from({ length: a.length }, (_, i) => Math.round(Math.min(1, Math.max(0, a[i])) * 255));
}

/** One size x size image of [0, 1] values as a grey PNG. */
export function greyPng(a: ArrayLike<number>, size: number): Uint8Array {
  return encodePngGray(toGray(a), size, size);
}

/** A reconstruction example's input, output, target and difference (× 4) as grey PNGs. */
export function reconstructionPngs(input: ArrayLike<number>, output: ArrayLike<number>, target: ArrayLike<number>, size: number): Record<'input' | 'output' | 'target' | 'diff', Uint8Array> {
  const clip = (v: number) => Math.min(1, Math.max(0, v));
  const diff = Float32Array.from({ length: output.length }, (_, j) => Math.min(1, Math.abs(clip(output[j]) - clip(target[j])) * 4));
  return { input: greyPng(input, size), output: greyPng(output, size), target: greyPng(target, size), diff: greyPng(diff, size) };
}
