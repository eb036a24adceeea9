import { performance } from 'node:perf_hooks';
import { and, eq, gt, isNull, lte, ne, or } from 'drizzle-orm';
import type { Clock } from '../clock.ts';
import type { Db, Tx } from '../db/client.ts';
import { conflict, forbidden, invalid } from '../errors.ts';
import { GrantError, type GrantProvider, type GrantTarget } from '../grants/grant-provider.ts';
import type { ProviderRegistry } from '../grants/registry.ts';
import { type ActivationStatus, activations, decisions, OPEN_STATUSES } from './activation.sql.ts';
import {
  type Activation,
  type ActivationView,
  findOpenActivation,
  getActivation,
  insertActivation,
  listActivations,
  listDecisions,
  transition,
} from './activation-repository.ts';
import { type Actor, SYSTEM } from './actor.ts';
import { MINUTE_MS } from './duration.ts';
import { IN_FLIGHT_LEASE_MS, MAX_GRANT_ATTEMPTS, retryDelayMs, statusOnceApproved } from './lifecycle.ts';
import {
  type ActivationAsk,
  approverIds,
  checkActivationRequest,
  checkApprover,
  checkDeactivation,
  checkEligible,
  checkExtension,
  checkJustification,
  cleanText,
} from './policy.ts';
import { principals } from './principal.sql.ts';
import { listAdmins, listChatIdentities } from './principal-repository.ts';
import { type Notice, recordActivationChange } from './record.ts';
import { eligibilities, roles } from './role.sql.ts';
import { findEligibility, getRoleByName, namedApproverIds, type Role } from './role-repository.ts';

/** What the activation service needs from the outside. */
export interface ActivationDeps {
  db: Db;
  providers: ProviderRegistry;
  clock: Clock;
}

/** A principal's board: what they may activate, what runs, what waits. */
export interface Access {
  eligible: { role: Role; eligibleUntil: Date | null }[];
  active: ActivationView[];
  pending: ActivationView[];
}

/** Outcome of an approval: `approved` once the quorum is reached, else `recorded` (more needed). */
export interface ApprovalOutcome {
  outcome: 'approved' | 'recorded';
  view: ActivationView;
  approvalsMissing: number;
}

const at = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * The activation use cases. Each one: a short transaction that locks, checks, writes the
 * transition with its audit event and notifications, and commits; provider calls come after.
 */
