// @ts-check
import { defineConfig } from 'vite';

// The built UI (dist/) is embedded into the sluice binary and served at `/`.
// For `npm run dev`, API calls are proxied to a running sluice server:
//   SLUICE_DEV_API=http://127.0.0.1:3000 npm run dev
const api = process.env.SLUICE_DEV_API ?? 'http://127.0.0.1:3000';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
  },
  server: {
    proxy: { '/api': { target: api, changeOrigin: false } },
  },
});
