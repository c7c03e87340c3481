/** `ctssl serve`: the app's renderer and services on http://127.0.0.1 with a token. */
import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { appMeta } from '../../platform/app-meta';
import { defaultDataDir } from '../../platform/paths';
import { dbPathOf, dbOption, nonNegativeInt } from '../common';

/** Signals that stop the server the way Ctrl-C does. (Not SIGHUP: `nohup ctssl serve` must keep running.) */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export function register(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve the app on http://127.0.0.1 (loopback only, token required), e.g. on a headless GPU server via an SSH tunnel. ' +
        'A fixed token (to restart on the same URL) can be given in $CTSSL_TOKEN: at least 32 characters of A-Z a-z 0-9 . _ ~ -',
    )
    .option('--port <n>', 'port (default: a free one)', nonNegativeInt)
    .addOption(dbOption())
    .option('--data-dir <dir>', 'data folder (default: $CTSSL_DATA_DIR or the app data folder)')
    .option('--renderer <dir>', 'built renderer folder', join(appMeta().root, 'out', 'renderer'))
    .option('--json', 'print {url, openUrl, token, port} as JSON on one line')
    .action(async (o: { port?: number; db?: string; dataDir?: string; renderer: string; json?: boolean }) => {
      // Listen for the stop signals before anything starts: a SIGTERM sent as soon as the URL is
      // printed (a supervisor, a test) must stop the server cleanly, never kill it mid-start.
      let stopRequested: NodeJS.Signals | null = null;
      const early = (signal: NodeJS.Signals) => void (stopRequested ??= signal);
      for (const s of STOP_SIGNALS) process.on(s, early);
      const { checkToken, startServer } = await import('../../server/serve');
      // Set but empty is not "unset": an empty or short token is refused, never taken as "no authentication".
      const envToken = process.env.CTSSL_TOKEN;
      const token = envToken === undefined ? undefined : checkToken(envToken, 'CTSSL_TOKEN');
      const dataDir = o.dataDir ? resolve(o.dataDir) : defaultDataDir();
      const dbPath = o.db ? dbPathOf(o) : process.env.CTSSL_DB ? dbPathOf(o) : join(dataDir, 'library.sqlite');
      const server = await startServer({ port: o.port, dataDir, dbPath, rendererDir: o.renderer, token });
      if (o.json) {
        process.stdout.write(JSON.stringify({ url: server.url, openUrl: server.openUrl, token: server.token, port: server.port }) + '\n');
      } else {
        process.stdout.write(
          `CT SSL Studio is serving on ${server.url} (loopback only)\n` +
            `Open: ${server.openUrl}\n` +
            `Library: ${dbPath}\nPress Ctrl-C to stop.\n`,
        );
      }
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals) => {
          if (stopping) {
            process.stderr.write(`ctssl serve: ${signal} again: exiting without waiting for trainings to stop\n`);
            process.exit(signal === 'SIGINT' ? 130 : 143);
          }
          stopping = true;
          process.stderr.write(`ctssl serve: ${signal}: stopping the server and any trainings and jobs it runs...\n`);
          server.close().then(
            () => done(),
            (err: unknown) => {
              process.stderr.write(`ctssl serve: error while stopping: ${(err as Error)?.message ?? String(err)}\n`);
              process.exitCode = 1;
              done();
            },
          );
        };
        for (const s of STOP_SIGNALS) {
          process.on(s, stop);
          process.off(s, early);
        }
        if (stopRequested) stop(stopRequested);
      });
      process.stderr.write('ctssl serve: stopped\n');
      // Everything the server started is closed; a leftover timer (a trainer stop deadline) must not
      // hold the process for its full length. Unref'd: exits sooner if nothing is left.
      setTimeout(() => process.exit(), 500).unref();
    });
}
