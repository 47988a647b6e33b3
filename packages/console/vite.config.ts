import { defineConfig } from 'vite';

// The core serves the build at /console/: hashed files under assets/ are cached for a
// year, index.html is revalidated. No CDN: everything the page needs is in dist/.
export default defineConfig({
  base: '/console/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
