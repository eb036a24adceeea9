import { boolean, index, jsonb, pgTable, primaryKey, sql, text, timestamp, uuid } from '../db/drizzle.ts';

/** A person, keyed by lower-cased email; the same principal behind every chat identity. */
export const principals = pgTable(
  'principals',
  {
    id: uuid().primaryKey().defaultRandom(),
    email: text().notNull().unique(),
    displayName: text(),
    isAdmin: boolean().notNull().default(false),
    /** Account names per grant provider type where they differ from the email (policy `principals`). */
    accounts: jsonb().$type<Record<string, string>>().notNull().default({}),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  // The admins are read on every request that needs approvers and by the loop: a few among many.
  (t) => [index('principals_admins').on(t.id).where(sql`is_admin`)],
);

/** A chat account linked to a principal: Slack user per workspace, Teams AAD object per tenant. */
export const chatIdentities = pgTable(
  'chat_identities',
  {
    platform: text({ enum: ['slack', 'teams'] }).notNull(),
    tenant: text().notNull(),
    externalId: text().notNull(),
    principalId: uuid()
      .notNull()
      .references(() => principals.id),
    /** Platform data needed to reach the person later (e.g. a Teams conversation reference). */
    data: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.platform, t.tenant, t.externalId] })],
);
