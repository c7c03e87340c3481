/**
 * Where one training step's CPU goes: the step of `npm run bench:train` (masked-region VQ-VAE,
 * composite loss, Adam, batch 8) on one wasm thread, by tfjs kernel (each registered wasm kernel
 * wrapped to add up its process CPU time, by kernel name) and, outside the kernels, by what V8's
 * sampling profiler finds there (our SIMD filter-gradient kernel, the VQ and Adam loops, the
 * sub-pixel loops, the engine, garbage collection).
 *
 * `profileStep` runs in the calling process (bench/train.ts runs it in a child); as a script:
 * `npm run bench:train-profile [-- --preset tiny --steps 5]`
 */
import * as tf from '@tensorflow/tfjs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/core/random';

export interface StepProfile {
  preset: string;
  steps: number;
  /** Process CPU ms per step (kernel wrappers and sampler included) and wall ms per step. */
  cpuMsPerStep: number;
  wallMsPerStep: number;
  /** CPU ms per step inside tfjs kernels, by kernel name, with calls per step. */
  kernels: { name: string; ms: number; calls: number }[];
  /** CPU ms per step outside tfjs kernels, by part (shares of the profiler's samples there). */
  outside: { part: string; ms: number }[];
}

export function maskedBatch(n: number, s: number, seed: number) {
  const target = new Float32Array(n * s * s);
  const rng = new Rng(seed);
  for (let i = 0; i < target.length; i++) target[i] = rng.next();
  const mask = new Float32Array(target.length);
  const input = Float32Array.from(target);
  for (let b = 0; b < n; b++) for (let y = s / 4; y < s / 2; y++) for (let x = s / 4; x < s / 2; x++) {
    mask[(b * s + y) * s + x] = 1;
    input[(b * s + y) * s + x] = 0;
  }
  return { shape: [n, s, s, 1] as [number, number, number, number], input, target, mask };
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; scriptId: string }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Our named WebAssembly functions (each module's "name" section) by the first part of their name
 * they contain, most specific first, and the row they count in; the unnamed one is the
 * filter-gradient kernel of wasm-kernels.ts.
 */
const OUR_WASM: [string, string][] = [
  ['winograd_s2_filter_products', 'Winograd 4x4 stride 2 filter gradients: our SIMD products (winograd-s2.ts)'],
  ['winograd_s2_products', 'Winograd 4x4 stride 2 convolutions and transposed convolutions: our SIMD products (winograd-s2.ts)'],
  ['winograd_s2_', 'Winograd 4x4 stride 2: our SIMD input, output and gradient transforms (winograd-s2.ts)'],
  ['winograd_f43_products', 'Winograd F(4x4, 3x3) 3x3 convolutions and input gradients: our SIMD products (winograd-f43.ts)'],
  ['winograd_f43_', 'Winograd F(4x4, 3x3): our SIMD input, output and filter transforms (winograd-f43.ts)'],
  ['winograd_filter_products', 'Winograd 3x3 filter gradients: our SIMD products (winograd.ts)'],
  ['winograd_products', 'Winograd 3x3 convolutions and input gradients: our SIMD products (winograd.ts)'],
  ['winograd_', 'Winograd 3x3: our SIMD input, output and gradient transforms (winograd.ts)'],
  ['bnact_', 'BatchNorm + activation: our fused SIMD passes (bn-act.ts)'],
  ['blur_', 'SSIM window filtering: our SIMD passes (blur.ts)'],
  ['adam_', 'Adam: our SIMD pass (adam-kernel.ts)'],
  ['vq_', 'VQ arg-min: our SIMD pass (vq-kernel.ts)'],
];
const ourWasmRow = (functionName: string) => OUR_WASM.find(([part]) => functionName.includes(part))?.[1];

/** The part of the step a sample outside the kernels belongs to, from its frame and its callers. */
function outsidePart(chain: { functionName: string; url: string }[], ourWasm: boolean): string {
  const named = ourWasm ? ourWasmRow(chain[0].functionName) : undefined;
  if (named != null) return named;
  if (ourWasm) return 'filter gradient: our SIMD kernel (wasm-kernels.ts)';
  const self = chain[0];
  if (self.functionName === '(garbage collector)') return 'garbage collection';
  const ours = chain.find((f) => /src\/core\/ml\/[a-z0-9-]+\.ts/.test(f.url));
  const file = ours?.url.split('/').pop() ?? '';
  const fn = ours?.functionName ?? '';
  if (ours != null && self === ours) {
    if (file === 'wasm-kernels.ts') return 'filter gradient: padded copies in and out (wasm-kernels.ts)';
    if (file === 'winograd.ts') return 'Winograd 3x3: filter transforms, padded input copy (winograd.ts)';
    if (file === 'winograd-s2.ts') return 'Winograd 4x4 stride 2: filter transforms, padded copies (winograd-s2.ts)';
    if (file === 'vqvae.ts') return 'VQ: arg-min, gather and scatter loops (vqvae.ts)';
    if (file === 'optim.ts') return 'Adam: one loop per parameter (optim.ts)';
    if (file === 'layers.ts') return 'sub-pixel phases, filter flips and packing: loops (layers.ts)';
    return `${fn || '(anonymous)'} (${file})`;
  }
  if (self.url.includes('tf-core') || self.url.includes('tf.node') || self.url.includes('tf-backend-wasm')) return 'tfjs engine: tape, tidy, tensor bookkeeping, kernel dispatch';
  return 'other JavaScript (typed-array copies, Node)';
}

export async function profileStep(preset: 'small' | 'tiny' = 'small', steps = 5): Promise<StepProfile> {
  const { initBackend } = await import('../src/trainer/backend');
  const { createVqvae, vqvaePreset } = await import('../src/core/ml/vqvae');
  const { createOptimizer } = await import('../src/core/ml/optim');
  const { trainStepRecon } = await import('../src/core/ml/train-step');
  await initBackend({ force: 'wasm', wasmThreads: 1 });
  const cfg = vqvaePreset(preset);
  const model = createVqvae(cfg, 1);
  const opt = createOptimizer('adam', { lr: 1e-3 });
  const batch = maskedBatch(8, cfg.size, 1);
  for (let i = 0; i < 3; i++) trainStepRecon(model, opt, batch);

  // every wasm kernel wrapped: CPU time by kernel name; `depth` keeps kernels run by kernels once
  const byKernel = new Map<string, { us: number; calls: number }>();
  let depth = 0;
  for (const k of tf.getKernelsForBackend('wasm')) {
    const inner = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel({
      ...k,
      kernelFunc: (a) => {
        if (depth > 0) return inner(a);
        depth++;
        const c0 = process.cpuUsage();
        try {
          return inner(a);
        } finally {
          const c = process.cpuUsage(c0);
          depth--;
          const e = byKernel.get(k.kernelName) ?? { us: 0, calls: 0 };
          e.us += c.user + c.system;
          e.calls += 1;
          byKernel.set(k.kernelName, e);
        }
      },
    });
  }
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 250 });
  await session.post('Profiler.start');
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) trainStepRecon(model, opt, batch);
  const wall = performance.now() - t0;
  const cu = process.cpuUsage(c0);
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
  session.disconnect();

  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const wasmCount = new Map<string, number>();
  for (const n of profile.nodes) {
    if (n.callFrame.functionName.startsWith('wasm-function')) wasmCount.set(n.callFrame.scriptId, (wasmCount.get(n.callFrame.scriptId) ?? 0) + 1);
  }
  const tfjsWasm = [...wasmCount].sort((a, b) => b[1] - a[1])[0]?.[0];
  const outsideCount = new Map<string, number>();
  let outsideTotal = 0;
  for (const id of profile.samples) {
    const chain: { functionName: string; url: string; scriptId: string }[] = [];
    for (let at: number | undefined = id; at != null; at = parent.get(at)) chain.push(nodes.get(at)!.callFrame);
    const self = chain[0];
    if (self.functionName === '(idle)' || self.functionName === '(program)' || self.functionName === '(root)') continue;
    // inside a kernel: the tfjs wasm module, or any frame below a backend kernel's JavaScript
    if (self.scriptId === tfjsWasm || chain.some((f) => f.url.endsWith('tf-backend-wasm.node.js') && f.functionName !== '' && !f.functionName.startsWith('BackendWasm'))) continue;
    const part = outsidePart(chain, self.functionName.startsWith('wasm-function') || ourWasmRow(self.functionName) != null);
    outsideCount.set(part, (outsideCount.get(part) ?? 0) + 1);
    outsideTotal += 1;
  }
  const cpuMs = (cu.user + cu.system) / 1000;
  const kernelMs = [...byKernel.values()].reduce((a, e) => a + e.us, 0) / 1000;
  const outMs = Math.max(0, cpuMs - kernelMs);
  return {
    preset,
    steps,
    cpuMsPerStep: cpuMs / steps,
    wallMsPerStep: wall / steps,
    kernels: [...byKernel].map(([name, e]) => ({ name, ms: e.us / 1000 / steps, calls: e.calls / steps })).sort((a, b) => b.ms - a.ms),
    outside: [...outsideCount].map(([part, n]) => ({ part, ms: (outMs * n) / Math.max(1, outsideTotal) / steps })).sort((a, b) => b.ms - a.ms),
  };
}

