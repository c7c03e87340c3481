/** `ctssl doctor`: which compute backends are present, memory, and what preset and batch fit. */
import type { Command } from 'commander';
import { backendInfo, gpuAdvice } from '../../shared/backends';
import type { DoctorInfo } from '../../shared/types';
import { out, withServices } from '../common';

/** What the trainer's doctor reports beyond DoctorInfo (src/trainer/doctor.ts). */
type Doctor = DoctorInfo & { fallbackKernels?: string[]; budgetGb?: number; note?: string };

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
          `Backend: ${b.package}@${b.version} (${b.name}${b.simd ? ', SIMD' : ''}${b.threads ? ', threads' : ''})`,
          ...r.skipped.map((s) => `  not used: ${s.package}: ${s.reason}`),
          ...(r.fallbackKernels?.length ? [`  training kernels added for this backend: ${r.fallbackKernels.join(', ')}`] : []),
          `CPU: ${r.cpu.cores} x ${r.cpu.model}`,
          `Memory: ${r.memory.freeGb} GB free of ${r.memory.totalGb} GB${r.budgetGb !== undefined ? ` (budget for training ${r.budgetGb} GB)` : ''}`,
          '',
          'preset     size  parameters (1 ch / 3 ch)   activations/image  largest batch that fits',
          ...r.presets.map(
            (p) =>
              `${p.preset.padEnd(10)} ${String(p.size).padEnd(5)} ${`${p.paramsByChannels['1'].toLocaleString('en-US')} / ${p.paramsByChannels['3'].toLocaleString('en-US')}`.padEnd(26)} ${(p.activationsPerImageMb + ' MB').padEnd(18)} ${p.largestBatch}${p.gpuRecommended && !backendInfo(b.name)?.gpuJobs ? `  (a GPU job: ${gpuAdvice()})` : ''}`,
          ),
          ...(r.note ? ['', r.note] : []),
        ].join('\n'),
      );
    });
}
