import { and, eq, inArray, notInArray } from 'drizzle-orm';
import { canonicalJson } from '../audit/audit-log.ts';
import type { Clock } from '../clock.ts';
import type { Db, Tx } from '../db/client.ts';
import { conflict, forbidden, invalid, notFound } from '../errors.ts';
import type { ProviderRegistry } from '../grants/registry.ts';
import { findOpenActivation, insertActivation, transition } from './activation-repository.ts';
import type { Actor } from './actor.ts';
import { MINUTE_MS } from './duration.ts';
import { IN_FLIGHT_LEASE_MS, statusOnceApproved } from './lifecycle.ts';
import { checkAssignmentWindow, checkJustification } from './policy.ts';
import { principals } from './principal.sql.ts';
import { ensurePrincipal, findPrincipalByEmail } from './principal-repository.ts';
import { recordActivationChange, recordChange } from './record.ts';
import { eligibilities, roles } from './role.sql.ts';
import { findEligibility, getRoleByName, type Role } from './role-repository.ts';
import { type RoleSettingsInput, roleSettingsSchema } from './role-settings.ts';

/** What every admin operation runs with: one open transaction, the acting admin, one instant. */
export interface AdminContext {
  tx: Tx;
  actor: Actor;
  now: Date;
  providers: ProviderRegistry;
}

/** What an operation did; `settle` names an activation whose grant/revoke must follow the commit. */
export interface Outcome {
  change: 'created' | 'updated' | 'removed' | 'unchanged';
  settle?: string;
}

/** A role as an admin describes it. Omitted settings take PIM's defaults. */
export interface RoleInput {
  name: string;
  description?: string;
  scope?: string;
  provider?: { type: string } & Record<string, unknown>;
  settings?: RoleSettingsInput;
}

/** Who and what an eligibility or active assignment is about, and when. */
export interface AssignmentInput {
  email: string;
  roleName: string;
  startAt?: Date;
  /** null: permanent (if the role allows it). */
  endAt: Date | null;
  justification?: string;
}

export const ROLE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Problems with a role description as `path: message` lines; empty when it is fine. */
export function roleProblems(input: RoleInput, providers: ProviderRegistry): string[] {
  const problems: string[] = [];
  if (!ROLE_NAME.test(input.name)) {
    problems.push(`name: "${input.name}" must be lower-case letters, digits and dashes (at most 63)`);
  }
  const { type, ...config } = input.provider ?? { type: 'none' };
  problems.push(...providers.validate(type, config).map((p) => `provider.${p}`));
  const settings = roleSettingsSchema.safeParse(input.settings ?? {});
  if (!settings.success) {
    problems.push(
      ...settings.error.issues.map((issue) =>
        issue.code === 'unrecognized_keys'
          ? `settings: ${issue.keys.join(', ')} is not a role setting`
          : `settings.${issue.path.join('.')}: ${issue.message}`,
      ),
    );
  }
  return problems;
}

function requireAdmin(actor: Actor): void {
  if (!actor.isAdmin) throw forbidden('Only an Elevate admin can change roles, eligibility and assignments.');
}

/** Creates the role or brings it in line with `input` (un-archiving it); audited when it changes. */
export async function saveRole(ctx: AdminContext, input: RoleInput): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const problems = roleProblems(input, ctx.providers);
  if (problems.length > 0) throw invalid(problems.join('; '));
  const { type, ...providerConfig } = input.provider ?? { type: 'none' };
  const settings = roleSettingsSchema.parse(input.settings ?? {});
  // The approvers are principals: make sure each exists so decisions can name them.
  for (const email of settings.approvers) await ensurePrincipal(ctx.tx, email);
  const wanted = {
    description: input.description ?? '',
    scope: input.scope ?? '',
    providerType: type,
    providerConfig,
    settings,
  };
  const [existing] = await ctx.tx.select().from(roles).where(eq(roles.name, input.name));
  if (existing && !existing.archivedAt && sameRole(existing, wanted)) return { change: 'unchanged' };
  const [role] = existing
    ? await ctx.tx
        .update(roles)
        .set({ ...wanted, archivedAt: null, updatedAt: ctx.now })
        .where(eq(roles.id, existing.id))
        .returning()
    : await ctx.tx
        .insert(roles)
        .values({ name: input.name, ...wanted, createdAt: ctx.now, updatedAt: ctx.now })
        .returning();
  if (!role) throw new Error(`role ${input.name} was not written`);
  await recordChange(ctx.tx, {
    actor: ctx.actor,
    action: existing ? 'role.updated' : 'role.created',
    subjectType: 'role',
    subjectId: role.name,
    at: ctx.now,
    data: { ...wanted, settings: { ...settings } },
  });
  return { change: existing ? 'updated' : 'created' };
}

