import { canonicalJson } from '../audit/audit-log.ts';
import type { Clock } from '../clock.ts';
import type { Db, Tx } from '../db/client.ts';
import { and, eq, inArray, notInArray } from '../db/drizzle.ts';
import { conflict, forbidden, invalid, notFound } from '../errors.ts';
import type { ProviderRegistry } from '../grants/registry.ts';
import {
  type Activation,
  findOpenActivation,
  insertActivation,
  transition,
} from './activation-repository.ts';
import type { Actor } from './actor.ts';
import { formatDuration, MINUTE_MS } from './duration.ts';
import { IN_FLIGHT_LEASE_MS, statusOnceApproved } from './lifecycle.ts';
import { checkAssignmentWindow, checkJustification, cleanText } from './policy.ts';
import { principals } from './principal.sql.ts';
import { ensurePrincipal, findPrincipalByEmail } from './principal-repository.ts';
import { recordActivationChange, recordChange } from './record.ts';
import { eligibilities, roles } from './role.sql.ts';
import { findEligibility, getRoleByName, type Role } from './role-repository.ts';
import { DURATION_SETTINGS, type RoleSettingsInput, roleSettingsSchema } from './role-settings.ts';

/** What every admin operation runs with: one open transaction, the acting admin, one instant. */
export interface AdminContext {
  tx: Tx;
  actor: Actor;
  now: Date;
  providers: ProviderRegistry;
  /** The in-flight lease of the grants and revokes an operation starts (ELEVATE_IN_FLIGHT_LEASE; default IN_FLIGHT_LEASE_MS). */
  leaseMs?: number;
}

const leaseOf = (ctx: AdminContext) => ctx.leaseMs ?? IN_FLIGHT_LEASE_MS;

/**
 * What an operation changed, as diff lines (`+ role x`, `~ role x: maxDuration 8h → 2h`,
 * `- eligibility a@b → x`); none when nothing needed to change. `settle` names an activation
 * whose grant or revoke must follow the commit.
 */
export interface Outcome {
  lines: string[];
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
  /** Omitted: now for a new one; an existing one keeps its start. */
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
  const wanted = {
    description: cleanText(input.description),
    scope: cleanText(input.scope),
    providerType: type,
    providerConfig,
    settings: roleSettingsSchema.parse(input.settings ?? {}),
  };
  const [existing] = await ctx.tx.select().from(roles).where(eq(roles.name, input.name));
  const lines = !existing
    ? [`+ role ${input.name}`]
    : existing.archivedAt
      ? [`+ role ${input.name} (restored from archive)`, ...roleDiff(existing, wanted)]
      : roleDiff(existing, wanted);
  if (lines.length === 0) return { lines };
  // The approvers are principals: make sure each exists so decisions can name them.
  for (const email of wanted.settings.approvers) await ensurePrincipal(ctx.tx, email);
  if (existing) {
    await ctx.tx
      .update(roles)
      .set({ ...wanted, archivedAt: null, updatedAt: ctx.now })
      .where(eq(roles.id, existing.id));
  } else {
    await ctx.tx
      .insert(roles)
      .values({ name: input.name, ...wanted, createdAt: ctx.now, updatedAt: ctx.now });
  }
  await recordChange(ctx.tx, {
    actor: ctx.actor,
    action: existing ? 'role.updated' : 'role.created',
    subjectType: 'role',
    subjectId: input.name,
    at: ctx.now,
    data: { changes: lines, ...wanted },
  });
  return { lines };
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
  return { lines: [`- role ${role.name} (archived)`] };
}

/** Makes exactly these emails the bot admins. */
export async function setAdmins(ctx: AdminContext, emails: string[]): Promise<Outcome> {
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
  const lines = [
    ...added.map((r) => `+ admin ${r.email}`),
    ...removed.map((r) => `- admin ${r.email}`),
  ].sort();
  if (lines.length > 0) {
    await recordChange(ctx.tx, {
      actor: ctx.actor,
      action: 'admins.changed',
      subjectType: 'principal',
      subjectId: 'admins',
      at: ctx.now,
      data: { added: added.map((r) => r.email), removed: removed.map((r) => r.email) },
    });
  }
  return { lines };
}

/** A principal's account names per grant provider type (policy `principals[].accounts`). */
export interface AccountsInput {
  email: string;
  accounts: Record<string, string>;
}

