import { integer, pgTable, text, timestamp, unique, uuid } from '../db/drizzle.ts';
import { roles } from './role.sql.ts';

const ts = () => timestamp({ withTimezone: true });

/**
 * An account that holds a role in its target with no running activation behind it (PIM's
 * "assigned outside PIM"), kept while it lasts so the admins hear of it once, whatever the number
 * of runs, replicas and restarts; the row goes when the holder does.
 */
export const reconcileFindings = pgTable(
  'reconcile_findings',
  {
    id: uuid().primaryKey().defaultRandom(),
    roleId: uuid()
      .notNull()
      .references(() => roles.id),
    /** The holder as the target names it: a login, an object id, a Slack user id. */
    account: text().notNull(),
    foundAt: ts().notNull(),
    /** Revokes tried (when the role's revokeUnmanagedGrants is on) and the last one's error. */
    revokeAttempts: integer().notNull().default(0),
    lastError: text(),
  },
  (t) => [unique().on(t.roleId, t.account)],
);

/**
 * Which replica reconciles a role now: a run takes the role's lease with one conditional upsert
 * and keeps it until it runs out, so one run per role and tick however many replicas tick.
 */
export const reconcileLeases = pgTable('reconcile_leases', {
  roleId: uuid()
    .primaryKey()
    .references(() => roles.id),
  heldUntil: ts().notNull(),
});
