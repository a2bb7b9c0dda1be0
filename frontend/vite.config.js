// @ts-check
import { defineConfig } from 'vite';

// The built UI (dist/) is embedded into the sluice binary and served at `/`, or under any
// sub-path a reverse proxy puts it at (`https://host/llm/`): asset URLs are relative
// (base './'), and the app finds the API from where its own script was loaded (src/lib/base.ts).
// For `npm run dev`, API calls are proxied to a running sluice server:
//   SLUICE_DEV_API=http://127.0.0.1:3000 npm run dev
const api = process.env.SLUICE_DEV_API ?? 'http://127.0.0.1:3000';

export default defineConfig({
  base: './',
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  resolve: {
    alias: { react: 'preact/compat', 'react-dom': 'preact/compat' },
  },
  build: {
    // Built here, then moved into dist/ file by file where the bytes changed
    // (scripts/sync-dist.mjs), so an unchanged UI does not make cargo rebuild the binary.
    outDir: '.build',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    // One file per page; the shell stays small (budget checked by scripts/check-budget.mjs).
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: {
      '/api': { target: api, changeOrigin: false },
      '/v1': { target: api, changeOrigin: false },
    },
  },
});
