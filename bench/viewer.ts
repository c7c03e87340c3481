/**
 * `npm run bench:viewer`: opening a 275-slice 512 x 512 series in the real app (`ctssl serve` +
 * Debian Chromium, software WebGL (SwiftShader) as on a machine without a GPU), against the floor, all in one run:
 *
 * - floor: reading the same files' pixel data with a plain loop (readFileSync, find Pixel Data,
 *   copy the int16 voxels into one volume), no server, no decoding to HU, no transfer;
 * - Node client: the same server's `viewer.packed` blocks (16 slices) over its WebSocket, cold (a
 *   fresh server process) and warm, per wire form ('int16' raw, 'delta8' byte differences,
 *   'deflate' row deltas + raw DEFLATE), decoded in Node;
 * - the browser's fetch floor: the page fetching every block over HTTP and doing nothing with it;
 * - browser: per mode (wire form, requests in flight; the worker fetches over HTTP), `--repeats`
 *   opens of the series, the modes interleaved on one fresh server (only the very first open finds
 *   its caches cold): first slice on screen and whole volume as the viewer measures them (from the
 *   open request), key-to-paint latency of PageDown/PageUp presses from the first paint until the
 *   volume is in (KEY_GAPS apart; keydown's timeStamp to the first task after the next animation
 *   frame, i.e. after the page's thread has drawn the frame, and Event Timing's duration to the frame
 *   presented), and of AFTER_KEYS more once it is in, main-thread long tasks (PerformanceObserver
 *   'longtask') from the open until those keys are done, and the medians of each block's steps (the
 *   viewer's User Timing measures). The console also gets, per open, what the keys met: each key's
 *   input delay / processing / rest, the long tasks and the long animation frames' scripts.
 *
 * `--modes delta8-http,int16-http-bg0,...` runs only those browser modes (and no floor or Node
 * client) and writes nothing: a quick look while developing.
 *
 * The series is generated (275 slices, `ctssl synth`) unless --folder names one. Writes the
 * "Opening a series" section of docs/benchmarks.md (date, machine, load average; best of the warm
 * opens, and every run).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { chromium, type Page } from '@playwright/test';
import { busyBefore, loadSentence, root, replaceSection } from './common';
import { startServe, stopServe, type Served } from '../e2e/fixtures';
import { parseDicom, PIXEL_DATA, str } from '../src/core/dicom/parse';
import type { SliceEncoding } from '../src/shared/slice-packing';
import { unpackSlices } from '../src/renderer/src/viewer/packed-slices';
import type { PackedSlices, VolumeInfo } from '../src/shared/types';

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
const busyAtStart = await busyBefore();
const loadAtStart = loadavg();
const BLOCK = 16;
const ENCODINGS: SliceEncoding[] = ['int16', 'delta8', 'deflate'];
/**
 * Browser modes: wire form, how the volume worker gets blocks ('http': GET /files/series/ID/packed;
 * 'worker': its own socket) and background requests.
 */
