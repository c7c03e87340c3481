/**
 * The cluster job through the real app (`ctssl serve`, Chromium): the pretrain form's
 * configuration exported with "Export as cluster job" into a folder chosen in the server's folder
 * picker (the job's manifest and shards on disk, the one-node command shown, the folder downloaded
 * as one tar); then the job trained by its own train.py with Debian's PyTorch (/usr/bin/python3,
 * as test/host/cluster-job-ddp.test.ts runs it) and its output brought home on the Share page,
 * where it becomes a pretraining run with its loss curve. The training half is skipped, saying so,
 * only where torch is absent.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, fixtures, screenshotDir, startServe, stopServe, type Served } from './fixtures';
import { AppShell } from './pages/app-shell';
import { ClusterJobExportPanel, JobImportSection } from './pages/cluster-job';
import { LibraryPage } from './pages/library-page';
import { PretrainPage } from './pages/pretrain-page';

const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0;
const NO_TORCH = `${PYTHON} with torch and numpy is absent (Debian: apt-get install python3-torch python3-numpy): the job cannot be trained here, so its import is not tested`;
if (!hasTorch) console.warn(`[cluster-job e2e] ${NO_TORCH}`);

test.describe('a cluster job exported from the pretrain form and brought home on the Share page', () => {
  test.describe.configure({ mode: 'serial' });
  let served: Served;
  let dataDir: string;
  let work: string;
  let page: Page;
  let jobDir = '';
  const errors: string[] = [];

  test.beforeAll(async ({ browser }) => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctssl-e2e-cluster-job-'));
    work = join(dataDir, 'work');
    mkdirSync(work);
    served = await startServe(dataDir);
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(served.openUrl);
    const library = new LibraryPage(page);
    await library.addFolder(join(fixtures, 'lidc-0001'));
    await library.addFolder(join(fixtures, 'lidc-small'));
    await library.expectCounts(2, 2);
  });
  test.afterAll(async () => {
    await page?.close();
    if (served) await stopServe(served);
    rmSync(dataDir, { recursive: true, force: true });
  });
  test.afterEach(() => {
    expect(errors).toEqual([]);
  });

  test('exports the form as a job folder: manifest, shards, the one-node command, a tar download', async () => {
    const pretrain = new PretrainPage(page);
    await pretrain.goto();
    await pretrain.fill({ task: 'masked', maskPercent: 20, preset: 'tiny', size: 32, steps: 8, batch: 2, evalEvery: 4, checkpointEvery: 4, evalBatches: 1, seed: 5 });
    const panel = new ClusterJobExportPanel(page);
    await expect(panel.root).toBeVisible();
    await panel.chooseFolder(work);
    jobDir = await panel.export();
    expect(jobDir.startsWith(join(work, 'job-masked-tiny-'))).toBe(true);

    // the folder on disk: the program, the config, the data's manifest and shards
    for (const f of ['train.py', 'model.py', 'README.md', 'slurm.sbatch', 'config.json', 'job.json', 'init.safetensors', 'data/manifest.json', 'data/index.npy', 'data/shard-00000.npy']) expect(existsSync(join(jobDir, f)), f).toBe(true);
    const manifest = JSON.parse(readFileSync(join(jobDir, 'data', 'manifest.json'), 'utf8')) as { size: number; dtype: string; shards: { file: string; slices: number }[]; counts: { train: { slices: number } } };
    expect(manifest.size).toBe(32);
    expect(manifest.dtype).toBe('int16');
    expect(manifest.shards.length).toBeGreaterThan(0);
    expect(manifest.counts.train.slices).toBeGreaterThan(0);
    const config = JSON.parse(readFileSync(join(jobDir, 'config.json'), 'utf8')) as { task: string; preset: string; steps: number; batchSize: number; maskPercent: number };
    expect(config).toMatchObject({ task: 'masked', preset: 'tiny', steps: 8, batchSize: 2, maskPercent: 20 });
    await expect(panel.result.getByTestId('job-summary')).toContainText(`${manifest.counts.train.slices} training`);
    await expect(panel.result.getByTestId('job-command')).toHaveText(`cd ${jobDir} && torchrun --nproc_per_node=N train.py`);

    // the download: the folder as one tar, of the length announced, the job's files inside
    const href = await panel.result.getByTestId('job-download').getAttribute('href');
    expect(href).toMatch(/^\/files\/jobs\/[0-9a-f-]{36}\.tar\?token=/);
    const res = await page.request.get(new URL(href!, served.url).toString());
    expect(res.status()).toBe(200);
    const tar = await res.body();
    expect(Number(res.headers()['content-length'])).toBe(tar.length);
    const top = jobDir.split('/').pop()!;
    expect(res.headers()['content-disposition']).toContain(`filename="${top}.tar"`);
    const names: string[] = [];
    for (let at = 0; at + 512 <= tar.length; ) {
      const name = tar.subarray(at, at + 100).toString('latin1').replace(/\0.*$/s, '');
      if (!name) break;
      names.push(name);
      const size = parseInt(tar.subarray(at + 124, at + 136).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
      at += 512 + Math.ceil(size / 512) * 512;
    }
    expect(names).toContain(`${top}/train.py`);
    expect(names).toContain(`${top}/data/manifest.json`);
    expect(names.filter((n) => /\/data\/shard-\d+\.npy$/.test(n))).toHaveLength(manifest.shards.length);
    // without the token: refused
    expect((await page.request.get(new URL(href!.split('?')[0], served.url).toString())).status()).toBe(403);
    await panel.root.screenshot({ path: join(screenshotDir, 'cluster-job-exported.png') });
  });

  test('the job trained by PyTorch comes home as a run with its loss curve', async () => {
    test.skip(!hasTorch, NO_TORCH);
    expect(jobDir).not.toBe('');
    const r = spawnSync(PYTHON, [join(jobDir, 'train.py'), '--device', 'cpu', '--workers', '0'], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, OMP_NUM_THREADS: '1' } });
    expect(r.status, `train.py: ${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/done: 8 steps/);
    expect(JSON.parse(readFileSync(join(jobDir, 'output', 'checkpoints', 'latest.json'), 'utf8')).step).toBe(8);

    const share = new JobImportSection(page);
    await share.goto();
    // a folder that is not a job's output is refused, naming what is missing
    await page.getByTestId('job-import-path').fill(work);
    await page.getByTestId('job-import-submit').click();
    await expect(share.error).toContainText('no checkpoint');
    const runId = await share.importFolder(join(jobDir, 'output'));
    expect(runId).toBeGreaterThan(0);
    await expect(share.result).toContainText('step 8 of 8');
    await expect(share.result).toContainText('masked');
    await page.screenshot({ path: join(screenshotDir, 'cluster-job-imported.png'), fullPage: true });

    // the run on the Pretrain page, with the curves of the PyTorch run
    await share.result.getByTestId('job-import-open').click();
    const pretrain = new PretrainPage(page);
    await expect(pretrain.root).toBeVisible();
    await expect.poll(() => pretrain.selectedRun()).toBe(runId);
    await expect(pretrain.status).toContainText(/done/i);
    await expect.poll(() => pretrain.chartPoints('loss'), { timeout: 30_000 }).toBeGreaterThanOrEqual(8);
    await expect(pretrain.chart('loss')).toBeVisible();
    await pretrain.detail.screenshot({ path: join(screenshotDir, 'cluster-job-run-curves.png') });

    // the same output again is the same run, said so
    await share.goto();
    await share.importFolder(join(jobDir, 'output'));
    await expect(share.result).toContainText('Already imported');
    await expect(share.result).toHaveAttribute('data-run', String(runId));

    // the imported run goes back out as a job of its own config, data and split
    await new PretrainPage(page).goto();
    const panel = new ClusterJobExportPanel(page);
    await panel.root.getByTestId('job-source').selectOption(String(runId));
    const again = await panel.export();
    expect(again).not.toBe(jobDir);
    const hash = (d: string) => (JSON.parse(readFileSync(join(d, 'job.json'), 'utf8')) as { manifestHash: string }).manifestHash;
    expect(hash(again)).toBe(hash(jobDir));
    expect(await new AppShell(page).errorMessages()).toEqual([]);
  });
});
