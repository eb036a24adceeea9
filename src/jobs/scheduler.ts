import { performance } from 'node:perf_hooks';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.ts';

/** A job of the background loop: one run does one bounded piece of work. */
export interface Job {
  name: string;
  /**
   * `stopping` is aborted at shutdown: claim nothing more, finish what is in hand. Resolves with
   * how many rows it handled, when it counts them (logged once per run).
   */
  run(stopping: AbortSignal): Promise<unknown>;
}

/** Every schedule of the loop, in one place. Six fields: the first is seconds. */
export const SCHEDULES = {
  deliverNotifications: '*/2 * * * * *',
  /**
   * Start, expire, retry, time out: every second, and a run that claims a full batch goes on at
   * once (lifecycle-jobs.ts), so revocation lags expiry by about a second plus the work ahead.
   */
  lifecycle: '* * * * * *',
  /** Compare each target's holders with the running activations (PIM's "assigned outside PIM"). */
  reconcile: '0 */5 * * * *',
  /** Security alerts: raise what holds, resolve what went away (PIM scans about as often). */
  alerts: '30 * * * * *',
  /**
   * Access reviews: open, remind, finish. Every 15 s (off the alerts' second): the end of a campaign
   * takes access away, and a removed member should lose it at the end reviewers were shown, not up
   * to a minute later; a pass with nothing due is three indexed lookups.
   */
  reviews: '5,20,35,50 * * * * *',
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
        const started = performance.now();
        const run = job
          .run(stopping.signal)
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
      { name: job.name, noOverlap: true, logger: cronLogger(log) },
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

/**
 * node-cron's own messages, into our log. A tick that finds the previous run still going is
 * skipped by design (a run clears a burst batch after batch), so that one is only debug.
 */
function cronLogger(log: Logger) {
  return {
    info: (message: string) => log.debug(message),
    warn: (message: string) => (message.includes('overlap') ? log.debug(message) : log.warn(message)),
    error: (message: string | Error, err?: Error) => log.error({ err: err ?? message }, String(message)),
    debug: (message: string | Error) => log.debug(String(message)),
  };
}
