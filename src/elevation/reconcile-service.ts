import type { Clock } from '../clock.ts';
import type { Db, Tx } from '../db/client.ts';
import { and, eq, inArray, isNull, lte, ne } from '../db/drizzle.ts';
import { conflict } from '../errors.ts';
import type { GrantProvider, GrantTarget } from '../grants/grant-provider.ts';
import type { ProviderRegistry } from '../grants/registry.ts';
import { activations } from './activation.sql.ts';
import { type Actor, SYSTEM } from './actor.ts';
import { lockAlerts } from './alert-repository.ts';
import { syncUnmanagedGrant } from './alert-service.ts';
import { principals } from './principal.sql.ts';
import { listAdmins, listChatIdentities } from './principal-repository.ts';
import { reconcileFindings, reconcileLeases } from './reconcile.sql.ts';
import { recordChange } from './record.ts';
import { roles } from './role.sql.ts';
import type { Role } from './role-repository.ts';

/** How long a run holds a role: under the 5-minute schedule, so the next tick finds it free. */
export const RECONCILE_LEASE_MS = 4 * 60_000;

/**
 * A holder counts as managed while its activation or assignment is in one of these: granting
 * and revoking included, because the target may already (or still) show them.
 */
const RUNNING = ['activating', 'active', 'revoking'] as const;

/** What one run found, for logs and tests. */
export interface ReconcileOutcome {
  /** Roles this run reconciled (others had no listable provider or another replica's lease). */
  roles: number;
  /** Unmanaged holders reported for the first time. */
  found: number;
  /** Unmanaged holders revoked. */
  revoked: number;
}

/**
 * Reconciliation: compares who holds each role in its target (providers with `members`) with who
 * has a running activation or assignment of it. A holder with none is reported to the admins once
 * and audited, and revoked when the role's `revokeUnmanagedGrants` says so.
 */
