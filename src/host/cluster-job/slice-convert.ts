/**
 * One slice of a cluster job's shards: read as the trainer feeds its models (the same
 * readModelSlice as src/trainer/pretrain/pretrain-batches.ts SliceSource), then quantised to the
 * shard's dtype.
 * Used in process and by the export's worker threads (slice-worker.ts).
 */
import type { PreprocessSpec } from '../../core/ssl/preprocess';
import { readModelSlice } from '../../library/volumes/model-slice';

export interface SliceRequest {
  path: string;
  frame: number;
  transform: { transpose: boolean; flipX: boolean; flipY: boolean };
  spec: PreprocessSpec;
  dtype: 'int16' | 'uint8';
  scale: number;
}

/** The slice's shard bytes (little-endian int16 or uint8, size x size). */
export async function sliceBytes(r: SliceRequest): Promise<Uint8Array> {
  const x = await readModelSlice(r.path, r.frame, r.transform, r.spec);
  const q = r.dtype === 'int16' ? new Int16Array(x.length) : new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) q[i] = Math.round(Math.min(1, Math.max(0, x[i])) * r.scale);
  return new Uint8Array(q.buffer, q.byteOffset, q.byteLength);
}
