import type { ActivationService } from '../elevation/activation-service.ts';
import type { Job } from './scheduler.ts';

/** Rows one run of a lifecycle job claims; the next tick takes the rest. */
const BATCH = 200;

/**
 * The activation lifecycle's jobs: each claims its due rows (SKIP LOCKED, so replicas share
 * them) and moves them one step through the core, which also calls the providers.
 */
export function lifecycleJobs(activations: ActivationService): Job[] {
  return [
    { name: 'start-scheduled', run: () => activations.startDue(BATCH) },
    { name: 'revoke-expired', run: () => activations.expireDue(BATCH) },
    { name: 'retry-grants-and-revokes', run: () => activations.retryDue(BATCH) },
    { name: 'time-out-requests', run: () => activations.timeOutDue(BATCH) },
  ];
}