type Mode = { id: string; enc: SliceEncoding; transport: 'http' | 'worker'; background?: number };
const ALL_MODES: Mode[] = [
  { id: 'delta8-http', enc: 'delta8', transport: 'http' },
  { id: 'delta8-http-bg2', enc: 'delta8', transport: 'http', background: 2 },
  { id: 'int16-http', enc: 'int16', transport: 'http' },
  { id: 'deflate-http', enc: 'deflate', transport: 'http' },
];
const DOC_MODES = ['delta8-http', 'delta8-http-bg2', 'int16-http', 'deflate-http'];
/** `--modes int16-http,delta8-http-atonce`: only those browser modes, and no floor or Node client (a quick look while developing; writes no doc). */
const modesArg = args.includes('--modes') ? args[args.indexOf('--modes') + 1].split(',') : null;
const MODES = ALL_MODES.filter((m) => (modesArg ? modesArg.includes(m.id) : DOC_MODES.includes(m.id)));
/** 2 requests near the slice on screen and `background` more (the viewer's default: none). */
const inFlight = (m: Mode) => 2 + (m.background ?? 0);
const modeName = (m: Mode) => `${m.enc} · ${m.transport === 'http' ? 'HTTP' : 'socket'} · ${inFlight(m)} in flight`;
/** Gaps between the keys pressed while the volume loads (ms, in turn): short ones as in a quick scroll, long ones that leave the page idle in between. */
const KEY_GAPS = [120, 250, 500, 800];
/** Keys pressed once the volume is in (the same gaps), reported apart: the view draws alike before and after. */
const AFTER_KEYS = 4;

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The floor: every file of the series read and its int16 pixels copied into one volume, plain loop. */
function floor(seriesUid: string): { ms: number; files: number; bytes: number } {
  const files = walk(folder).filter((f) => {
    try {
      const b = readFileSync(f);
      return b.length > 132 && b.toString('latin1', 128, 132) === 'DICM' && str(parseDicom(new Uint8Array(b)).dataSet, 'x0020000e') === seriesUid;
    } catch {
      return false;
    }
  });
  const t = performance.now();
  let vol: Int16Array | null = null;
  let bytes = 0;
  files.forEach((f, k) => {
    const b = new Uint8Array(readFileSync(f));
    const el = parseDicom(b).dataSet.elements[PIXEL_DATA];
    const px = new Int16Array(b.buffer.slice(b.byteOffset + el.dataOffset, b.byteOffset + el.dataOffset + el.length));
    vol ??= new Int16Array(px.length * files.length);
    vol.set(px, k * px.length);
    bytes += px.byteLength;
  });
  return { ms: performance.now() - t, files: files.length, bytes };
}

/** A Node WebSocket client of the server's API. */
async function nodeClient(served: Served) {
  const { default: WebSocket } = await import('ws');
  const { decodeMessage, encodeMessage } = await import('../src/shared/wire');
  const ws = new WebSocket(`ws://127.0.0.1:${served.port}/api?token=${served.token}`);
  await new Promise((r) => ws.on('open', r));
  let id = 0;
  const call = <T>(channel: string, a: unknown[]) =>
    new Promise<T>((res, rej) => {
      const my = ++id;
      const h = (d: Buffer) => {
        const m = decodeMessage<{ id: number; envelope: { ok: boolean; value: unknown; error?: { message: string } } }>(d);
        if (m.id !== my) return;
        ws.off('message', h);
        if (m.envelope.ok) res(m.envelope.value as T);
        else rej(new Error(m.envelope.error?.message));
      };
      ws.on('message', h);
      ws.send(encodeMessage({ id: my, channel, args: a }));
    });
  return { call, close: () => ws.close() };
}

/** All blocks of the series in one wire form, two requests in flight, decoded to int16 in Node. */
async function nodeLoad(served: Served, seriesId: number, encoding: SliceEncoding): Promise<{ ms: number; wireBytes: number }> {
  const c = await nodeClient(served);
  const t = performance.now();
  const info = await c.call<VolumeInfo>('viewer.open', [seriesId]);
  const n = info.dims[2];
  let next = 0;
  let wireBytes = 0;
  const worker = async () => {
    while (next < n) {
      const start = next;
      next += BLOCK;
      const p = await c.call<PackedSlices>('viewer.packed', [seriesId, start, Math.min(BLOCK, n - start), encoding]);
      wireBytes += p.bytes.length;
      // The viewer's own reader (its worker's), with node:zlib as the inflater.
      await unpackSlices(p, async (b) => inflateRawSync(b));
    }
  };
  await Promise.all([worker(), worker()]);
  const ms = performance.now() - t;
  c.close();
  return { ms, wireBytes };
}

/** Median ms of each step of a block's way (the viewer's `ctssl-block:*` measures, volume-fetcher.ts), and of the server's own time. */
type Phases = Record<string, number>;

