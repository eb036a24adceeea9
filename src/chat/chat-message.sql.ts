import { index, jsonb, pgTable, text, timestamp, uuid } from '../db/drizzle.ts';
import { activations } from '../elevation/activation.sql.ts';
import { alerts } from '../elevation/alert.sql.ts';
import { principals } from '../elevation/principal.sql.ts';

/**
 * A message we posted, so its card can be updated in place later: about an activation (after a
 * decision) or about a security alert (once it is resolved).
 */
export const chatMessages = pgTable(
  'chat_messages',
  {
    id: uuid().primaryKey().defaultRandom(),
    activationId: uuid().references(() => activations.id),
    alertId: uuid().references(() => alerts.id),
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
  (t) => [index().on(t.activationId), index().on(t.alertId)],
);
