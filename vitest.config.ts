import { defineConfig } from 'vitest/config';

/** Core tests that run a second time with the core's records in PostgreSQL (see packages/core/test/postgres-store-setup.ts). */
const coreOnPostgres = [
  'packages/core/test/boot/binding.test.ts',
  'packages/core/test/ca/ca.test.ts',
  'packages/core/test/hierarchy/parent.test.ts',
  'packages/core/test/integration/admin-scopes.test.ts',
  'packages/core/test/integration/auth.test.ts',
  'packages/core/test/integration/bad-input.test.ts',
  'packages/core/test/integration/lifecycle.test.ts',
  'packages/core/test/integration/oidc.test.ts',
  'packages/core/test/integration/permission-matrix.test.ts',
  'packages/core/test/integration/restart.test.ts',
  'packages/core/test/integration/selection.test.ts',
  'packages/core/test/integration/sites.test.ts',
  'packages/core/test/integration/tickles.test.ts',
  'packages/core/test/packages/api.test.ts',
  'packages/core/test/tasks/api.test.ts',
  'packages/core/test/tasks/event-auth.test.ts',
  'packages/core/test/tasks/reboot-to-automation.test.ts',
  'packages/core/test/tasks/server-tasks.test.ts',
];

// One run over every workspace. Tests import the built packages (`npm test` runs
// `tsc --build` first), so what is tested is what ships.
export default defineConfig({
  test: {
    pool: 'forks',
    // Generous: a CI machine may be busy; no test measures speed (benchmarks do).
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    // Two cores: integration suites open real sockets and dbs; keep contention sane.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'outpost', include: ['packages/*/test/**/*.test.ts', 'appliance/test/**/*.test.ts', 'test/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'core-on-postgres',
          include: coreOnPostgres,
          globalSetup: ['packages/core/test/postgres-store-setup.ts'],
          env: { OUTPOST_TEST_CORE_STORE: 'postgres' },
        },
      },
    ],
  },
});
