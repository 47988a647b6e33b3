import { defineConfig } from 'vitest/config';

// One run over every workspace. Tests import the built packages (`npm test` runs
// `tsc --build` first), so what is tested is what ships.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'appliance/test/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    // Generous: a CI machine may be busy; no test measures speed (benchmarks do).
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    // Two cores: integration suites open real sockets and dbs; keep contention sane.
    maxWorkers: 2,
  },
});