/** What each tfjs kernel does in this step (the model code's use of it). */
export const KERNEL_ROLE: Record<string, string> = {
  Conv2D: 'XNNPACK convolutions: forward, input gradients (flipped filters, sub-pixel phases)',
  BatchMatMul: 'matrix products: VQ distances',
  Multiply: 'element-wise: BatchNorm, LeakyReLU, losses',
  Add: 'element-wise: biases, residuals, BatchNorm, gradient sums',
  Sub: 'element-wise: BatchNorm, VQ, losses',
  AvgPool: 'channel sums: BatchNorm statistics and gradients, bias gradients',
  Step: 'LeakyReLU/ReLU masks',
  Transpose: 'small filters',
};

/** Markdown table of a profile: kernels and the parts outside them, CPU ms per step and share. */
export function profileTable(p: StepProfile, minMs = 0.5): string[] {
  const pct = (ms: number) => `${((100 * ms) / p.cpuMsPerStep).toFixed(1)} %`;
  const lines = ['| where | CPU ms/step | share | calls/step |', '|---|---:|---:|---:|'];
  const kernelTotal = p.kernels.reduce((a, k) => a + k.ms, 0);
  let small = 0;
  let smallCalls = 0;
  for (const k of p.kernels) {
    if (k.ms < minMs) {
      small += k.ms;
      smallCalls += k.calls;
      continue;
    }
    lines.push(`| tfjs kernel ${k.name}${KERNEL_ROLE[k.name] ? ` (${KERNEL_ROLE[k.name]})` : ''} | ${k.ms.toFixed(1)} | ${pct(k.ms)} | ${Math.round(k.calls)} |`);
  }
  lines.push(`| other tfjs kernels (each under ${minMs} ms a step) | ${small.toFixed(1)} | ${pct(small)} | ${Math.round(smallCalls)} |`);
  for (const o of p.outside) {
    if (o.ms < minMs) continue;
    lines.push(`| ${o.part} | ${o.ms.toFixed(1)} | ${pct(o.ms)} | |`);
  }
  lines.push(`| **all tfjs kernels / outside them / step** | ${kernelTotal.toFixed(0)} / ${(p.cpuMsPerStep - kernelTotal).toFixed(0)} / ${p.cpuMsPerStep.toFixed(0)} | | ${Math.round(p.kernels.reduce((a, k) => a + k.calls, 0))} |`);
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const arg = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : def;
  };
  const p = await profileStep(arg('preset', 'small') as 'small' | 'tiny', Number(arg('steps', '5')));
  if (args.includes('--json')) process.stdout.write(`PROFILE ${JSON.stringify(p)}\n`);
  else {
    console.log(`preset ${p.preset}, batch 8, one wasm thread, ${p.steps} steps: ${p.cpuMsPerStep.toFixed(0)} CPU ms and ${p.wallMsPerStep.toFixed(0)} ms per step`);
    console.log(profileTable(p, 0.2).join('\n'));
  }
}
