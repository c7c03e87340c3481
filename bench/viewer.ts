/**
 * `npm run bench:viewer`: opening a 275-slice series in the real app (`ctssl serve` + Debian
 * Chromium, vtk.js on SwiftShader): time to the first slice on screen and to the whole volume,
 * as the viewer measures them (from the open request). The series is generated (275 slices of
 * 512 x 512, real DICOM files written by `ctssl synth`) unless a folder is given with --folder.
 * Writes the "Opening a series" section of docs/benchmarks.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { chromium } from '@playwright/test';
import { root, replaceSection } from './common';
import { startServe, stopServe } from '../e2e/fixtures';

const args = process.argv.slice(2);
const folderArg = args.includes('--folder') ? args[args.indexOf('--folder') + 1] : null;
const repeats = Number(args[args.indexOf('--repeats') + 1]) || 3;
const work = join(root, 'bench', '.work');
mkdirSync(work, { recursive: true });

const folder = folderArg ?? join(work, 'series-275');
if (!folderArg && !existsSync(join(folder, 'manifest.json'))) {
  rmSync(folder, { recursive: true, force: true });
  execFileSync(process.execPath, [join(root, 'bin', 'ctssl.mjs'), 'synth', '--out', folder, '--patients', '1', '--seed', '275', '--slices', '275', '--size', '512', '--thickness', '1.25', '--nodules-per-patient', '1'], { stdio: 'inherit' });
}

const dataDir = mkdtempSync(join(tmpdir(), 'ctssl-bench-viewer-'));
const served = await startServe(dataDir);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
const results: { first: number; volume: number }[] = [];
let slices = 0;
let nodeWsMs = 0;
let chromiumHttp = { ms: 0, bytes: 0 };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(served.openUrl);
  // Index the folder through the app's own API (the library page's add-folder field does the same).
  await page.getByTestId('folder-path').fill(folder);
  await page.getByTestId('add-folder').click();
  await page.getByTestId('series-row').first().waitFor({ timeout: 600_000 });
  const seriesId = await page.getByTestId('series-row').first().getAttribute('data-series-id');
  for (let r = 0; r < repeats; r++) {
    // A fresh page load each time, so the viewer opens the series from scratch.
    await page.goto(`${served.url}#/library`);
    await page.reload();
    await page.getByTestId('series-row').first().waitFor();
    await page.getByTestId('series-row').first().dblclick();
    await page.getByTestId('time-volume').filter({ hasText: /\d/ }).waitFor({ timeout: 600_000 });
    const read = async (id: string) => Number(((await page.getByTestId(id).textContent()) ?? '').replace(/[^\d.]/g, ''));
    const unit = async (id: string) => (((await page.getByTestId(id).textContent()) ?? '').includes(' s') ? 1000 : 1);
    results.push({ first: (await read('time-first-slice')) * (await unit('time-first-slice')), volume: (await read('time-volume')) * (await unit('time-volume')) });
    slices = Number(((await page.getByTestId('slice-readout').textContent()) ?? '').split('/').pop()?.trim() ?? 0);
  }
  // The same blocks through the same server to a Node WebSocket client (server + loopback, no browser).
  {
    const { default: WebSocket } = await import('ws');
    const { decodeMessage, encodeMessage } = await import('../src/shared/wire');
    const ws = new WebSocket(`ws://127.0.0.1:${new URL(served.url).port}/api?token=${served.token}`);
    await new Promise((r) => ws.on('open', r));
    let id = 0;
    const call = (channel: string, a: unknown[]) =>
      new Promise<unknown>((res) => {
        const my = ++id;
        const h = (d: Buffer) => {
          const m = decodeMessage<{ id: number; envelope: { value: unknown } }>(d);
          if (m.id === my) {
            ws.off('message', h);
            res(m.envelope.value);
          }
        };
        ws.on('message', h);
        ws.send(encodeMessage({ id: my, channel, args: a }));
      });
    await call('viewer.open', [Number(seriesId)]);
    const t = performance.now();
    for (let start = 0; start < slices; start += 16) await call('viewer.slices', [Number(seriesId), start, 16]);
    nodeWsMs = performance.now() - t;
    ws.close();
  }
  // Chromium's own loopback throughput here: plain fetches of the same number of bytes.
  {
    const bytes = slices * 512 * 512 * 2;
    const { writeFileSync, rmSync: rm } = await import('node:fs');
    const blob = join(root, 'out', 'renderer', 'bench-blob.bin');
    writeFileSync(blob, new Uint8Array(Math.ceil(bytes / 18)));
    chromiumHttp = (await page.evaluate(
      `(async () => { const t = performance.now(); let n = 0; for (let i = 0; i < 18; i++) { n += (await (await fetch('/bench-blob.bin?' + i)).arrayBuffer()).byteLength; } return { ms: performance.now() - t, bytes: n }; })()`,
    )) as { ms: number; bytes: number };
    rm(blob);
  }
} finally {
  await browser.close();
  await stopServe(served);
  rmSync(dataDir, { recursive: true, force: true });
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lines = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}; headless Debian Chromium with vtk.js on SwiftShader (software WebGL), app served by \`ctssl serve\`. Command: \`npm run bench:viewer\`.`,
  '',
  `Series: ${slices} slices of 512 x 512 (${folderArg ? folderArg : 'generated by `ctssl synth`, uncompressed int16'}). The viewer asks for the middle slice first, then blocks of 16 nearest to the slice on screen.`,
  '',
  '| open | first slice on screen (ms) | whole volume loaded (ms) |',
  '|---|---|---|',
  ...results.map((r, i) => `| ${i + 1} | ${Math.round(r.first)} | ${Math.round(r.volume)} |`),
  `| median | ${Math.round(med(results.map((r) => r.first)))} | ${Math.round(med(results.map((r) => r.volume)))} |`,
  '',
  `For comparison in the same run: the same ${Math.ceil(slices / 16)} blocks of 16 slices from the same server to a Node WebSocket client take ${Math.round(nodeWsMs)} ms (decoding, display orientation and transfer), and Chromium here fetches the same number of bytes (${(chromiumHttp.bytes / 2 ** 20).toFixed(0)} MB) as plain static files in ${Math.round(chromiumHttp.ms)} ms (${(chromiumHttp.bytes / 2 ** 20 / (chromiumHttp.ms / 1000)).toFixed(1)} MB/s). So on this machine most of the whole-volume time is the server's reading plus the headless browser's slow loopback transfer; the rest is the app's own receive path (not yet profiled). In the desktop app the data crosses Electron IPC instead of a socket (not measurable here: no Electron binary).`,
];
replaceSection('Opening a series', lines.join('\n'));
console.log(lines.join('\n'));
