import type { ActivationStatus } from './activation.sql.ts';

/**
 * The activation state machine of PRODUCT.md as data and pure functions. Every status change
 * in the services is one conditional update from one of these `from` states.
 */
export const TRANSITIONS: Record<ActivationStatus, readonly ActivationStatus[]> = {
  pending_approval: ['approved', 'activating', 'denied', 'cancelled', 'timed_out'],
  approved: ['activating', 'cancelled'],
  // An extension in flight (`activating` while the target takes the new end) ends `approved`.
  activating: ['active', 'approved', 'failed'],
  active: ['revoking'],
  revoking: ['ended'],
  ended: [],
  cancelled: [],
  denied: [],
  timed_out: [],
  failed: [],
};

/** Whether the machine allows `from → to`. */
export const canTransition = (from: ActivationStatus, to: ActivationStatus): boolean =>
  TRANSITIONS[from].includes(to);

/** Where an approved (or approval-free) request goes: scheduled if its start lies ahead. */
export const statusOnceApproved = (startAt: Date, now: Date): 'approved' | 'activating' =>
  startAt > now ? 'approved' : 'activating';

/** How long the grant/revoke path may hold a row before the loop assumes it crashed and retries. */
export const IN_FLIGHT_LEASE_MS = 60_000;

/** Grants are tried this many times before the activation is marked failed. */
export const MAX_GRANT_ATTEMPTS = 5;

/** Exponential backoff with full jitter, capped at 15 minutes: 2 s, 4 s, 8 s … */
export function retryDelayMs(attempts: number, random: () => number = Math.random): number {
  const ceiling = Math.min(15 * 60_000, 2_000 * 2 ** Math.max(0, attempts - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