/**
 * Makes exactly these principals have account mappings (`{ postgres: carol }`): a provider uses
 * the mapped name instead of deriving one from the email; principals not listed lose theirs.
 */
export async function setAccounts(ctx: AdminContext, entries: AccountsInput[]): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const wanted = new Map<string, Record<string, string>>();
  for (const entry of entries) wanted.set((await ensurePrincipal(ctx.tx, entry.email)).email, entry.accounts);
  const mapped = await ctx.tx
    .select({ id: principals.id, email: principals.email, accounts: principals.accounts })
    .from(principals);
  const lines: string[] = [];
  for (const principal of mapped) {
    const accounts = wanted.get(principal.email) ?? {};
    if (canonicalJson(accounts) === canonicalJson(principal.accounts)) continue;
    await ctx.tx.update(principals).set({ accounts }).where(eq(principals.id, principal.id));
    lines.push(
      `~ accounts of ${principal.email}: ${accountsText(principal.accounts)} → ${accountsText(accounts)}`,
    );
  }
  if (lines.length > 0) {
    await recordChange(ctx.tx, {
      actor: ctx.actor,
      action: 'accounts.changed',
      subjectType: 'principal',
      subjectId: 'accounts',
      at: ctx.now,
      data: { changes: lines },
    });
  }
  return { lines: lines.sort() };
}

const accountsText = (accounts: Record<string, string>) =>
  Object.keys(accounts).length === 0
    ? 'none'
    : Object.entries(accounts)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([type, name]) => `${type}=${name}`)
        .join(', ');

/** Makes a principal eligible for a role in a window (PIM's rules on permanence and length). */
export async function assignEligibility(ctx: AdminContext, input: AssignmentInput): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const role = await getRoleByName(ctx.tx, input.roleName);
  const principal = await ensurePrincipal(ctx.tx, input.email);
  const existing = await findEligibility(ctx.tx, principal.id, role.id);
  const wanted = {
    startAt: input.startAt ?? existing?.startAt ?? ctx.now,
    endAt: input.endAt,
    justification: cleanText(input.justification),
  };
  checkAssignmentWindow(role, 'eligibility', wanted);
  if (wanted.endAt && wanted.endAt <= ctx.now)
    throw invalid('The eligibility must end in the future.', 'end');
  const label = `eligibility ${principal.email} → ${role.name}`;
  const lines = !existing
    ? [`+ ${label} (${windowText(wanted, ctx.now)})`]
    : [
        ...(sameWindow(existing, wanted)
          ? []
          : [`~ ${label}: ${windowText(existing, ctx.now)} → ${windowText(wanted, ctx.now)}`]),
        ...(existing.justification === wanted.justification
          ? []
          : [
              `~ ${label}: justification ${JSON.stringify(existing.justification)} → ${JSON.stringify(wanted.justification)}`,
            ]),
      ];
  if (lines.length === 0) return { lines };
  if (existing) {
    await ctx.tx
      .update(eligibilities)
      .set({ ...wanted, createdBy: ctx.actor.label, warningsSent: 0 }) // a new end earns new warnings
      .where(eq(eligibilities.id, existing.id));
  } else {
    await ctx.tx.insert(eligibilities).values({
      principalId: principal.id,
      roleId: role.id,
      ...wanted,
      createdBy: ctx.actor.label,
      createdAt: ctx.now,
    });
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
      startAt: wanted.startAt.toISOString(),
      endAt: wanted.endAt?.toISOString() ?? null,
      justification: wanted.justification,
    },
    notify: existing
      ? []
      : [{ recipientId: principal.id, kind: 'eligibility_assigned', data: { role: role.name } }],
  });
  return { lines };
}

/**
 * Why an access review removed an eligibility: the review, who decided (an email, or `system` for
 * the unreviewed default) and their justification. The member is told all three.
 */
export interface RemovalReason {
  reviewId: string;
  decidedBy: string;
  reason: string;
}

/** Removes an eligibility; an activation already running is left to run out. */
export async function removeEligibility(
  ctx: AdminContext,
  input: { email: string; roleName: string; review?: RemovalReason },
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
    data: { principal: principal.email, role: role.name, ...input.review },
    notify: [
      { recipientId: principal.id, kind: 'eligibility_removed', data: { role: role.name, ...input.review } },
    ],
  });
  return { lines: [`- eligibility ${principal.email} → ${role.name}`] };
}