/** Archives a role: it can no longer be requested; running activations run out as usual. */
export async function archiveRole(ctx: AdminContext, name: string): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const role = await getRoleByName(ctx.tx, name);
  await ctx.tx.update(roles).set({ archivedAt: ctx.now, updatedAt: ctx.now }).where(eq(roles.id, role.id));
  await recordChange(ctx.tx, {
    actor: ctx.actor,
    action: 'role.archived',
    subjectType: 'role',
    subjectId: role.name,
    at: ctx.now,
  });
  return { change: 'removed' };
}

/** Makes exactly these emails the bot admins. */
export async function setAdmins(
  ctx: AdminContext,
  emails: string[],
): Promise<{ added: string[]; removed: string[] }> {
  requireAdmin(ctx.actor);
  const wanted: string[] = [];
  for (const email of emails) wanted.push((await ensurePrincipal(ctx.tx, email)).email);
  const added = await ctx.tx
    .update(principals)
    .set({ isAdmin: true })
    .where(and(inArray(principals.email, wanted), eq(principals.isAdmin, false)))
    .returning({ email: principals.email });
  const removed = await ctx.tx
    .update(principals)
    .set({ isAdmin: false })
    .where(
      and(wanted.length ? notInArray(principals.email, wanted) : undefined, eq(principals.isAdmin, true)),
    )
    .returning({ email: principals.email });
  const result = { added: added.map((r) => r.email), removed: removed.map((r) => r.email) };
  if (result.added.length || result.removed.length) {
    await recordChange(ctx.tx, {
      actor: ctx.actor,
      action: 'admins.changed',
      subjectType: 'principal',
      subjectId: 'admins',
      at: ctx.now,
      data: result,
    });
  }
  return result;
}

/** Makes a principal eligible for a role in a window (PIM's rules on permanence and length). */
export async function assignEligibility(ctx: AdminContext, input: AssignmentInput): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const role = await getRoleByName(ctx.tx, input.roleName);
  const startAt = input.startAt ?? ctx.now;
  checkAssignmentWindow(role, 'eligibility', { startAt, endAt: input.endAt });
  const principal = await ensurePrincipal(ctx.tx, input.email);
  const existing = await findEligibility(ctx.tx, principal.id, role.id);
  const justification = (input.justification ?? '').trim();
  // Re-assigning keeps the original start unless a start is given: apply stays idempotent.
  const effectiveStart = input.startAt ?? existing?.startAt ?? startAt;
  if (existing && sameTime(existing.startAt, effectiveStart) && sameTime(existing.endAt, input.endAt)) {
    return { change: 'unchanged' };
  }
  const values = { startAt: effectiveStart, endAt: input.endAt, justification, createdBy: ctx.actor.label };
  if (existing) {
    await ctx.tx.update(eligibilities).set(values).where(eq(eligibilities.id, existing.id));
  } else {
    await ctx.tx
      .insert(eligibilities)
      .values({ principalId: principal.id, roleId: role.id, ...values, createdAt: ctx.now });
  }
  await recordChange(ctx.tx, {
    actor: ctx.actor,
    action: existing ? 'eligibility.updated' : 'eligibility.assigned',
    subjectType: 'eligibility',
    subjectId: `${principal.email}/${role.name}`,
    at: ctx.now,
    data: {
      principal: principal.email,
      role: role.name,
      startAt: effectiveStart.toISOString(),
      endAt: input.endAt?.toISOString() ?? null,
      justification,
    },
    notify: existing
      ? []
      : [{ recipientId: principal.id, kind: 'eligibility_assigned', data: { role: role.name } }],
  });
  return { change: existing ? 'updated' : 'created' };
}