interface Open {
  /** What happened around the keys, for the console (not the doc). */
  trace: string[];
  /** The first open of the series on a fresh server (its caches cold). */
  cold: boolean;
  phases: Phases;
  first: number;
  volume: number;
  /** Key-to-paint of each key pressed while the volume loaded: keydown's timeStamp to the first task after the next animation frame. */
  keys: number[];
  /** The same keys to the next paint presented (Event Timing's duration: multiples of 8 ms; keys under 16 ms count as 16). */
  presented: number[];
  /** Key-to-paint of the AFTER_KEYS keys pressed once the volume was in. */
  after: number[];
  /** The worst key of the load and what it met (input delay, the long animation frame it fell in). */
  worstKey: string;
  /** Each draw of the acquired view on the page's thread (its 2D canvas: window and draw), ms. */
  renders: number[];
  longMax: number;
  longTotal: number;
  longCount: number;
}

/** Every block of the series fetched by the page over HTTP, 2 in flight, bodies read and dropped: what the browser's network path alone costs. */
async function fetchAllInPage(page: Page, served: Served, seriesId: number, slices: number, encoding: SliceEncoding): Promise<number> {
  // A string: this file has no DOM types, and a function would carry the bundler's helpers.
  return (await page.evaluate(`(async () => {
    const starts = [];
    for (let s = 0; s < ${slices}; s += ${BLOCK}) starts.push(s);
    const t0 = performance.now();
    let i = 0;
    await Promise.all([0, 1].map(async () => {
      while (i < starts.length) {
        const s = starts[i++];
        const r = await fetch('/files/series/${seriesId}/packed?start=' + s + '&count=' + Math.min(${BLOCK}, ${slices} - s) + '&encoding=${encoding}', { headers: { authorization: 'Bearer ${served.token}' } });
        if (!r.ok) throw new Error('block ' + s + ': ' + r.status);
        await r.arrayBuffer();
      }
    }));
    return performance.now() - t0;
  })()`)) as number;
}

