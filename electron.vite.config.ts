import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  main: {
    build: {
      rollupOptions: {
        input: {
          index: resolve(__dirname, 'src/main/index.ts'),
          // The trainer process entry (Electron utility process).
          trainer: resolve(__dirname, 'src/utility/trainer.ts'),
          // The indexer's header-reading worker thread (spawned by src/library/indexing/indexer.ts).
          'index-worker': resolve(__dirname, 'src/library/indexing/index-worker.ts'),
          // The cluster-job export's slice-decoding worker thread (src/host/cluster-job/slice-pool.ts).
          'slice-worker': resolve(__dirname, 'src/host/cluster-job/slice-worker.ts'),
          // The data-parallel training helper thread (spawned by src/trainer/data-parallel.ts).
          'grad-worker': resolve(__dirname, 'src/trainer/grad-worker.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      // Sandboxed preloads must be CommonJS and self-contained.
      externalizeDeps: false,
      rollupOptions: {
        input: { index: resolve(__dirname, 'src/preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(__dirname, 'src/renderer'),
    plugins: [svelte()],
    build: {
      // electron-vite leaves the renderer unminified by default; minified, the Library page's first
      // chunk is 128 KB instead of 325 KB to parse and compile before the page can start (its first
      // rows at a million instances: bench/index-scale.ts). Every page but the Library is a chunk of
      // its own (src/renderer/src/App.svelte).
      minify: true,
      rollupOptions: { input: resolve(__dirname, 'src/renderer/index.html') },
    },
  },
});
