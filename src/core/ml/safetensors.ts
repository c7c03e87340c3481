/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__:
 * {string: string}}, then the raw little-endian data. Used for checkpoints and for exported
 * weights that PyTorch users load with `safetensors.torch.load_file`. Pure: bytes in, bytes out.
 */
export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function encodeSafetensors(tensors: NamedArray[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`safetensors: ${t.name} has ${t.data.length} values for shape [${t.shape}]`);
    if (t.name in header) throw new Error(`safetensors: duplicate tensor name ${t.name}`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned.
  while ((8 + new TextEncoder().encode(json).length) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes.length, true);
  view.setUint32(4, 0, true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array): { tensors: NamedArray[]; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error('safetensors: file shorter than its header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (8 + len > bytes.length) throw new Error('safetensors: header length exceeds the file (truncated?)');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + len;
  const metadata = (header.__metadata__ ?? {}) as unknown as Record<string, string>;
  const tensors: NamedArray[] = [];
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`safetensors: ${name} has dtype ${t.dtype}; only F32 is supported`);
    const [b, e] = t.data_offsets;
    if (base + e > bytes.length || e < b) throw new Error(`safetensors: ${name} lies outside the file (truncated?)`);
    const n = t.shape.reduce((x, y) => x * y, 1);
    if ((e - b) / 4 !== n) throw new Error(`safetensors: ${name} has ${(e - b) / 4} values for shape [${t.shape}]`);
    const data = new Float32Array(n);
    new Uint8Array(data.buffer).set(bytes.subarray(base + b, base + e));
    tensors.push({ name, shape: t.shape, data });
  }
  return { tensors, metadata };
}
