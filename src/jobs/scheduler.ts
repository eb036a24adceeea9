import { performance } from 'node:perf_hooks';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.ts';

/** A job of the background loop: one run does one bounded piece of work. */
export interface Job {
  name: string;
  /** Resolves with how many rows it handled, when it counts them (logged once per run). */
  run(): Promise<unknown>;
}

/** Every schedule of the loop, in one place. Six fields: the first is seconds. */
export const SCHEDULES = {
  deliverNotifications: '*/2 * * * * *',
  /**
   * Start, expire, retry, time out: every second, and a run that claims a full batch goes on at
   * once (lifecycle-jobs.ts), so revocation lags expiry by about a second plus the work ahead.
   */
  lifecycle: '* * * * * *',
} as const;

/**
 * Runs the loop's jobs on their node-cron schedules on every replica (each job claims its rows
 * with SKIP LOCKED, so replicas share the work). A run never overlaps the previous one; `stop`
 * waits for runs in flight.
 */
export function startScheduler(jobs: { job: Job; schedule: string }[], log: Logger) {
  const running = new Set<Promise<unknown>>();
  const tasks: ScheduledTask[] = jobs.map(({ job, schedule }) =>
    cron.schedule(
      schedule,
      () => {
        const started = performance.now();
        const run = job
          .run()
          .then((done) => {
            // One line per run that did something, never one per row: a burst of 100,000
            // revocations must not become 100,000 log lines.
            if (typeof done === 'number' && done > 0) {
              const ms = Math.round(performance.now() - started);
              log.info({ job: job.name, done, ms }, `${job.name}: ${done} in ${ms} ms`);
            }
          })
          .catch((error) => log.error({ err: error, job: job.name }, `${job.name} failed`));
        running.add(run);
        return run.finally(() => running.delete(run));
      },
      { name: job.name, noOverlap: true },
    ),
  );
  return {
    /** Stops every schedule and waits for the runs in flight. */
    async stop(): Promise<void> {
      await Promise.all(tasks.map((task) => task.stop()));
      await Promise.allSettled([...running]);
    },
  };
}
