/**
 * The app's name and version from package.json, found by walking up from this module, so that it
 * works from the sources (tsx), from the electron-vite bundle in out/, and in a packaged app.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface AppMeta {
  name: string;
  productName: string;
  version: string;
  root: string;
}

let cached: AppMeta | null = null;

export function appMeta(): AppMeta {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; productName?: string; version?: string };
      if (pkg.name === 'ct-ssl-studio') {
        cached = { name: pkg.name, productName: pkg.productName ?? pkg.name, version: pkg.version ?? '0.0.0', root: dir };
        return cached;
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  cached = { name: 'ct-ssl-studio', productName: 'CT SSL Studio', version: '0.0.0', root: process.cwd() };
  return cached;
}