async function openInBrowser(page: Page, served: Served, mode: Mode, seriesId: number): Promise<Open> {
  await page.goto(`${served.url}#/library`);
  await page.evaluate(
    `localStorage.setItem('ctssl-viewer-encoding', ${JSON.stringify(mode.enc)}); localStorage.setItem('ctssl-viewer-transport', ${JSON.stringify(mode.transport)}); localStorage.setItem('ctssl-viewer-background', '${mode.background ?? 0}')`,
  );
  await page.reload();
  await page.getByTestId('series-row').first().waitFor();
  // Long tasks and key-to-paint, recorded in the page (a string: this file has no DOM types).
  await page.evaluate(`(() => {
    window.__long = [];
    window.__keys = [];
    window.__events = [];
    window.__loaf = [];
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push({ t: e.startTime, ms: e.duration }); }).observe({ type: 'longtask' });
    // Event Timing: each keydown's input delay (waiting for the main thread), processing, and the rest to the next paint.
    new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.name === 'keydown') window.__events.push({ t: e.startTime, delay: e.processingStart - e.startTime, processing: e.processingEnd - e.processingStart, duration: e.duration }); }).observe({ type: 'event', durationThreshold: 16 });
    // Long animation frames with the scripts that ran in them (what a long task was).
    try {
      new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__loaf.push({ t: e.startTime, ms: e.duration, render: e.renderStart ? e.startTime + e.duration - e.renderStart : 0, layout: e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0, scripts: e.scripts.map((s) => ({ ms: s.duration, what: (s.invoker || '') + ' ' + (s.sourceFunctionName || '') + ' ' + String(s.sourceURL || '').split('/').pop() + ':' + s.sourceCharPosition })) }); }).observe({ type: 'long-animation-frame' });
    } catch {}
    window.addEventListener('keydown', (e) => {
      const t0 = e.timeStamp;
      requestAnimationFrame(() => setTimeout(() => window.__keys.push({ t: t0, ms: performance.now() - t0 }), 0));
    }, { capture: true });
  })()`);
  await page.locator(`[data-testid="series-row"][data-series-id="${seriesId}"]`).dblclick();
  await page.getByTestId('time-first-slice').filter({ hasText: /\d/ }).waitFor({ timeout: 600_000 });
  // Keys until the volume has loaded (the series opens on its middle slice; PageDown moves 10 slices), gaps in turn from KEY_GAPS.
  let pressed = 0;
  for (; !(await page.getByTestId('time-volume').textContent())?.match(/\d/); pressed++) {
    await page.keyboard.press(pressed % 2 ? 'PageUp' : 'PageDown');
    await page.waitForTimeout(KEY_GAPS[pressed % KEY_GAPS.length]);
  }
  const loading = pressed;
  // Then AFTER_KEYS more with the volume in (long tasks count until they are done).
  for (let i = 0; i < AFTER_KEYS; i++, pressed++) {
    await page.keyboard.press(pressed % 2 ? 'PageUp' : 'PageDown');
    await page.waitForTimeout(KEY_GAPS[pressed % KEY_GAPS.length]);
  }
  await page.waitForTimeout(300);
  const ms = async (id: string) => {
    const t = (await page.getByTestId(id).textContent()) ?? '';
    return Number(t.replace(/[^\d.]/g, '')) * (t.includes(' s') ? 1000 : 1);
  };
  type At = { t: number; ms: number };
  const raw = (await page.evaluate('({ long: window.__long, keys: window.__keys, events: window.__events, loaf: window.__loaf })')) as {
    long: At[];
    keys: At[];
    events: { t: number; delay: number; processing: number; duration: number }[];
    loaf: { t: number; ms: number; render: number; layout: number; scripts: { ms: number; what: string }[] }[];
  };
  const long = raw.long.map((l) => l.ms);
  if (raw.keys.length !== pressed) throw new Error(`${pressed} keys pressed, ${raw.keys.length} timed`);
  const keys = raw.keys.slice(0, loading).map((k) => k.ms);
  const after = raw.keys.slice(loading).map((k) => k.ms);
  const presented = raw.keys.slice(0, loading).map((k) => raw.events.find((e) => Math.abs(e.t - k.t) < 1)?.duration ?? 16);
  const measures = (await page.evaluate(
    `performance.getEntriesByType('measure').filter((m) => m.name.startsWith('ctssl-block')).map((m) => ({ name: m.name, ms: m.duration, server: m.detail && m.detail.serverMs }))`,
  )) as { name: string; ms: number; server?: number }[];
  const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
  const phases: Phases = {};
  for (const name of new Set(measures.map((m) => m.name))) phases[name.replace('ctssl-block:', '').replace('ctssl-block', 'total')] = median(measures.filter((m) => m.name === name).map((m) => m.ms));
  // Steps of the open (viewer-state.svelte.ts' marks), from the open request.
  const marks = (await page.evaluate(`performance.getEntriesByType('mark').filter((m) => m.name.startsWith('ctssl-viewer:')).map((m) => ({ name: m.name, t: m.startTime }))`)) as { name: string; t: number }[];
  const openAt = marks.find((m) => m.name === 'ctssl-viewer:open')?.t ?? 0;
  for (const m of marks) if (m.name !== 'ctssl-viewer:open') phases[`@${m.name.replace('ctssl-viewer:', '')}`] = m.t - openAt;
  phases.serverOwn = median(measures.filter((m) => m.name === 'ctssl-block:server' && typeof m.server === 'number').map((m) => m.server!));
  // What the keys met (ms from the first paint): long tasks, each key's wait.
  const paintAt = marks.find((m) => m.name === 'ctssl-viewer:first-paint')?.t ?? openAt;
  const at = (t: number) => Math.round(t - paintAt);
  const renders = (await page.evaluate(`performance.getEntriesByName('ctssl-view:render').map((m) => m.duration)`)) as number[];
  const trace = [
    `keys ${raw.keys.map((k, i) => `${i === loading ? '| volume in | ' : ''}@${at(k.t)} ${Math.round(k.ms)}`).join(', ') || '-'}`,
    `key events (delay/processing/to paint) ${raw.events.map((e) => `@${at(e.t)} ${Math.round(e.delay)}/${Math.round(e.processing)}/${Math.round(e.duration - e.processing - e.delay)}`).join(', ') || '-'}`,
    `long tasks ${raw.long.map((l) => `@${at(l.t)} ${Math.round(l.ms)}`).join(', ') || '-'}`,
    ...raw.loaf
      .filter((f) => f.ms > 100)
      .map((f) => `frame @${at(f.t)} ${Math.round(f.ms)} (rendering ${Math.round(f.render)}, style+layout+paint ${Math.round(f.layout)}): ${f.scripts.filter((x) => x.ms > 10).map((x) => `${x.what} ${Math.round(x.ms)}`).join('; ')}`),
  ];
  // What the worst key of the load met: its input delay and the long animation frame it fell in.
  let worstKey = '';
  if (keys.length) {
    const w = raw.keys.slice(0, loading).reduce((a, b) => (b.ms > a.ms ? b : a));
    const ev = raw.events.find((e) => Math.abs(e.t - w.t) < 1);
    const frame = raw.loaf.find((f) => f.t <= w.t + w.ms && w.t <= f.t + f.ms);
    const scripted = frame ? frame.scripts.reduce((a, x) => a + x.ms, 0) : 0;
    worstKey = `${Math.round(w.ms)} ms, ${at(w.t)} ms after the first paint, input delay ${ev ? Math.round(ev.delay) : '<16'} ms, ${frame ? `in a long frame of ${Math.round(frame.ms)} ms (scripts ${Math.round(scripted)} ms, rendering ${Math.round(frame.render)} ms)` : 'in no long frame'}`;
  }
  return {
    worstKey,
    trace,
    cold: false,
    presented,
    phases,
    first: await ms('time-first-slice'),
    volume: await ms('time-volume'),
    keys,
    after,
    renders,
    longMax: Math.max(0, ...long),
    longTotal: long.reduce((a, b) => a + b, 0),
    longCount: long.length,
  };
}

