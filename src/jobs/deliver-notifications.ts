import { type ChatPlatform, DeliveryError, type Notification } from '../chat/chat-platform.ts';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import { and, asc, eq, gte, inArray, like, lte, sql } from '../db/drizzle.ts';
import { notifications } from '../elevation/notification.sql.ts';
import { principalsByIds } from '../elevation/principal-repository.ts';
import type { Logger } from '../log.ts';

/** Rows claimed per batch, and how long a claim holds (by default) before another replica may retry it. */
const BATCH = 25;
const LEASE_MS = 60_000;
/** After this many failed attempts a notification is marked failed and shown to admins. */
export const MAX_DELIVERY_ATTEMPTS = 8;

/**
 * How a notice fails when no platform knows its recipient (they never opened Elevate there):
 * for good at once, since nothing but the person can change that; `resendAwaitingAccount`
 * finds these rows again by this wording when they do.
 */
const noAccount = (email: string, platforms: string) => `${email} has no account on ${platforms}`;
const NO_ACCOUNT_LIKE = '% has no account on %';
/** How far back those notices are still sent once the person can be reached. */
const AWAITING_ACCOUNT_MS = 7 * 24 * 60 * 60_000;

/** Backoff after the n-th failed attempt: 5 s, 10 s, 20 s … capped at 10 min. */
const backoffMs = (attempts: number) => Math.min(5_000 * 2 ** (attempts - 1), 600_000);

/**
 * Delivers the notification outbox through the chat platforms, at least once: due rows are
 * claimed with FOR UPDATE SKIP LOCKED and leased (next_attempt_at moves ahead, and again just
 * before each delivery), so replicas never work on the same row; a success marks the row sent,
 * a failure reschedules it (Slack's Retry-After first) until MAX_DELIVERY_ATTEMPTS, then marks it
 * failed with the last error.
 */
export function createNotificationDelivery(deps: {
  db: Db;
  clock: Clock;
  log: Logger;
  platforms: ChatPlatform[];
  /** The in-flight lease (ELEVATE_IN_FLIGHT_LEASE): how soon a crashed replica's batch is retried. */
  leaseMs?: number;
}) {
  const { db, clock, log } = deps;
  const leaseMs = deps.leaseMs ?? LEASE_MS;

  async function claim(now: Date): Promise<Notification[]> {
    return db.transaction(async (tx) => {
      const due = await tx
        .select({ id: notifications.id })
        .from(notifications)
        .where(and(eq(notifications.status, 'pending'), lte(notifications.nextAttemptAt, now)))
        .orderBy(asc(notifications.nextAttemptAt), asc(notifications.createdAt), asc(notifications.id))
        .limit(BATCH)
        .for('update', { skipLocked: true });
      if (due.length === 0) return [];
      const claimed = await tx
        .update(notifications)
        .set({
          attempts: sql`${notifications.attempts} + 1`,
          nextAttemptAt: new Date(now.getTime() + leaseMs),
        })
        .where(
          inArray(
            notifications.id,
            due.map((d) => d.id),
          ),
        )
        .returning();
      // Claimed in due order: an approver's card goes out before the update saying it was decided.
      const order = new Map(due.map((d, i) => [d.id, i]));
      return claimed.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
    });
  }

  /**
   * Renews a claimed row's lease just before its delivery, if it still carries this claim's lease:
   * false when another replica took it over (this batch outlasted the lease) or it was delivered.
   */
  async function renew(n: Notification): Promise<boolean> {
    const rows = await db
      .update(notifications)
      .set({ nextAttemptAt: new Date(clock().getTime() + leaseMs) })
      .where(
        and(
          eq(notifications.id, n.id),
          eq(notifications.status, 'pending'),
          eq(notifications.nextAttemptAt, n.nextAttemptAt),
        ),
      )
      .returning({ id: notifications.id });
    return rows.length > 0;
  }

  async function deliverOne(n: Notification): Promise<void> {
    const [recipient] = await principalsByIds(db, [n.recipientId]);
    let reached = false;
    try {
      if (!recipient) throw new DeliveryError('the recipient no longer exists', { permanent: true });
      for (const platform of deps.platforms) {
        if ((await platform.deliver(n, recipient)) === 'sent') reached = true;
      }
      if (!reached) {
        const names = deps.platforms.map((p) => p.name).join(' or ') || 'any chat platform';
        throw new DeliveryError(noAccount(recipient.email, names), { permanent: true });
      }
    } catch (error) {
      const now = clock();
      const message = error instanceof Error ? error.message : String(error);
      const permanent = error instanceof DeliveryError && error.permanent;
      if (permanent || n.attempts >= MAX_DELIVERY_ATTEMPTS) {
        log.error(
          { notification: n.id, kind: n.kind, attempts: n.attempts },
          `notification failed for good: ${message}`,
        );
        await db
          .update(notifications)
          .set({ status: 'failed', lastError: message })
          .where(and(eq(notifications.id, n.id), eq(notifications.status, 'pending')));
        return;
      }
      const wait = Math.max(
        backoffMs(n.attempts),
        error instanceof DeliveryError ? (error.retryAfterMs ?? 0) : 0,
      );
      log.warn(
        { notification: n.id, kind: n.kind, attempts: n.attempts, retryInMs: wait },
        `notification delivery failed: ${message}`,
      );
      await db
        .update(notifications)
        .set({ lastError: message, nextAttemptAt: new Date(now.getTime() + wait) })
        .where(and(eq(notifications.id, n.id), eq(notifications.status, 'pending')));
      return;
    }
    await db
      .update(notifications)
      .set({ status: 'sent', sentAt: clock(), lastError: null })
      .where(and(eq(notifications.id, n.id), eq(notifications.status, 'pending')));
  }

  return {
    /**
     * One run: claims and delivers due batches until none is left (or `maxBatches`, or `stopping`
     * is aborted: a shutdown delivers the batch in hand and claims no more); returns how many.
     */
    async run(stopping?: AbortSignal, maxBatches = 10): Promise<number> {
      let done = 0;
      for (let batch = 0; batch < maxBatches && !stopping?.aborted; batch++) {
        const claimed = await claim(clock());
        // One message, not two: a row another replica took over meanwhile is left to it.
        for (const n of claimed) if (await renew(n)) await deliverOne(n);
        done += claimed.length;
        if (claimed.length < BATCH) break;
      }
      return done;
    },
  };
}

/** Failed deliveries, newest first, for the admins. */
export async function listFailedNotifications(db: Db, limit = 20): Promise<Notification[]> {
  return db
    .select()
    .from(notifications)
    .where(eq(notifications.status, 'failed'))
    .orderBy(sql`${notifications.createdAt} desc`)
    .limit(limit);
}

/**
 * The recipient can be reached now (they installed the app or opened its chat): their notices of
 * the last 7 days that failed for want of an account go back to pending, due at once, so the next
 * run (every 2 s) delivers what was waiting for them: an approver's card, a review notice.
 * Oldest first, as created. Returns how many.
 */
export async function resendAwaitingAccount(
  db: Db,
  input: { recipientId: string; now: Date },
): Promise<number> {
  const rows = await db
    .update(notifications)
    .set({ status: 'pending', attempts: 0, nextAttemptAt: input.now, lastError: null })
    .where(
      and(
        eq(notifications.recipientId, input.recipientId),
        eq(notifications.status, 'failed'),
        like(notifications.lastError, NO_ACCOUNT_LIKE),
        gte(notifications.createdAt, new Date(input.now.getTime() - AWAITING_ACCOUNT_MS)),
      ),
    )
    .returning({ id: notifications.id });
  return rows.length;
}
