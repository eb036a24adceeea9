import type { Db } from '../../db/client.ts';
import { eq } from '../../db/drizzle.ts';
import { teamsConversations } from './teams-conversation.sql.ts';

/** A conversation id without a thread's `;messageid=…` (a reply in a channel carries one). */
export const conversationKey = (id: string) => id.split(';')[0] ?? id;

/** Remembers (or refreshes) how to reach a channel or group chat the bot heard from. */
export async function rememberConversation(
  db: Db,
  conversation: { id: string; tenant: string; serviceUrl: string; conversationType: string; now: Date },
): Promise<void> {
  const { now, ...rest } = conversation;
  const row = { ...rest, id: conversationKey(conversation.id), updatedAt: now };
  await db
    .insert(teamsConversations)
    .values(row)
    .onConflictDoUpdate({
      target: teamsConversations.id,
      set: { tenant: row.tenant, serviceUrl: row.serviceUrl, updatedAt: row.updatedAt },
    });
}

/** The service URL of a channel or group chat, if the bot ever heard from it. */
export async function conversationServiceUrl(db: Db, id: string): Promise<string | undefined> {
  const [row] = await db
    .select({ serviceUrl: teamsConversations.serviceUrl })
    .from(teamsConversations)
    .where(eq(teamsConversations.id, conversationKey(id)));
  return row?.serviceUrl;
}
