import { defineConfig } from 'vitest/config';
import LongFirst from './test/support/sequencer.ts';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    sequence: { sequencer: LongFirst },
    // Vitest's default on a 2-core machine is one worker: every file in turn. Many end-to-end
    // files mostly wait (a real one-minute activation, the alerts job's minute, replicas working):
    // with three files at a time the 2 cores were a third idle, with four they are about 90 % busy.
    maxWorkers: 4,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
