import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Vitest's default on a 2-core machine is one worker: every file in turn. Many end-to-end
    // files mostly wait (a real one-minute activation, the alerts job's minute, replicas working),
    // so three files at a time keep CI well inside its budget without starving the busy ones.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
