import { canonicalJson } from '../audit/audit-log.ts';
import type { Clock } from '../clock.ts';
import type { Db, Tx } from '../db/client.ts';
import { and, desc, eq, inArray, isNull, sql } from '../db/drizzle.ts';
import { conflict, ElevateError, forbidden, invalid, notFound } from '../errors.ts';
import type { ProviderRegistry } from '../grants/registry.ts';
import { type Actor, SYSTEM } from './actor.ts';
import { type AdminContext, type Outcome, removeEligibility } from './admin-service.ts';
import { type AlertKind, alertSettings, alerts } from './alert.sql.ts';
import {
  type AlertCondition,
  type AlertView,
  currentConditions,
  loadAlertSettings,
  lockAlerts,
  openAlerts,
  selectAlerts,
} from './alert-repository.ts';
import { ALERT_DURATIONS, type AlertSettings, alertSettingsSchema } from './alert-settings.ts';
import { formatDuration } from './duration.ts';
import { listAdmins } from './principal-repository.ts';
import { reconcileFindings } from './reconcile.sql.ts';
import type { ReconcileService } from './reconcile-service.ts';
import { recordChange } from './record.ts';

/** What one evaluation pass did, for logs and tests. */
export interface EvaluateOutcome {
  raised: number;
  resolved: number;
}

/** What an admin's *Scan now* did: reconciliation, then an evaluation pass. */
export interface ScanOutcome extends EvaluateOutcome {
  /** Roles whose target was read, and holders found there with no activation for the first time. */
  reconciled: { roles: number; found: number };
  /** Why some targets could not be read, if any could not. */
  problem?: string;
}

/** The action each alert kind offers, besides going away by itself. */
export const ALERT_ACTIONS: Partial<Record<AlertKind, 'removeEligibility' | 'revoke'>> = {
  stale_eligibility: 'removeEligibility',
  unmanaged_grant: 'revoke',
};

/** Whether an alert kind is switched on. */
const isOn = (settings: AlertSettings, kind: AlertKind) => settings[SETTING_OF[kind]].enabled;

const SETTING_OF: Record<AlertKind, Exclude<keyof AlertSettings, 'channel'>> = {
  frequent_activation: 'frequentActivation',
  sensitive_role_unprotected: 'sensitiveRoleUnprotected',
  stale_eligibility: 'staleEligibility',
  too_many_active: 'tooManyActive',
  permanent_active: 'permanentActive',
  unmanaged_grant: 'unmanagedGrant',
  revoke_failing: 'revokeFailing',
};

const key = (c: { kind: string; roleId: string; subject: string }) => `${c.kind}\n${c.roleId}\n${c.subject}`;

/**
 * Stores the conditions that have no open alert yet; each new one is audited and an admin notice
 * (`alert_raised`) queued, in the caller's transaction. Conflicts on the open-alert index are
 * skipped, so overlapping callers raise (and notify) each alert once. Call after `lockAlerts`.
 */
export async function raiseAlerts(tx: Tx, conditions: AlertCondition[], now: Date): Promise<AlertView[]> {
  if (conditions.length === 0) return [];
  const inserted = await tx
    .insert(alerts)
    .values(conditions.map((c) => ({ ...c, raisedAt: now })))
    .onConflictDoNothing({
      target: [alerts.kind, alerts.roleId, alerts.subject],
      where: sql`resolved_at is null`,
    })
    .returning();
  if (inserted.length === 0) return [];
  const admins = await listAdmins(tx);
  const byKey = new Map(conditions.map((c) => [key(c), c]));
  const raised: AlertView[] = [];
  for (const row of inserted) {
    const role = byKey.get(key(row))?.role ?? '';
    const data = { alertId: row.id, kind: row.kind, role, subject: row.subject, details: row.details };
    await recordChange(tx, {
      actor: SYSTEM,
      action: 'alert.raised',
      subjectType: 'role',
      subjectId: role,
      at: now,
      data,
      notify: admins.map((a) => ({ recipientId: a.id, kind: 'alert_raised', data })),
    });
    raised.push({ ...row, role });
  }
  return raised;
}

/**
 * Closes open alerts by id, audited, in the caller's transaction; returns those it closed. The
 * admins' chat copies of each are updated to show who resolved it and how (outbox kind
 * `alert_resolved`), so no stale button is left on them.
 */
