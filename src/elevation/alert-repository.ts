import type { Db, Tx } from '../db/client.ts';
import { and, eq, gt, gte, inArray, isNull, lte, ne, or, sql } from '../db/drizzle.ts';
import { activations } from './activation.sql.ts';
import { type AlertKind, alertSettings, alerts } from './alert.sql.ts';
import { type AlertSettings, alertSettingsSchema } from './alert-settings.ts';
import { formatDuration, MINUTE_MS } from './duration.ts';
import { principals } from './principal.sql.ts';
import { reconcileFindings } from './reconcile.sql.ts';
import { eligibilities, roles } from './role.sql.ts';

/** Queries of the security alerts; every function takes `db | tx`. */

/** An alert as the surfaces show it: its role by name. */
export interface AlertView {
  id: string;
  kind: AlertKind;
  roleId: string;
  role: string;
  subject: string;
  details: Record<string, unknown>;
  raisedAt: Date;
  resolvedAt: Date | null;
  resolvedBy: string | null;
  /** How it was resolved (`eligibility removed`, `the condition went away`…), once it is. */
  resolution: string | null;
}

/** A condition one pass saw: the alert it stands for, before it is stored. */
export interface AlertCondition {
  kind: AlertKind;
  roleId: string;
  role: string;
  subject: string;
  details: Record<string, unknown>;
}

/**
 * Every writer of alerts takes this lock first (evaluation passes, reconciliation, the actions), so
 * one never resolves what another has just raised from a newer look. The unique open-alert index
 * would keep duplicates out without it; the lock keeps the passes' views in order. Always taken
 * before the audit chain's lock, so the two never deadlock.
 */
