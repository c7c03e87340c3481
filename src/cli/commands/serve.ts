/** `ctssl serve`: the app's renderer and services on http://127.0.0.1 with a token. */
import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { appMeta } from '../../core/node/app-meta';
import { defaultDataDir } from '../../core/node/paths';
import { dbPathOf, dbOption, nonNegativeInt } from '../common';


export function register(program: Command): void {
  program
    .command('serve')
    .description('Serve the app on http://127.0.0.1 (loopback only, token required), e.g. on a headless GPU server via an SSH tunnel')
    .option('--port <n>', 'port (default: a free one)', nonNegativeInt)
    .addOption(dbOption())
    .option('--data-dir <dir>', 'data folder (default: $CTSSL_DATA_DIR or the app data folder)')
    .option('--renderer <dir>', 'built renderer folder', join(appMeta().root, 'out', 'renderer'))
    .option('--json', 'print {url, openUrl, token, port} as JSON on one line')
    .action(async (o: { port?: number; db?: string; dataDir?: string; renderer: string; json?: boolean }) => {
      const dataDir = o.dataDir ? resolve(o.dataDir) : defaultDataDir();
      const dbPath = o.db ? dbPathOf(o) : process.env.CTSSL_DB ? dbPathOf(o) : join(dataDir, 'library.sqlite');
      const { startServer } = await import('../../server/serve');
      const server = await startServer({ port: o.port, dataDir, dbPath, rendererDir: o.renderer, token: process.env.CTSSL_TOKEN });
      if (o.json) {
        process.stdout.write(JSON.stringify({ url: server.url, openUrl: server.openUrl, token: server.token, port: server.port }) + '\n');
      } else {
        process.stdout.write(
          `CT SSL Studio is serving on ${server.url} (loopback only)\n` +
            `Open: ${server.openUrl}\n` +
            `Library: ${dbPath}\nPress Ctrl-C to stop.\n`,
        );
      }
      await new Promise<void>((res) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void server.close().then(res);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
