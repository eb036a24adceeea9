import { bigserial, jsonb, pgTable, text, timestamp } from '../db/drizzle.ts';

/**
 * Append-only, hash-chained record of everything that happened. `hash` is
 * SHA-256(prevHash + canonical content); a trigger (see migrations) refuses UPDATE and DELETE.
 */
export const auditEvents = pgTable('audit_events', {
  seq: bigserial({ mode: 'number' }).primaryKey(),
  at: timestamp({ withTimezone: true, precision: 3 }).notNull(),
  actor: text().notNull(),
  action: text().notNull(),
  subjectType: text().notNull(),
  subjectId: text().notNull(),
  data: jsonb().$type<Record<string, unknown>>().notNull(),
  prevHash: text().notNull(),
  hash: text().notNull().unique(),
});