export async function lockAlerts(tx: Tx): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext('elevate.alerts'))`);
}

/** The stored thresholds (with later defaults filled in), or the defaults. */
export async function loadAlertSettings(db: Db): Promise<AlertSettings> {
  const [row] = await db.select().from(alertSettings);
  return alertSettingsSchema.parse(row?.settings ?? {});
}

/** Open alerts, optionally of one kind, role and subject. */
export async function openAlerts(
  db: Db,
  where: { kind?: AlertKind; roleId?: string; subject?: string } = {},
): Promise<AlertView[]> {
  return selectAlerts(db).where(
    and(
      isNull(alerts.resolvedAt),
      where.kind ? eq(alerts.kind, where.kind) : undefined,
      where.roleId ? eq(alerts.roleId, where.roleId) : undefined,
      where.subject !== undefined ? eq(alerts.subject, where.subject) : undefined,
    ),
  );
}

/** Alerts with their role's name, to be filtered and ordered by the caller. */
export function selectAlerts(db: Db) {
  return db
    .select({
      id: alerts.id,
      kind: alerts.kind,
      roleId: alerts.roleId,
      role: roles.name,
      subject: alerts.subject,
      details: alerts.details,
      raisedAt: alerts.raisedAt,
      resolvedAt: alerts.resolvedAt,
      resolvedBy: alerts.resolvedBy,
      resolution: alerts.resolution,
    })
    .from(alerts)
    .innerJoin(roles, eq(roles.id, alerts.roleId))
    .$dynamic();
}

/** A timestamp parameter for raw SQL, the same on both drivers. */
const at = (date: Date) => sql`${date.toISOString()}::timestamptz`;

/**
 * Every alert condition that holds now, one set-based query per kind that is switched on. The
 * subject is a principal's email, a target account, or '' for the role as a whole.
 */
export async function currentConditions(tx: Db, s: AlertSettings, now: Date): Promise<AlertCondition[]> {
  const found: AlertCondition[] = [];
  const live = isNull(roles.archivedAt);

  if (s.frequentActivation.enabled) {
    const since = new Date(now.getTime() - s.frequentActivation.within * MINUTE_MS);
    const rows = await tx
      .select({
        roleId: activations.roleId,
        role: roles.name,
        subject: principals.email,
        count: sql<number>`count(*)::int`,
      })
      .from(activations)
      .innerJoin(principals, eq(principals.id, activations.principalId))
      .innerJoin(roles, eq(roles.id, activations.roleId))
      .where(and(live, eq(activations.kind, 'activation'), gte(activations.activatedAt, since)))
      .groupBy(activations.roleId, roles.name, principals.email)
      .having(sql`count(*) >= ${s.frequentActivation.activations}`);
    for (const r of rows) {
      found.push({
        kind: 'frequent_activation',
        ...r,
        details: { activations: r.count, within: formatDuration(s.frequentActivation.within) },
      });
    }
  }

  if (s.sensitiveRoleUnprotected.enabled) {
    const rows = await tx
      .select({ roleId: roles.id, role: roles.name })
      .from(roles)
      .where(
        and(
          live,
          sql`${roles.settings} ->> 'sensitive' = 'true'`,
          sql`coalesce(${roles.settings} ->> 'requireApproval', 'false') <> 'true'`,
          sql`coalesce(${roles.settings} ->> 'requireMfa', 'false') <> 'true'`,
        ),
      );
    for (const r of rows) found.push({ kind: 'sensitive_role_unprotected', ...r, subject: '', details: {} });
  }

  if (s.staleEligibility.enabled) {
    const cutoff = new Date(now.getTime() - s.staleEligibility.after * MINUTE_MS);
    const last = sql`max(${activations.activatedAt})`.mapWith(activations.activatedAt);
    const rows = await tx
      .select({
        roleId: eligibilities.roleId,
        role: roles.name,
        subject: principals.email,
        since: eligibilities.startAt,
        last,
      })
      .from(eligibilities)
      .innerJoin(principals, eq(principals.id, eligibilities.principalId))
      .innerJoin(roles, eq(roles.id, eligibilities.roleId))
      // Any granted activation of the role by the same principal counts as use.
      .leftJoin(
        activations,
        and(
          eq(activations.principalId, eligibilities.principalId),
          eq(activations.roleId, eligibilities.roleId),
          ne(activations.kind, 'extension'),
        ),
      )
      .where(
        and(
          live,
          lte(eligibilities.startAt, cutoff),
          or(isNull(eligibilities.endAt), gt(eligibilities.endAt, now)),
        ),
      )
      .groupBy(eligibilities.id, eligibilities.roleId, roles.name, principals.email, eligibilities.startAt)
      .having(
        sql`max(${activations.activatedAt}) is null or max(${activations.activatedAt}) <= ${at(cutoff)}`,
      );
    for (const r of rows) {
      found.push({
        kind: 'stale_eligibility',
        roleId: r.roleId,
        role: r.role,
        subject: r.subject,
        details: {
          lastActivated: r.last ? new Date(r.last).toISOString() : null,
          eligibleSince: r.since.toISOString(),
          after: formatDuration(s.staleEligibility.after),
        },
      });
    }
  }

  if (s.tooManyActive.enabled) {
    const rows = await tx
      .select({
        roleId: activations.roleId,
        role: roles.name,
        holders: sql<string[]>`array_agg(distinct ${principals.email} order by ${principals.email})`,
      })
      .from(activations)
      .innerJoin(principals, eq(principals.id, activations.principalId))
      .innerJoin(roles, eq(roles.id, activations.roleId))
      // Granted and not yet confirmed revoked: they hold it in the target.
      .where(
        and(live, ne(activations.kind, 'extension'), inArray(activations.status, ['active', 'revoking'])),
      )
      .groupBy(activations.roleId, roles.name)
      .having(sql`count(distinct ${activations.principalId}) > ${s.tooManyActive.holders}`);
    for (const r of rows) {
      found.push({
        kind: 'too_many_active',
        roleId: r.roleId,
        role: r.role,
        subject: '',
        details: { holders: r.holders, limit: s.tooManyActive.holders },
      });
    }
  }

  if (s.permanentActive.enabled) {
    const rows = await tx
      .select({
        roleId: activations.roleId,
        role: roles.name,
        holders: sql<string[]>`array_agg(distinct ${principals.email} order by ${principals.email})`,
      })
      .from(activations)
      .innerJoin(principals, eq(principals.id, activations.principalId))
      .innerJoin(roles, eq(roles.id, activations.roleId))
      .where(
        and(
          live,
          eq(activations.kind, 'assignment'),
          isNull(activations.endAt),
          inArray(activations.status, ['approved', 'activating', 'active']),
        ),
      )
      .groupBy(activations.roleId, roles.name)
      .having(sql`count(*) > ${s.permanentActive.assignments}`);
    for (const r of rows) {
      found.push({
        kind: 'permanent_active',
        roleId: r.roleId,
        role: r.role,
        subject: '',
        details: { holders: r.holders, limit: s.permanentActive.assignments },
      });
    }
  }

  if (s.unmanagedGrant.enabled) {
    const rows = await tx
      .select({
        roleId: reconcileFindings.roleId,
        role: roles.name,
        subject: reconcileFindings.account,
        foundAt: reconcileFindings.foundAt,
        revoking: sql<boolean>`coalesce(${roles.settings} ->> 'revokeUnmanagedGrants', 'false') = 'true'`,
      })
      .from(reconcileFindings)
      .innerJoin(roles, eq(roles.id, reconcileFindings.roleId))
      .where(live);
    for (const { foundAt, revoking, ...r } of rows) {
      found.push({ kind: 'unmanaged_grant', ...r, details: { foundAt: foundAt.toISOString(), revoking } });
    }
  }

  if (s.revokeFailing.enabled) {
    const rows = await tx
      .select({
        roleId: activations.roleId,
        role: roles.name,
        subject: principals.email,
        activationId: activations.id,
        attempts: activations.attempts,
        error: activations.lastError,
      })
      .from(activations)
      .innerJoin(principals, eq(principals.id, activations.principalId))
      .innerJoin(roles, eq(roles.id, activations.roleId))
      .where(and(eq(activations.status, 'revoking'), gte(activations.attempts, s.revokeFailing.attempts)));
    for (const { activationId, attempts, error, ...r } of rows) {
      found.push({ kind: 'revoke_failing', ...r, details: { activationId, attempts, error } });
    }
  }
  return found;
}
