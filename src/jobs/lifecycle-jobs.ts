import type { ActivationService } from '../elevation/activation-service.ts';
import type { ReminderService } from '../elevation/reminder-service.ts';
import type { Job } from './scheduler.ts';

/** Rows one batch of a lifecycle job claims (one transaction before the provider calls, one after). */
const BATCH = 200;
/**
 * Expired activations are revoked in larger batches: a burst of thousands expiring in the same
 * second is the case to clear fast, and each batch pays two transactions and one turn at the
 * audit chain whatever its size. Larger still would hold the audit chain's lock longer for the
 * requests of people waiting in chat.
 */
const REVOKE_BATCH = 1_000;
/**
 * Batches of expired activations one replica works on at once: while one batch's outcome is
 * being recorded, the next is claimed and sent to the providers (SKIP LOCKED keeps them apart).
 */
const REVOKE_WORKERS = 2;
/** A run's safety stop: never one endless run, whatever a job reports. */
const MAX_BATCHES_PER_RUN = 1_000;
/** The lifecycle schedule's tick (SCHEDULES.lifecycle: every second, on the second). */
const TICK_MS = 1_000;
/**
 * A revoke run waiting for the next end sleeps at least this long, so activations ending one
 * after another are claimed a few at a time, not one by one.
 */
const MIN_WAKE_MS = 50;

/**
 * The activation lifecycle's jobs (and the notices around it): each claims its due rows (SKIP
 * LOCKED, so replicas share them) and moves them one step through the core, which also calls
 * the providers. Each is one line, so they share this file.
 */
export function lifecycleJobs(activations: ActivationService, reminders: ReminderService): Job[] {
  return [
    { name: 'warn-expiring', run: () => reminders.warnExpiring(BATCH) },
    { name: 'remind-approvers', run: () => reminders.remindApprovers(BATCH) },
    { name: 'warn-eligibilities', run: () => reminders.warnEligibilities(BATCH) },
    { name: 'expire-eligibilities', run: () => reminders.expireEligibilities(BATCH) },
    {
      name: 'start-scheduled',
      run: (stopping) => untilDone((n) => activations.startDue(n), stopping, BATCH),
    },
    { name: 'revoke-expired', run: (stopping) => revokeExpired(activations, stopping) },
    {
      name: 'retry-grants-and-revokes',
      run: (stopping) => untilDone((n) => activations.retryDue(n), stopping, BATCH),
    },
    {
      name: 'time-out-requests',
      run: (stopping) => untilDone((n) => activations.timeOutDue(n), stopping, BATCH),
    },
  ];
}

/**
 * Revokes what has ended, batch after batch, and then, when the next activation ends before the
 * next tick, sleeps until it does and goes on: an end is not left waiting for the tick (up to a
 * second of lag), and the run hands over to the tick after that. Returns how many were revoked.
 */
export async function revokeExpired(activations: ActivationService, stopping: AbortSignal): Promise<number> {
  let done = 0;
  for (;;) {
    done += await untilDone((n) => activations.expireDue(n), stopping, REVOKE_BATCH, REVOKE_WORKERS);
    if (stopping.aborted) return done;
    const untilEnd = await activations.untilNextEnd();
    const untilTick = TICK_MS - (Date.now() % TICK_MS);
    if (untilEnd === null || untilEnd >= untilTick) return done;
    await sleep(Math.max(untilEnd, MIN_WAKE_MS), stopping);
  }
}

/** Resolves after `ms`, or at once when `stopping` aborts. */
function sleep(ms: number, stopping: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      stopping.removeEventListener('abort', done);
      resolve();
    }
    stopping.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `step` batch after batch while it finds a full one, so a burst is cleared in one run
 * instead of one batch per tick; `workers` such loops run side by side. Only for steps whose rows
 * leave the due set once moved (the activation jobs: a moved row changes status or gets a later
 * `next_attempt_at`), so it ends; at shutdown (`stopping`) it claims no further batch. Returns
 * how many rows were moved.
 */
export async function untilDone(
  step: (limit: number) => Promise<number>,
  stopping: AbortSignal,
  batch: number,
  workers = 1,
): Promise<number> {
  let done = 0;
  let rounds = 0;
  let drained = false;
  const worker = async () => {
    while (!drained && !stopping.aborted && rounds++ < MAX_BATCHES_PER_RUN) {
      const moved = await step(batch);
      done += moved;
      if (moved < batch) drained = true;
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return done;
}
