import { index, integer, jsonb, pgTable, sql, text, timestamp, unique, uuid } from '../db/drizzle.ts';
import { principals } from './principal.sql.ts';
import type { RoleSettings } from './role-settings.ts';

/** A privilege that can be granted: its target (provider + parameters) and its settings. */
export const roles = pgTable('roles', {
  id: uuid().primaryKey().defaultRandom(),
  name: text().notNull().unique(),
  description: text().notNull().default(''),
  scope: text().notNull().default(''),
  providerType: text().notNull().default('none'),
  providerConfig: jsonb().$type<Record<string, unknown>>().notNull().default({}),
  settings: jsonb().$type<RoleSettings>().notNull(),
  archivedAt: timestamp({ withTimezone: true }),
  createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
});

/** "Principal may activate role" from start until end (null end: permanent). One per pair. */
export const eligibilities = pgTable(
  'eligibilities',
  {
    id: uuid().primaryKey().defaultRandom(),
    principalId: uuid()
      .notNull()
      .references(() => principals.id),
    roleId: uuid()
      .notNull()
      .references(() => roles.id),
    startAt: timestamp({ withTimezone: true }).notNull(),
    endAt: timestamp({ withTimezone: true }),
    justification: text().notNull().default(''),
    /** How many of the before-the-end warnings (14 days, 1 day) the principal has had. */
    warningsSent: integer().notNull().default(0),
    createdBy: text().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique().on(t.principalId, t.roleId),
    index().on(t.roleId),
    // The loop's warnings and expiry look for ends every second: eligibilities that end, by end.
    index('eligibilities_end').on(t.endAt).where(sql`end_at is not null`),
  ],
);
