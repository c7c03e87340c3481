/**
 * Where the app keeps its data (library database, runs, caches). The CLI, `ctssl serve` and the
 * Electron app share one default so that a folder indexed from the command line shows up in the app.
 * Override with CTSSL_DATA_DIR (data directory) or CTSSL_DB (database file).
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const APP_DIR_NAME = 'ct-ssl-studio';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CTSSL_DATA_DIR) return resolve(env.CTSSL_DATA_DIR);
  const home = homedir();
  switch (process.platform) {
    case 'darwin':
      return join(home, 'Library', 'Application Support', APP_DIR_NAME);
    case 'win32':
      return join(env.APPDATA ?? join(home, 'AppData', 'Roaming'), APP_DIR_NAME);
    default:
      return join(env.XDG_DATA_HOME ?? join(home, '.local', 'share'), APP_DIR_NAME);
  }
}

export function defaultDbPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CTSSL_DB) return resolve(env.CTSSL_DB);
  return join(defaultDataDir(env), 'library.sqlite');
}
