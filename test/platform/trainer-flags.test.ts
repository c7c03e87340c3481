import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { trainerExecArgv } from '../../src/platform/trainer-flags';

describe('the trainer process V8 flags', () => {
  it('collect garbage on the allocating thread where no core is free for GC threads, else V8 defaults', () => {
    expect(trainerExecArgv(1, {})).toEqual(['--single-threaded-gc']);
    expect(trainerExecArgv(2, {})).toEqual(['--single-threaded-gc']);
    expect(trainerExecArgv(3, {})).toEqual([]);
    expect(trainerExecArgv(16, {})).toEqual([]);
    expect(trainerExecArgv(16, { CTSSL_TRAINER_GC: 'single' })).toEqual(['--single-threaded-gc']);
    expect(trainerExecArgv(2, { CTSSL_TRAINER_GC: 'parallel' })).toEqual([]);
  });
  it('are accepted by this Node at start (a process starts and runs with them)', () => {
    const out = execFileSync(process.execPath, [...trainerExecArgv(2, {}), '-e', 'globalThis.gc?.(); console.log(process.execArgv.join(" "))'], { encoding: 'utf8' });
    expect(out.trim().split(' ')[0]).toBe('--single-threaded-gc');
  });
});
