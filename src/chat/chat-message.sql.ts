import { index, jsonb, pgTable, text, timestamp, uuid } from '../db/drizzle.ts';
import { activations } from '../elevation/activation.sql.ts';
import { principals } from '../elevation/principal.sql.ts';

/** A message we posted, so its card can be updated in place after a decision. */
export const chatMessages = pgTable(
  'chat_messages',
  {
    id: uuid().primaryKey().defaultRandom(),
    activationId: uuid().references(() => activations.id),
    recipientId: uuid().references(() => principals.id),
    platform: text({ enum: ['slack', 'teams'] }).notNull(),
    /** Slack channel id / Teams conversation id. */
    channel: text().notNull(),
    /** Slack `ts` / Teams activity id. */
    messageId: text().notNull(),
    purpose: text().notNull(),
    data: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index().on(t.activationId)],
);
