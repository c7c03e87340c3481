/**
 * What our hand-assembled WebAssembly kernels need to work inside tfjs-backend-wasm's own heap:
 * the backend and its WebAssembly.Memory, tensors allocated there (backend.makeOutput), a
 * tensor's byte offset, and a module instantiated against that memory (imported as env.mem).
 * Kernels read and write the backend's tensors where they are, with no copy in or out.
 *
 * Pure module: WebAssembly is reached through globalThis; no Node or DOM APIs.
 */
import * as tf from '@tensorflow/tfjs';
import { I32, V128, section, str, uleb } from './wasm-kernels';

const F32 = 0x7d;

export interface WasmMemory {
  buffer: ArrayBuffer;
}
export interface WasmInstance {
  exports: Record<string, (...args: number[]) => void>;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => WasmInstance;
  validate(bytes: Uint8Array): boolean;
}
const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

export interface WasmBackendLike {
  wasm?: { asm?: { memory?: WasmMemory }; wasmMemory?: WasmMemory };
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** The wasm backend and its memory when it is the active backend, else null. */
export function heapBackend(): { be: WasmBackendLike; mem: WasmMemory } | null {
  if (tf.getBackend() !== 'wasm') return null;
  const be = tf.backend() as unknown as WasmBackendLike;
  const mem = be.wasm?.asm?.memory ?? be.wasm?.wasmMemory;
  if (mem == null || typeof be.makeOutput !== 'function' || be.dataIdMap == null) return null;
  return { be, mem };
}

/** A new (uninitialised) tensor in the backend's heap. */
export function heapTensor(be: WasmBackendLike, shape: number[], dtype: tf.DataType = 'float32'): tf.Tensor {
  return tf.engine().makeTensorFromTensorInfo(be.makeOutput(shape, dtype));
}

/** A tensor's byte offset in the backend's heap. */
export function heapOffset(be: WasmBackendLike, t: tf.Tensor): number {
  const d = be.dataIdMap.get(t.dataId);
  if (d == null) throw new Error('tensor not on the wasm backend');
  return d.memoryOffset;
}

/** True when the backend's memory is shared (its threaded build): modules must import it as shared. */
function isShared(mem: WasmMemory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && mem.buffer instanceof SharedArrayBuffer;
}

const instances = new WeakMap<WasmMemory, Map<string, WasmInstance | null>>();

/**
 * The module `build(shared)` makes for `key`, instantiated once per memory against it (env.mem);
 * null where WebAssembly or its SIMD is missing or the bytes do not validate (callers then take
 * their tensor path).
 */
export function heapInstance(mem: WasmMemory, key: string, build: (shared: boolean) => Uint8Array): WasmInstance | null {
  let byKey = instances.get(mem);
  if (byKey == null) instances.set(mem, (byKey = new Map()));
  if (byKey.has(key)) return byKey.get(key)!;
  let inst: WasmInstance | null = null;
  try {
    if (WA != null) {
      const bytes = build(isShared(mem));
      if (WA.validate(bytes)) inst = new WA.Instance(new WA.Module(bytes), { env: { mem } });
    }
  } catch {
    inst = null;
  }
  byKey.set(key, inst);
  return inst;
}

/** The import section entry of a module's memory (`env.mem`, shared or not). */
function memoryImport(shared: boolean): number[] {
  return shared ? [0x03, 0, 0x80, 0x80, 0x04] : [0x00, 0];
}

/**
 * One function of a module: its parameters (`nparams` i32, then `nf32params` f32), its locals
 * (`ni32` i32, then `nf32` f32, then `nv128` v128, indexed in that order after the parameters)
 * and its code (ending in `end`); no results.
 */
export interface WasmFunction {
  nparams: number;
  nf32params?: number;
  ni32: number;
  nf32?: number;
  nv128: number;
  body: number[];
}

/**
 * A module importing the memory `env.mem` (shared when the backend's is) and exporting `fns`
 * under `exportNames`, with a "name" section (`profileNames`) so profiles tell these functions
 * from other wasm code.
 */
export function assembleModule(fns: WasmFunction[], exportNames: string[], profileNames: string[], shared: boolean): Uint8Array {
  const func = (f: WasmFunction) => {
    const b = [3, ...uleb(f.ni32), I32, ...uleb(f.nf32 ?? 0), F32, ...uleb(f.nv128), V128, ...f.body];
    return [...uleb(b.length), ...b];
  };
  const type = (f: WasmFunction) => {
    const params = [...new Array<number>(f.nparams).fill(I32), ...new Array<number>(f.nf32params ?? 0).fill(F32)];
    return [0x60, ...uleb(params.length), ...params, 0];
  };
  const names = [fns.length, ...profileNames.flatMap((nm, i) => [i, ...str(nm)])];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [fns.length, ...fns.flatMap(type)]),
    ...section(2, [1, ...str('env'), ...str('mem'), 0x02, ...memoryImport(shared)]),
    ...section(3, [fns.length, ...fns.map((_, i) => i)]),
    ...section(7, [fns.length, ...exportNames.flatMap((nm, i) => [...str(nm), 0x00, i])]),
    ...section(10, [fns.length, ...fns.flatMap(func)]),
    ...section(0, [...str('name'), 1, ...uleb(names.length), ...names]),
  ]);
}
