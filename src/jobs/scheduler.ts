import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.ts';

/** A job of the background loop: one run does one bounded piece of work. */
export interface Job {
  name: string;
  run(): Promise<unknown>;
}

/** Every schedule of the loop, in one place. Six fields: the first is seconds. */
export const SCHEDULES = {
  deliverNotifications: '*/2 * * * * *',
  /** Start, expire, retry, time out: revocation lags expiry by about this tick. */
  lifecycle: '*/2 * * * * *',
  /** Compare each target's holders with the running activations (PIM's "assigned outside PIM"). */
  reconcile: '0 */5 * * * *',
  /** Security alerts: raise what holds, resolve what went away (PIM scans about as often). */
  alerts: '30 * * * * *',
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
        const run = job
          .run()
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
