import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.ts';

/** A job of the background loop: one run does one bounded piece of work. */
export interface Job {
  name: string;
  /** `stopping` is aborted at shutdown: claim nothing more, finish what is in hand. */
  run(stopping: AbortSignal): Promise<unknown>;
}

/** Every schedule of the loop, in one place. Six fields: the first is seconds. */
export const SCHEDULES = {
  deliverNotifications: '*/2 * * * * *',
  /** Start, expire, retry, time out: revocation lags expiry by about this tick. */
  lifecycle: '*/2 * * * * *',
} as const;

/**
 * Runs the loop's jobs on their node-cron schedules on every replica (each job claims its rows
 * with SKIP LOCKED, so replicas share the work). A run never overlaps the previous one; `stop`
 * starts no new run and waits for the runs in flight, which stop claiming (graceful shutdown).
 */
export function startScheduler(jobs: { job: Job; schedule: string }[], log: Logger) {
  const running = new Set<Promise<unknown>>();
  const stopping = new AbortController();
  const tasks: ScheduledTask[] = jobs.map(({ job, schedule }) =>
    cron.schedule(
      schedule,
      () => {
        // A tick node-cron had already begun may still arrive after stop().
        if (stopping.signal.aborted) return;
        const run = job
          .run(stopping.signal)
          .catch((error) => log.error({ err: error, job: job.name }, `${job.name} failed`));
        running.add(run);
        return run.finally(() => running.delete(run));
      },
      { name: job.name, noOverlap: true },
    ),
  );
  return {
    /** Stops every schedule, tells the runs in flight to claim no more, and waits for them. */
    async stop(): Promise<void> {
      stopping.abort();
      await Promise.all(tasks.map((task) => task.stop()));
      await Promise.allSettled([...running]);
    },
  };
}
