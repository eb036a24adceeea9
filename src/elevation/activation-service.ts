import { performance } from 'node:perf_hooks';
import type { Clock } from '../clock.ts';
import type { Db, Tx } from '../db/client.ts';
import { and, eq, gt, idIn, isNotNull, isNull, lte, ne, or, type SQL, sql } from '../db/drizzle.ts';
import { conflict, forbidden, invalid } from '../errors.ts';
import { GrantError, type GrantProvider, type GrantTarget } from '../grants/grant-provider.ts';
import type { ProviderRegistry } from '../grants/registry.ts';
import { type ActivationStatus, activations, decisions } from './activation.sql.ts';
import {
  type Activation,
  type ActivationView,
  findOpenActivation,
  getActivation,
  insertActivation,
  listActivations,
  listDecisions,
  prepareOpenActivations,
  renewLeases,
  transition,
  transitionIds,
  transitionLocked,
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
import { chatIdentitiesOf, listAdmins, listChatIdentities, type Principal } from './principal-repository.ts';
import {
  activationChange,
  type Change,
  type Notice,
  recordActivationChange,
  recordChanges,
} from './record.ts';
import { eligibilities, roles } from './role.sql.ts';
import { findEligibility, getRoleByName, namedApproverIds, type Role } from './role-repository.ts';
import { createStepUpService, type StepUpService } from './step-up-service.ts';

/** What the activation service needs from the outside. */
export interface ActivationDeps {
  db: Db;
  providers: ProviderRegistry;
  clock: Clock;
  /** Step-up MFA for roles that require it; without it such actions are refused, never let through. */
  stepUps?: StepUpService;
  /** How long a claimed grant/revoke is held before the loop assumes a crash (default IN_FLIGHT_LEASE_MS). */
  inFlightLeaseMs?: number;
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
  const stepUps =
    deps.stepUps ?? createStepUpService({ db, clock, options: { publicUrl: undefined, rememberMinutes: 0 } });
  const leaseMs = deps.inFlightLeaseMs ?? IN_FLIGHT_LEASE_MS;

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
   * SKIP LOCKED so replicas take disjoint rows, and moved one step together by `step` inside the
   * same short transaction. Returns the rows `step` moved, as they are now; their provider calls
   * (`settleAll`) follow the commit; every step that leads to a provider call leases its row
   * until `now + leaseMs`.
   */
  async function claimDue(
    status: ActivationStatus,
    due: 'startAt' | 'endAt' | 'nextAttemptAt' | 'approvalExpiresAt',
    limit: number,
    step: BatchStep,
    also?: SQL,
  ): Promise<ActivationView[]> {
    const now = clock();
    return runTx(async (tx) => {
      // Lock the due rows first, on the activations alone (an index range scan), then load them
      // with their role and principal by primary key: one query joining first would make the
      // planner join every due row before it sorts and limits.
      const claimed = await tx
        .select({ id: activations.id })
        .from(activations)
        .where(
          and(
            eq(activations.status, status),
            lte(activations[due], now),
            // Extensions wait for a decision, and for the target's confirmation of the new end when
            // it holds the end itself (`activating`); once approved they are applied and done.
            status === 'pending_approval' || status === 'activating'
              ? undefined
              : ne(activations.kind, 'extension'),
            also,
          ),
        )
        .orderBy(activations[due])
        .limit(limit)
        .for('update', { skipLocked: true });
      if (claimed.length === 0) return [];
      const rows = await tx
        .select({ activation: activations, principal: principals })
        .from(activations)
        .innerJoin(principals, eq(principals.id, activations.principalId))
        .where(
          idIn(
            activations.id,
            claimed.map((c) => c.id),
          ),
        )
        .orderBy(activations[due]);
      // A batch has few roles (often one): each is read once and shared by its rows.
      const roleIds = [...new Set(rows.map((row) => row.activation.roleId))];
      const byId = new Map(
        (await tx.select().from(roles).where(idIn(roles.id, roleIds))).map((r) => [r.id, r]),
      );
      const views = rows.map(({ activation, principal }) => {
        const role = byId.get(activation.roleId);
        if (!role) throw new Error(`activation ${activation.id} has no role`);
        return { activation, role, principal };
      });
      // Only rows this replica really moved are settled (the updates are conditional, as always).
      return step(tx, views, now);
    });
  }

  // The board's and the activation form's reads, built once (on first use): they run on nearly
  // every chat request.
  let eligibleQuery: ReturnType<typeof buildEligibleQuery> | undefined;
  const buildEligibleQuery = () =>
    db
      .select({ role: roles, eligibleUntil: eligibilities.endAt })
      .from(eligibilities)
      .innerJoin(roles, eq(roles.id, eligibilities.roleId))
      .where(
        and(
          eq(eligibilities.principalId, sql.placeholder('principalId')),
          isNull(roles.archivedAt),
          lte(eligibilities.startAt, sql.placeholder('now')),
          or(isNull(eligibilities.endAt), gt(eligibilities.endAt, sql.placeholder('now'))),
        ),
      )
      .orderBy(roles.name)
      .prepare('eligible_roles_of_principal');
  const openActivationsOf = prepareOpenActivations(db);

  /** The roles a principal may activate now, by name. */
  function listEligible(principalId: string): Promise<Access['eligible']> {
    eligibleQuery ??= buildEligibleQuery();
    // Placeholders reach the driver as they are (no column encoder): the time as text.
    return eligibleQuery.execute({ principalId, now: clock().toISOString() });
  }

  const runTx = <T>(work: (tx: Tx) => Promise<T>) => db.transaction(work);

  return {
    /** The roles a principal may activate now, by name (one query: what the activation form needs). */
    listEligible,

    /** The requester's board. */
    async listAccess(principalId: string): Promise<Access> {
      const eligible = await listEligible(principalId);
      const open = await openActivationsOf(principalId);
      return {
        eligible,
        // An extension shows only while it waits for approval; applied, it is part of its parent.
        active: open.filter(
          (v) => v.activation.status !== 'pending_approval' && v.activation.kind !== 'extension',
        ),
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
     * with approval it waits, and each approver is notified. A role with `requireMfa` throws
     * StepUpNeeded instead (nothing is written) unless `stepUp` names the requester's step-up
     * just verified for it, or a fresh one is remembered.
     */
    async requestActivation(
      input: { actor: Actor; roleName: string; stepUp?: string } & ActivationAsk,
    ): Promise<ActivationView> {
      const requesterId = requireRequester(input.actor);
      const now = clock();
      // The new activation's id, or null when a step-up must come first.
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
        // Checked last, so the person never signs in again only to hear that the request is wrong.
        const proof = { kind: 'activation', roleName: role.name } as const;
        if (s.requireMfa && !(await stepUps.satisfied(tx, requesterId, input.stepUp, proof))) return null;
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
            nextAttemptAt: nextAttemptFor(status, checked.startAt, now, leaseMs),
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
      if (id === null) {
        const { actor: _, roleName, stepUp: __, ...ask } = input;
        throw await stepUps.demand(requesterId, {
          kind: 'activation',
          roleName,
          ask: { ...ask, startAt: ask.startAt?.toISOString() },
        });
      }
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

    /**
     * An approver approves; the request moves on once the role's quorum is reached. With
     * `requireMfaToApprove`, StepUpNeeded unless `stepUp` (or a remembered one) covers it.
     */
    async approve(input: {
      actor: Actor;
      activationId: string;
      comment?: string;
      stepUp?: string;
    }): Promise<ApprovalOutcome> {
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
        const proof = { kind: 'decision', activationId: a.id } as const;
        if (
          view.role.settings.requireMfaToApprove &&
          !(await stepUps.satisfied(tx, approverId, input.stepUp, proof))
        )
          return { stepUpFor: approverId };
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
          await approveExtension(tx, view, now);
        } else {
          const next = statusOnceApproved(a.startAt, now);
          const moved = await transition(tx, a.id, ['pending_approval'], next, {
            nextAttemptAt: nextAttemptFor(next, a.startAt, now, leaseMs),
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
      if (result.stepUpFor !== undefined) {
        throw await stepUps.demand(result.stepUpFor, {
          kind: 'decision',
          activationId: input.activationId,
          verdict: 'approve',
          comment: input.comment,
        });
      }
      const view = await settle(input.activationId);
      return {
        outcome: result.outcome,
        approvalsMissing: result.missing,
        view,
      };
    },

    /**
     * An approver denies, with the reason the requester will read; the first decision wins.
     * With `requireMfaToApprove`, StepUpNeeded unless `stepUp` (or a remembered one) covers it.
     */
    async deny(input: {
      actor: Actor;
      activationId: string;
      comment: string;
      stepUp?: string;
    }): Promise<ActivationView> {
      const now = clock();
      const reason = cleanText(input.comment);
      const stopped = await runTx(async (tx) => {
        const view = await lockPending(tx, input.activationId, now);
        if (typeof view === 'string') return { expired: view };
        const a = view.activation;
        const approvers = await approversFor(tx, view.role, a.principalId);
        const approverId = checkApprover(view.role, input.actor.principalId, a.principalId, approvers);
        if (!reason) throw invalid('Say why you deny the request; the requester will read it.', 'comment');
        if (reason.length > 500) throw invalid('The reason may be at most 500 characters.', 'comment');
        const proof = { kind: 'decision', activationId: a.id } as const;
        if (
          view.role.settings.requireMfaToApprove &&
          !(await stepUps.satisfied(tx, approverId, input.stepUp, proof))
        )
          return { stepUpFor: approverId };
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
      if (stopped?.expired !== undefined) throw conflict(stopped.expired);
      if (stopped?.stepUpFor !== undefined) {
        throw await stepUps.demand(stopped.stepUpFor, {
          kind: 'decision',
          activationId: input.activationId,
          verdict: 'deny',
          comment: reason,
        });
      }
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
        if (await extensionInFlight(tx, a.id)) {
          throw conflict(
            `Your last extension of ${role.name} is still being applied; try again in a minute.`,
          );
        }
        if (!role.settings.requireApproval && holdsEnd(role)) {
          // The target ends the grant itself: the new end counts once the provider has taken it.
          const extension = await insertActivation(
            tx,
            {
              kind: 'extension',
              extendsId: a.id,
              principalId: a.principalId,
              roleId: role.id,
              status: 'activating',
              durationMinutes: input.durationMinutes,
              startAt: a.endAt,
              endAt: newEnd,
              justification,
              requestedBy: input.actor.label,
              nextAttemptAt: new Date(now.getTime() + leaseMs),
              createdAt: now,
              updatedAt: now,
            },
            role.name,
          );
          await recordActivationChange(tx, extension.id, {
            actor: input.actor,
            action: 'extension.requested',
            at: now,
            data: { ...data, extends: a.id, endAt: newEnd.toISOString() },
          });
          return getActivation(tx, extension.id);
        }
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
      // Waiting for the target: told now; on failure the loop retries it (retryDue).
      if (result.activation.status === 'activating') {
        const settled = await settle(result.activation.id);
        return settled.activation.status === 'approved' ? getActivation(db, input.activationId) : settled;
      }
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
      const started = await claimDue('approved', 'startAt', limit, async (tx, due, now) => {
        const moved = movedViews(
          due,
          await transitionLocked(tx, rowsOf(due), ['approved'], 'activating', {
            nextAttemptAt: new Date(now.getTime() + leaseMs),
            updatedAt: now,
          }),
        );
        await recordChanges(
          tx,
          moved.map((view) =>
            activationChange(view.activation.id, {
              actor: SYSTEM,
              action: `${view.activation.kind}.starting`,
              at: now,
              data: { role: view.role.name },
            }),
          ),
        );
        return moved;
      });
      await settleAll(started, { claimed: true });
      return started.length;
    },

    /**
     * Loop: activations and assignments whose end has come are revoked, a batch at a time: one
     * transaction moves the batch to `revoking` with its audit events, the providers are called,
     * one transaction ends the confirmed ones (never reported ended before the provider confirms).
     */
    async expireDue(limit = 100): Promise<number> {
      // An active row's next_attempt_at is its end (every path that sets one sets the other), and
      // unlike end_at it is indexed with the status: the claim stays an index range scan however
      // many activations run. The end itself is checked too, so nothing is revoked early.
      const expired = await claimDue(
        'active',
        'nextAttemptAt',
        limit,
        (tx, due, now) =>
          startRevokes(tx, due, now, (view) => ({
            actor: SYSTEM,
            reason: view.activation.kind === 'assignment' ? 'the assignment ended' : 'expired',
            action: `${view.activation.kind}.expired`,
            data: { role: view.role.name, endAt: view.activation.endAt?.toISOString() ?? null },
          })),
        lte(activations.endAt, clock()),
      );
      await settleAll(expired, { claimed: true });
      return expired.length;
    },

    /**
     * Loop: milliseconds until the next running activation or assignment ends (by this service's
     * clock; 0 or less: one is due), or null when none has an end. The loop sleeps until then.
     */
    async untilNextEnd(): Promise<number | null> {
      // As in expireDue, an active row's next_attempt_at is its end: the first entry of the index.
      const [next] = await db
        .select({ at: activations.nextAttemptAt })
        .from(activations)
        .where(
          and(
            eq(activations.status, 'active'),
            ne(activations.kind, 'extension'),
            isNotNull(activations.nextAttemptAt),
          ),
        )
        .orderBy(activations.nextAttemptAt)
        .limit(1);
      return next?.at ? next.at.getTime() - clock().getTime() : null;
    },

    /** Loop: grants and revokes whose retry time (or in-flight lease, after a crash) has come are tried again. */
    async retryDue(limit = 100): Promise<number> {
      const lease =
        (status: 'activating' | 'revoking'): BatchStep =>
        async (tx, due, now) =>
          movedViews(
            due,
            await transitionLocked(tx, rowsOf(due), [status], status, {
              nextAttemptAt: new Date(now.getTime() + leaseMs),
              updatedAt: now,
            }),
          );
      const granting = await claimDue('activating', 'nextAttemptAt', limit, lease('activating'));
      const revoking = await claimDue('revoking', 'nextAttemptAt', limit, lease('revoking'));
      await settleAll([...granting, ...revoking], { claimed: true });
      return granting.length + revoking.length;
    },

    /** Loop: requests nobody decided within the role's approval timeout time out. */
    timeOutDue: (limit = 100) =>
      claimDue('pending_approval', 'approvalExpiresAt', limit, eachRow(timeOut)).then(
        (moved) => moved.length,
      ),
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
    const moved = await startRevokes(tx, [view], now, () => ({
      actor,
      reason,
      action: `${a.kind}.revoke_started`,
      data: { role: view.role.name, reason },
    }));
    if (moved.length === 0) throw conflict(`This ${a.kind} is no longer active.`);
  }

  /**
   * active → revoking for many activations, read under this transaction's row lock: one
   * conditional update per distinct reason (a batch of the loop has one or two), then their audit
   * events together. Returns the views that moved; the provider calls follow after commit (settleAll).
   */
  async function startRevokes(
    tx: Tx,
    views: ActivationView[],
    now: Date,
    describe: (view: ActivationView) => {
      actor: Actor;
      reason: string;
      action: string;
      data: Record<string, unknown>;
    },
  ): Promise<ActivationView[]> {
    const described = views.map((view) => ({ view, ...describe(view) }));
    const moved = new Map<string, Activation>();
    for (const reason of new Set(described.map((d) => d.reason))) {
      const reads = described.filter((d) => d.reason === reason).map((d) => d.view.activation);
      const rows = await transitionLocked(tx, reads, ['active'], 'revoking', {
        endReason: reason,
        attempts: 0,
        nextAttemptAt: new Date(now.getTime() + leaseMs),
        updatedAt: now,
      });
      for (const row of rows) moved.set(row.id, row);
    }
    const revoking = described.filter((d) => moved.has(d.view.activation.id));
    await recordChanges(
      tx,
      revoking.map((d) =>
        activationChange(d.view.activation.id, { actor: d.actor, action: d.action, at: now, data: d.data }),
      ),
    );
    return movedViews(views, [...moved.values()]);
  }

  /** What a provider is told about an activation (its principal's chat identities loaded unless given). */
  async function targetOf(
    view: ActivationView,
    endAt: Date | null,
    identities?: GrantTarget['principal']['identities'],
  ): Promise<GrantTarget> {
    const a = view.activation;
    return {
      activationId: a.id,
      attempt: a.attempts + 1,
      principal: {
        id: view.principal.id,
        email: view.principal.email,
        accounts: view.principal.accounts,
        identities: identities ?? (await listChatIdentities(db, view.principal.id)),
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

  /** Whether the role's target ends grants itself, so an extension must reach it (provider `extend`). */
  function holdsEnd(role: Role): boolean {
    return providers.get(role.providerType)?.extend !== undefined;
  }

  /** Whether an extension of this activation is still being applied in the target. */
  async function extensionInFlight(tx: Tx, activationId: string): Promise<boolean> {
    const [row] = await tx
      .select({ id: activations.id })
      .from(activations)
      .where(and(eq(activations.extendsId, activationId), eq(activations.status, 'activating')));
    return row !== undefined;
  }

  /**
   * An approved extension: applied at once, or, when the target holds the end itself, `activating`
   * until the provider has taken the new end (settle, then retryDue like a grant).
   */
  async function approveExtension(tx: Tx, extension: ActivationView, now: Date): Promise<void> {
    const e = extension.activation;
    if (!holdsEnd(extension.role)) {
      await applyExtension(tx, extension, now);
      await transition(tx, e.id, ['pending_approval'], 'approved', { updatedAt: now });
      return;
    }
    await transition(tx, e.id, ['pending_approval'], 'activating', {
      nextAttemptAt: new Date(now.getTime() + leaseMs),
      updatedAt: now,
    });
  }

  /**
   * Tells the target the new end of an extension in flight (`activating`), then records the
   * outcome: applied to the parent (`approved`), retried with backoff like a grant, or given up
   * (`failed`) with the activation left running to its old end and the requester and admins told.
   */
  async function settleExtension(extension: ActivationView): Promise<ActivationView> {
    const e = extension.activation;
    if (e.status !== 'activating' || !e.extendsId || !e.endAt) return extension;
    const parent = await getActivation(db, e.extendsId);
    const provider = providers.get(extension.role.providerType);
    let failure: GrantError | undefined;
    const started = performance.now();
    if (parent.activation.status !== 'active') {
      failure = new GrantError('the activation ended before its new end was applied', { retryable: false });
    } else {
      try {
        if (!provider?.extend) {
          throw new GrantError(`no grant provider "${extension.role.providerType}" can extend`, {
            retryable: false,
          });
        }
        const target = await targetOf(parent, e.endAt);
        await provider.extend({ ...target, attempt: e.attempts + 1 });
      } catch (error) {
        failure =
          error instanceof GrantError
            ? error
            : new GrantError(error instanceof Error ? error.message : String(error), {
                retryable: true,
                cause: error,
              });
      }
    }
    const facts = {
      provider: extension.role.providerType,
      durationMs: Math.round(performance.now() - started),
    };
    const outcome = await runTx((tx) => finishExtension(tx, extension, failure, clock(), facts));
    // The target took the new end but the activation ended meanwhile: take back what it may hold.
    if (outcome === 'ended' && provider) {
      const after = await getActivation(db, parent.activation.id);
      await cleanUpFailedGrant(after, (await targetOf(after, after.activation.endAt)).principal, provider);
    }
    return getActivation(db, e.id);
  }

  /**
   * Records an extension's provider call under the extension's row lock: `applied`, `retrying`,
   * `failed`, `ended` (the target took the end but the activation ended meanwhile) or `elsewhere`
   * (another process settled it first).
   */
  async function finishExtension(
    tx: Tx,
    extension: ActivationView,
    failure: GrantError | undefined,
    now: Date,
    facts: ProviderCallFacts,
  ): Promise<'applied' | 'retrying' | 'failed' | 'ended' | 'elsewhere'> {
    const e = (await getActivation(tx, extension.activation.id, { lock: true })).activation;
    if (e.status !== 'activating' || !e.extendsId) return 'elsewhere';
    const data = { role: extension.role.name, durationMinutes: e.durationMinutes };
    if (!failure) {
      const parent = await transition(tx, e.extendsId, ['active'], 'active', {
        endAt: e.endAt,
        nextAttemptAt: e.endAt,
        expiryWarnedAt: null, // a new end earns a new warning
        updatedAt: now,
      });
      if (parent) {
        await transition(tx, e.id, ['activating'], 'approved', {
          attempts: 0,
          lastError: null,
          nextAttemptAt: null,
          updatedAt: now,
        });
        await recordActivationChange(tx, parent.id, {
          actor: SYSTEM,
          action: 'activation.extended',
          at: now,
          data: { ...data, ...facts, extension: e.id, endAt: e.endAt?.toISOString() ?? null },
          notify: [{ recipientId: parent.principalId, kind: 'activation_extended', data }],
        });
        return 'applied';
      }
    }
    const reason =
      failure ?? new GrantError('the activation ended before its new end was applied', { retryable: false });
    const attempts = e.attempts + 1;
    if (reason.retryable && attempts < MAX_GRANT_ATTEMPTS) {
      await transition(tx, e.id, ['activating'], 'activating', {
        attempts,
        lastError: reason.message,
        nextAttemptAt: new Date(now.getTime() + nextDelayMs(attempts, reason)),
        updatedAt: now,
      });
      await recordActivationChange(tx, e.id, {
        actor: SYSTEM,
        action: 'extension.extend_retrying',
        at: now,
        data: { ...data, ...facts, error: reason.message, attempts },
      });
      return 'retrying';
    }
    await transition(tx, e.id, ['activating'], 'failed', {
      attempts,
      lastError: reason.message,
      endReason: `extension failed: ${reason.message}`,
      endedAt: now,
      nextAttemptAt: null,
      updatedAt: now,
    });
    // Still running at its old end: the requester hears so, the admins get the alert.
    const parent = (await getActivation(tx, e.extendsId)).activation;
    const failed = { role: extension.role.name, error: reason.message };
    const endAt = parent.endAt?.toISOString() ?? null;
    await recordActivationChange(tx, e.id, {
      actor: SYSTEM,
      action: 'extension.failed',
      at: now,
      data: { ...failed, ...facts, attempts, endAt },
      notify:
        parent.status === 'active'
          ? [
              { recipientId: e.principalId, kind: 'extension_failed', data: { ...failed, endAt } },
              ...(await listAdmins(tx)).map((admin) => ({
                recipientId: admin.id,
                kind: 'extend_failed',
                data: failed,
              })),
            ]
          : [],
    });
    return failure ? 'failed' : 'ended';
  }

  /**
   * Finishes what an activation has in flight: grants an `activating` one, revokes a `revoking`
   * one (see `settleAll`), and returns it as it is then. Safe to repeat and to race, so both
   * the request path and the loop after a crash call it.
   */
  async function settle(activationId: string): Promise<ActivationView> {
    const view = await getActivation(db, activationId);
    if (view.activation.kind === 'extension') return settleExtension(view);
    if (!isInFlight(view)) return view;
    await settleAll([view]);
    return getActivation(db, activationId);
  }

  /**
   * Finishes what activations have in flight: grants `activating` ones, revokes `revoking` ones,
   * at most SETTLE_CONCURRENCY provider calls at a time, then records every outcome in one short
   * transaction. Safe to repeat and to race (providers are idempotent; the transitions are
   * conditional), so the request path, the loop's batches and the loop after a crash all call it.
   * `claimed`: the loop's batches, whose rows this very call chain has just leased in its claim
   * (claimDue), so nobody else can hold them before that lease runs out.
   */
  async function settleAll(views: ActivationView[], options: { claimed?: boolean } = {}): Promise<void> {
    // An extension in flight tells the target a new end; it has its own, rarer path.
    for (const view of views) if (view.activation.kind === 'extension') await settleExtension(view);
    const inFlight = views.filter((view) => view.activation.kind !== 'extension' && isInFlight(view));
    if (inFlight.length === 0) return;
    const identities = await chatIdentitiesOf(
      db,
      inFlight.map((v) => v.principal.id),
    );
    // The lease runs from the provider calls, not from the claim: SETTLE_CONCURRENCY rows at a
    // time are renewed just before their calls if they still carry the lease read here; a row
    // another replica took over meanwhile (a long batch outlasted the lease) is left to it, so
    // one replica calls, not two. A row of the loop's own claim whose lease has at least
    // FRESH_LEASE of its length ahead needs no renewal (nobody else may take it before it runs
    // out, and the call still has nearly the whole lease): a burst's batch is called with no
    // statement between its chunks, where renewing cost one more update of every row.
    const outcomes: ProviderOutcome[] = [];
    for (let i = 0; i < inFlight.length; i += SETTLE_CONCURRENCY) {
      const chunk = inFlight.slice(i, i + SETTLE_CONCURRENCY);
      const now = clock().getTime();
      const fresh = (view: ActivationView) =>
        options.claimed === true &&
        (view.activation.nextAttemptAt?.getTime() ?? 0) - now >= leaseMs * FRESH_LEASE;
      const stale = chunk.filter((view) => !fresh(view));
      const held =
        stale.length === 0
          ? undefined
          : await renewLeases(
              db,
              stale.map((view) => view.activation),
              new Date(now + leaseMs),
            );
      const calls = chunk
        .filter((view) => fresh(view) || held?.has(view.activation.id))
        .map((view) => callProvider(view, identities.get(view.principal.id) ?? []));
      outcomes.push(...(await Promise.all(calls)));
    }
    const now = clock();
    await runTx((tx) => finishAll(tx, outcomes, now));
    // Retries ran out on transient errors (timeouts): the target may have acted on one of them.
    // Take back whatever may be there, so a failed activation never leaves access behind.
    for (const { view, failure, target } of outcomes) {
      if (view.activation.status !== 'activating' || !failure?.retryable) continue;
      const after = await getActivation(db, view.activation.id);
      const provider = providers.get(view.role.providerType);
      if (after.activation.status === 'failed' && provider) {
        await cleanUpFailedGrant(after, target.principal, provider);
      }
    }
  }

  /** Calls the provider for one in-flight activation; never throws, the outcome says how it went. */
  async function callProvider(
    view: ActivationView,
    identities: GrantTarget['principal']['identities'],
  ): Promise<ProviderOutcome> {
    const a = view.activation;
    const provider = providers.get(view.role.providerType);
    // An activation runs its duration from the moment it is granted; an assignment keeps the end
    // its admin set. The provider gets that end too (e.g. a time-bound directory assignment).
    const endAt =
      a.status === 'activating' && a.kind !== 'assignment' && a.durationMinutes !== null
        ? new Date(clock().getTime() + a.durationMinutes * MINUTE_MS)
        : a.endAt;
    const target = await targetOf(view, endAt, identities);
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
    return { view, endAt, target, failure, call };
  }

  /**
   * Records provider outcomes: confirmed revokes end together in one statement (the loop's
   * common case), everything else one row at a time; then all their audit events and notices.
   */
  async function finishAll(tx: Tx, outcomes: ProviderOutcome[], now: Date): Promise<void> {
    let admins: Promise<Principal[]> | undefined;
    const adminsOnce = () => {
      admins ??= listAdmins(tx);
      return admins;
    };
    const confirmed = outcomes.filter((o) => o.view.activation.status === 'revoking' && !o.failure);
    const endedIds = await transitionIds(tx, idsOf(confirmed.map((o) => o.view)), ['revoking'], 'ended', {
      endedAt: now,
      lastError: null,
      nextAttemptAt: null,
      updatedAt: now,
    });
    const changes: Change[] = [];
    for (const { view, call } of confirmed) {
      if (!endedIds.has(view.activation.id)) continue; // another replica finished it first
      const a = view.activation;
      const data = { role: view.role.name, reason: a.endReason ?? 'ended' };
      changes.push(
        activationChange(a.id, {
          actor: SYSTEM,
          action: `${a.kind}.ended`,
          at: now,
          data: { ...data, ...call },
          notify: [{ recipientId: a.principalId, kind: 'activation_ended', data }],
        }),
      );
    }
    // Revokes failing for the first time, by role and error: a target that is down fails a whole
    // batch, and the admins hear of it in one notice per role, not one per activation.
    const firstFailures = new Map<string, Change[]>();
    for (const outcome of outcomes) {
      const { view, failure } = outcome;
      if (view.activation.status === 'activating') {
        const change = await finishGrant(tx, outcome, now, adminsOnce);
        if (change) changes.push(change);
        continue;
      }
      const change = failure && (await failRevoke(tx, view, failure, now, outcome.call));
      if (!change) continue;
      changes.push(change);
      if (view.activation.attempts > 0) continue; // told at its first failure already
      const key = `${view.role.name}\n${failure.message}`;
      firstFailures.set(key, [...(firstFailures.get(key) ?? []), change]);
    }
    for (const [first, ...others] of firstFailures.values()) {
      if (!first) continue;
      const { role, reason, error } = first.data as { role: string; reason: string; error: string };
      const data = { role, reason, error, ...(others.length > 0 ? { others: others.length } : {}) };
      first.notify = (await adminsOnce()).map((admin) => ({
        recipientId: admin.id,
        kind: 'revoke_failing',
        data,
      }));
    }
    await recordChanges(tx, changes);
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

  /** A grant's outcome: activating → active, or a retry with backoff, or failed for good. */
  async function finishGrant(
    tx: Tx,
    outcome: ProviderOutcome,
    now: Date,
    admins: () => Promise<Principal[]>,
  ): Promise<Change | undefined> {
    const { view, failure, endAt, call: facts } = outcome;
    const a = view.activation;
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
      return activationChange(a.id, {
        actor: SYSTEM,
        action: `${a.kind}.granted`,
        at: now,
        data: { ...data, ...facts, endAt: endAt?.toISOString() ?? null },
        notify: [{ recipientId: a.principalId, kind: 'activation_active', data }],
      });
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
      const failed = { ...data, error: failure.message };
      return activationChange(a.id, {
        actor: SYSTEM,
        action: `${a.kind}.failed`,
        at: now,
        data: { ...failed, ...facts, attempts },
        notify: [
          { recipientId: a.principalId, kind: 'activation_failed', data: failed },
          ...(await admins()).map((admin) => ({ recipientId: admin.id, kind: 'grant_failed', data: failed })),
        ],
      });
    }
    const moved = await transition(tx, a.id, ['activating'], 'activating', {
      attempts,
      lastError: failure.message,
      nextAttemptAt: new Date(now.getTime() + nextDelayMs(attempts, failure)),
      updatedAt: now,
    });
    if (!moved) return;
    return activationChange(a.id, {
      actor: SYSTEM,
      action: `${a.kind}.grant_retrying`,
      at: now,
      data: { ...data, ...facts, error: failure.message, attempts },
    });
  }

  /**
   * A failed revoke. A role is never reported revoked until the provider confirms: stay
   * `revoking` and retry with backoff (finishAll tells the admins of a first failure).
   */
  async function failRevoke(
    tx: Tx,
    view: ActivationView,
    failure: GrantError,
    now: Date,
    facts: ProviderCallFacts,
  ): Promise<Change | undefined> {
    const a = view.activation;
    const data = { role: view.role.name, reason: a.endReason ?? 'ended' };
    const attempts = a.attempts + 1;
    const moved = await transition(tx, a.id, ['revoking'], 'revoking', {
      attempts,
      lastError: failure.message,
      nextAttemptAt: new Date(now.getTime() + nextDelayMs(attempts, failure)),
      updatedAt: now,
    });
    if (!moved) return;
    return activationChange(a.id, {
      actor: SYSTEM,
      action: `${a.kind}.revoke_failing`,
      at: now,
      data: { ...data, ...facts, error: failure.message, attempts },
    });
  }
}

/** Our backoff, or the target's Retry-After when longer — capped, so a target cannot park a row for ever. */
const nextDelayMs = (attempts: number, failure: GrantError) =>
  Math.max(retryDelayMs(attempts), Math.min(failure.retryAfterMs ?? 0, 60 * 60_000));

/**
 * Provider calls made at once after a claim: providers are remote and rate-limited, so a batch
 * of thousands goes out a few dozen at a time.
 */
export const SETTLE_CONCURRENCY = 32;

/**
 * The share of the in-flight lease a claimed row must still have ahead of it to be called
 * without renewing: every provider call starts with at least 90 % of ELEVATE_IN_FLIGHT_LEASE.
 */
const FRESH_LEASE = 0.9;

/** One provider call's outcome, as the transaction after the calls records it. */
interface ProviderOutcome {
  view: ActivationView;
  /** The end the provider was told (a grant's end runs from now). */
  endAt: Date | null;
  target: GrantTarget;
  failure: GrantError | undefined;
  call: ProviderCallFacts;
}

/** One step of the loop over a claimed batch, inside the claim's transaction: returns the rows it moved. */
type BatchStep = (tx: Tx, due: ActivationView[], now: Date) => Promise<ActivationView[]>;

/** A step that moves one row at a time, as a batch step (for use cases that are per row anyway). */
const eachRow =
  (step: (tx: Tx, view: ActivationView, now: Date) => Promise<boolean>): BatchStep =>
  async (tx, due, now) => {
    const moved: ActivationView[] = [];
    for (const view of due) if (await step(tx, view, now)) moved.push(view);
    return moved;
  };

const idsOf = (views: ActivationView[]) => views.map((v) => v.activation.id);
const rowsOf = (views: ActivationView[]) => views.map((v) => v.activation);

/** `views` that a batch transition moved, with their new rows, in the order of `views`. */
function movedViews(views: ActivationView[], rows: Activation[]): ActivationView[] {
  const byId = new Map(rows.map((row) => [row.id, row]));
  return views.flatMap((view) => {
    const activation = byId.get(view.activation.id);
    return activation ? [{ ...view, activation }] : [];
  });
}

/** Whether a provider call is due for the activation (a grant or a revoke in flight). */
const isInFlight = (view: ActivationView) =>
  view.activation.status === 'activating' || view.activation.status === 'revoking';

/** What the audit trail records of a provider call besides its outcome. */
interface ProviderCallFacts {
  provider: string;
  durationMs: number;
}

/** When the loop should next look at a row in `status`: at its start, or after the in-flight lease. */
function nextAttemptFor(
  status: Activation['status'],
  startAt: Date,
  now: Date,
  leaseMs: number,
): Date | null {
  if (status === 'approved') return startAt;
  if (status === 'activating') return new Date(now.getTime() + leaseMs);
  return null;
}

/** The activation service's interface, for the surfaces that call it. */
export type ActivationService = ReturnType<typeof createActivationService>;
