/** `ctssl doctor`: which compute backends are present, memory, and what preset and batch fit. */
import type { Command } from 'commander';
import { backendInfo, gpuAdvice } from '../../shared/backends';
import type { DoctorInfo } from '../../shared/types';
import { out, withServices } from '../common';

/** What the trainer's doctor reports beyond DoctorInfo (src/trainer/doctor.ts). */
type Doctor = DoctorInfo & { fallbackKernels?: string[]; budgetGb?: number; note?: string };

/** The paper preset per GPU memory size, per recipe (DoctorInfo.gpu). */
function gpuLines(g: NonNullable<DoctorInfo['gpu']>): string[] {
  const sizes = g.recipes[0]?.byGpu.map((x) => x.gb) ?? [];
  return [
    `The ${g.preset} preset on a GPU: largest batch per GPU (estimate)`,
    `recipe     channels  batch  per image  fixed    ${sizes.map((gb) => `${gb} GB`.padEnd(7)).join('')} the recipe's batch takes`,
    ...g.recipes.map(
      (x) =>
        `${x.recipe.padEnd(10)} ${String(x.channels).padEnd(9)} ${String(x.batch).padEnd(6)} ${`${(x.perImageMb / 1024).toFixed(1)} GB`.padEnd(10)} ${`${(x.fixedMb / 1024).toFixed(1)} GB`.padEnd(8)} ${x.byGpu.map((b) => String(b.largestBatch).padEnd(7)).join('')} ${x.gpusFor.map((f) => `${f.gpus ?? '-'} x ${f.gb} GB`).join(', ')}`,
    ),
    g.note,
  ];
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('Show the compute backends present, the memory, and which model presets and batch sizes fit')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      // The app's system.doctor: asked of a trainer process, the only one that loads TensorFlow.js.
      const r: Doctor = await withServices({}, (s) => s.runs.doctor());
      const b = r.backend;
      out(o.json, r, () =>
        [
          `Backend: ${b.package}@${b.version} (${b.name}${b.simd ? ', SIMD' : ''}${threadsText(b)})`,
          ...r.skipped.map((s) => `  not used: ${s.package}: ${s.reason}`),
          ...(r.fallbackKernels?.length ? [`  training kernels added for this backend: ${r.fallbackKernels.join(', ')}`] : []),
          `CPU: ${r.cpu.cores} x ${r.cpu.model}${r.cpu.gc != null ? ` (trainer's garbage collection: ${r.cpu.gc}${r.cpu.gc === 'single-threaded' ? ', no core free for V8\'s GC threads' : ''})` : ''}`,
          `Memory: ${r.memory.freeGb} GB free of ${r.memory.totalGb} GB${r.budgetGb !== undefined ? ` (budget for training ${r.budgetGb} GB)` : ''}`,
          '',
          'preset     size  parameters (1 ch / 3 ch)   activations/image  largest batch that fits',
          ...r.presets.map(
            (p) =>
              `${p.preset.padEnd(10)} ${String(p.size).padEnd(5)} ${`${p.paramsByChannels['1'].toLocaleString('en-US')} / ${p.paramsByChannels['3'].toLocaleString('en-US')}`.padEnd(26)} ${(p.activationsPerImageMb + ' MB').padEnd(18)} ${p.largestBatch}${p.gpuRecommended && !backendInfo(b.name)?.gpuJobs ? `  (a GPU job: ${gpuAdvice()})` : ''}`,
          ),
          ...(r.note ? ['', r.note] : []),
          ...(r.gpu ? ['', ...gpuLines(r.gpu)] : []),
        ].join('\n'),
      );
    });
}

/** The backend's threads as the doctor prints them: a count when known. */
function threadsText(b: Doctor['backend']): string {
  if (b.threadCount != null && b.threadCount >= 1) return `, ${b.threadCount} thread${b.threadCount === 1 ? '' : 's'}`;
  return b.threads ? ', threads' : '';
}
