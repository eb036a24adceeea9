import type { Db } from '../db/client.ts';
import { and, eq, isNull, or } from '../db/drizzle.ts';
import { chatMessages } from './chat-message.sql.ts';

/** A stored posted message. */
export type ChatMessage = typeof chatMessages.$inferSelect;

/** Remembers a posted message so it can be updated in place later. */
export async function saveChatMessage(db: Db, message: typeof chatMessages.$inferInsert): Promise<void> {
  await db.insert(chatMessages).values(message);
}

/**
 * The messages of one activation on a platform with a purpose; with `recipientId`, those sent to
 * that principal plus the shared (channel) ones.
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
      ),
    );
}
