/**
 * A pickle reader for what torch.save writes (protocol 2; the protocol 3-5 opcodes that change
 * nothing but encoding are read too) that never executes anything. The file is hostile:
 * - GLOBAL only names a callable (`PGlobal`); nothing is imported or looked up.
 * - REDUCE calls only an allow-list, each implemented here on plain data:
 *   `collections.OrderedDict` (a dict), `torch._utils._rebuild_tensor_v2` (a tensor view of a
 *   storage), `torch._utils._rebuild_parameter` / `_rebuild_parameter_with_state` (the tensor),
 *   `builtins.set` / `frozenset` (a list), `torch.device` (kept as an opaque value). A REDUCE of
 *   anything else is refused, naming it.
 * - NEWOBJ of any class makes an opaque object (`POpaque`: the class's name and arguments) that is
 *   never constructed; BUILD stores its state in it. This is how a pickled module (`'model'` of
 *   the authors' checkpoint, classes from a package we do not have) is read without running it.
 * - BINPERSID only makes a storage reference (`PStorage`: dtype, key, element count) from torch's
 *   ('storage', torch.<Type>Storage, key, location, numel) id; its bytes are read by the caller.
 * - Bounded: the pickle's size (by the caller), objects created, the stack, the memo, the
 *   nesting of containers, and the length of any one container.
 * Any other opcode (INST, OBJ, EXT*, the text opcodes, ...) is refused with its name and offset.
 */
import { TorchFormatError } from './zip';

export type TorchDtype = 'float64' | 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** Bytes per element of each storage dtype. */
export const DTYPE_BYTES: Record<TorchDtype, number> = { float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 };

const STORAGE_TYPES: Record<string, TorchDtype> = {
  DoubleStorage: 'float64',
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

export class PTuple {
  constructor(readonly items: PValue[]) {}
}
export class PDict {
  readonly map = new Map<unknown, PValue>();
  /** State given by BUILD (an OrderedDict's `_metadata`). */
  attrs: PValue = null;
}
/** A name of a callable or class: never resolved. */
export class PGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}
/** An instance of a class we do not construct: its class name, arguments and state. */
export class POpaque {
  state: PValue = null;
  constructor(
    readonly cls: PGlobal,
    readonly args: PValue,
  ) {}
}
export class PStorage {
  constructor(
    readonly dtype: TorchDtype,
    readonly key: string,
    readonly location: string,
    readonly numel: number,
  ) {}
}
export class PTensor {
  constructor(
    readonly storage: PStorage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}
export type PValue = null | boolean | number | bigint | string | Uint8Array | PValue[] | PTuple | PDict | PGlobal | POpaque | PStorage | PTensor;

export interface PickleLimits {
  /** Objects (containers, strings, tensors, ...) created in all. */
  maxObjects: number;
  maxStack: number;
  maxMemo: number;
  /** Nesting of containers in containers. */
  maxDepth: number;
  /** Items of one list, tuple or dict. */
  maxItems: number;
}

export const PICKLE_LIMITS: PickleLimits = { maxObjects: 20_000_000, maxStack: 1_000_000, maxMemo: 10_000_000, maxDepth: 200, maxItems: 10_000_000 };

const MARK = Symbol('mark');
type Slot = PValue | typeof MARK;

/** Opcode names for messages. */
const NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT', 0x4b: 'BININT1',
  0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT',
  0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST',
  0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS',
  0x47: 'BINFLOAT', 0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

/** The callables REDUCE may apply, by qualified name. */
export const ALLOWED_CALLABLES = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  '__builtin__.set',
  'builtins.set',
  '__builtin__.frozenset',
  'builtins.frozenset',
  'torch.device',
] as const;