export function createActivationService(deps: ActivationDeps) {
  const { db, providers, clock } = deps;

  /** Who may decide on requests for this role, never including the requester. */
  async function approversFor(tx: Db, role: Role, requesterId: string): Promise<string[]> {
    const admins = await listAdmins(tx);
    return approverIds(
      requesterId,
      await namedApproverIds(tx, role),
      admins.map((a) => a.id),
    );
  }

  function requireRequester(actor: Actor): string {
    if (!actor.principalId) throw forbidden('Only a person can request, cancel, extend or deactivate.');
    return actor.principalId;
  }

  function requireOwner(actor: Actor, view: ActivationView, verb: string): void {
    if (actor.principalId !== view.activation.principalId) {
      throw forbidden(`Only ${view.principal.email} can ${verb} this ${view.activation.kind}.`);
    }
  }

  /** Why a request is no longer pending, in words for the person who clicked too late. */
  async function alreadyDecided(tx: Db, view: ActivationView): Promise<string> {
    const a = view.activation;
    const what = a.kind === 'extension' ? 'This extension request' : 'This request';
    if (a.status === 'cancelled') {
      return `${what} was cancelled${a.endReason ? ` (${a.endReason})` : ''} at ${at(a.updatedAt)}.`;
    }
    if (a.status === 'timed_out') {
      return `${what} timed out at ${at(a.approvalExpiresAt ?? a.updatedAt)} without a decision.`;
    }
    // Denied: the one who denied. Approved: everyone who made up the quorum, at the last approval.
    const verdict = a.status === 'denied' ? 'deny' : 'approve';
    const deciders = (await listDecisions(tx, a.id)).filter((d) => d.verdict === verdict);
    const names = deciders.map((d) => d.approverEmail).sort();
    const when = deciders[0]?.decidedAt ?? a.updatedAt;
    return `${what} was already ${verdict === 'deny' ? 'denied' : 'approved'} by ${names.join(' and ') || 'an approver'} at ${at(when)}.`;
  }

  /**
   * Locks a request that should still be pending. One whose approval timeout has passed is timed
   * out here and now (the loop does the same for requests nobody touches), and the message for the
   * clicker is returned, to be raised after the commit.
   */
  async function lockPending(tx: Tx, id: string, now: Date): Promise<ActivationView | string> {
    const view = await getActivation(tx, id, { lock: true });
    const a = view.activation;
    if (a.status !== 'pending_approval') throw conflict(await alreadyDecided(tx, view));
    if (!a.approvalExpiresAt || a.approvalExpiresAt > now) return view;
    await timeOut(tx, view, now);
    return `This request timed out at ${at(a.approvalExpiresAt)} without a decision.`;
  }

  /** pending_approval → timed_out; the requester and the approvers (their cards) are told. */
  async function timeOut(tx: Tx, view: ActivationView, now: Date): Promise<boolean> {
    const a = view.activation;
    const moved = await transition(tx, a.id, ['pending_approval'], 'timed_out', {
      endReason: 'no decision within the approval timeout',
      endedAt: now,
      updatedAt: now,
    });
    if (!moved) return false;
    const data = { role: view.role.name };
    await recordActivationChange(tx, a.id, {
      actor: SYSTEM,
      action: `${a.kind}.timed_out`,
      at: now,
      data,
      notify: [
        { recipientId: a.principalId, kind: `${a.kind}_timed_out`, data },
        ...(await approversFor(tx, view.role, a.principalId)).map((recipientId) => ({
          recipientId,
          kind: 'request_decided',
          data,
        })),
      ],
    });
    return true;
  }

  /**
   * The loop's claim: up to `limit` rows in `status` whose `due` time has come, locked with
   * SKIP LOCKED so replicas take disjoint rows, each moved one step by `step` inside the same
   * short transaction. Returns the ids, whose provider calls (`settle`) follow the commit.
   */
  async function claimDue(
    status: ActivationStatus,
    due: 'startAt' | 'endAt' | 'nextAttemptAt' | 'approvalExpiresAt',
    limit: number,
    step: (tx: Tx, view: ActivationView, now: Date) => Promise<boolean>,
  ): Promise<string[]> {
    const now = clock();
    return runTx(async (tx) => {
      const rows = await tx
        .select({ activation: activations, role: roles, principal: principals })
        .from(activations)
        .innerJoin(roles, eq(roles.id, activations.roleId))
        .innerJoin(principals, eq(principals.id, activations.principalId))
        .where(
          and(
            eq(activations.status, status),
            lte(activations[due], now),
            // Extensions only wait for a decision; once approved they are applied and done.
            status === 'pending_approval' ? undefined : ne(activations.kind, 'extension'),
          ),
        )
        .orderBy(activations[due])
        .limit(limit)
        .for('update', { of: activations, skipLocked: true });
      // Only rows this replica really moved are settled (the update is conditional, as always).
      const moved: string[] = [];
      for (const view of rows) if (await step(tx, view, now)) moved.push(view.activation.id);
      return moved;
    });
  }

  /** Settles claimed rows a few at a time: providers are remote, but not all at once. */
  async function settleAll(ids: string[]): Promise<number> {
    for (let i = 0; i < ids.length; i += SETTLE_CONCURRENCY) {
      await Promise.all(ids.slice(i, i + SETTLE_CONCURRENCY).map((id) => settle(id)));
    }
    return ids.length;
  }

  /** The roles a principal may activate now, by name. */
  function listEligible(principalId: string): Promise<Access['eligible']> {
    const now = clock();
    return db
      .select({ role: roles, eligibleUntil: eligibilities.endAt })
      .from(eligibilities)
      .innerJoin(roles, eq(roles.id, eligibilities.roleId))
      .where(
        and(
          eq(eligibilities.principalId, principalId),
          isNull(roles.archivedAt),
          lte(eligibilities.startAt, now),
          or(isNull(eligibilities.endAt), gt(eligibilities.endAt, now)),
        ),
      )
      .orderBy(roles.name);
  }

  const runTx = <T>(work: (tx: Tx) => Promise<T>) => db.transaction(work);

  return {
    /** The roles a principal may activate now, by name (one query: what the activation form needs). */
    listEligible,

    /** The requester's board. */
    async listAccess(principalId: string): Promise<Access> {
      const eligible = await listEligible(principalId);
      const open = await listActivations(db, { principalId, statuses: OPEN_STATUSES });
      return {
        eligible,
        active: open.filter((v) => v.activation.status !== 'pending_approval'),
        pending: open.filter((v) => v.activation.status === 'pending_approval'),
      };
    },

    /** Requests waiting for this principal's decision. */
    async listApprovals(principalId: string): Promise<ActivationView[]> {
      const pending = await listActivations(db, { statuses: ['pending_approval'] });
      const mine: ActivationView[] = [];
      for (const view of pending) {
        if ((await approversFor(db, view.role, view.activation.principalId)).includes(principalId))
          mine.push(view);
      }
      return mine;
    },

    /**
     * Requests an activation of `roleName`. Without approval it starts at once (or is scheduled);
     * with approval it waits, and each approver is notified.
     */
    async requestActivation(
      input: { actor: Actor; roleName: string } & ActivationAsk,
    ): Promise<ActivationView> {
      const requesterId = requireRequester(input.actor);
      const now = clock();
      const id = await runTx(async (tx) => {
        const role = await getRoleByName(tx, input.roleName);
        const eligibility = checkEligible(role, await findEligibility(tx, requesterId, role.id), now);
        const checked = checkActivationRequest(role, eligibility, input, now);
        const open = await findOpenActivation(tx, requesterId, role.id);
        if (open) {
          throw conflict(
            `You already have ${open.status === 'pending_approval' ? 'a pending request' : 'an open activation'} of ${role.name}; cancel or deactivate it first.`,
          );
        }
        const s = role.settings;
        let approvers: string[] = [];
        if (s.requireApproval) {
          approvers = await approversFor(tx, role, requesterId);
          if (approvers.length < s.approvalsRequired) {
            throw invalid(
              approvers.length === 0
                ? `Nobody but you can approve ${role.name}; ask an admin to name approvers.`
                : `${role.name} needs ${s.approvalsRequired} approvals but only ${approvers.length} approver(s) other than you exist.`,
            );
          }
        }
        const status = s.requireApproval ? 'pending_approval' : statusOnceApproved(checked.startAt, now);
        const activation = await insertActivation(
          tx,
          {
            kind: 'activation',
            principalId: requesterId,
            roleId: role.id,
            status,
            durationMinutes: checked.durationMinutes,
            startAt: checked.startAt,
            endAt: checked.endAt,
            justification: checked.justification,
            ticketSystem: checked.ticketSystem,
            ticketNumber: checked.ticketNumber,
            approvalsRequired: s.requireApproval ? s.approvalsRequired : 0,
            approvalExpiresAt: s.requireApproval
              ? new Date(now.getTime() + s.approvalTimeout * MINUTE_MS)
              : null,
            requestedBy: input.actor.label,
            nextAttemptAt: nextAttemptFor(status, checked.startAt, now),
            createdAt: now,
            updatedAt: now,
          },
          role.name,
        );
        const data = { role: role.name };
        await recordActivationChange(tx, activation.id, {
          actor: input.actor,
          action: 'activation.requested',
          at: now,
          data: {
            ...data,
            status,
            durationMinutes: checked.durationMinutes,
            startAt: checked.startAt.toISOString(),
            justification: checked.justification,
            ticket: checked.ticketNumber,
          },
          notify: [
            {
              recipientId: requesterId,
              kind: s.requireApproval ? 'activation_submitted' : 'activation_approved',
              data,
            },
            ...approvers.map((recipientId) => ({ recipientId, kind: 'approval_requested', data })),
          ],
        });
        return activation.id;
      });
      return settle(id);
    },

    /** The requester's activations of a role since `since`, newest first (approver cards show them). */
    history: (principalId: string, roleId: string, since: Date) =>
      listActivations(db, { principalId, roleId, since, limit: 20 }),

    /** One activation with its role and principal. */
    get: (activationId: string) => getActivation(db, activationId),

    /** The decisions on a request, newest first, with the deciders' emails. */
    decisions: (activationId: string) => listDecisions(db, activationId),

    /**
     * The request, if `actor` may decide on it now; otherwise the same refusal a decision would
     * get. Surfaces call it before showing a decision form, so a forged button reveals nothing.
     */
    async decidable(input: { actor: Actor; activationId: string }): Promise<ActivationView> {
      const view = await getActivation(db, input.activationId);
      const a = view.activation;
      checkApprover(
        view.role,
        input.actor.principalId,
        a.principalId,
        await approversFor(db, view.role, a.principalId),
      );
      if (a.status !== 'pending_approval') throw conflict(await alreadyDecided(db, view));
      return view;
    },

    /** An approver approves; the request moves on once the role's quorum is reached. */
    async approve(input: { actor: Actor; activationId: string; comment?: string }): Promise<ApprovalOutcome> {
      const now = clock();
      const result = await runTx(async (tx) => {
        const view = await lockPending(tx, input.activationId, now);
        if (typeof view === 'string') return { expired: view };
        const a = view.activation;
        const approverId = checkApprover(
          view.role,
          input.actor.principalId,
          a.principalId,
          await approversFor(tx, view.role, a.principalId),
        );
        const decided = await listDecisions(tx, a.id);
        if (decided.some((d) => d.approverId === approverId)) {
          throw conflict(
            `You already approved this request; it needs ${a.approvalsRequired - decided.length} more approval(s).`,
          );
        }
        await tx.insert(decisions).values({
          activationId: a.id,
          approverId,
          verdict: 'approve',
          comment: cleanText(input.comment).slice(0, 500),
          decidedAt: now,
        });
        const approvals = decided.length + 1;
        const data = { role: view.role.name, comment: cleanText(input.comment).slice(0, 500), approvals };
        if (approvals < a.approvalsRequired) {
          await recordActivationChange(tx, a.id, {
            actor: input.actor,
            action: `${a.kind}.approval_recorded`,
            at: now,
            data,
          });
          return { outcome: 'recorded' as const, missing: a.approvalsRequired - approvals };
        }
        const informed: Notice[] = [
          { recipientId: a.principalId, kind: `${a.kind}_approved`, data },
          ...(await approversFor(tx, view.role, a.principalId)).map((recipientId) => ({
            recipientId,
            kind: 'request_decided',
            data,
          })),
        ];
        if (a.kind === 'extension') {
          await applyExtension(tx, view, now);
          await transition(tx, a.id, ['pending_approval'], 'approved', { updatedAt: now });
        } else {
          const next = statusOnceApproved(a.startAt, now);
          const moved = await transition(tx, a.id, ['pending_approval'], next, {
            nextAttemptAt: nextAttemptFor(next, a.startAt, now),
            updatedAt: now,
          });
          if (!moved) throw conflict(await alreadyDecided(tx, view));
        }
        await recordActivationChange(tx, a.id, {
          actor: input.actor,
          action: `${a.kind}.approved`,
          at: now,
          data,
          notify: informed,
        });
        return { outcome: 'approved' as const, missing: 0 };
      });
      if (result.expired !== undefined) throw conflict(result.expired);
      const view = await settle(input.activationId);
      const parentId = view.activation.extendsId;
      if (result.outcome === 'approved' && parentId) await syncEnd(parentId);
      return {
        outcome: result.outcome,
        approvalsMissing: result.missing,
        view,
      };
    },

    /** An approver denies, with the reason the requester will read; the first decision wins. */
    async deny(input: { actor: Actor; activationId: string; comment: string }): Promise<ActivationView> {
      const now = clock();
      const reason = cleanText(input.comment);
      const expired = await runTx(async (tx) => {
        const view = await lockPending(tx, input.activationId, now);
        if (typeof view === 'string') return view;
        const a = view.activation;
        const approvers = await approversFor(tx, view.role, a.principalId);
        const approverId = checkApprover(view.role, input.actor.principalId, a.principalId, approvers);
        if (!reason) throw invalid('Say why you deny the request; the requester will read it.', 'comment');
        if (reason.length > 500) throw invalid('The reason may be at most 500 characters.', 'comment');
        await tx
          .insert(decisions)
          .values({ activationId: a.id, approverId, verdict: 'deny', comment: reason, decidedAt: now })
          .onConflictDoUpdate({
            // A quorum approver who approved earlier may still deny before the quorum is reached.
            target: [decisions.activationId, decisions.approverId],
            set: { verdict: 'deny', comment: reason, decidedAt: now },
          });
        await transition(tx, a.id, ['pending_approval'], 'denied', {
          endReason: reason,
          endedAt: now,
          updatedAt: now,
        });
        const data = { role: view.role.name, reason };
        await recordActivationChange(tx, a.id, {
          actor: input.actor,
          action: `${a.kind}.denied`,
          at: now,
          data,
          notify: [
            { recipientId: a.principalId, kind: `${a.kind}_denied`, data },
            ...approvers.map((recipientId) => ({ recipientId, kind: 'request_decided', data })),
          ],
        });
      });
      if (expired) throw conflict(expired);
      return getActivation(db, input.activationId);
    },

    /** The requester withdraws a request that is pending or scheduled. */
    async cancel(input: { actor: Actor; activationId: string }): Promise<ActivationView> {
      const now = clock();
      await runTx(async (tx) => {
        const view = await getActivation(tx, input.activationId, { lock: true });
        requireOwner(input.actor, view, 'cancel');
        const a = view.activation;
        const moved = await transition(tx, a.id, ['pending_approval', 'approved'], 'cancelled', {
          endReason: 'cancelled by the requester',
          endedAt: now,
          updatedAt: now,
        });
        if (!moved) {
          throw conflict(
            a.status === 'active'
              ? `Your ${view.role.name} activation is already active; deactivate it instead.`
              : `This ${a.kind} is ${a.status.replace('_', ' ')} and can no longer be cancelled.`,
          );
        }
        const data = { role: view.role.name };
        await recordActivationChange(tx, a.id, {
          actor: input.actor,
          action: `${a.kind}.cancelled`,
          at: now,
          data,
          notify:
            a.status === 'pending_approval'
              ? (await approversFor(tx, view.role, a.principalId)).map((recipientId) => ({
                  recipientId,
                  kind: 'request_decided',
                  data,
                }))
              : [],
        });
      });
      return getActivation(db, input.activationId);
    },

    /** The requester ends their activation early (not in its first minutes, PIM's rule). */
    async deactivate(input: { actor: Actor; activationId: string }): Promise<ActivationView> {
      const now = clock();
      await runTx(async (tx) => {
        const view = await getActivation(tx, input.activationId, { lock: true });
        requireOwner(input.actor, view, 'deactivate');
        const a = view.activation;
        if (a.status !== 'active' || !a.activatedAt) {
          throw conflict(`This ${a.kind} is ${a.status.replace('_', ' ')}, not active.`);
        }
        checkDeactivation(view.role, a.activatedAt, now);
        await startRevoke(tx, view, input.actor, 'deactivated by the requester', now);
      });
      return settle(input.activationId);
    },

    /**
     * The requester asks for more time before expiry: applied at once, or as an extension request
     * through approval when the role requires approval.
     */
    async extend(input: {
      actor: Actor;
      activationId: string;
      durationMinutes: number;
      justification?: string;
    }): Promise<ActivationView> {
      const now = clock();
      const result = await runTx(async (tx) => {
        const view = await getActivation(tx, input.activationId, { lock: true });
        requireOwner(input.actor, view, 'extend');
        const a = view.activation;
        if (a.kind !== 'activation' || a.status !== 'active' || !a.endAt) {
          throw conflict(
            `Only an active activation can be extended; this one is ${a.status.replace('_', ' ')}.`,
          );
        }
        const role = view.role;
        const eligibility = checkEligible(role, await findEligibility(tx, a.principalId, role.id), now);
        const newEnd = checkExtension(role, { endAt: a.endAt }, input.durationMinutes, eligibility, now);
        const justification = checkJustification(role, input.justification);
        const data = { role: role.name, durationMinutes: input.durationMinutes, justification };
        if (!role.settings.requireApproval) {
          await transition(tx, a.id, ['active'], 'active', {
            endAt: newEnd,
            nextAttemptAt: newEnd,
            expiryWarnedAt: null, // a new end earns a new warning
            updatedAt: now,
          });
          await recordActivationChange(tx, a.id, {
            actor: input.actor,
            action: 'activation.extended',
            at: now,
            data: { ...data, endAt: newEnd.toISOString() },
            notify: [{ recipientId: a.principalId, kind: 'activation_extended', data }],
          });
          return getActivation(tx, a.id);
        }
        const approvers = await approversFor(tx, role, a.principalId);
        if (approvers.length < role.settings.approvalsRequired) {
          throw invalid(`Nobody but you can approve ${role.name}; ask an admin to name approvers.`);
        }
        const extension = await insertActivation(
          tx,
          {
            kind: 'extension',
            extendsId: a.id,
            principalId: a.principalId,
            roleId: role.id,
            status: 'pending_approval',
            durationMinutes: input.durationMinutes,
            startAt: a.endAt,
            endAt: newEnd,
            justification,
            approvalsRequired: role.settings.approvalsRequired,
            approvalExpiresAt: new Date(
              Math.min(a.endAt.getTime(), now.getTime() + role.settings.approvalTimeout * MINUTE_MS),
            ),
            requestedBy: input.actor.label,
            createdAt: now,
            updatedAt: now,
          },
          role.name,
        );
        await recordActivationChange(tx, extension.id, {
          actor: input.actor,
          action: 'extension.requested',
          at: now,
          data: { ...data, extends: a.id },
          notify: [
            { recipientId: a.principalId, kind: 'extension_submitted', data },
            ...approvers.map((recipientId) => ({ recipientId, kind: 'approval_requested', data })),
          ],
        });
        return getActivation(tx, extension.id);
      });
      // Applied at once (no approval): the target system learns the new end too.
      if (result.activation.kind === 'activation') await syncEnd(result.activation.id);
      return result;
    },

    /** An admin takes access away: a running grant is revoked, a waiting request is cancelled. */
    async revoke(input: { actor: Actor; activationId: string; reason?: string }): Promise<ActivationView> {
      if (!input.actor.isAdmin) throw forbidden('Only an admin can revoke an activation.');
      const now = clock();
      const reason = `revoked by ${input.actor.label}${input.reason ? `: ${input.reason}` : ''}`;
      await runTx(async (tx) => {
        const view = await getActivation(tx, input.activationId, { lock: true });
        const a = view.activation;
        if (a.status === 'active') return startRevoke(tx, view, input.actor, reason, now);
        if (a.status === 'activating') {
          throw conflict('This activation is being granted right now; revoke it again in a moment.');
        }
        const moved = await transition(tx, a.id, ['pending_approval', 'approved'], 'cancelled', {
          endReason: reason,
          endedAt: now,
          updatedAt: now,
        });
        if (!moved) throw conflict(`This ${a.kind} is already ${a.status.replace('_', ' ')}.`);
        await recordActivationChange(tx, a.id, {
          actor: input.actor,
          action: `${a.kind}.revoked`,
          at: now,
          data: { role: view.role.name, reason },
          notify: [
            { recipientId: a.principalId, kind: 'activation_ended', data: { role: view.role.name, reason } },
          ],
        });
      });
      return settle(input.activationId);
    },

    /** Activations for admins and the CLI, newest first. */
    list: (filter: Parameters<typeof listActivations>[1]) => listActivations(db, filter),

    settle,

    /** Loop: scheduled activations and assignments whose start has come are granted. */
    async startDue(limit = 100): Promise<number> {
      const ids = await claimDue('approved', 'startAt', limit, async (tx, view, now) => {
        const a = view.activation;
        const moved = await transition(tx, a.id, ['approved'], 'activating', {
          nextAttemptAt: new Date(now.getTime() + IN_FLIGHT_LEASE_MS),
          updatedAt: now,
        });
        if (!moved) return false;
        await recordActivationChange(tx, a.id, {
          actor: SYSTEM,
          action: `${a.kind}.starting`,
          at: now,
          data: { role: view.role.name },
        });
        return true;
      });
      return settleAll(ids);
    },

    /** Loop: activations and assignments whose end has come are revoked (never reported ended before the provider confirms). */
    async expireDue(limit = 100): Promise<number> {
      const ids = await claimDue('active', 'endAt', limit, async (tx, view, now) => {
        const a = view.activation;
        const reason = a.kind === 'assignment' ? 'the assignment ended' : 'expired';
        const moved = await transition(tx, a.id, ['active'], 'revoking', {
          endReason: reason,
          attempts: 0,
          nextAttemptAt: new Date(now.getTime() + IN_FLIGHT_LEASE_MS),
          updatedAt: now,
        });
        if (!moved) return false;
        await recordActivationChange(tx, a.id, {
          actor: SYSTEM,
          action: `${a.kind}.expired`,
          at: now,
          data: { role: view.role.name, endAt: a.endAt?.toISOString() ?? null },
        });
        return true;
      });
      return settleAll(ids);
    },

    /** Loop: grants and revokes whose retry time (or in-flight lease, after a crash) has come are tried again. */
    async retryDue(limit = 100): Promise<number> {
      const lease = async (tx: Tx, view: ActivationView, now: Date) =>
        (await transition(tx, view.activation.id, [view.activation.status], view.activation.status, {
          nextAttemptAt: new Date(now.getTime() + IN_FLIGHT_LEASE_MS),
          updatedAt: now,
        })) !== undefined;
      const granting = await claimDue('activating', 'nextAttemptAt', limit, lease);
      const revoking = await claimDue('revoking', 'nextAttemptAt', limit, lease);
      return settleAll([...granting, ...revoking]);
    },

    /** Loop: requests nobody decided within the role's approval timeout time out. */
    timeOutDue: (limit = 100) =>
      claimDue('pending_approval', 'approvalExpiresAt', limit, timeOut).then((ids) => ids.length),
  };

  /** Applies an approved extension to its (still active) parent activation. */
  async function applyExtension(tx: Tx, extension: ActivationView, now: Date): Promise<void> {
    const e = extension.activation;
    if (!e.extendsId || !e.endAt) throw new Error(`extension ${e.id} has no parent`);
    const parent = await transition(tx, e.extendsId, ['active'], 'active', {
      endAt: e.endAt,
      nextAttemptAt: e.endAt,
      expiryWarnedAt: null,
      updatedAt: now,
    });
    if (!parent) throw conflict('The activation this extension was for is no longer active.');
  }

  /** active → revoking, with its audit event; the provider call follows after commit (settle). */
  async function startRevoke(tx: Tx, view: ActivationView, actor: Actor, reason: string, now: Date) {
    const a = view.activation;
    const moved = await transition(tx, a.id, ['active'], 'revoking', {
      endReason: reason,
      attempts: 0,
      nextAttemptAt: new Date(now.getTime() + IN_FLIGHT_LEASE_MS),
      updatedAt: now,
    });
    if (!moved) throw conflict(`This ${a.kind} is no longer active.`);
    await recordActivationChange(tx, a.id, {
      actor,
      action: `${a.kind}.revoke_started`,
      at: now,
      data: { role: view.role.name, reason },
    });
  }

  /** What a provider is told about an activation. */
  async function targetOf(view: ActivationView, endAt: Date | null): Promise<GrantTarget> {
    const a = view.activation;
    return {
      activationId: a.id,
      attempt: a.attempts + 1,
      principal: {
        id: view.principal.id,
        email: view.principal.email,
        accounts: view.principal.accounts,
        identities: await listChatIdentities(db, view.principal.id),
      },
      role: { name: view.role.name, scope: view.role.scope, config: view.role.providerConfig },
      activation: {
        kind: a.kind,
        startAt: a.startAt,
        endAt,
        justification: a.justification,
        ticketSystem: a.ticketSystem,
        ticketNumber: a.ticketNumber,
      },
    };
  }

  /**
   * Tells a provider with time-bound grants that an active grant's end moved (an extension), so
   * the target does not end it early. A failure is audited and the admins are alerted: Elevate
   * still revokes at the new end, but the target may cut access at the old one.
   */
  async function syncEnd(activationId: string): Promise<void> {
    const view = await getActivation(db, activationId);
    const provider = providers.get(view.role.providerType);
    if (!provider?.extend || view.activation.status !== 'active') return;
    const started = performance.now();
    try {
      await provider.extend(await targetOf(view, view.activation.endAt));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const facts = { provider: view.role.providerType, durationMs: Math.round(performance.now() - started) };
      await runTx(async (tx) => {
        const data = { role: view.role.name, error: message };
        await recordActivationChange(tx, activationId, {
          actor: SYSTEM,
          action: 'activation.extend_failed',
          at: clock(),
          data: { ...data, ...facts },
          notify: (await listAdmins(tx)).map((admin) => ({
            recipientId: admin.id,
            kind: 'extend_failed',
            data,
          })),
        });
      });
    }
  }

  /**
   * Finishes what an activation has in flight: grants an `activating` one, revokes a `revoking`
   * one. Safe to repeat and to race (providers are idempotent; the transitions are conditional),
   * so both the request path and the loop after a crash call it.
   */
  async function settle(activationId: string): Promise<ActivationView> {
    const view = await getActivation(db, activationId);
    const a = view.activation;
    if (a.status !== 'activating' && a.status !== 'revoking') return view;
    const provider = providers.get(view.role.providerType);
    // An activation runs its duration from the moment it is granted; an assignment keeps the end
    // its admin set. The provider gets that end too (e.g. a time-bound directory assignment).
    const endAt =
      a.status === 'activating' && a.kind !== 'assignment' && a.durationMinutes !== null
        ? new Date(clock().getTime() + a.durationMinutes * MINUTE_MS)
        : a.endAt;
    const target = await targetOf(view, endAt);
    let failure: GrantError | undefined;
    const started = performance.now();
    try {
      if (!provider) {
        throw new GrantError(`no grant provider "${view.role.providerType}" is configured`, {
          retryable: false,
        });
      }
      await (a.status === 'activating' ? provider.grant(target) : provider.revoke(target));
    } catch (error) {
      failure =
        error instanceof GrantError
          ? error
          : new GrantError(error instanceof Error ? error.message : String(error), {
              retryable: true,
              cause: error,
            });
    }
    // The provider call's outcome is audited with its duration, whatever it was.
    const call = { provider: view.role.providerType, durationMs: Math.round(performance.now() - started) };
    const now = clock();
    await runTx((tx) =>
      a.status === 'activating'
        ? finishGrant(tx, view, failure, now, { ...call, endAt })
        : finishRevoke(tx, view, failure, now, call),
    );
    const after = await getActivation(db, activationId);
    // Retries ran out on transient errors (timeouts): the target may have acted on one of them.
    // Take back whatever may be there, so a failed activation never leaves access behind.
    if (after.activation.status === 'failed' && failure?.retryable && provider) {
      await cleanUpFailedGrant(after, target.principal, provider);
    }
    return after;
  }

  async function cleanUpFailedGrant(
    view: ActivationView,
    principal: GrantTarget['principal'],
    provider: GrantProvider,
  ) {
    const target = await targetOf(view, view.activation.endAt);
    let error: string | null = null;
    try {
      await provider.revoke({ ...target, principal });
    } catch (cause) {
      error = cause instanceof Error ? cause.message : String(cause);
    }
    await runTx(async (tx) => {
      const data = { role: view.role.name, error };
      await recordActivationChange(tx, view.activation.id, {
        actor: SYSTEM,
        action: error ? 'activation.cleanup_failed' : 'activation.cleaned_up',
        at: clock(),
        data,
        notify: error
          ? (await listAdmins(tx)).map((admin) => ({ recipientId: admin.id, kind: 'revoke_failing', data }))
          : [],
      });
    });
  }

  async function finishGrant(
    tx: Tx,
    view: ActivationView,
    failure: GrantError | undefined,
    now: Date,
    call: ProviderCallFacts & { endAt: Date | null },
  ) {
    const a = view.activation;
    const { endAt, ...facts } = call;
    const data = { role: view.role.name };
    if (!failure) {
      const moved = await transition(tx, a.id, ['activating'], 'active', {
        activatedAt: now,
        endAt,
        attempts: 0,
        lastError: null,
        nextAttemptAt: endAt,
        updatedAt: now,
      });
      if (!moved) return; // another replica finished it first
      await recordActivationChange(tx, a.id, {
        actor: SYSTEM,
        action: `${a.kind}.granted`,
        at: now,
        data: { ...data, ...facts, endAt: endAt?.toISOString() ?? null },
        notify: [{ recipientId: a.principalId, kind: 'activation_active', data }],
      });
      return;
    }
    const attempts = a.attempts + 1;
    if (!failure.retryable || attempts >= MAX_GRANT_ATTEMPTS) {
      const moved = await transition(tx, a.id, ['activating'], 'failed', {
        attempts,
        lastError: failure.message,
        endReason: `grant failed: ${failure.message}`,
        endedAt: now,
        nextAttemptAt: null,
        updatedAt: now,
      });
      if (!moved) return;
      const admins = await listAdmins(tx);
      const failed = { ...data, error: failure.message };
      await recordActivationChange(tx, a.id, {
        actor: SYSTEM,
        action: `${a.kind}.failed`,
        at: now,
        data: { ...failed, ...facts, attempts },
        notify: [
          { recipientId: a.principalId, kind: 'activation_failed', data: failed },
          ...admins.map((admin) => ({ recipientId: admin.id, kind: 'grant_failed', data: failed })),
        ],
      });
      return;
    }
    const moved = await transition(tx, a.id, ['activating'], 'activating', {
      attempts,
      lastError: failure.message,
      nextAttemptAt: new Date(now.getTime() + nextDelayMs(attempts, failure)),
      updatedAt: now,
    });
    if (!moved) return;
    await recordActivationChange(tx, a.id, {
      actor: SYSTEM,
      action: `${a.kind}.grant_retrying`,
      at: now,
      data: { ...data, ...facts, error: failure.message, attempts },
    });
  }

  async function finishRevoke(
    tx: Tx,
    view: ActivationView,
    failure: GrantError | undefined,
    now: Date,
    facts: ProviderCallFacts,
  ) {
    const a = view.activation;
    const data = { role: view.role.name, reason: a.endReason ?? 'ended' };
    if (!failure) {
      const moved = await transition(tx, a.id, ['revoking'], 'ended', {
        endedAt: now,
        lastError: null,
        nextAttemptAt: null,
        updatedAt: now,
      });
      if (!moved) return;
      await recordActivationChange(tx, a.id, {
        actor: SYSTEM,
        action: `${a.kind}.ended`,
        at: now,
        data: { ...data, ...facts },
        notify: [{ recipientId: a.principalId, kind: 'activation_ended', data }],
      });
      return;
    }
    // A role is never reported revoked until the provider confirms: stay `revoking`, retry with
    // backoff, and alert the admins on the first failure.
    const attempts = a.attempts + 1;
    const moved = await transition(tx, a.id, ['revoking'], 'revoking', {
      attempts,
      lastError: failure.message,
      nextAttemptAt: new Date(now.getTime() + nextDelayMs(attempts, failure)),
      updatedAt: now,
    });
    if (!moved) return;
    const admins = attempts === 1 ? await listAdmins(tx) : [];
    await recordActivationChange(tx, a.id, {
      actor: SYSTEM,
      action: `${a.kind}.revoke_failing`,
      at: now,
      data: { ...data, ...facts, error: failure.message, attempts },
      notify: admins.map((admin) => ({
        recipientId: admin.id,
        kind: 'revoke_failing',
        data: { ...data, error: failure.message },
      })),
    });
  }
}

/** Our backoff, or the target's Retry-After when longer — capped, so a target cannot park a row for ever. */
const nextDelayMs = (attempts: number, failure: GrantError) =>
  Math.max(retryDelayMs(attempts), Math.min(failure.retryAfterMs ?? 0, 60 * 60_000));

/** Provider calls the loop makes at once after a claim. */
const SETTLE_CONCURRENCY = 10;

/** What the audit trail records of a provider call besides its outcome. */
interface ProviderCallFacts {
  provider: string;
  durationMs: number;
}

/** When the loop should next look at a row in `status`: at its start, or after the in-flight lease. */
function nextAttemptFor(status: Activation['status'], startAt: Date, now: Date): Date | null {
  if (status === 'approved') return startAt;
  if (status === 'activating') return new Date(now.getTime() + IN_FLIGHT_LEASE_MS);
  return null;
}

/** The activation service's interface, for the surfaces that call it. */
export type ActivationService = ReturnType<typeof createActivationService>;