const dataDir = mkdtempSync(join(tmpdir(), 'ctssl-bench-viewer-'));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
let served = await startServe(dataDir);
let seriesId = 0;
let seriesUid = '';
let slices = 0;
const node: Record<string, { cold: number; warm: number; wireBytes: number }> = {};
const opens: Record<string, Open[]> = {};
let floorResult = { ms: 0, files: 0, bytes: 0 };
/** The browser's floor per wire form: the page fetching every block over HTTP (2 in flight) and nothing else (best of 3, after a warm-up pass). */
const fetchFloor: Record<string, number> = {};
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(served.openUrl);
  // Index the folder through the app's own API (the library page's add-folder field does the same).
  await page.getByTestId('folder-path').fill(folder);
  await page.getByTestId('add-folder').click();
  await page.getByTestId('series-row').first().waitFor({ timeout: 600_000 });
  const rows = page.getByTestId('series-row');
  // The series with the most slices (a synthetic cohort also has SEG objects).
  let best = -1;
  for (let i = 0; i < (await rows.count()); i++) {
    const id = Number(await rows.nth(i).getAttribute('data-series-id'));
    const c = await nodeClient(served);
    const info = await c.call<VolumeInfo>('viewer.open', [id]).catch(() => null);
    c.close();
    if (info && info.dims[2] > best) {
      best = info.dims[2];
      seriesId = id;
      seriesUid = info.seriesInstanceUid;
      slices = info.dims[2];
    }
  }
  if (!modesArg) floorResult = floor(seriesUid);
  for (const enc of modesArg ? [...new Set(MODES.map((m) => m.enc))] : ENCODINGS) {
    const times: number[] = [];
    for (let r = 0; r < 4; r++) times.push(await fetchAllInPage(page, served, seriesId, slices, enc));
    fetchFloor[enc] = Math.min(...times.slice(1));
    console.log(`browser fetch floor ${enc}: ${times.map(Math.round).join(' / ')} ms`);
  }
  for (const enc of modesArg ? [] : ENCODINGS) {
    await stopServe(served);
    served = await startServe(dataDir);
    const cold = await nodeLoad(served, seriesId, enc);
    let warm = Infinity;
    for (let r = 0; r < 2; r++) warm = Math.min(warm, (await nodeLoad(served, seriesId, enc)).ms);
    node[enc] = { cold: cold.ms, warm, wireBytes: cold.wireBytes };
    console.log(`node ${enc}: cold ${Math.round(cold.ms)} ms, warm ${Math.round(warm)} ms, ${(cold.wireBytes / 2 ** 20).toFixed(1)} MB`);
  }
  // The modes interleaved (open 1 of each, then open 2 of each, ...) on one fresh server, so that a
  // change in the machine's load meets every mode alike; the very first open finds the server's caches cold.
  await stopServe(served);
  served = await startServe(dataDir);
  const pages = new Map<string, Page>();
  for (const mode of MODES) {
    const p = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await p.goto(served.openUrl);
    pages.set(mode.id, p);
    opens[modeName(mode)] = [];
  }
  for (let r = 0; r < repeats; r++) {
    for (const mode of MODES) {
      const key = modeName(mode);
      const o = await openInBrowser(pages.get(mode.id)!, served, mode, seriesId);
      o.cold = r === 0 && mode === MODES[0];
      opens[key].push(o);
      console.log(`browser ${key} open ${r + 1}${o.cold ? ' (cold server)' : ''}: first ${Math.round(o.first)} ms, volume ${Math.round(o.volume)} ms, keys ${o.keys.map(Math.round).join('/')} ms, after the load ${o.after.map(Math.round).join('/')} ms (presented ${o.presented.map(Math.round).join('/')}), long tasks ${o.longCount} (max ${Math.round(o.longMax)} ms)`);
      console.log(`  2D canvas draws (ms): ${o.renders.map((x) => x.toFixed(1)).join(' ')}`);
      console.log(`  per block (median ms): ${Object.entries(o.phases).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
      for (const l of o.trace) console.log(`  ${l}`);
    }
  }
  for (const p of pages.values()) await p.close();
} finally {
  await browser.close();
  await stopServe(served);
  rmSync(dataDir, { recursive: true, force: true });
}

if (modesArg) process.exit(0);
const r0 = (v: number) => Math.round(v);
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
const best = (xs: Open[], f: (o: Open) => number) => Math.min(...xs.map(f));
const warmOpens = (enc: string) => (opens[enc].some((o) => !o.cold) ? opens[enc].filter((o) => !o.cold) : opens[enc]);
const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
/** Median / worst of some keys' latencies ('-' without keys). */
const keyStats = (xs: number[]) => (xs.length ? `${r0(median(xs))} / ${r0(Math.max(...xs))} (${xs.length})` : '-');
const volumeMb = (slices * 512 * 512 * 2) / 2 ** 20;
const loadEnd = loadavg();
const def = modeName(MODES[0]);
const defWarm = warmOpens(def);
const defKeys = defWarm.flatMap((o) => o.keys);
const defRenders = defWarm.flatMap((o) => o.renders).sort((a, b) => a - b);
const defBest = {
  first: best(defWarm, (o) => o.first),
  volume: best(defWarm, (o) => o.volume),
  keyMedian: median(defKeys),
  keyWorst: Math.max(...defKeys),
  long: best(defWarm, (o) => o.longMax),
  longWorst: Math.max(...defWarm.map((o) => o.longMax)),
};
const verdict = (v: number, target: number, unit = 'ms') => `${r0(v)} ${unit} against ${target} ${unit}: ${v < target ? 'met' : '**not met**'}`;
/** The steps of a block, medians of the warm open with the best whole volume. */
const stepsOf = (e: string) => {
  const o = warmOpens(e).reduce((a, b) => (b.volume < a.volume ? b : a));
  const ph = o.phases;
  const f = (k: string) => (Number.isFinite(ph[k]) ? `${r0(ph[k])}` : '-');
  return `| ${e} | ${f('to-worker')} | ${f('server')} (${f('serverOwn')}) | ${f('body')} | ${f('decode')} | ${f('to-page')} | ${Number.isFinite(ph.insert) ? ph.insert.toFixed(1) : '-'} | ${f('total')} | ${f('@info')} / ${f('@first-slice-data')} / ${f('@first-paint')} |`;
};
const lines = [
  `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}. ${loadSentence(loadAtStart, loadEnd, busyAtStart)} The modes' opens are interleaved (open 1 of each mode, then open 2 of each, ...) on one server, whose caches are cold only for the very first open; the summary rows give the best warm open for the first slice and the whole volume, every key of the warm opens, and the worst long task; every open is listed. Headless Debian Chromium with software WebGL (SwiftShader, as on a machine without a GPU), app served by \`ctssl serve\` on loopback. Command: \`npm run bench:viewer\`.`,
  '',
  `Series: ${slices} slices of 512 x 512 int16 (${volumeMb.toFixed(0)} MB of voxels; ${folderArg ? folderArg : 'generated by `ctssl synth`, uncompressed DICOM'}). The viewer asks for the middle slice first over the page's connection, uncompressed, and draws it at once on a 2D canvas, where the acquired view draws every slice, while the volume loads and after (window mapped on the page's thread, a few ms a 512 x 512 slice; vtk.js draws only the reformat views of the 1x3 layout and is loaded when that layout is first shown, so no key here meets its shader compile or its renders on software WebGL); the rest comes in blocks of 16 nearest to the slice on screen, 2 requests in flight (the '4 in flight' rows add 2 background requests for blocks more than two blocks from the slice on screen, localStorage ctssl-viewer-background), fetched over HTTP (\`GET /files/series/ID/packed\`) and decoded by a Web Worker, which writes them straight into the volume it shares with the page (a SharedArrayBuffer: \`ctssl serve\` makes the page cross-origin isolated), so the page's thread copies nothing. Wire forms: 'delta8' (the default: row differences, a byte each where they fit, else 3 bytes), 'int16' (raw), 'deflate' (row differences + raw DEFLATE, inflated by the browser's DecompressionStream). The server keeps a warm cache of decoded slices and of their packed forms, filled from the middle outward as soon as the series is opened.`,
  '',
  `Floor (same run): reading the ${floorResult.files} files' pixel data with a plain loop (readFileSync, locate Pixel Data, copy ${mb(floorResult.bytes)} MB of int16 into one volume): **${r0(floorResult.ms)} ms**. The browser's own floor, the page fetching every block over HTTP (2 in flight) and doing nothing with it, best of 3 warm: ${ENCODINGS.map((e) => `${e} **${r0(fetchFloor[e])} ms**`).join(', ')}.`,
  '',
  '| Node client (WebSocket, 16-slice blocks, 2 in flight, decoded in Node) | wire MB | cold server (ms) | warm cache (ms) |',
  '|---|---|---|---|',
  ...ENCODINGS.map((e) => `| ${e === 'int16' ? "'int16' (raw)" : e === 'delta8' ? "'delta8' (row deltas, a byte each where they fit)" : "'deflate' (row deltas + raw DEFLATE level 1)"} | ${mb(node[e].wireBytes)} | ${r0(node[e].cold)} | ${r0(node[e].warm)} |`),
  '',
  `Keys: PageDown and PageUp in turn from the first paint until the whole volume is in, ${KEY_GAPS.join(' / ')} ms apart in turn (every key counts), then ${AFTER_KEYS} more with the volume in (the 'after the load' column). Key-to-paint: keydown's timeStamp to the first task after the next animation frame (the page's thread has drawn the frame), median / worst (number of keys); presented: the same keys to the next frame on screen (Event Timing's duration, in steps of 8 ms, under 16 ms counted as 16), which adds the compositor and SwiftShader's GPU process. The default's worst key in each warm open: ${defWarm.map((o) => o.worstKey).join('; ')}. Drawing a slice on the acquired view's 2D canvas (window mapping and draw, the page's thread; every draw of the default's warm opens): median ${defRenders.length ? defRenders[Math.floor(defRenders.length / 2)].toFixed(1) : '-'} ms, worst ${defRenders.length ? defRenders[defRenders.length - 1].toFixed(1) : '-'} ms (${defRenders.length} draws). Long tasks: from the open until the keys after the load are done. Before this way (2026-12-05, the same benchmark on the quiet machine at 19:35 and 19:48 UTC), vtk.js took over the acquired view once input had been quiet for 400 ms: the warm opens' key-to-paint median was 49 and 46 ms but the worst key 108 and 203 ms, each in vtk.js' shader compile or in a vtk.js render after it had taken over.`,
  '',
  '| browser, wire form · transport · requests | first slice on screen (ms) | whole volume (ms) | key-to-paint while loading (ms, median / worst (keys)) | presented (ms, median / worst) | after the load (ms, median / worst) | longest main-thread task (ms) | long tasks (count, total ms) |',
  '|---|---|---|---|---|---|---|---|',
  ...MODES.map(modeName).flatMap((e) =>
    opens[e].map(
      (o, i) =>
        `| ${e}, open ${i + 1}${o.cold ? ' (cold server)' : ''} | ${r0(o.first)} | ${r0(o.volume)} | ${keyStats(o.keys)} | ${keyStats(o.presented)} | ${keyStats(o.after)} | ${r0(o.longMax)} | ${o.longCount}, ${r0(o.longTotal)} |`,
    ),
  ),
  ...MODES.map(modeName).map((e) => {
    const w = warmOpens(e);
    return `| **${e}, warm opens** | **${r0(best(w, (o) => o.first))}** (best) | **${r0(best(w, (o) => o.volume))}** (best) | **${keyStats(w.flatMap((o) => o.keys))}** (all keys) | ${keyStats(w.flatMap((o) => o.presented))} | ${keyStats(w.flatMap((o) => o.after))} | **${r0(Math.max(...w.map((o) => o.longMax)))}** (worst) | |`;
  }),
  '',
  "Where a block's time goes (ms, medians over the blocks of the warm open with the best whole volume; the viewer's User Timing measures, `ctssl-block:*` in src/renderer/src/viewer/volume-fetcher.ts): to the worker (the page asks, the worker starts), server (request to response headers; in brackets the server's own time, its Server-Timing header), body (headers to the last byte), decode (into the shared volume), to the page (the worker's reply reaches the page), insert (the page's thread: copy and view update), the whole way; and the open's steps from the click's request (viewer.open answered / first slice's voxels in / first slice on screen):",
  '',
  '| mode | to worker | server (own) | body | decode | to page | insert | block, whole way | open: info / first slice data / first paint |',
  '|---|---|---|---|---|---|---|---|---|',
  ...MODES.map(modeName).map(stepsOf),
  '',
  `Against the floor of the same run (${r0(floorResult.ms)} ms): Node client warm ${ENCODINGS.map((e) => `${e} ${(node[e].warm / floorResult.ms).toFixed(2)}x`).join(', ')}; browser whole volume, best warm, ${MODES.map(modeName).map((e) => `${e} ${(best(warmOpens(e), (o) => o.volume) / floorResult.ms).toFixed(2)}x`).join(', ')}; against the browser's own fetch floor of the same wire form: ${MODES.map((m) => `${modeName(m)} ${(best(warmOpens(modeName(m)), (o) => o.volume) / fetchFloor[m.enc]).toFixed(2)}x`).join(', ')}. On a loaded machine every column slows together; these ratios are what compares across runs.`,
  '',
  `Targets (issue 13), the default (${def}), warm opens of this run: first slice on screen (best) ${verdict(defBest.first, 300)}; whole volume (best) ${verdict(defBest.volume, 5000)}; key-to-paint while loading, every key of the warm opens: median ${verdict(defBest.keyMedian, 100)}, worst ${verdict(defBest.keyWorst, 100)} (after the load, worst ${r0(Math.max(...defWarm.flatMap((o) => o.after)))} ms); longest main-thread task, worst open ${verdict(defBest.longWorst, 200)} (best open ${r0(defBest.long)} ms). In the desktop app blocks cross Electron IPC to the page and are handed to the same worker to decode, transferred rather than shared (its file:// page is not cross-origin isolated; not measurable here: no Electron binary).`,
];
replaceSection('Opening a series', lines.join('\n'));
console.log(lines.join('\n'));