/**
 * Grants a role directly for a window (PIM's active assignment); the grant follows the commit.
 * Assigning again with another window moves the end of a granted one, or reschedules one that
 * has not started.
 */
export async function assignActive(ctx: AdminContext, input: AssignmentInput): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const role = await getRoleByName(ctx.tx, input.roleName);
  const principal = await ensurePrincipal(ctx.tx, input.email);
  const open = await findOpenActivation(ctx.tx, principal.id, role.id);
  // A start in the past means now; an existing assignment keeps its start unless one is given.
  const given = input.startAt && input.startAt > ctx.now ? input.startAt : undefined;
  const wanted = {
    startAt: given ?? (open?.status === 'approved' ? open.startAt : ctx.now),
    endAt: input.endAt,
  };
  checkAssignmentWindow(role, 'active assignment', wanted);
  if (wanted.endAt && wanted.endAt <= ctx.now)
    throw invalid('The active assignment must end in the future.', 'end');
  const justification = checkJustification(role, input.justification);
  const label = `active assignment ${principal.email} → ${role.name}`;

  if (open) {
    if (open.kind !== 'assignment') {
      throw conflict(
        `${principal.email} already has an open ${open.kind} of ${role.name} (${open.status}); it must end first.`,
      );
    }
    // A granted assignment, or one being granted, keeps its start; only its end can move.
    const target = open.status === 'approved' ? wanted : { startAt: open.startAt, endAt: wanted.endAt };
    // Unchanged while its grant is in flight is still unchanged: nothing to refuse.
    if (open.status !== 'revoking' && sameWindow(open, target)) return { lines: [] };
    if (open.status !== 'active' && open.status !== 'approved') {
      throw conflict(`The ${label} is ${open.status} right now; try again in a moment.`);
    }
    const line = `~ ${label}: ${windowText(open, ctx.now)} → ${windowText(target, ctx.now)}`;
    await transition(ctx.tx, open.id, [open.status], open.status, {
      ...target,
      durationMinutes: minutesOf(target),
      nextAttemptAt: open.status === 'active' ? target.endAt : target.startAt,
      expiryWarnedAt: null,
      updatedAt: ctx.now,
    });
    await auditAssignment(ctx, 'assignment.updated', open, principal.email, role, [line]);
    return { lines: [line] };
  }

  const status = statusOnceApproved(wanted.startAt, ctx.now);
  const activation = await insertActivation(
    ctx.tx,
    {
      kind: 'assignment',
      principalId: principal.id,
      roleId: role.id,
      status,
      durationMinutes: minutesOf(wanted),
      ...wanted,
      justification,
      requestedBy: ctx.actor.label,
      nextAttemptAt: status === 'approved' ? wanted.startAt : new Date(ctx.now.getTime() + leaseOf(ctx)),
      createdAt: ctx.now,
      updatedAt: ctx.now,
    },
    role.name,
  );
  const line = `+ ${label} (${windowText(wanted, ctx.now)})`;
  await auditAssignment(ctx, 'assignment.created', activation, principal.email, role, [line], {
    recipientId: principal.id,
    kind: 'assignment_created',
    data: { role: role.name },
  });
  return { lines: [line], settle: status === 'activating' ? activation.id : undefined };
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
  if (open.status === 'revoking') return { lines: [] }; // already on its way out
  const reason = `assignment removed by ${ctx.actor.label}`;
  const moved =
    open.status === 'active'
      ? await transition(ctx.tx, open.id, ['active'], 'revoking', {
          endReason: reason,
          attempts: 0,
          nextAttemptAt: new Date(ctx.now.getTime() + leaseOf(ctx)),
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
  const line = `- active assignment ${principal.email} → ${role.name} (${moved.status === 'revoking' ? 'revoked' : 'cancelled'})`;
  await auditAssignment(ctx, 'assignment.removed', open, principal.email, role, [line]);
  return { lines: [line], settle: moved.status === 'revoking' ? open.id : undefined };
}

async function auditAssignment(
  ctx: AdminContext,
  action: string,
  activation: Activation,
  email: string,
  role: Role,
  changes: string[],
  notice?: { recipientId: string; kind: string; data: Record<string, unknown> },
) {
  await recordActivationChange(ctx.tx, activation.id, {
    actor: ctx.actor,
    action,
    at: ctx.now,
    data: { principal: email, role: role.name, changes },
    notify: notice ? [notice] : [],
  });
}

/** The `~ role …` lines between a stored role and the wanted one; none when they match. */
function roleDiff(
  role: Role,
  wanted: Pick<Role, 'description' | 'scope' | 'providerType' | 'providerConfig' | 'settings'>,
): string[] {
  const lines: string[] = [];
  const field = (name: string, was: unknown, now: unknown, show: (value: unknown) => string) => {
    if (canonicalJson(was) !== canonicalJson(now))
      lines.push(`~ role ${role.name}: ${name} ${show(was)} → ${show(now)}`);
  };
  field('description', role.description, wanted.description, (v) => JSON.stringify(v));
  field('scope', role.scope, wanted.scope, (v) => JSON.stringify(v));
  const provider = (type: string, config: Record<string, unknown>) => ({ type, ...config });
  field(
    'provider',
    provider(role.providerType, role.providerConfig),
    provider(wanted.providerType, wanted.providerConfig),
    (v) => canonicalJson(v),
  );
  const was = role.settings as unknown as Record<string, unknown>;
  const now = wanted.settings as unknown as Record<string, unknown>;
  for (const name of new Set([...Object.keys(was), ...Object.keys(now)])) {
    field(name, was[name], now[name], (v) => settingText(name, v));
  }
  return lines;
}

/** A setting as people write it: durations as `8h`, lists as `[a, b]`. */
export function settingText(name: string, value: unknown): string {
  if (value === undefined) return '(unset)';
  if (DURATION_SETTINGS.has(name) && typeof value === 'number') return formatDuration(value);
  if (Array.isArray(value)) return `[${value.join(', ')}]`;
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** `permanent`, `until 2027-12-31 00:00Z`, `from … until …` (the start only when it lies ahead). */
function windowText(window: { startAt: Date; endAt: Date | null }, now: Date): string {
  const text = (at: Date) =>
    at
      .toISOString()
      .replace(/:\d{2}\.\d{3}Z$/, 'Z')
      .replace('T', ' ');
  const start = window.startAt > now ? `from ${text(window.startAt)} ` : '';
  return `${start}${window.endAt ? `until ${text(window.endAt)}` : 'permanent'}`;
}

function sameWindow(
  a: { startAt: Date; endAt: Date | null },
  b: { startAt: Date; endAt: Date | null },
): boolean {
  return (
    a.startAt.getTime() === b.startAt.getTime() &&
    (a.endAt?.getTime() ?? null) === (b.endAt?.getTime() ?? null)
  );
}

const minutesOf = (window: { startAt: Date; endAt: Date | null }) =>
  window.endAt ? Math.ceil((window.endAt.getTime() - window.startAt.getTime()) / MINUTE_MS) : null;

/** The admin operations, each in its own transaction, plus `batch` for all-or-nothing sets. */
export function createAdminService(deps: {
  db: Db;
  providers: ProviderRegistry;
  clock: Clock;
  /** Finishes a grant/revoke after commit (the activation service's `settle`). */
  settle: (activationId: string) => Promise<unknown>;
  /** ELEVATE_IN_FLIGHT_LEASE, as the activation service has it (default IN_FLIGHT_LEASE_MS). */
  inFlightLeaseMs?: number;
}) {
  /** Runs `work` in one transaction, then settles every grant/revoke it started. */
  async function batch<T>(
    actor: Actor,
    work: (ctx: AdminContext) => Promise<T>,
    settleIds?: (result: T) => string[],
  ) {
    const result = await deps.db.transaction((tx) =>
      work({ tx, actor, now: deps.clock(), providers: deps.providers, leaseMs: deps.inFlightLeaseMs }),
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
    setAdmins: one(setAdmins),
    setAccounts: one(setAccounts),
    assignEligibility: one(assignEligibility),
    removeEligibility: one(removeEligibility),
    assignActive: one(assignActive),
    removeActive: one(removeActive),
    batch,
  };
}

/** The admin service's interface, for the surfaces that call it. */
export type AdminService = ReturnType<typeof createAdminService>;
