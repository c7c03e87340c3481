/** Runs the real `ctssl` CLI on an e2e test's data folder (the library `ctssl serve` uses there). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from '../fixtures';

export function ctssl(dataDir: string, args: string[], timeoutMs = 170_000): unknown {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), ...args, '--db', join(dataDir, 'library.sqlite')], {
    cwd: root,
    env: { ...process.env, CTSSL_DATA_DIR: dataDir, CTSSL_DB: '' },
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  if (r.status !== 0) throw new Error(`ctssl ${args.join(' ')} exited with ${r.status}: ${r.stderr}`);
  return args.includes('--json') ? JSON.parse(r.stdout) : r.stdout;
}

/** A tiny masked-region run (a few steps, 32 px) trained by the CLI, as a finished run to export. */
export function trainTinyRun(dataDir: string): { id: number; run: string } {
  return ctssl(dataDir, ['pretrain', '--task', 'masked', '--mask', '20', '--preset', 'tiny', '--size', '32', '--steps', '6', '--batch', '2', '--eval-every', '3', '--checkpoint-every', '3', '--no-cache', '--json']) as { id: number; run: string };
}
