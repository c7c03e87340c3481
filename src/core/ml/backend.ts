/**
 * Backend-agnostic training support: kernels that some tfjs backends lack for training, and
 * small custom ops used by the model code.
 *
 * Pure module: imports `@tensorflow/tfjs` only (no Node, no DOM). The Node entry that picks the
 * backend lives in `src/trainer/backend.ts`.
 *
 * What the wasm backend (tfjs-backend-wasm 4.22) lacks compared with the cpu backend, and how it is
 * dealt with:
 * - `Conv2DBackpropFilter` (gradient of `tf.conv2d` w.r.t. its filter): registered here as a
 *   composite of wasm kernels (transpose + pad + a forward `Conv2D`, the "filter gradient is a
 *   correlation" identity), so `tf.grad` of a plain `tf.conv2d` works on wasm.
 * - `UnsortedSegmentSum` (gradient of `tf.gather`): a direct JS loop over the data.
 * - `DepthwiseConv2dNativeBackpropInput`,
 *   `DepthwiseConv2dNativeBackpropFilter`: registered as fallbacks that run the cpu backend's
 *   kernel on a copy of the data (correct, not fast; the model code does not need them on its
 *   hot path).
 * - `Identity` copies its input on wasm (the cpu and webgl backends share it by reference count),
 *   and the engine clones every tensor a gradient saves: replaced on wasm by a sharing one.
 *
 * The model code itself (layers.ts) does not rely on any of these: its convolutions carry their
 * own gradients written as forward convolutions (see `conv2d` in layers.ts), which is much faster
 * on wasm than the built-in `Conv2DBackpropInput`.
 */
import * as tf from '@tensorflow/tfjs';

type KernelFunc = tf.KernelConfig['kernelFunc'];
type AnyBackend = tf.KernelBackend & {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput?(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): tf.TensorInfo;
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
};

/** Kernels registered by {@link registerTrainingKernels} when a backend lacks them. */
export const FALLBACK_KERNELS = [
  'Conv2DBackpropFilter',
  'UnsortedSegmentSum',
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
] as const;

function makeOutput(backend: AnyBackend, shape: number[], dtype: tf.DataType, values: tf.backend_util.BackendValues): tf.TensorInfo {
  if (typeof backend.makeOutput === 'function') return backend.makeOutput(shape, dtype, undefined, values);
  if (typeof backend.makeTensorInfo === 'function') return backend.makeTensorInfo(shape, dtype, values);
  throw new Error('backend cannot make output tensors');
}

/**
 * A kernel that runs the cpu backend's implementation of `kernelName` on copies of its inputs.
 * Correct on any backend that can read and write plain typed arrays; not fast.
 */
function cpuFallback(kernelName: string): KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const cpu = tf.findBackend('cpu') as AnyBackend | null;
    const cpuKernel = tf.getKernel(kernelName, 'cpu');
    if (cpu == null || cpuKernel == null) throw new Error(`no cpu fallback for kernel ${kernelName}`);
    const be = backend as AnyBackend;
    const cpuInputs: Record<string, tf.TensorInfo> = {};
    for (const [name, info] of Object.entries(inputs)) {
      if (info == null) continue;
      const values = be.readSync(info.dataId);
      const dataId = cpu.write(values as tf.backend_util.BackendValues, info.shape, info.dtype);
      cpuInputs[name] = { dataId, shape: info.shape, dtype: info.dtype };
    }
    const result = cpuKernel.kernelFunc({ inputs: cpuInputs, attrs, backend: cpu });
    const outs = Array.isArray(result) ? result : [result];
    const converted = outs.map((o) => {
      const values = cpu.readSync(o.dataId);
      const out = makeOutput(be, o.shape, o.dtype, values as tf.backend_util.BackendValues);
      cpu.disposeData(o.dataId);
      return out;
    });
    for (const info of Object.values(cpuInputs)) cpu.disposeData(info.dataId);
    return Array.isArray(result) ? converted : converted[0];
  };
}

/**
 * `Conv2DBackpropFilter` as a composite of the backend's own `Transpose`, `PadV2` and `Conv2D`
 * kernels (NHWC, dilation 1): dW[kh,kw,ci,co] = sum_{n,i,j} xpad[n, s*i+kh, s*j+kw, ci] dy[n,i,j,co],
 * i.e. a forward convolution of xpad^T ([ci, H, W, n]) with dy^T ([OH, OW, n, co]) at dilation s.
 */
