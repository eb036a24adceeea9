import type { Clock } from '../clock.ts';
import type { Db, Tx } from '../db/client.ts';
import { and, eq, gt, isNotNull, isNull, lt, lte, or, sql } from '../db/drizzle.ts';
import { activations } from './activation.sql.ts';
import { SYSTEM } from './actor.ts';
import { MINUTE_MS } from './duration.ts';
import { notifications } from './notification.sql.ts';
import { approverIds } from './policy.ts';
import { principals } from './principal.sql.ts';
import { listAdmins } from './principal-repository.ts';
import { type Notice, recordChange } from './record.ts';
import { eligibilities, roles } from './role.sql.ts';
import { namedApproverIds } from './role-repository.ts';

/** When people hear that something is about to run out, and how often approvers are nudged. */
export interface ReminderSettings {
  /** Warn the requester this long before an activation ends (with Extend). */
  expiryWarningMinutes: number;
  /** Remind the approvers of a request that has waited this long, and again after as long. */
  reminderAfterMinutes: number;
  /** At most this many reminders per request. */
  maxReminders: number;
}

/** PIM warns 14 days and 1 day before an eligibility ends. */
const ELIGIBILITY_WARNINGS_DAYS = [14, 1];

/**
 * The loop's notices: warnings before an activation or an eligibility ends, reminders for
 * requests that wait, and the end of eligibilities. Each claims its rows with SKIP LOCKED and
 * marks them in the same transaction as the outbox rows, so a notice goes out once.
 */
export function createReminderService(deps: { db: Db; clock: Clock; settings: ReminderSettings }) {
  const { db, clock, settings } = deps;

  /** Writes outbox rows (no state change to audit: a notice only). */
  const notify = (tx: Tx, activationId: string | null, notices: Notice[]) =>
    notices.length === 0
      ? Promise.resolve()
      : tx.insert(notifications).values(
          notices.map((n) => ({
            recipientId: n.recipientId,
            kind: n.kind,
            activationId,
            data: n.data ?? {},
          })),
        );

  return {
    /** Warns requesters whose activation ends within the warning time (once per end). */
    async warnExpiring(limit = 200): Promise<number> {
      const now = clock();
      const soon = new Date(now.getTime() + settings.expiryWarningMinutes * MINUTE_MS);
      return db.transaction(async (tx) => {
        const due = await tx
          .select({
            id: activations.id,
            principalId: activations.principalId,
            endAt: activations.endAt,
            role: roles.name,
          })
          .from(activations)
          .innerJoin(roles, eq(roles.id, activations.roleId))
          .where(
            and(
              // Literally the predicate of the index activations_unwarned_end (a bound parameter
              // would not prove it): this runs every second, whatever the number of activations.
              sql`${activations.status} = 'active' and ${activations.kind} = 'activation' and ${activations.expiryWarnedAt} is null`,
              lte(activations.endAt, soon),
              gt(activations.endAt, now),
            ),
          )
          .orderBy(activations.endAt)
          .limit(limit)
          .for('update', { of: activations, skipLocked: true });
        for (const a of due) {
          await tx.update(activations).set({ expiryWarnedAt: now }).where(eq(activations.id, a.id));
          await notify(tx, a.id, [
            {
              recipientId: a.principalId,
              kind: 'expiry_warning',
              data: { role: a.role, endAt: a.endAt?.toISOString() },
            },
          ]);
        }
        return due.length;
      });
    },

    /** Reminds the approvers of requests still waiting, every `reminderAfterMinutes`, at most `maxReminders` times. */
    async remindApprovers(limit = 200): Promise<number> {
      const now = clock();
      const before = new Date(now.getTime() - settings.reminderAfterMinutes * MINUTE_MS);
      return db.transaction(async (tx) => {
        const due = await tx
          .select({ activation: activations, role: roles })
          .from(activations)
          .innerJoin(roles, eq(roles.id, activations.roleId))
          .where(
            and(
              eq(activations.status, 'pending_approval'),
              lt(activations.remindersSent, settings.maxReminders),
              // Waited long enough since it was made, or since the last reminder.
              or(
                and(isNull(activations.lastRemindedAt), lte(activations.createdAt, before)),
                lte(activations.lastRemindedAt, before),
              ),
            ),
          )
          .limit(limit)
          .for('update', { of: activations, skipLocked: true });
        if (due.length === 0) return 0;
        const admins = (await listAdmins(tx)).map((a) => a.id);
        for (const { activation: a, role } of due) {
          await tx
            .update(activations)
            .set({ remindersSent: a.remindersSent + 1, lastRemindedAt: now })
            .where(eq(activations.id, a.id));
          const approvers = approverIds(a.principalId, await namedApproverIds(tx, role), admins);
          await notify(
            tx,
            a.id,
            approvers.map((recipientId) => ({
              recipientId,
              kind: 'approval_reminder',
              data: { role: role.name },
            })),
          );
        }
        return due.length;
      });
    },

    /** Warns principals 14 days and 1 day before an eligibility ends. */
    async warnEligibilities(limit = 200): Promise<number> {
      const now = clock();
      let warned = 0;
      // Nearest first: an end first seen within 1 day gets the 1-day warning only.
      for (const [stage, days] of [...ELIGIBILITY_WARNINGS_DAYS.entries()].reverse()) {
        const horizon = new Date(now.getTime() + days * 1440 * MINUTE_MS);
        warned += await db.transaction(async (tx) => {
          const due = await tx
            .select({ eligibility: eligibilities, role: roles.name })
            .from(eligibilities)
            .innerJoin(roles, eq(roles.id, eligibilities.roleId))
            .where(
              and(
                lt(eligibilities.warningsSent, stage + 1),
                isNotNull(eligibilities.endAt),
                lte(eligibilities.endAt, horizon),
                gt(eligibilities.endAt, now),
              ),
            )
            .limit(limit)
            .for('update', { of: eligibilities, skipLocked: true });
          for (const { eligibility: e, role } of due) {
            await tx
              .update(eligibilities)
              .set({ warningsSent: stage + 1 })
              .where(eq(eligibilities.id, e.id));
            await notify(tx, null, [
              {
                recipientId: e.principalId,
                kind: 'eligibility_expiring',
                data: { role, endAt: e.endAt?.toISOString() },
              },
            ]);
          }
          return due.length;
        });
      }
      return warned;
    },

    /** Removes eligibilities whose end has passed (audited, the principal told). */
    async expireEligibilities(limit = 200): Promise<number> {
      const now = clock();
      return db.transaction(async (tx) => {
        const due = await tx
          .select({ eligibility: eligibilities, role: roles.name, email: principals.email })
          .from(eligibilities)
          .innerJoin(roles, eq(roles.id, eligibilities.roleId))
          .innerJoin(principals, eq(principals.id, eligibilities.principalId))
          .where(and(isNotNull(eligibilities.endAt), lte(eligibilities.endAt, now)))
          .limit(limit)
          .for('update', { of: eligibilities, skipLocked: true });
        for (const { eligibility: e, role, email } of due) {
          await tx.delete(eligibilities).where(eq(eligibilities.id, e.id));
          await recordChange(tx, {
            actor: SYSTEM,
            action: 'eligibility.expired',
            subjectType: 'eligibility',
            subjectId: `${email}/${role}`,
            at: now,
            data: { principal: email, role, endAt: e.endAt?.toISOString() ?? null },
            notify: [{ recipientId: e.principalId, kind: 'eligibility_expired', data: { role } }],
          });
        }
        return due.length;
      });
    },
  };
}

/** The reminder service's interface, for the loop. */
export type ReminderService = ReturnType<typeof createReminderService>;