/** Removes an eligibility; an activation already running is left to run out. */
export async function removeEligibility(
  ctx: AdminContext,
  input: { email: string; roleName: string },
): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const role = await getRoleByName(ctx.tx, input.roleName);
  const principal = await findPrincipalByEmail(ctx.tx, input.email);
  const existing = principal && (await findEligibility(ctx.tx, principal.id, role.id));
  if (!principal || !existing) throw notFound(`${input.email} is not eligible for ${role.name}.`);
  await ctx.tx.delete(eligibilities).where(eq(eligibilities.id, existing.id));
  await recordChange(ctx.tx, {
    actor: ctx.actor,
    action: 'eligibility.removed',
    subjectType: 'eligibility',
    subjectId: `${principal.email}/${role.name}`,
    at: ctx.now,
    data: { principal: principal.email, role: role.name },
    notify: [{ recipientId: principal.id, kind: 'eligibility_removed', data: { role: role.name } }],
  });
  return { change: 'removed' };
}

/** Grants a role directly for a window (PIM's active assignment); the grant follows the commit. */
export async function assignActive(ctx: AdminContext, input: AssignmentInput): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const role = await getRoleByName(ctx.tx, input.roleName);
  const startAt = input.startAt && input.startAt > ctx.now ? input.startAt : ctx.now;
  checkAssignmentWindow(role, 'active assignment', { startAt, endAt: input.endAt });
  if (input.endAt && input.endAt <= ctx.now)
    throw invalid('The active assignment must end in the future.', 'end');
  const justification = checkJustification(role, input.justification);
  const principal = await ensurePrincipal(ctx.tx, input.email);
  const open = await findOpenActivation(ctx.tx, principal.id, role.id);
  if (open?.kind === 'assignment' && sameTime(open.endAt, input.endAt)) return { change: 'unchanged' };
  if (open?.kind === 'assignment' && open.status === 'active') {
    // Same grant, new end: move the end, no provider call needed.
    await transition(ctx.tx, open.id, ['active'], 'active', {
      endAt: input.endAt,
      nextAttemptAt: input.endAt,
      updatedAt: ctx.now,
    });
    await auditAssignment(ctx, 'assignment.updated', open.id, principal.email, role, input.endAt);
    return { change: 'updated' };
  }
  if (open) {
    throw conflict(`${principal.email} already has an open ${open.kind} of ${role.name} (${open.status}).`);
  }
  const status = statusOnceApproved(startAt, ctx.now);
  const activation = await insertActivation(
    ctx.tx,
    {
      kind: 'assignment',
      principalId: principal.id,
      roleId: role.id,
      status,
      durationMinutes: input.endAt
        ? Math.ceil((input.endAt.getTime() - startAt.getTime()) / MINUTE_MS)
        : null,
      startAt,
      endAt: input.endAt,
      justification,
      requestedBy: ctx.actor.label,
      nextAttemptAt: status === 'approved' ? startAt : new Date(ctx.now.getTime() + IN_FLIGHT_LEASE_MS),
      createdAt: ctx.now,
      updatedAt: ctx.now,
    },
    role.name,
  );
  await auditAssignment(
    ctx,
    'assignment.created',
    activation.id,
    principal.email,
    role,
    input.endAt,
    principal.id,
  );
  return { change: 'created', settle: activation.id };
}

