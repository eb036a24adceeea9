import type { Db } from '../db/client.ts';
import { and, eq, inArray, isNull, ne, or, sql } from '../db/drizzle.ts';
import { chatMessages } from './chat-message.sql.ts';

/** A stored posted message. */
export type ChatMessage = typeof chatMessages.$inferSelect;

/** Remembers a posted message so it can be updated in place later. */
export async function saveChatMessage(db: Db, message: typeof chatMessages.$inferInsert): Promise<void> {
  await db.insert(chatMessages).values(message);
}

/**
 * The messages of one activation on a platform with a purpose; with `recipientId`, those sent to
 * that principal plus the shared (channel) ones. A shared message still being posted (claimed,
 * message id '') is left out: there is nothing to update yet.
 */
export async function findChatMessages(
  db: Db,
  filter: { platform: 'slack' | 'teams'; activationId: string; purpose?: string; recipientId?: string },
): Promise<ChatMessage[]> {
  return db
    .select()
    .from(chatMessages)
    .where(
      and(
        eq(chatMessages.platform, filter.platform),
        eq(chatMessages.activationId, filter.activationId),
        filter.purpose ? eq(chatMessages.purpose, filter.purpose) : undefined,
        filter.recipientId
          ? or(eq(chatMessages.recipientId, filter.recipientId), isNull(chatMessages.recipientId))
          : undefined,
        ne(chatMessages.messageId, ''),
      ),
    );
}

/** The notices that list review items (what `reviewRequest` renders), by their outbox kind. */
const REVIEW_NOTICES = ['review_requested', 'review_reminder'];

/**
 * The review notices a principal was sent on a platform that list the review item `itemId` (the
 * notice and its reminder), so they can be shown again with its outcome.
 */
export async function findReviewNotices(
  db: Db,
  filter: { platform: 'slack' | 'teams'; recipientId: string; itemId: string },
): Promise<ChatMessage[]> {
  return db
    .select()
    .from(chatMessages)
    .where(
      and(
        eq(chatMessages.platform, filter.platform),
        eq(chatMessages.recipientId, filter.recipientId),
        inArray(chatMessages.purpose, REVIEW_NOTICES),
        // The notice's own data (the outbox row's) lists its items.
        sql`${chatMessages.data} @> ${JSON.stringify({ data: { items: [{ itemId: filter.itemId }] } })}::jsonb`,
      ),
    );
}

/**
 * The messages about one alert on a platform: those sent to `recipientId` plus the shared
 * (channel) ones, posted ones only (a shared one still being posted has message id '').
 */
export async function findAlertMessages(
  db: Db,
  filter: { platform: 'slack' | 'teams'; alertId: string; recipientId: string },
): Promise<ChatMessage[]> {
  return db
    .select()
    .from(chatMessages)
    .where(
      and(
        eq(chatMessages.platform, filter.platform),
        eq(chatMessages.alertId, filter.alertId),
        or(eq(chatMessages.recipientId, filter.recipientId), isNull(chatMessages.recipientId)),
        ne(chatMessages.messageId, ''),
      ),
    );
}

/** Adds `data` to a stored message's data (e.g. what its card shows now). */
export async function noteChatMessage(db: Db, id: string, data: Record<string, unknown>): Promise<void> {
  await db
    .update(chatMessages)
    .set({ data: sql`${chatMessages.data} || ${JSON.stringify(data)}::jsonb` })
    .where(eq(chatMessages.id, id));
}

/** What a shared message is about: one activation (an approvals channel) or one alert. */
type SharedSubject = { activationId: string; alertId?: never } | { alertId: string; activationId?: never };

/**
 * Takes the right to post the one shared (channel) message for `purpose` about an activation or
 * an alert, for the notification `claimant`. Several notifications (one per approver or admin)
 * ask for the same post, and replicas deliver them at once: a transaction-scoped advisory lock
 * per subject makes the look and the claim one step, so exactly one of them posts. Returns the
 * claimed row's id (its message id stays '' until `completeSharedMessage`), or undefined when the
 * message is posted, or being posted under a claim of another notification made after
 * `staleBefore`. A claimant gets its own claim back (its retry after a crash), and anyone takes
 * over a stale one.
 */
export async function claimSharedMessage(
  db: Db,
  claim: SharedSubject & {
    platform: 'slack' | 'teams';
    purpose: string;
    channel: string;
    claimant: string;
    now: Date;
    staleBefore: Date;
  },
): Promise<string | undefined> {
  const subject = claim.activationId ?? claim.alertId;
  return db.transaction(async (tx) => {
    await tx.execute(
      sql`select pg_advisory_xact_lock(hashtext('chat_messages.shared'), hashtext(${subject}::text))`,
    );
    const copies = await tx
      .select()
      .from(chatMessages)
      .where(
        and(
          eq(chatMessages.platform, claim.platform),
          claim.activationId !== undefined
            ? eq(chatMessages.activationId, claim.activationId)
            : eq(chatMessages.alertId, claim.alertId),
          eq(chatMessages.purpose, claim.purpose),
          isNull(chatMessages.recipientId),
        ),
      );
    if (copies.some((c) => c.messageId !== '')) return undefined;
    const data = { claimant: claim.claimant };
    const pending = copies[0];
    if (!pending) {
      const [row] = await tx
        .insert(chatMessages)
        .values({
          platform: claim.platform,
          activationId: claim.activationId ?? null,
          alertId: claim.alertId ?? null,
          recipientId: null,
          channel: claim.channel,
          messageId: '',
          purpose: claim.purpose,
          data,
          createdAt: claim.now,
        })
        .returning({ id: chatMessages.id });
      return row?.id;
    }
    if (pending.data.claimant !== claim.claimant && pending.createdAt > claim.staleBefore) return undefined;
    await tx
      .update(chatMessages)
      .set({ channel: claim.channel, data, createdAt: claim.now })
      .where(eq(chatMessages.id, pending.id));
    return pending.id;
  });
}

/** Records where a claimed shared message was posted (and what a later update needs, in `data`). */
export async function completeSharedMessage(
  db: Db,
  id: string,
  posted: { channel: string; messageId: string; data?: Record<string, unknown> },
): Promise<void> {
  await db.update(chatMessages).set(posted).where(eq(chatMessages.id, id));
}

/**
 * Takes the update of a shared (channel) message to the content `shows` (a digest of it) for the
 * notification `claimant`. Every approver of a request is told of its decision, and each of their
 * deliveries would update the one channel card with the same content: only the first to claim
 * that content does (true); the others find it shown (false). The claimant's own retry gets it
 * back (after a failed or interrupted update), and a card asked to show something else again is
 * claimed afresh.
 */
export async function claimSharedUpdate(
  db: Db,
  id: string,
  claim: { shows: string; claimant: string },
): Promise<boolean> {
  const rows = await db
    .update(chatMessages)
    .set({
      data: sql`${chatMessages.data} || ${JSON.stringify({ shows: claim.shows, shownBy: claim.claimant })}::jsonb`,
    })
    .where(
      and(
        eq(chatMessages.id, id),
        or(
          sql`${chatMessages.data}->>'shows' is distinct from ${claim.shows}`,
          sql`${chatMessages.data}->>'shownBy' = ${claim.claimant}`,
        ),
      ),
    )
    .returning({ id: chatMessages.id });
  return rows.length > 0;
}

/** Gives a claim back after a failed post, so the next delivery of the message may claim it. */
export async function releaseSharedMessage(db: Db, id: string): Promise<void> {
  await db.delete(chatMessages).where(and(eq(chatMessages.id, id), eq(chatMessages.messageId, '')));
}