export function createReconcileService(deps: { db: Db; providers: ProviderRegistry; clock: Clock }) {
  const { db, providers, clock } = deps;

  /**
   * Takes the role's lease if it is free: one conditional upsert, so of any number of replicas
   * exactly one gets it, and no lock is held across the provider calls that follow. `anyway`
   * takes it even when held (an admin's scan: a run overlapping another only repeats its work,
   * as findings and alerts are unique and revokes idempotent).
   */
  async function claim(roleId: string, now: Date, anyway: boolean): Promise<boolean> {
    const heldUntil = new Date(now.getTime() + RECONCILE_LEASE_MS);
    const won = await db
      .insert(reconcileLeases)
      .values({ roleId, heldUntil })
      .onConflictDoUpdate({
        target: reconcileLeases.roleId,
        set: { heldUntil },
        setWhere: anyway ? undefined : lte(reconcileLeases.heldUntil, now),
      })
      .returning();
    return won.length > 0;
  }

  /** The principals with a running activation or assignment of the role. */
  async function runningPrincipals(roleId: string): Promise<GrantTarget['principal'][]> {
    const rows = await db
      .selectDistinct({ id: principals.id, email: principals.email, accounts: principals.accounts })
      .from(activations)
      .innerJoin(principals, eq(principals.id, activations.principalId))
      .where(
        and(
          eq(activations.roleId, roleId),
          ne(activations.kind, 'extension'),
          inArray(activations.status, RUNNING),
        ),
      );
    return Promise.all(rows.map(async (p) => ({ ...p, identities: await listChatIdentities(db, p.id) })));
  }

  /**
   * The accounts these principals hold the role as. One that cannot be named (an account the
   * target no longer knows) stops the role's run with that reason: without it nobody can be told
   * apart, and guessing could report or revoke someone entitled.
   */
  async function accountsOf(provider: Listing, role: Role, running: GrantTarget['principal'][]) {
    const accounts = new Set<string>();
    for (const principal of running) {
      try {
        accounts.add(await provider.accountOf(roleTarget(role), principal));
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`cannot name the account of ${principal.email}, who holds it: ${reason}`);
      }
    }
    return accounts;
  }

  /**
   * The accounts of the target's holders that no running activation explains. The running
   * principals are read before and after the listing, so a grant or revoke finishing while the
   * target is read never looks unmanaged.
   */
  async function unmanagedHolders(role: Role, provider: Listing) {
    const before = await runningPrincipals(role.id);
    const holders = await provider.members(roleTarget(role));
    const after = await runningPrincipals(role.id);
    const running = new Map([...before, ...after].map((p) => [p.id, p]));
    const managed = await accountsOf(provider, role, [...running.values()]);
    // Roles saved before the setting existed store none.
    const standing = new Set(role.settings.standingHolders ?? []);
    return [...new Set(holders)].filter((account) => !managed.has(account) && !standing.has(account));
  }

  /**
   * Stores what this run saw: new holders are reported as `unmanaged_grant` alerts (the unique row
   * makes that once, even if two runs overlapped), holders that went away are closed with their
   * alerts. Returns the open findings.
   */
  async function record(role: Role, unmanaged: string[], now: Date) {
    return db.transaction(async (tx) => {
      // The alerts lock before any audit append, in the order every alert writer takes them.
      await lockAlerts(tx);
      const open = await tx.select().from(reconcileFindings).where(eq(reconcileFindings.roleId, role.id));
      const gone = open.filter((f) => !unmanaged.includes(f.account));
      for (const finding of gone) {
        const [closed] = await tx
          .delete(reconcileFindings)
          .where(eq(reconcileFindings.id, finding.id))
          .returning();
        if (!closed) continue;
        await audit(tx, role, 'role.unmanaged_grant_resolved', now, {
          role: role.name,
          account: closed.account,
        });
        const gone = { roleId: role.id, role: role.name, account: closed.account, present: false };
        await syncUnmanagedGrant(tx, gone, now);
      }
      const known = new Set(open.map((f) => f.account));
      const fresh = unmanaged.filter((account) => !known.has(account));
      const inserted =
        fresh.length === 0
          ? []
          : await tx
              .insert(reconcileFindings)
              .values(fresh.map((account) => ({ roleId: role.id, account, foundAt: now })))
              .onConflictDoNothing()
              .returning();
      const revoking = role.settings.revokeUnmanagedGrants === true;
      for (const finding of inserted) {
        const data = { role: role.name, account: finding.account, revoking };
        await audit(tx, role, 'role.unmanaged_grant_found', now, data);
        // The admins hear of it through the alert (alert-service), as of every other alert.
        const details = { foundAt: finding.foundAt.toISOString(), revoking };
        await syncUnmanagedGrant(
          tx,
          { roleId: role.id, role: role.name, account: finding.account, present: true, details },
          now,
        );
      }
      return {
        found: inserted.length,
        open: [...open.filter((f) => unmanaged.includes(f.account)), ...inserted],
      };
    });
  }

  /**
   * Takes an unmanaged grant back through the provider, which knows the holder only by account
   * (`accounts[type]`, as the port defines). The first failure alerts the admins; later runs try
   * again quietly while the holder stays.
   */
  async function revoke(
    role: Role,
    provider: GrantProvider,
    finding: typeof reconcileFindings.$inferSelect,
    actor: Actor = SYSTEM,
  ) {
    const now = clock();
    let error: string | null = null;
    try {
      await provider.revoke({
        activationId: finding.id,
        attempt: finding.revokeAttempts + 1,
        principal: {
          id: finding.id,
          email: finding.account,
          accounts: { [provider.type]: finding.account },
          identities: [],
        },
        role: roleTarget(role),
        activation: {
          kind: 'assignment',
          startAt: finding.foundAt,
          endAt: now,
          justification: 'Elevate: held outside Elevate (reconciliation)',
          ticketSystem: null,
          ticketNumber: null,
        },
      });
    } catch (cause) {
      error = cause instanceof Error ? cause.message : String(cause);
    }
    await db.transaction(async (tx) => {
      const [updated] = await tx
        .update(reconcileFindings)
        .set({ revokeAttempts: finding.revokeAttempts + 1, lastError: error })
        .where(eq(reconcileFindings.id, finding.id))
        .returning();
      if (!updated) return;
      const data = { role: role.name, account: finding.account, error };
      if (!error) await audit(tx, role, 'role.unmanaged_grant_revoked', now, data, [], undefined, actor);
      else if (actor !== SYSTEM)
        await audit(tx, role, 'role.unmanaged_grant_revoke_failed', now, data, [], undefined, actor);
      else if (finding.lastError === null) {
        const admins = (await listAdmins(tx)).map((a) => a.id);
        await audit(
          tx,
          role,
          'role.unmanaged_grant_revoke_failed',
          now,
          data,
          admins,
          'unmanaged_grant_revoke_failed',
        );
      }
    });
    return error;
  }

  /** Reconciles one role, unless its provider cannot list or another replica holds its lease. */
  async function reconcileRole(role: Role, outcome: ReconcileOutcome, anyway: boolean): Promise<void> {
    const provider = providers.get(role.providerType);
    if (!provider?.members || !provider.accountOf) return;
    if (!(await claim(role.id, clock(), anyway))) return;
    outcome.roles++;
    const listing = { members: provider.members, accountOf: provider.accountOf };
    const unmanaged = await unmanagedHolders(role, listing);
    const { found, open } = await record(role, unmanaged, clock());
    outcome.found += found;
    if (role.settings.revokeUnmanagedGrants !== true || open.length === 0) return;
    // Looked at once more just before revoking: someone may have activated the role meanwhile.
    const managed = await accountsOf(listing, role, await runningPrincipals(role.id));
    for (const finding of open) {
      if (!managed.has(finding.account) && (await revoke(role, provider, finding)) === null)
        outcome.revoked++;
    }
  }

  return {
    /**
     * One run over every live role. A role whose target cannot be read is skipped (the others go
     * on) and its error is thrown at the end, for the loop's log. `ignoreLeases` runs roles whose
     * lease a recent run still holds (an admin asked for it now).
     */
    async reconcileAll(options: { ignoreLeases?: boolean } = {}): Promise<ReconcileOutcome> {
      const outcome: ReconcileOutcome = { roles: 0, found: 0, revoked: 0 };
      const live = await db.select().from(roles).where(isNull(roles.archivedAt));
      const problems: string[] = [];
      for (const role of live) {
        await reconcileRole(role, outcome, options.ignoreLeases === true).catch((error: unknown) => {
          problems.push(`role ${role.name}: ${error instanceof Error ? error.message : String(error)}`);
        });
      }
      if (problems.length > 0) throw new Error(`reconciliation skipped ${problems.join('; ')}`);
      return outcome;
    },

    /**
     * An admin's *Revoke* of a grant found outside Elevate (the alert's action): taken back now
     * through the role's provider, audited as the admin. Resolves with null once the provider
     * confirmed, else with its error; a holder no longer reported is a conflict.
     */
    async revokeUnmanaged(input: { roleId: string; account: string; actor: Actor }): Promise<string | null> {
      const [role] = await db.select().from(roles).where(eq(roles.id, input.roleId));
      const [finding] = await db
        .select()
        .from(reconcileFindings)
        .where(and(eq(reconcileFindings.roleId, input.roleId), eq(reconcileFindings.account, input.account)));
      if (!role || !finding) throw conflict(`${input.account} is no longer reported as holding that role.`);
      const provider = providers.get(role.providerType);
      if (!provider) return `no grant provider "${role.providerType}" is configured`;
      return revoke(role, provider, finding, input.actor);
    },
  };
}

/** A provider that can list its target. */
type Listing = Required<Pick<GrantProvider, 'members' | 'accountOf'>>;

/** The role as a provider sees it. */
const roleTarget = (role: Role): GrantTarget['role'] => ({
  name: role.name,
  scope: role.scope,
  config: role.providerConfig,
});

/** Writes a reconciliation audit event about a role, with admin alerts when `alert` names a kind. */
function audit(
  tx: Tx,
  role: Role,
  action: string,
  at: Date,
  data: Record<string, unknown>,
  recipients: string[] = [],
  alert?: string,
  actor: Actor = SYSTEM,
) {
  return recordChange(tx, {
    actor,
    action,
    subjectType: 'role',
    subjectId: role.name,
    at,
    data,
    notify: alert ? recipients.map((recipientId) => ({ recipientId, kind: alert, data })) : [],
  });
}

/** The reconciliation service's interface, for the loop. */
export type ReconcileService = ReturnType<typeof createReconcileService>;