function conv2DBackpropFilterComposite(backendName: string): KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = attrs as unknown as {
      strides: [number, number] | number; pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
      dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number];
    };
    if (a.dataFormat === 'NCHW') return cpuFallback('Conv2DBackpropFilter')({ inputs, attrs, backend });
    const k = (name: string) => {
      const kern = tf.getKernel(name, backendName);
      if (kern == null) throw new Error(`backend ${backendName} lacks ${name}`);
      return kern.kernelFunc;
    };
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
    const { top, left } = info.padInfo;
    const [n, h, w, ci] = x.shape;
    const [, oh, ow] = dy.shape;
    const needH = (oh - 1) * info.strideHeight + info.filterHeight;
    const needW = (ow - 1) * info.strideWidth + info.filterWidth;
    const bottom = Math.max(0, needH - h - top);
    const right = Math.max(0, needW - w - left);
    const disposables: tf.TensorInfo[] = [];
    const run = (name: string, ins: Record<string, tf.TensorInfo>, at: object): tf.TensorInfo => {
      const r = k(name)({ inputs: ins, attrs: at as tf.NamedAttrMap, backend }) as tf.TensorInfo;
      disposables.push(r);
      return r;
    };
    const xp = run('PadV2', { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 });
    const xt = run('Transpose', { x: xp }, { perm: [3, 1, 2, 0] });
    const dyt = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const conv = run('Conv2D', { x: xt, filter: dyt }, {
      strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [info.strideHeight, info.strideWidth],
    });
    // conv: [ci, kh', kw', co] with kh' >= filterHeight when the padding was generous; crop.
    let cropped = conv;
    if (conv.shape[1] !== info.filterHeight || conv.shape[2] !== info.filterWidth) {
      cropped = run('Slice', { x: conv }, { begin: [0, 0, 0, 0], size: [ci, info.filterHeight, info.filterWidth, conv.shape[3]] });
    }
    const out = k('Transpose')({ inputs: { x: cropped }, attrs: { perm: [1, 2, 0, 3] }, backend }) as tf.TensorInfo;
    for (const d of disposables) (backend as AnyBackend).disposeData(d.dataId);
    void n;
    return out;
  };
}

/** `UnsortedSegmentSum` as a direct loop (the cpu backend's version is O(n * segments)). */
const unsortedSegmentSumJs: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
  const be = backend as AnyBackend;
  const xv = be.readSync(x.dataId) as tf.backend_util.TypedArray;
  const ids = be.readSync(segmentIds.dataId) as tf.backend_util.TypedArray;
  const rows = ids.length;
  const inner = rows === 0 ? 0 : x.shape.slice(segmentIds.shape.length).reduce((a, b) => a * b, 1);
  const out = new Float32Array(numSegments * inner);
  for (let r = 0; r < rows; r++) {
    const s = ids[r];
    if (s < 0 || s >= numSegments) continue;
    const o = s * inner;
    const i0 = r * inner;
    for (let j = 0; j < inner; j++) out[o + j] += xv[i0 + j];
  }
  const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  if (x.dtype === 'int32') return makeOutput(be, shape, 'int32', Int32Array.from(out));
  return makeOutput(be, shape, 'float32', out);
};

/**
 * `Identity` sharing its input's data (reference counted), as the cpu and webgl backends' do. The
 * wasm backend's copies the data, and the engine clones (Identity) every tensor a gradient saves
 * for the backward pass: about 190 copies of activations per training step of the `small` VQ-VAE.
 * Tensor data is never written in place, so sharing is what every other backend does.
 */
const identityShared: KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: tf.TensorInfo };
  (backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/** Kernels of a backend that {@link registerTrainingKernels} replaces (not only adds), by backend. */
const REPLACED: Record<string, Record<string, KernelFunc>> = { wasm: { Identity: identityShared } };

const registered = new Set<string>();

/**
 * Registers, for `backendName` (default: the current backend), every kernel of
 * {@link FALLBACK_KERNELS} that the backend lacks, and replaces the kernels of `REPLACED` (wasm:
 * `Identity` without a copy). Idempotent. Returns the kernels it added or replaced.
 */
export function registerTrainingKernels(backendName: string = tf.getBackend()): string[] {
  const added: string[] = [];
  for (const name of FALLBACK_KERNELS) {
    const key = `${backendName}/${name}`;
    if (registered.has(key) || tf.getKernel(name, backendName) != null) continue;
    const kernelFunc = name === 'Conv2DBackpropFilter' && backendName !== 'cpu'
      ? conv2DBackpropFilterComposite(backendName)
      : name === 'UnsortedSegmentSum' ? unsortedSegmentSumJs : cpuFallback(name);
    tf.registerKernel({ kernelName: name, backendName, kernelFunc });
    registered.add(key);
    added.push(name);
  }
  for (const [name, kernelFunc] of Object.entries(REPLACED[backendName] ?? {})) {
    const key = `${backendName}/${name}`;
    if (registered.has(key)) continue;
    if (tf.getKernel(name, backendName) != null) tf.unregisterKernel(name, backendName);
    tf.registerKernel({ kernelName: name, backendName, kernelFunc });
    registered.add(key);
    added.push(`${name} (sharing data)`);
  }
  return added;
}

/**
 * `tf.customGrad` with a loosely typed function (tfjs types every argument as
 * `Tensor | GradSaveFunc`); the last argument of `f` is the save function.
 */
export function customGradient<T extends tf.Tensor = tf.Tensor>(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  f: (...args: any[]) => { value: T; gradFunc: (dy: any, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] },
): (...inputs: tf.Tensor[]) => T {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...inputs: tf.Tensor[]) => T;
}

/** Identity in the forward pass, zero gradient (tfjs has no `stopGradient`). */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const f = customGradient((a: tf.Tensor) => ({ value: a.clone(), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) }));
  return f(x) as T;
}
