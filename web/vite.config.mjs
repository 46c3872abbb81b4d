// Vite builds the browser page (web/) into dist/web, which `virtio-ts serve` serves. The page imports
// the package by its entry names, resolved here to the sources; v86 and the guest's files are not
// bundled: the page loads them from the server at boot (see web/src/main.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: './',
  logLevel: 'warn',
  resolve: {
    alias: [
      { find: /^virtio-ts$/, replacement: here('../src/index.ts') },
      { find: /^virtio-ts\/v86$/, replacement: here('../src/v86.ts') },
    ],
  },
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
  },
});
