#!/usr/bin/env node
// `npm start`: builds if needed, then opens the Electron app. Where the Electron binary is not
// available (e.g. a headless server, or a machine that cannot download it), says so and starts
// `ctssl serve` instead, which serves the same app to a browser on 127.0.0.1.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });

if (!existsSync(join(root, 'out', 'main', 'index.js')) || !existsSync(join(root, 'out', 'renderer', 'index.html'))) {
  const r = run('npx', ['electron-vite', 'build']);
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function electronBinary() {
  // Read electron's path.txt ourselves: require('electron') would try to download the binary.
  const pkgDir = join(root, 'node_modules', 'electron');
  const pathFile = join(pkgDir, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const bin = join(pkgDir, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(bin) ? bin : null;
}

const bin = electronBinary();
if (bin && (process.platform !== 'linux' || process.env.DISPLAY || process.env.WAYLAND_DISPLAY)) {
  const child = spawn(bin, ['.'], { cwd: root, stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
} else {
  console.error(
    bin
      ? 'No display found: starting the app in server mode instead (ctssl serve).'
      : 'The Electron binary is not installed here (node_modules/electron/dist is missing): starting the app in server mode instead (ctssl serve).',
  );
  const child = spawn(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'serve', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
}
