import { index, jsonb, pgTable, sql, text, timestamp, uniqueIndex, uuid } from '../db/drizzle.ts';
import type { AlertSettings } from './alert-settings.ts';
import { roles } from './role.sql.ts';

/**
 * The security alerts (PIM's alert list), each about one role and, where it concerns someone,
 * one subject:
 * - `frequent_activation`: a principal (email) activated the role too often in the window;
 * - `sensitive_role_unprotected`: a sensitive role activates without approval and without MFA;
 * - `stale_eligibility`: a principal (email) eligible for the role has not activated it for long;
 * - `too_many_active`: too many principals hold the role at once;
 * - `permanent_active`: the role has permanent active assignments;
 * - `unmanaged_grant`: an account (as the target names it) holds the role with no activation behind it;
 * - `revoke_failing`: revoking the role from a principal (email) keeps failing.
 */
export const ALERT_KINDS = [
  'frequent_activation',
  'sensitive_role_unprotected',
  'stale_eligibility',
  'too_many_active',
  'permanent_active',
  'unmanaged_grant',
  'revoke_failing',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

const ts = () => timestamp({ withTimezone: true });

/**
 * One alert from the moment its condition was seen until it went away or an admin acted on it.
 * At most one open alert per (kind, role, subject), enforced by the database: that index is what
 * keeps an alert (and its notice to the admins) from being raised twice by overlapping passes.
 */
export const alerts = pgTable(
  'alerts',
  {
    id: uuid().primaryKey().defaultRandom(),
    kind: text({ enum: ALERT_KINDS }).notNull(),
    roleId: uuid()
      .notNull()
      .references(() => roles.id),
    /** Whom it concerns: a principal's email, a target account, or '' for the role as a whole. */
    subject: text().notNull().default(''),
    /** What was seen when it was raised (counts, dates, the last error), for people to read. */
    details: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    raisedAt: ts().notNull(),
    resolvedAt: ts(),
    /** `system` when the condition went away, else the admin who acted (an email or `cli:<user>`). */
    resolvedBy: text(),
    /** How it was resolved, for people to read: `eligibility removed`, `the condition went away`… */
    resolution: text(),
  },
  (t) => [
    uniqueIndex('alerts_one_open').on(t.kind, t.roleId, t.subject).where(sql`resolved_at is null`),
    index().on(t.raisedAt),
  ],
);

/** The alert thresholds the policy file set (one row); without it the defaults apply. */
export const alertSettings = pgTable('alert_settings', {
  id: text().primaryKey().default('alerts'),
  settings: jsonb().$type<AlertSettings>().notNull(),
  updatedAt: ts().notNull(),
});
