import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files that take a minute while being small: most of it waiting on the real clock (a one-minute
 * activation, the alerts job's minute, replicas' loops) or on CLI processes. Without a previous
 * run's timings vitest starts the largest files first, so these came last and ran alone at the end.
 */
const LONG = [
  'real-expiry.test.ts',
  'slack-alerts.test.ts',
  'replicas.test.ts',
  'replica-crash.test.ts',
  'cli-alerts.test.ts',
  'cli-reviews.test.ts',
];

/** Vitest's order, with the long small files first. */
export default class LongFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification) =>
      LONG.some((name) => file.moduleId.endsWith(`/${name}`)) ? 0 : 1;
    // Array.prototype.sort is stable: vitest's order holds within each rank.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}