async function resolveAlerts(
  tx: Tx,
  open: AlertView[],
  now: Date,
  actor: Actor,
  outcome: string,
): Promise<AlertView[]> {
  if (open.length === 0) return [];
  const closed = await tx
    .update(alerts)
    .set({ resolvedAt: now, resolvedBy: actor.label, resolution: outcome })
    .where(
      and(
        inArray(
          alerts.id,
          open.map((a) => a.id),
        ),
        isNull(alerts.resolvedAt),
      ),
    )
    .returning();
  const roleOf = new Map(open.map((a) => [a.id, a.role]));
  const admins = closed.length > 0 ? await listAdmins(tx) : [];
  for (const row of closed) {
    const role = roleOf.get(row.id) ?? '';
    const data = { alertId: row.id, kind: row.kind, role, subject: row.subject, outcome };
    await recordChange(tx, {
      actor,
      action: 'alert.resolved',
      subjectType: 'role',
      subjectId: role,
      at: now,
      data,
      notify: admins.map((a) => ({ recipientId: a.id, kind: 'alert_resolved', data })),
    });
  }
  return closed.map((row) => ({ ...row, role: roleOf.get(row.id) ?? '' }));
}

/**
 * Reconciliation's way in: an unmanaged holder it found is raised as an `unmanaged_grant` alert
 * (unless switched off), one that went away is resolved — in reconciliation's own transaction, so
 * admins hear at once and through the same alert as every other.
 */
export async function syncUnmanagedGrant(
  tx: Tx,
  input: {
    roleId: string;
    role: string;
    account: string;
    present: boolean;
    details?: Record<string, unknown>;
  },
  now: Date,
): Promise<void> {
  await lockAlerts(tx);
  if (input.present) {
    if (!isOn(await loadAlertSettings(tx), 'unmanaged_grant')) return;
    const condition = { kind: 'unmanaged_grant' as const, roleId: input.roleId, role: input.role };
    await raiseAlerts(tx, [{ ...condition, subject: input.account, details: input.details ?? {} }], now);
    return;
  }
  const open = await openAlerts(tx, {
    kind: 'unmanaged_grant',
    roleId: input.roleId,
    subject: input.account,
  });
  await resolveAlerts(tx, open, now, SYSTEM, 'the holder is gone from the target');
}

/**
 * Security alerts (PIM's alert list): `evaluate` raises what holds and resolves what went away;
 * admins act on an alert with `removeEligibility` (stale eligibility) or `revoke` (unmanaged grant).
 */
