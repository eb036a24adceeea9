import type { ActivationService } from '../elevation/activation-service.ts';
import type { ReminderService } from '../elevation/reminder-service.ts';
import type { Job } from './scheduler.ts';

/** Rows one run of a lifecycle job claims; the next tick takes the rest. */
const BATCH = 200;

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
    { name: 'start-scheduled', run: () => activations.startDue(BATCH) },
    { name: 'revoke-expired', run: () => activations.expireDue(BATCH) },
    { name: 'retry-grants-and-revokes', run: () => activations.retryDue(BATCH) },
    { name: 'time-out-requests', run: () => activations.timeOutDue(BATCH) },
  ];
}
