import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Starts PostgreSQL and Redis for the run (or names what is missing and how to install it).
    globalSetup: ['test/setup/services.ts'],
    // Native work and model files make some tests slow on a 2-core machine; none asserts on timing.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
