import { index, integer, jsonb, pgTable, text, timestamp, uuid } from '../db/drizzle.ts';
import { activations } from './activation.sql.ts';
import { principals } from './principal.sql.ts';

/**
 * The notification outbox: written in the same transaction as the state change it reports,
 * delivered to the recipient's chat platforms at least once by the loop.
 */
export const notifications = pgTable(
  'notifications',
  {
    id: uuid().primaryKey().defaultRandom(),
    recipientId: uuid()
      .notNull()
      .references(() => principals.id),
    /** A message kind of chat/messages.ts, e.g. `approval_requested`, `activation_active`. */
    kind: text().notNull(),
    activationId: uuid().references(() => activations.id),
    data: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    status: text({ enum: ['pending', 'sent', 'failed'] })
      .notNull()
      .default('pending'),
    attempts: integer().notNull().default(0),
    nextAttemptAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    lastError: text(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    sentAt: timestamp({ withTimezone: true }),
  },
  (t) => [index().on(t.status, t.nextAttemptAt)],
);
