import type { Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import { createReconcileService } from '../elevation/reconcile-service.ts';
import type { ProviderRegistry } from '../grants/registry.ts';
import type { Job } from './scheduler.ts';

/**
 * Reconciliation on the loop (SCHEDULES.reconcile): every role whose provider can list its target
 * is compared with the running activations; each role's lease keeps replicas from doubling a run.
 */
export function reconcileGrantsJob(deps: { db: Db; providers: ProviderRegistry; clock: Clock }): Job {
  const reconcile = createReconcileService(deps);
  return { name: 'reconcile-grants', run: () => reconcile.reconcileAll() };
}
