import { index, integer, pgTable, sql, text, timestamp, unique, uniqueIndex, uuid } from '../db/drizzle.ts';
import { principals } from './principal.sql.ts';
import { roles } from './role.sql.ts';

/** The lifecycle states of PRODUCT.md; `approved` is also "scheduled" until the start time. */
export const ACTIVATION_STATUSES = [
  'pending_approval',
  'approved',
  'activating',
  'active',
  'revoking',
  'ended',
  'cancelled',
  'denied',
  'timed_out',
  'failed',
] as const;
export type ActivationStatus = (typeof ACTIVATION_STATUSES)[number];

/** States in which the principal holds, or is about to hold, the role. */
export const OPEN_STATUSES = ['pending_approval', 'approved', 'activating', 'active', 'revoking'] as const;

/**
 * What an activation row is:
 * - `activation`: a principal's request to use a role they are eligible for;
 * - `assignment`: an admin's direct time-bound grant (PIM's active assignment) — no approval, same
 *   grant/revoke lifecycle, so the loop treats both alike;
 * - `extension`: a request for more time on an active activation; it only ever goes
 *   pending_approval → approved (applied to its parent) | denied | cancelled | timed_out. When the
 *   role's target ends grants itself (a provider with `extend`), an approved (or approval-free)
 *   extension is `activating` until the provider has taken the new end — retried like a grant —
 *   and then `approved`, or `failed` with its parent left at the old end.
 */
export const ACTIVATION_KINDS = ['activation', 'assignment', 'extension'] as const;
export type ActivationKind = (typeof ACTIVATION_KINDS)[number];

const ts = () => timestamp({ withTimezone: true });

export const activations = pgTable(
  'activations',
  {
    id: uuid().primaryKey().defaultRandom(),
    kind: text({ enum: ACTIVATION_KINDS }).notNull().default('activation'),
    principalId: uuid()
      .notNull()
      .references(() => principals.id),
    roleId: uuid()
      .notNull()
      .references(() => roles.id),
    status: text({ enum: ACTIVATION_STATUSES }).notNull(),
    /** Requested minutes (for an extension: the extra minutes); null = permanent assignment. */
    durationMinutes: integer(),
    startAt: ts().notNull(),
    /** When the grant ends: start + duration, moved to activation time + duration once active. */
    endAt: ts(),
    justification: text().notNull().default(''),
    ticketSystem: text(),
    ticketNumber: text(),
    /** Approvals needed, fixed at request time (0 when the role needs none). */
    approvalsRequired: integer().notNull().default(0),
    approvalExpiresAt: ts(),
    /** For an extension: the activation it extends. */
    extendsId: uuid(),
    /** Who asked: the principal's email, or the admin/CLI actor for assignments. */
    requestedBy: text().notNull(),
    activatedAt: ts(),
    endedAt: ts(),
    endReason: text(),
    /** Last provider error while granting or revoking; shown to admins. */
    lastError: text(),
    attempts: integer().notNull().default(0),
    /** When the requester was warned that the end is near (cleared when the end moves). */
    expiryWarnedAt: ts(),
    /** Reminders sent to the approvers of a pending request, and when the last one went. */
    remindersSent: integer().notNull().default(0),
    lastRemindedAt: ts(),
    /** When the loop should next work on this row (grant/revoke retry with backoff). */
    nextAttemptAt: ts(),
    createdAt: ts().notNull().defaultNow(),
    updatedAt: ts().notNull().defaultNow(),
  },
  (t) => [
    // One open activation per principal and role (PRODUCT.md invariant), enforced by the database.
    uniqueIndex('activations_one_open_per_principal_role')
      .on(t.principalId, t.roleId)
      .where(
        sql`kind <> 'extension' and status in ('pending_approval', 'approved', 'activating', 'active', 'revoking')`,
      ),
    // One pending extension per activation.
    uniqueIndex('activations_one_pending_extension')
      .on(t.extendsId)
      .where(sql`kind = 'extension' and status = 'pending_approval'`),
    index().on(t.status, t.nextAttemptAt),
    index().on(t.principalId, t.status),
    // The expiry warning's claim, every second: only running activations not yet warned, so it
    // stays small however many run or have ended (queries name the predicate literally to use it).
    index('activations_unwarned_end')
      .on(t.endAt)
      .where(sql`status = 'active' and kind = 'activation' and expiry_warned_at is null`),
  ],
);

/** An approver's approve/deny with a comment. One per approver and request. */
export const decisions = pgTable(
  'decisions',
  {
    id: uuid().primaryKey().defaultRandom(),
    activationId: uuid()
      .notNull()
      .references(() => activations.id),
    approverId: uuid()
      .notNull()
      .references(() => principals.id),
    verdict: text({ enum: ['approve', 'deny'] }).notNull(),
    comment: text().notNull().default(''),
    decidedAt: ts().notNull(),
  },
  (t) => [unique().on(t.activationId, t.approverId)],
);
