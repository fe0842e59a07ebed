import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Every answer of the API a test receives is held to its OpenAPI document.
    setupFiles: ['./tests/support/contract-fetch.ts'],
    reporters: ['default', './tests/support/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests share one NATS/Postgres/Redis: a couple of files at a time is plenty on 2 cores.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