/** What the reader met that is worth reporting: the classes kept opaque. */
export interface PickleReport {
  opaqueClasses: string[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads one pickle. Storages are made by `storage` (the caller checks the key exists and keeps one
 * object per key). Refusals are `TorchFormatError`s naming the opcode and its offset.
 */
export function readPickle(bytes: Uint8Array, o: { limits?: Partial<PickleLimits>; storage?: (dtype: TorchDtype, key: string, location: string, numel: number) => PStorage } = {}): { value: PValue; report: PickleReport } {
  const lim: PickleLimits = { ...PICKLE_LIMITS, ...o.limits };
  const makeStorage = o.storage ?? ((d, k, l, n) => new PStorage(d, k, l, n));
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PValue>();
  const depth = new WeakMap<object, number>();
  const opaque = new Set<string>();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let objects = 0;
  let pos = 0;
  let opAt = 0;
  let op = 0;
  const fail = (why: string): never => {
    throw new TorchFormatError(`pickle: ${NAMES[op] ?? `opcode 0x${op.toString(16)}`} at byte ${opAt}: ${why}`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail('the pickle ends in the middle of it (truncated)');
  };
  const u8 = () => {
    need(1);
    return bytes[pos++];
  };
  const u16le = () => {
    need(2);
    const v = dv.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32le = () => {
    need(4);
    const v = dv.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64le = () => {
    need(8);
    const hi = dv.getUint32(pos + 4, true);
    const lo = dv.getUint32(pos, true);
    pos += 8;
    if (hi >= 2 ** 21) fail('a length over 2^53');
    return hi * 2 ** 32 + lo;
  };
  const take = (n: number) => {
    need(n);
    const b = bytes.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 1000) fail('a name without its end of line (or longer than 1000 bytes)');
    const s = String.fromCharCode(...bytes.subarray(pos, end));
    pos = end + 1;
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(s)) fail(`${JSON.stringify(s.slice(0, 80))} is not a Python name`);
    return s;
  };
  const made = <T extends PValue>(v: T): T => {
    if (++objects > lim.maxObjects) fail(`more than ${lim.maxObjects} objects`);
    return v;
  };
  const push = (v: Slot) => {
    if (stack.length >= lim.maxStack) fail(`a stack deeper than ${lim.maxStack}`);
    stack.push(v);
  };
  const pop = (): PValue => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) fail('the stack is empty (a damaged pickle)');
    return stack.pop() as PValue;
  };
  const top = (): PValue => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) fail('the stack is empty (a damaged pickle)');
    return stack[stack.length - 1] as PValue;
  };
  const popMark = (): PValue[] => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK to pop to (a damaged pickle)');
    const items = stack.splice(m!) as PValue[];
    if (items.length > lim.maxItems) fail(`more than ${lim.maxItems} items`);
    return items;
  };
  const depthOf = (v: PValue): number => (v !== null && typeof v === 'object' ? (depth.get(v) ?? 0) : 0);
  /** Records that `child` is inside `parent`, refusing nesting deeper than the cap. */
  const nest = (parent: object, child: PValue) => {
    const d = depthOf(child) + 1;
    if (d > lim.maxDepth) fail(`containers nested more than ${lim.maxDepth} deep`);
    if (d > (depth.get(parent) ?? 0)) depth.set(parent, d);
  };
  const tuple = (items: PValue[]) => {
    const t = made(new PTuple(items));
    for (const x of items) nest(t, x);
    return t;
  };
  const key = (k: PValue): unknown => {
    if (k === null || typeof k !== 'object') return typeof k === 'bigint' && k >= BigInt(Number.MIN_SAFE_INTEGER) && k <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(k) : k;
    if (k instanceof PTuple || k instanceof PGlobal || k instanceof Uint8Array) return k;
    return fail('an unhashable dict key (a list or dict)');
  };
  const setItem = (d: PValue, k: PValue, v: PValue) => {
    if (!(d instanceof PDict)) fail('SETITEM on something that is not a dict');
    const dict = d as PDict;
    if (dict.map.size >= lim.maxItems) fail(`a dict with more than ${lim.maxItems} items`);
    dict.map.set(key(k), v);
    nest(dict, v);
  };
  const append = (l: PValue, v: PValue) => {
    if (!Array.isArray(l)) fail('APPEND on something that is not a list');
    const list = l as PValue[];
    if (list.length >= lim.maxItems) fail(`a list with more than ${lim.maxItems} items`);
    list.push(v);
    nest(list, v);
  };
  const int = (v: PValue, what: string): number => {
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) fail(`${what} is not a non-negative integer`);
    return n as number;
  };
  const ints = (v: PValue, what: string): number[] => {
    if (!(v instanceof PTuple)) return fail(`${what} is not a tuple`);
    if (v.items.length > 16) fail(`${what} has ${v.items.length} dimensions`);
    return v.items.map((x, i) => int(x, `${what}[${i}]`));
  };
  const call = (fn: PValue, args: PValue): PValue => {
    if (!(fn instanceof PGlobal)) return fail('REDUCE on something that is not a named callable: refused');
    if (!(args instanceof PTuple)) return fail(`REDUCE on ${fn.qualified} with arguments that are not a tuple`);
    const a = args.items;
    switch (fn.qualified) {
      case 'collections.OrderedDict': {
        const d = made(new PDict());
        if (a.length === 0) return d;
        const pairs = a[0];
        if (a.length !== 1 || !Array.isArray(pairs)) return fail('OrderedDict with arguments other than a list of pairs');
        for (const p of pairs) {
          if (!(p instanceof PTuple) || p.items.length !== 2) fail('OrderedDict with an item that is not a pair');
          setItem(d, (p as PTuple).items[0], (p as PTuple).items[1]);
        }
        return d;
      }
      case 'torch._utils._rebuild_tensor_v2': {
        if (a.length < 6 || a.length > 7) return fail(`_rebuild_tensor_v2 with ${a.length} arguments (expected 6 or 7)`);
        const [storage, offset, size, stride] = a;
        if (!(storage instanceof PStorage)) return fail('_rebuild_tensor_v2 on something that is not a storage');
        const shape = ints(size, 'the tensor size');
        const strides = ints(stride, 'the tensor stride');
        if (strides.length !== shape.length) fail(`a tensor of size [${shape}] with stride [${strides}]`);
        const off = int(offset, 'the storage offset');
        // every element inside the storage
        if (shape.every((s) => s > 0)) {
          let last = off;
          for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * strides[i];
          if (last >= storage.numel) fail(`a tensor of size [${shape}] at offset ${off} with stride [${strides}] reaches element ${last} of a storage of ${storage.numel}`);
        }
        return made(new PTensor(storage, off, shape, strides));
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        if (!(a[0] instanceof PTensor)) return fail(`${fn.name} on something that is not a tensor`);
        return a[0];
      case '__builtin__.set':
      case 'builtins.set':
      case '__builtin__.frozenset':
      case 'builtins.frozenset': {
        if (a.length > 1 || (a.length === 1 && !Array.isArray(a[0]))) return fail(`${fn.name} with arguments other than a list`);
        const l = made([] as PValue[]);
        for (const x of (a[0] as PValue[] | undefined) ?? []) append(l, x);
        return l;
      }
      case 'torch.device': {
        // a module attribute such as self.device = torch.device('cuda'): kept as data
        if (a.length < 1 || a.length > 2 || typeof a[0] !== 'string' || (a.length === 2 && typeof a[1] !== 'number')) return fail('torch.device with arguments other than a name and an index');
        const d = made(new POpaque(fn, args));
        nest(d, args);
        return d;
      }
      default:
        return fail(`REDUCE would call ${fn.qualified}, which is not an allowed callable: refused (allowed: ${ALLOWED_CALLABLES.join(', ')})`);
    }
  };

  for (;;) {
    opAt = pos;
    op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('an unknown pickle protocol');
        break;
      case 0x95: // FRAME
        u64le();
        break;
      case 0x28: // MARK
        marks.push(stack.length);
        if (marks.length > lim.maxStack) fail('too many marks');
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail('the stack does not hold exactly one value at the end (a damaged pickle)');
        return { value: stack[0] as PValue, report: { opaqueClasses: [...opaque].sort() } };
      case 0x30: // POP
        if (stack.length && stack.length === (marks[marks.length - 1] ?? -1)) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        need(4);
        push(dv.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16le());
        break;
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = op === 0x8a ? u8() : u32le();
        if (n > 64) fail(`an integer of ${n} bytes`);
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT
        need(8);
        push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
      case 0x8c: // SHORT_BINUNICODE
      case 0x8d: {
        // BINUNICODE8
        const n = op === 0x8c ? u8() : op === 0x58 ? u32le() : u64le();
        const b = take(n);
        let s: string;
        try {
          s = utf8.decode(b);
        } catch {
          return fail('a string that is not valid UTF-8');
        }
        push(made(s));
        break;
      }
      case 0x54: // BINSTRING
      case 0x55: {
        // SHORT_BINSTRING (Python 2 str: bytes read as Latin-1)
        const n = op === 0x55 ? u8() : u32le();
        const b = take(n);
        let s = '';
        for (let i = 0; i < b.length; i += 4096) s += String.fromCharCode(...b.subarray(i, i + 4096));
        push(made(s));
        break;
      }
      case 0x42: // BINBYTES
      case 0x43: // SHORT_BINBYTES
      case 0x8e: {
        // BINBYTES8
        const n = op === 0x43 ? u8() : op === 0x42 ? u32le() : u64le();
        push(made(take(n).slice()));
        break;
      }
      case 0x5d: // EMPTY_LIST
        push(made([] as PValue[]));
        break;
      case 0x7d: // EMPTY_DICT
        push(made(new PDict()));
        break;
      case 0x29: // EMPTY_TUPLE
        push(tuple([]));
        break;
      case 0x8f: // EMPTY_SET
        push(made([] as PValue[]));
        break;
      case 0x74: // TUPLE
        push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
        push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push(tuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push(tuple([pop(), b, c]));
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = popMark();
        const l = made([] as PValue[]);
        for (const x of items) append(l, x);
        push(l);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), v);
        break;
      }
      case 0x65: // APPENDS
      case 0x90: {
        // ADDITEMS (sets are lists here)
        const items = popMark();
        const l = top();
        for (const x of items) append(l, x);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('an odd number of items');
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x71: // BINPUT
      case 0x72: // LONG_BINPUT
      case 0x94: {
        // MEMOIZE
        const i = op === 0x71 ? u8() : op === 0x72 ? u32le() : memo.size;
        if (!memo.has(i) && memo.size >= lim.maxMemo) fail(`more than ${lim.maxMemo} memo entries`);
        memo.set(i, top());
        break;
      }
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? u8() : u32le();
        if (!memo.has(i)) fail(`memo entry ${i} was never stored`);
        push(memo.get(i)!);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        push(made(new PGlobal(module, name)));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(module + name)) fail('names that are not Python names');
        push(made(new PGlobal(module as string, name as string)));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        push(call(fn, args));
        break;
      }
      case 0x81: // NEWOBJ
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = op === 0x92 ? pop() : null;
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PGlobal)) fail('NEWOBJ of something that is not a named class');
        const g = cls as PGlobal;
        opaque.add(g.qualified);
        const obj = made(new POpaque(g, op === 0x92 ? tuple([args, kwargs]) : args));
        nest(obj, args);
        push(obj);
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof POpaque) {
          obj.state = state;
          nest(obj, state);
        } else if (obj instanceof PDict) {
          obj.attrs = state;
          nest(obj, state);
        } else if (!(obj instanceof PTensor)) {
          fail('BUILD on something that is not an object');
        }
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!(pid instanceof PTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') return fail("a persistent id that is not ('storage', type, key, location, numel)");
        const [, type, k, location, numel] = pid.items;
        if (!(type instanceof PGlobal) || type.module !== 'torch' || !(type.name in STORAGE_TYPES)) {
          return fail(`a storage of type ${type instanceof PGlobal ? type.qualified : typeof type}, not one of torch.${Object.keys(STORAGE_TYPES).join(', torch.')}`);
        }
        if (typeof k !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(k)) return fail('a storage key that is not a short name');
        if (typeof location !== 'string' || location.length > 64) return fail('a storage location that is not a short string');
        push(made(makeStorage(STORAGE_TYPES[type.name], k, location, int(numel, 'the storage size'))));
        break;
      }
      default:
        fail(NAMES[op] ? 'not an opcode torch.save writes: refused' : 'an unknown opcode: refused');
    }
  }
}
