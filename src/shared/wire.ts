/**
 * Binary framing for the `ctssl serve` WebSocket bridge. A message is JSON plus any typed arrays it
 * holds, moved out of the JSON into a binary tail so that voxel data crosses without base64:
 *
 *   [u32 LE: JSON byte length][JSON (UTF-8)][padding to 8][binary parts, each 8-byte aligned]
 *
 * In the JSON a typed array is replaced by {"$bin": index, "type": "Int16Array", "offset", "length"}.
 */

type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array;

const ctors = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
} as const;
type CtorName = keyof typeof ctors;

function typedName(v: unknown): CtorName | null {
  if (!ArrayBuffer.isView(v) || v instanceof DataView) return null;
  const name = (v as TypedArray).constructor.name as CtorName;
  return Object.hasOwn(ctors, name) ? name : null;
}

const align8 = (n: number) => (n + 7) & ~7;

export function encodeMessage(message: unknown): Uint8Array {
  const parts: TypedArray[] = [];
  const offsets: number[] = [];
  let tail = 0;
  const json = JSON.stringify(message, (_key, value) => {
    const name = typedName(value);
    if (!name) return value;
    const arr = value as TypedArray;
    parts.push(arr);
    offsets.push(tail);
    const ref = { $bin: parts.length - 1, type: name, offset: tail, length: arr.length };
    tail = align8(tail + arr.byteLength);
    return ref;
  });
  const jsonBytes = new TextEncoder().encode(json);
  const head = align8(4 + jsonBytes.length);
  const out = new Uint8Array(head + tail);
  new DataView(out.buffer).setUint32(0, jsonBytes.length, true);
  out.set(jsonBytes, 4);
  parts.forEach((p, i) => out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), head + offsets[i]));
  return out;
}

/**
 * `views`: typed arrays are views into `data` instead of copies (no copy of large parts; they keep
 * `data` alive and see changes to it), where the part's place in the buffer is aligned for its type;
 * copies where it is not.
 */
export function decodeMessage<T = unknown>(data: ArrayBuffer | Uint8Array, opts: { views?: boolean } = {}): T {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.length < 4) throw new Error('wire: message shorter than its header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLen = view.getUint32(0, true);
  if (4 + jsonLen > bytes.length) throw new Error('wire: JSON length exceeds message');
  const json = new TextDecoder().decode(bytes.subarray(4, 4 + jsonLen));
  const head = align8(4 + jsonLen);
  // Without the text "$bin", nor any \u escape that could spell it, no value can be a binary
  // reference: parsed without the reviver (a call per value; the Library page's first page of rows
  // is some 3,000 values, 30 ms of its first rows on a loaded machine).
  if (!json.includes('$bin') && !json.includes('\\u')) return JSON.parse(json) as T;
  return JSON.parse(json, (_key, value) => {
    if (value && typeof value === 'object' && typeof value.$bin === 'number' && typeof value.type === 'string' && Object.hasOwn(ctors, value.type)) {
      if (!Number.isSafeInteger(value.offset) || value.offset < 0 || !Number.isSafeInteger(value.length) || value.length < 0) throw new Error('wire: binary part with a bad offset or length');
      const Ctor = ctors[value.type as CtorName];
      const bytesPer = Ctor.BYTES_PER_ELEMENT;
      const start = head + value.offset;
      const end = start + value.length * bytesPer;
      if (end > bytes.length) throw new Error('wire: binary part exceeds message');
      if (opts.views && (bytes.byteOffset + start) % bytesPer === 0) return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset + start, value.length);
      // Copy so the result is aligned and owns its memory. (Not bytes.slice: on a Node Buffer that
      // is a view into a shared pool, and .buffer would then start at the pool's first byte.)
      const copy = new Uint8Array(bytes.subarray(start, end));
      return new Ctor(copy.buffer, 0, value.length);
    }
    return value;
  }) as T;
}
