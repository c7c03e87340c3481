/**
 * `ctssl`: the command-line front end over the core services. Human-readable output by default,
 * `--json` for scripts; progress goes to stderr so stdout stays parseable.
 * Each command lives in ./commands and registers itself on the program.
 */
import { Command } from 'commander';
import { appMeta } from '../platform/app-meta';
import * as doctor from './commands/doctor';
import * as downstream from './commands/downstream';
import * as job from './commands/job';
import * as labels from './commands/labels';
import * as library from './commands/library';
import * as nifti from './commands/nifti';
import * as predict from './commands/predict';
import * as serve from './commands/serve';
import * as share from './commands/share';
import * as synth from './commands/synth';
import * as train from './commands/train';

/** Command modules, in the order `ctssl --help` lists them. */
const commands: { register(program: Command): void }[] = [library, labels, nifti, train, downstream, predict, share, job, synth, doctor, serve];

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('ctssl')
    .description('CT SSL Studio: index chest CT, pretrain, fine-tune and share encoders, on your own machine.')
    .version(appMeta().version)
    .showHelpAfterError();
  for (const c of commands) c.register(program);
  return program;
}
/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code && e.code.startsWith('commander.')) return e.exitCode ?? 1;
    process.stderr.write(`ctssl: ${e.message ?? String(err)}\n`);
    return 1;
  }
}