/** Ends a principal's active assignment of a role: revoked if granted, cancelled if scheduled. */
export async function removeActive(
  ctx: AdminContext,
  input: { email: string; roleName: string },
): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const role = await getRoleByName(ctx.tx, input.roleName);
  const principal = await findPrincipalByEmail(ctx.tx, input.email);
  const open = principal && (await findOpenActivation(ctx.tx, principal.id, role.id));
  if (!principal || !open || open.kind !== 'assignment') {
    throw notFound(`${input.email} has no active assignment of ${role.name}.`);
  }
  const reason = `assignment removed by ${ctx.actor.label}`;
  const moved =
    open.status === 'active'
      ? await transition(ctx.tx, open.id, ['active'], 'revoking', {
          endReason: reason,
          attempts: 0,
          nextAttemptAt: new Date(ctx.now.getTime() + IN_FLIGHT_LEASE_MS),
          updatedAt: ctx.now,
        })
      : await transition(ctx.tx, open.id, ['approved'], 'cancelled', {
          endReason: reason,
          endedAt: ctx.now,
          updatedAt: ctx.now,
        });
  if (!moved)
    throw conflict(
      `The assignment of ${role.name} to ${principal.email} is ${open.status}; try again shortly.`,
    );
  await auditAssignment(ctx, 'assignment.removed', open.id, principal.email, role, open.endAt);
  return { change: 'removed', settle: moved.status === 'revoking' ? open.id : undefined };
}

async function auditAssignment(
  ctx: AdminContext,
  action: string,
  activationId: string,
  email: string,
  role: Role,
  endAt: Date | null,
  notifyId?: string,
) {
  await recordActivationChange(ctx.tx, activationId, {
    actor: ctx.actor,
    action,
    at: ctx.now,
    data: { principal: email, role: role.name, endAt: endAt?.toISOString() ?? null },
    notify: notifyId
      ? [{ recipientId: notifyId, kind: 'assignment_created', data: { role: role.name } }]
      : [],
  });
}

function sameTime(a: Date | null | undefined, b: Date | null | undefined): boolean {
  return (a?.getTime() ?? null) === (b?.getTime() ?? null);
}

function sameRole(
  role: Role,
  wanted: Omit<Role, 'id' | 'name' | 'archivedAt' | 'createdAt' | 'updatedAt'>,
): boolean {
  return (
    role.description === wanted.description &&
    role.scope === wanted.scope &&
    role.providerType === wanted.providerType &&
    canonicalJson(role.providerConfig) === canonicalJson(wanted.providerConfig) &&
    canonicalJson(role.settings) === canonicalJson(wanted.settings)
  );
}

/** The admin operations, each in its own transaction, plus `batch` for all-or-nothing sets. */
export function createAdminService(deps: {
  db: Db;
  providers: ProviderRegistry;
  clock: Clock;
  /** Finishes a grant/revoke after commit (the activation service's `settle`). */
  settle: (activationId: string) => Promise<unknown>;
}) {
  /** Runs `work` in one transaction, then settles every grant/revoke it started. */
  async function batch<T>(
    actor: Actor,
    work: (ctx: AdminContext) => Promise<T>,
    settleIds?: (result: T) => string[],
  ) {
    const result = await deps.db.transaction((tx) =>
      work({ tx, actor, now: deps.clock(), providers: deps.providers }),
    );
    for (const id of settleIds?.(result) ?? []) await deps.settle(id);
    return result;
  }
  const one =
    <I>(op: (ctx: AdminContext, input: I) => Promise<Outcome>) =>
    (actor: Actor, input: I) =>
      batch(
        actor,
        (ctx) => op(ctx, input),
        (outcome) => (outcome.settle ? [outcome.settle] : []),
      );
  return {
    saveRole: one(saveRole),
    archiveRole: one(archiveRole),
    assignEligibility: one(assignEligibility),
    removeEligibility: one(removeEligibility),
    assignActive: one(assignActive),
    removeActive: one(removeActive),
    setAdmins: (actor: Actor, emails: string[]) => batch(actor, (ctx) => setAdmins(ctx, emails)),
    batch,
  };
}

/** The admin service's interface, for the surfaces that call it. */
export type AdminService = ReturnType<typeof createAdminService>;
