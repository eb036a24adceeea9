import type { notifications } from '../elevation/notification.sql.ts';
import type { Principal } from '../elevation/principal-repository.ts';

/** One outbox row as the delivery job hands it to a platform. */
export type Notification = typeof notifications.$inferSelect;

/**
 * The port every chat platform implements for the outbox. `deliver` renders the notification's
 * kind into the platform's message and sends it (or updates the cards it concerns); it answers
 * `no_identity` when the recipient has no account on this platform. Throwing means "try again
 * later"; a `DeliveryError` can say when, or that retrying is pointless.
 */
export interface ChatPlatform {
  name: 'slack' | 'teams';
  deliver(notification: Notification, recipient: Principal): Promise<'sent' | 'no_identity'>;
}

/** A failed delivery with a hint for the retry: Slack's Retry-After, or no retry at all. */
export class DeliveryError extends Error {
  readonly retryAfterMs: number | undefined;
  readonly permanent: boolean;
  constructor(
    message: string,
    options: { retryAfterMs?: number; permanent?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'DeliveryError';
    this.retryAfterMs = options.retryAfterMs;
    this.permanent = options.permanent ?? false;
  }
}