export function createAlertService(deps: {
  db: Db;
  providers: ProviderRegistry;
  clock: Clock;
  /** Reconciliation: its revoke takes back a grant held outside Elevate; a scan runs it now. */
  reconcile: Pick<ReconcileService, 'revokeUnmanaged' | 'reconcileAll'>;
}) {
  const { db, clock } = deps;

  /** The open alert `id` of `kind`, locked by `lockAlerts`; tells why when it cannot be acted on. */
  async function actionable(tx: Tx, id: string, kind: AlertKind, verb: string): Promise<AlertView> {
    const alert = await findAlert(tx, id);
    if (alert.resolvedAt) {
      throw conflict(
        `This alert was already resolved by ${alert.resolvedBy ?? 'system'} at ${alert.resolvedAt.toISOString()}.`,
      );
    }
    if (alert.kind !== kind)
      throw invalid(`A ${alert.kind.replaceAll('_', ' ')} alert cannot be acted on with ${verb}.`);
    return alert;
  }

  async function findAlert(tx: Db, id: string): Promise<AlertView> {
    const [alert] = UUID.test(id) ? await selectAlerts(tx).where(eq(alerts.id, id)) : [];
    if (!alert) throw notFound(`There is no alert with id ${id}.`);
    return alert;
  }

  /** Refuses a non-admin, with the refusal in the audit trail; nothing else changes. */
  async function authorize(actor: Actor, alertId: string, action: string): Promise<void> {
    if (actor.isAdmin) return;
    await db.transaction(async (tx) => {
      const [alert] = UUID.test(alertId) ? await selectAlerts(tx).where(eq(alerts.id, alertId)) : [];
      await recordChange(tx, {
        actor,
        action: 'alert.action_refused',
        subjectType: 'role',
        subjectId: alert?.role ?? alertId,
        at: clock(),
        data: { alertId, action, reason: 'not an admin' },
      });
    });
    throw forbidden('Only an Elevate admin can act on alerts.');
  }

  /**
   * One pass over every alert condition: new ones raised (audited, admins told), open alerts
   * whose condition is gone resolved. Passes on several replicas run one after another (the
   * alerts lock); the open-alert index keeps each alert single in any case.
   */
  async function evaluate(): Promise<EvaluateOutcome> {
    return db.transaction(async (tx) => {
      await lockAlerts(tx);
      const now = clock();
      const seen = await currentConditions(tx, await loadAlertSettings(tx), now);
      const raised = await raiseAlerts(tx, seen, now);
      const holding = new Set(seen.map(key));
      const gone = (await openAlerts(tx)).filter((a) => !holding.has(key(a)));
      const resolved = await resolveAlerts(tx, gone, now, SYSTEM, 'the condition went away');
      return { raised: raised.length, resolved: resolved.length };
    });
  }

  return {
    evaluate,

    /**
     * *Scan now* (admins only; PIM's alert refresh): reconciliation reads every listable target at
     * once, even within the 5-minute schedule's lease, then an evaluation pass runs. The request
     * is audited (`alerts.scan_requested`); what it finds is raised and told as on the schedule.
     * A target that cannot be read is reported in `problem`, the others still count.
     */
    async scan(input: { actor: Actor }): Promise<ScanOutcome> {
      if (!input.actor.isAdmin) throw forbidden('Only an Elevate admin can scan for alerts.');
      await db.transaction(async (tx) => {
        await recordChange(tx, {
          actor: input.actor,
          action: 'alerts.scan_requested',
          subjectType: 'policy',
          subjectId: 'alerts',
          at: clock(),
        });
      });
      let reconciled = { roles: 0, found: 0 };
      let problem: string | undefined;
      try {
        reconciled = await deps.reconcile.reconcileAll({ ignoreLeases: true });
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
      return { reconciled, ...(problem ? { problem } : {}), ...(await evaluate()) };
    },

    /** Open alerts, newest first; with `all`, resolved ones too (the latest 200). */
    async list(options: { all?: boolean } = {}): Promise<AlertView[]> {
      return selectAlerts(db)
        .where(options.all ? undefined : isNull(alerts.resolvedAt))
        .orderBy(desc(alerts.raisedAt))
        .limit(200);
    },

    /** One alert by id, resolved or not (not_found otherwise). */
    get: (id: string) => findAlert(db, id),

    /**
     * *Remove eligibility* on a stale eligibility alert (admins only): the eligibility is removed
     * through the admin core and the alert resolved by the actor, in one transaction.
     */
    async removeEligibility(input: { actor: Actor; alertId: string }): Promise<AlertView> {
      await authorize(input.actor, input.alertId, 'removeEligibility');
      return db.transaction(async (tx) => {
        await lockAlerts(tx);
        const alert = await actionable(tx, input.alertId, 'stale_eligibility', 'Remove eligibility');
        const ctx: AdminContext = { tx, actor: input.actor, now: clock(), providers: deps.providers };
        let outcome: Outcome = { lines: [] };
        try {
          outcome = await removeEligibility(ctx, { email: alert.subject, roleName: alert.role });
        } catch (error) {
          // Already gone (removed by hand, role archived): the alert is over all the same.
          if (!(error instanceof ElevateError && error.code === 'not_found')) throw error;
        }
        const what = outcome.lines.length > 0 ? 'eligibility removed' : 'eligibility was already gone';
        const [resolved] = await resolveAlerts(tx, [alert], ctx.now, input.actor, what);
        return resolved ?? alert;
      });
    },

    /**
     * *Revoke* on an unmanaged grant alert (admins only): reconciliation takes the grant back
     * through the role's provider (after the check, outside any transaction); once the provider
     * confirms, the finding and the alert are closed by the actor. A refusal leaves the alert open.
     */
    async revoke(input: { actor: Actor; alertId: string }): Promise<AlertView> {
      await authorize(input.actor, input.alertId, 'revoke');
      const alert = await db.transaction(async (tx) => {
        await lockAlerts(tx);
        return actionable(tx, input.alertId, 'unmanaged_grant', 'Revoke');
      });
      const error = await deps.reconcile.revokeUnmanaged({
        roleId: alert.roleId,
        account: alert.subject,
        actor: input.actor,
      });
      if (error !== null) {
        throw new ElevateError(
          'unavailable',
          `Revoking ${alert.role} from ${alert.subject} failed: ${error}`,
        );
      }
      return db.transaction(async (tx) => {
        await lockAlerts(tx);
        const now = clock();
        await tx
          .delete(reconcileFindings)
          .where(
            and(eq(reconcileFindings.roleId, alert.roleId), eq(reconcileFindings.account, alert.subject)),
          );
        const [resolved] = await resolveAlerts(tx, [alert], now, input.actor, 'revoked in the target');
        return resolved ?? (await findAlert(tx, alert.id));
      });
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The policy file's `alerts:` section (admins only): stores the thresholds, with the diff lines
 * (`~ alerts: staleEligibility.after 30d → 60d`); audited when anything changes.
 */
export async function saveAlertSettings(ctx: AdminContext, input: AlertSettings): Promise<Outcome> {
  if (!ctx.actor.isAdmin) throw forbidden('Only an Elevate admin can change the alert thresholds.');
  const wanted = alertSettingsSchema.parse(input);
  const was = await loadAlertSettings(ctx.tx);
  const lines: string[] = [];
  for (const name of Object.keys(wanted) as (keyof AlertSettings)[]) {
    const before = was[name] as Record<string, unknown>;
    const after = wanted[name] as Record<string, unknown>;
    // Both sides' keys: an optional one (a channel) may be on one side only.
    for (const field of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (canonicalJson(before[field]) === canonicalJson(after[field])) continue;
      const show = (v: unknown) =>
        v === undefined
          ? '(none)'
          : ALERT_DURATIONS.has(field) && typeof v === 'number'
            ? formatDuration(v)
            : String(v);
      lines.push(`~ alerts: ${name}.${field} ${show(before[field])} → ${show(after[field])}`);
    }
  }
  if (lines.length === 0) return { lines };
  await ctx.tx
    .insert(alertSettings)
    .values({ settings: wanted, updatedAt: ctx.now })
    .onConflictDoUpdate({ target: alertSettings.id, set: { settings: wanted, updatedAt: ctx.now } });
  await recordChange(ctx.tx, {
    actor: ctx.actor,
    action: 'alerts.settings_changed',
    subjectType: 'policy',
    subjectId: 'alerts',
    at: ctx.now,
    data: { changes: lines, settings: wanted },
  });
  return { lines };
}

/** An alert's name as people read it (PIM's wording where PIM has the alert). */
export const ALERT_TITLES: Record<AlertKind, string> = {
  frequent_activation: 'Role activated too frequently',
  sensitive_role_unprotected: 'Sensitive role without approval or MFA',
  stale_eligibility: 'Eligibility not used',
  too_many_active: 'Too many active holders',
  permanent_active: 'Permanent active assignment',
  unmanaged_grant: 'Role assigned outside Elevate',
  revoke_failing: 'Revoke keeps failing',
};

/** One plain sentence saying what an alert found, from its stored details. */
export function alertSummary(a: Pick<AlertView, 'kind' | 'role' | 'subject' | 'details'>): string {
  const d = a.details;
  const list = (v: unknown) => (Array.isArray(v) ? v.join(', ') : '');
  switch (a.kind) {
    case 'frequent_activation':
      return `${a.subject} activated ${a.role} ${String(d.activations)} times within ${String(d.within)}`;
    case 'sensitive_role_unprotected':
      return `${a.role} is sensitive but activates without approval and without MFA`;
    case 'stale_eligibility':
      return `${a.subject} has not activated ${a.role} for ${String(d.after)} or more (last: ${typeof d.lastActivated === 'string' ? d.lastActivated.slice(0, 10) : 'never'})`;
    case 'too_many_active':
      return `more than ${String(d.limit)} hold ${a.role} at once: ${list(d.holders)}`;
    case 'permanent_active':
      return `${a.role} has permanent active assignments: ${list(d.holders)}`;
    case 'unmanaged_grant':
      return `${a.subject} holds ${a.role} in the target with no activation in Elevate${d.revoking ? ' (the role revokes such grants)' : ''}`;
    case 'revoke_failing':
      return `revoking ${a.role} from ${a.subject} failed ${String(d.attempts)} times${d.error ? `: ${String(d.error)}` : ''}`;
  }
}

/** The alert service's interface, for the surfaces and the loop. */
export type AlertService = ReturnType<typeof createAlertService>;
