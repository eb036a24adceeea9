import { pgTable, text, timestamp } from '../../db/drizzle.ts';

/**
 * Teams channels and group chats the bot has heard from (installed in the team, or mentioned
 * there), with the service URL to post to them: Teams sends it on each activity and a proactive
 * message needs it. The alerts channel is looked up here.
 */
export const teamsConversations = pgTable('teams_conversations', {
  /** The conversation id (`19:…@thread.tacv2`), without a thread's `;messageid=…`. */
  id: text().primaryKey(),
  tenant: text().notNull(),
  serviceUrl: text().notNull(),
  /** `channel` or `groupChat`, as Teams says. */
  conversationType: text().notNull(),
  updatedAt: timestamp({ withTimezone: true }).notNull(),
});
