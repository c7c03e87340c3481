/**
 * One slice as a model sees it: the DICOM frame read and decoded to HU, turned to the radiological
 * display orientation, then windowed, scaled and resized by a preprocessing spec
 * (src/core/ssl/preprocess.ts). The trainer's SliceSource and the cluster job's shards both read
 * slices through it, so a job trains on exactly what the app would.
 */
import { preprocessStored, type PreprocessSpec } from '../../core/ssl/preprocess';
import { withFrameStored } from './pixels';

/** `out` (spec.size squared), when given, receives the slice and is returned. */
export async function readModelSlice(path: string, frame: number, transform: { transpose: boolean; flipX: boolean; flipY: boolean }, spec: PreprocessSpec, out?: Float32Array): Promise<Float32Array> {
  return withFrameStored(path, frame, (f) => preprocessStored(f.pixels, f.rows, f.columns, f.rescale, transform, spec, out));
}
