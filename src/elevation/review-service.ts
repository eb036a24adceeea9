import type { Clock } from '../clock.ts';
import type { Db, Tx } from '../db/client.ts';
import { and, asc, desc, eq, inArray, lte, type SQL, sql } from '../db/drizzle.ts';
import { ElevateError, forbidden, invalid, notFound } from '../errors.ts';
import type { ProviderRegistry } from '../grants/registry.ts';
import { activations } from './activation.sql.ts';
import { type Actor, SYSTEM } from './actor.ts';
import { type AdminContext, type Outcome, removeEligibility } from './admin-service.ts';
import { formatDuration, MINUTE_MS } from './duration.ts';
import { cleanText, MAX_JUSTIFICATION } from './policy.ts';
import { principals } from './principal.sql.ts';
import { ensurePrincipal, isEmail, listAdmins } from './principal-repository.ts';
import { type Notice, recordChange } from './record.ts';
import {
  accessReviewItems,
  accessReviews,
  type Recurrence,
  type ReviewDecision,
  type ReviewerMode,
} from './review.sql.ts';
import { eligibilities, roles } from './role.sql.ts';
import { getRoleByName, namedApproverIds } from './role-repository.ts';

export type Review = typeof accessReviews.$inferSelect;
export type ReviewItem = typeof accessReviewItems.$inferSelect;

/** A campaign as an admin describes it (dialog, CLI or the policy file's `reviews:`). */
export interface ReviewInput {
  /** The policy file's name of a recurring review; omitted for one started by hand. */
  name?: string;
  roleNames: string[];
  reviewers: ReviewerMode;
  /** Emails, for `reviewers: 'named'`. */
  reviewerEmails?: string[];
  /** How long it runs; PIM's default is 7 days. */
  durationMinutes?: number;
  recurrence?: Recurrence | null;
  unreviewed?: ReviewDecision;
}

/** One review item as cards, lists and exports show it. */
export interface ReviewItemView {
  itemId: string;
  reviewId: string;
  principal: string;
  role: string;
  reviewers: string[];
  lastActivatedAt: string | null;
  activations90d: number;
  decision: ReviewDecision | null;
  justification: string;
  decidedBy: string | null;
  decidedAt: string | null;
  outcome: 'kept' | 'removed' | null;
}

export const DEFAULT_REVIEW_MINUTES = 7 * 24 * 60;
const DAY_MS = 24 * 60 * MINUTE_MS;

/** When the next campaign of a recurring review starts: one period after this one started. */
export function nextStart(startAt: Date, recurrence: Recurrence): Date {
  const next = new Date(startAt);
  if (recurrence === 'weekly') next.setUTCDate(next.getUTCDate() + 7);
  else next.setUTCMonth(next.getUTCMonth() + (recurrence === 'monthly' ? 1 : 3));
  return next;
}

function requireAdmin(actor: Actor): void {
  if (!actor.isAdmin) throw forbidden('Only an Elevate admin can start or change an access review.');
}

/** The campaign row `input` describes (checked), without its id, status or dates. */
async function checkedInput(tx: Tx, input: ReviewInput) {
  const roleNames = [...new Set(input.roleNames)];
  if (roleNames.length === 0) throw invalid('Name at least one role to review.', 'role');
  for (const name of roleNames) {
    // Named on the roles field, so a form shows it there.
    await getRoleByName(tx, name).catch((error: unknown) => {
      throw error instanceof ElevateError && error.code === 'not_found'
        ? invalid(error.message, 'role')
        : error;
    });
  }
  const reviewerEmails = [...new Set((input.reviewerEmails ?? []).map((e) => e.trim().toLowerCase()))];
  if (input.reviewers === 'named') {
    if (reviewerEmails.length === 0)
      throw invalid(
        'Name the reviewers (emails), or review by the approvers or by the members.',
        'reviewers',
      );
    const bad = reviewerEmails.find((e) => !isEmail(e));
    if (bad !== undefined) throw invalid(`"${bad}" is not an email address.`, 'reviewers');
  }
  const durationMinutes = input.durationMinutes ?? DEFAULT_REVIEW_MINUTES;
  if (durationMinutes < 60 || durationMinutes > 180 * 24 * 60)
    throw invalid('A review runs between 1 hour and 180 days.', 'duration');
  return {
    name: input.name ?? null,
    roleNames,
    reviewers: input.reviewers,
    reviewerEmails: input.reviewers === 'named' ? reviewerEmails : [],
    durationMinutes,
    recurrence: input.recurrence ?? null,
    unreviewed: input.unreviewed ?? 'keep',
  };
}

/**
 * Opens a campaign now: one item per eligibility of its roles (with the member's last activation
 * and activations in 90 days, for the card), audited, and one `review_requested` notice per
 * reviewer listing their items. In the caller's transaction.
 */
async function openCampaign(tx: Tx, review: Review, actor: Actor, now: Date): Promise<ReviewItem[]> {
  const since = new Date(now.getTime() - 90 * DAY_MS);
  const members = await tx
    .select({
      principalId: eligibilities.principalId,
      email: principals.email,
      role: roles,
      lastActivatedAt: sql<string | null>`(select max(${activations.activatedAt}) from ${activations}
        where ${activations.principalId} = ${eligibilities.principalId} and ${activations.roleId} = ${eligibilities.roleId})`,
      activations90d: sql<number>`(select count(*)::int from ${activations}
        where ${activations.principalId} = ${eligibilities.principalId} and ${activations.roleId} = ${eligibilities.roleId}
        and ${activations.activatedAt} >= ${since.toISOString()})`,
    })
    .from(eligibilities)
    .innerJoin(principals, eq(principals.id, eligibilities.principalId))
    .innerJoin(roles, eq(roles.id, eligibilities.roleId))
    .where(inArray(roles.name, review.roleNames))
    .orderBy(asc(roles.name), asc(principals.email));
  const adminIds = (await listAdmins(tx)).map((a) => a.id);
  const namedIds: string[] = [];
  for (const email of review.reviewerEmails) namedIds.push((await ensurePrincipal(tx, email)).id);
  const rows = [];
  for (const m of members) {
    // Nobody reviews their own membership except in self-review; with nobody else, the admins do.
    const pool =
      review.reviewers === 'self'
        ? [m.principalId]
        : review.reviewers === 'named'
          ? namedIds
          : await namedApproverIds(tx, m.role);
    const others = pool.filter((id) => review.reviewers === 'self' || id !== m.principalId);
    const reviewerIds = others.length > 0 ? others : adminIds.filter((id) => id !== m.principalId);
    rows.push({
      reviewId: review.id,
      principalId: m.principalId,
      roleId: m.role.id,
      reviewerIds: [...new Set(reviewerIds)],
      lastActivatedAt: m.lastActivatedAt ? new Date(m.lastActivatedAt) : null,
      activations90d: Number(m.activations90d),
    });
  }
  const items = rows.length > 0 ? await tx.insert(accessReviewItems).values(rows).returning() : [];
  const views = await itemViews(tx, items);
  const notify: Notice[] = [];
  for (const reviewerId of new Set(items.flatMap((i) => i.reviewerIds))) {
    const mine = views.filter((_, n) => items[n]?.reviewerIds.includes(reviewerId));
    notify.push({
      recipientId: reviewerId,
      kind: 'review_requested',
      data: { ...reviewData(review), items: mine },
    });
  }
  await recordChange(tx, {
    actor,
    action: 'review.started',
    subjectType: 'review',
    subjectId: review.id,
    at: now,
    data: { ...reviewData(review), items: items.length },
    notify,
  });
  return items;
}

/** What every notice and audit event of a campaign says about it. */
function reviewData(review: Review) {
  return {
    reviewId: review.id,
    name: review.name,
    roles: review.roleNames,
    reviewers: review.reviewers,
    self: review.reviewers === 'self',
    endAt: review.endAt.toISOString(),
    unreviewed: review.unreviewed,
  };
}

/** Items with emails and role names, in the order given. */
async function itemViews(db: Db | Tx, items: ReviewItem[]): Promise<ReviewItemView[]> {
  if (items.length === 0) return [];
  const ids = [...new Set(items.flatMap((i) => [i.principalId, ...i.reviewerIds]))];
  const people = new Map(
    (await db.select().from(principals).where(inArray(principals.id, ids))).map((p) => [p.id, p.email]),
  );
  const roleIds = [...new Set(items.map((i) => i.roleId))];
  const roleNames = new Map(
    (await db.select().from(roles).where(inArray(roles.id, roleIds))).map((r) => [r.id, r.name]),
  );
  return items.map((i) => ({
    itemId: i.id,
    reviewId: i.reviewId,
    principal: people.get(i.principalId) ?? '',
    role: roleNames.get(i.roleId) ?? '',
    reviewers: i.reviewerIds.map((id) => people.get(id) ?? id),
    lastActivatedAt: i.lastActivatedAt?.toISOString() ?? null,
    activations90d: i.activations90d,
    decision: i.decision,
    justification: i.justification,
    decidedBy: i.decidedBy,
    decidedAt: i.decidedAt?.toISOString() ?? null,
    outcome: i.outcome,
  }));
}

/** Starts a campaign now (admins only), in the caller's transaction. */
export async function startReview(ctx: AdminContext, input: ReviewInput): Promise<Review> {
  requireAdmin(ctx.actor);
  const wanted = await checkedInput(ctx.tx, input);
  const [review] = await ctx.tx
    .insert(accessReviews)
    .values({
      ...wanted,
      startAt: ctx.now,
      endAt: new Date(ctx.now.getTime() + wanted.durationMinutes * MINUTE_MS),
      createdBy: ctx.actor.label,
    })
    .returning();
  if (!review) throw new Error('insert returned nothing');
  await openCampaign(ctx.tx, review, ctx.actor, ctx.now);
  return review;
}

/**
 * The policy file's review `name`: starts its first campaign when none is running or scheduled,
 * else brings the current one's settings in line (they carry over to the next). Diff lines.
 */
export async function saveReview(ctx: AdminContext, input: ReviewInput & { name: string }): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const wanted = await checkedInput(ctx.tx, input);
  const [current] = await ctx.tx
    .select()
    .from(accessReviews)
    .where(and(eq(accessReviews.name, input.name), inArray(accessReviews.status, ['running', 'scheduled'])))
    .orderBy(desc(accessReviews.startAt))
    .limit(1);
  if (!current) {
    await startReview(ctx, input);
    return { lines: [`+ review ${input.name} (${describe(wanted)})`] };
  }
  const was = describe(current);
  const now = describe(wanted);
  if (was === now) return { lines: [] };
  const lines = [`~ review ${input.name}: ${was} → ${now}`];
  // The running campaign keeps its items and end; the change shapes the campaigns after it.
  await ctx.tx.update(accessReviews).set(wanted).where(eq(accessReviews.id, current.id));
  await recordChange(ctx.tx, {
    actor: ctx.actor,
    action: 'review.updated',
    subjectType: 'review',
    subjectId: current.id,
    at: ctx.now,
    data: { changes: lines, ...wanted },
  });
  return { lines };
}

/**
 * Stops the named (policy file) reviews not in `listed`: a running campaign runs to its end
 * without a next one, a scheduled next one is dropped. Diff lines; audited.
 */
export async function stopReviewsNotIn(ctx: AdminContext, listed: Set<string>): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const lines: string[] = [];
  const current = await ctx.tx
    .select()
    .from(accessReviews)
    .where(
      and(sql`${accessReviews.name} is not null`, inArray(accessReviews.status, ['running', 'scheduled'])),
    );
  for (const r of current) {
    if (!r.name || listed.has(r.name) || (r.status === 'running' && !r.recurrence)) continue;
    if (r.status === 'scheduled') await ctx.tx.delete(accessReviews).where(eq(accessReviews.id, r.id));
    else await ctx.tx.update(accessReviews).set({ recurrence: null }).where(eq(accessReviews.id, r.id));
    const line = `- review ${r.name} (no longer recurs)`;
    if (!lines.includes(line)) lines.push(line);
    await recordChange(ctx.tx, {
      actor: ctx.actor,
      action: 'review.stopped',
      subjectType: 'review',
      subjectId: r.id,
      at: ctx.now,
      data: { name: r.name },
    });
  }
  return { lines };
}

/** The named reviews still going (running or scheduled), as the policy file states them. */
export async function currentNamedReviews(db: Db): Promise<(ReviewInput & { name: string })[]> {
  const rows = await db
    .select()
    .from(accessReviews)
    .where(
      and(
        sql`${accessReviews.name} is not null`,
        sql`${accessReviews.recurrence} is not null`,
        inArray(accessReviews.status, ['running', 'scheduled']),
      ),
    )
    .orderBy(asc(accessReviews.name), desc(accessReviews.startAt));
  const seen = new Map<string, ReviewInput & { name: string }>();
  for (const r of rows) {
    if (!r.name || seen.has(r.name)) continue;
    seen.set(r.name, {
      name: r.name,
      roleNames: r.roleNames,
      reviewers: r.reviewers,
      reviewerEmails: r.reviewerEmails,
      durationMinutes: r.durationMinutes,
      recurrence: r.recurrence,
      unreviewed: r.unreviewed,
    });
  }
  return [...seen.values()];
}

/** A campaign's settings in one comparable line. */
function describe(r: Omit<ReviewInput, 'name'> & { reviewerEmails: string[] }): string {
  const who = r.reviewers === 'named' ? r.reviewerEmails.join(',') : r.reviewers;
  return `roles ${r.roleNames.join(',')}, reviewers ${who}, ${formatDuration(r.durationMinutes ?? DEFAULT_REVIEW_MINUTES)}, ${r.recurrence ?? 'once'}, unreviewed ${r.unreviewed ?? 'keep'}`;
}

/** A decision that was already made, told to whoever comes second. */
export class AlreadyDecided extends ElevateError {
  readonly item: ReviewItemView;
  constructor(item: ReviewItemView) {
    super('conflict', `Already decided: ${item.decision} by ${item.decidedBy}.`);
    this.item = item;
  }
}

/** The access review use cases, each in its own transaction, and the loop's passes. */
export function createReviewService(deps: { db: Db; providers: ProviderRegistry; clock: Clock }) {
  const { db, clock } = deps;
  const ctxOf = (tx: Tx, actor: Actor): AdminContext => ({
    tx,
    actor,
    now: clock(),
    providers: deps.providers,
  });

  /** Claims due campaigns of `status` one by one (SKIP LOCKED) and runs `step` on each in its transaction. */
  async function eachDue(
    status: 'scheduled' | 'running',
    due: SQL,
    limit: number,
    step: (tx: Tx, r: Review, now: Date) => Promise<void>,
  ) {
    let done = 0;
    while (done < limit) {
      const handled = await db.transaction(async (tx) => {
        const [review] = await tx
          .select()
          .from(accessReviews)
          .where(and(eq(accessReviews.status, status), due))
          .orderBy(asc(accessReviews.endAt))
          .limit(1)
          .for('update', { skipLocked: true });
        if (!review) return false;
        await step(tx, review, clock());
        return true;
      });
      if (!handled) break;
      done += 1;
    }
    return done;
  }

  return {
    /** Starts a campaign now (admins only); reviewers are told. */
    start: (actor: Actor, input: ReviewInput) => db.transaction((tx) => startReview(ctxOf(tx, actor), input)),

    /**
     * A reviewer's decision on one item. Only that item's reviewers may decide (in self-review,
     * only the member); a refusal is audited and changes nothing. The first decision wins; later
     * ones get AlreadyDecided naming who decided.
     */
    async decide(input: { actor: Actor; itemId: string; decision: ReviewDecision; justification: string }) {
      const now = clock();
      if (!UUID.test(input.itemId)) throw notFound(`There is no review item ${input.itemId}.`);
      const refused = await db.transaction(async (tx) => {
        // The campaign first, shared: finishing takes it exclusively, so a decision either commits
        // before the end reads the items or finds the campaign ended, never in between.
        await tx
          .select({ id: accessReviews.id })
          .from(accessReviews)
          .innerJoin(accessReviewItems, eq(accessReviewItems.reviewId, accessReviews.id))
          .where(eq(accessReviewItems.id, input.itemId))
          .for('share', { of: accessReviews });
        const [row] = await tx
          .select({ item: accessReviewItems, review: accessReviews })
          .from(accessReviewItems)
          .innerJoin(accessReviews, eq(accessReviews.id, accessReviewItems.reviewId))
          .where(eq(accessReviewItems.id, input.itemId))
          .for('update', { of: accessReviewItems });
        if (!row) throw notFound(`There is no review item ${input.itemId}.`);
        const [view] = await itemViews(tx, [row.item]);
        if (!view) throw notFound(`There is no review item ${input.itemId}.`);
        const { principalId } = input.actor;
        if (!principalId || !row.item.reviewerIds.includes(principalId)) {
          // Audited in its own transaction below, so the refusal is on record and nothing else is.
          return { view, message: `You are not a reviewer of ${view.principal}'s ${view.role}.` };
        }
        if (row.item.decision) throw new AlreadyDecided(view);
        if (row.review.status !== 'running') throw invalid('This access review has ended.');
        // A review always asks why (PIM: "justification for continued membership").
        const justification = cleanText(input.justification);
        if (justification.length === 0 || justification.length > MAX_JUSTIFICATION)
          throw invalid(
            'Say why, in 1–500 characters: a review decision needs a justification.',
            'justification',
          );
        const [decided] = await tx
          .update(accessReviewItems)
          .set({ decision: input.decision, justification, decidedBy: input.actor.label, decidedAt: now })
          .where(eq(accessReviewItems.id, row.item.id))
          .returning();
        await recordChange(tx, {
          actor: input.actor,
          action: 'review.decided',
          subjectType: 'review',
          subjectId: row.review.id,
          at: now,
          data: {
            itemId: row.item.id,
            principal: view.principal,
            role: view.role,
            decision: input.decision,
            justification,
          },
          // Every reviewer's notice shows the outcome in place of the buttons (`review_decided`).
          notify: row.item.reviewerIds.map((recipientId) => ({
            recipientId,
            kind: 'review_decided',
            data: { reviewId: row.review.id, itemId: row.item.id },
          })),
        });
        return { decided: (await itemViews(tx, decided ? [decided] : []))[0] };
      });
      if ('decided' in refused && refused.decided) return refused.decided;
      const { view, message } = refused as { view: ReviewItemView; message: string };
      await db.transaction((tx) =>
        recordChange(tx, {
          actor: input.actor,
          action: 'review.decision_refused',
          subjectType: 'review',
          subjectId: view.reviewId,
          at: now,
          data: { itemId: view.itemId, principal: view.principal, role: view.role, reason: message },
        }),
      );
      throw forbidden(message);
    },

    /** Starts the scheduled campaigns (the next of a recurring review) whose time has come. */
    startDue: (limit = 20) =>
      eachDue('scheduled', lte(accessReviews.startAt, clock()), limit, async (tx, review, now) => {
        const [running] = await tx
          .update(accessReviews)
          // The start stays on the schedule (the next one counts from it, so it never drifts); the
          // end gives reviewers the whole duration even if the loop was down at the start.
          .set({ status: 'running', endAt: new Date(now.getTime() + review.durationMinutes * MINUTE_MS) })
          .where(eq(accessReviews.id, review.id))
          .returning();
        if (running) await openCampaign(tx, running, SYSTEM, now);
      }),

    /**
     * Reminds the reviewers of undecided items once, a day before the end (halfway through a
     * shorter campaign), with the items still waiting (`review_reminder`). Never once the end has
     * come (the loop was down through the reminder time): finishDue, right after in the same run,
     * applies the end, so a reminder would ask for decisions that could no longer count.
     */
    remindDue: (limit = 20) => {
      const now = clock().toISOString();
      return eachDue(
        'running',
        sql`${accessReviews.remindedAt} is null and ${accessReviews.endAt} > ${now} and ${accessReviews.endAt} - least(interval '1 day', (${accessReviews.endAt} - ${accessReviews.startAt}) / 2) <= ${now}`,
        limit,
        async (tx, review, now) => {
          await tx.update(accessReviews).set({ remindedAt: now }).where(eq(accessReviews.id, review.id));
          const open = await tx
            .select()
            .from(accessReviewItems)
            .where(
              and(eq(accessReviewItems.reviewId, review.id), sql`${accessReviewItems.decision} is null`),
            );
          const views = await itemViews(tx, open);
          const notify: Notice[] = [];
          for (const reviewerId of new Set(open.flatMap((i) => i.reviewerIds))) {
            const mine = views.filter((_, n) => open[n]?.reviewerIds.includes(reviewerId));
            notify.push({
              recipientId: reviewerId,
              kind: 'review_reminder',
              data: { ...reviewData(review), items: mine },
            });
          }
          await recordChange(tx, {
            actor: SYSTEM,
            action: 'review.reminded',
            subjectType: 'review',
            subjectId: review.id,
            at: now,
            data: { waiting: open.length },
            notify,
          });
        },
      );
    },

    /**
     * Ends the campaigns whose time is up, each in one transaction: applies every decision and,
     * to items nobody decided, the campaign's default; removals go through the core's
     * removeEligibility (audited, the member told why and by whom). The admins get the results
     * (`review_finished`); a recurring review schedules its next campaign.
     */
    finishDue: (limit = 20) =>
      eachDue('running', lte(accessReviews.endAt, clock()), limit, async (tx, review, now) => {
        const items = await tx
          .select()
          .from(accessReviewItems)
          .where(eq(accessReviewItems.reviewId, review.id));
        const views = await itemViews(tx, items);
        const ctx: AdminContext = { tx, actor: SYSTEM, now, providers: deps.providers };
        const removed: string[] = [];
        let kept = 0;
        let unreviewed = 0;
        for (const [n, item] of items.entries()) {
          const view = views[n];
          if (!view) continue;
          if (!item.decision) unreviewed += 1;
          const decision = item.decision ?? review.unreviewed;
          let outcome: 'kept' | 'removed' = 'kept';
          if (decision === 'remove') {
            const [still] = await tx
              .select({ id: eligibilities.id })
              .from(eligibilities)
              .where(
                and(eq(eligibilities.principalId, item.principalId), eq(eligibilities.roleId, item.roleId)),
              );
            if (still) {
              await removeEligibility(ctx, {
                email: view.principal,
                roleName: view.role,
                review: {
                  reviewId: review.id,
                  decidedBy: item.decidedBy ?? 'system',
                  reason: item.decision
                    ? item.justification
                    : 'nobody reviewed it and the review removes unreviewed members',
                },
              });
              outcome = 'removed';
              removed.push(`${view.principal} → ${view.role}`);
            }
          }
          if (outcome === 'kept') kept += 1;
          await tx.update(accessReviewItems).set({ outcome }).where(eq(accessReviewItems.id, item.id));
        }
        await tx
          .update(accessReviews)
          .set({ status: 'finished', finishedAt: now })
          .where(eq(accessReviews.id, review.id));
        let next: string | null = null;
        if (review.recurrence) {
          const startAt = nextStart(review.startAt, review.recurrence);
          const { id: _id, status: _s, remindedAt: _r, finishedAt: _f, ...same } = review;
          const [row] = await tx
            .insert(accessReviews)
            .values({
              ...same,
              status: 'scheduled',
              startAt,
              endAt: new Date(startAt.getTime() + review.durationMinutes * MINUTE_MS),
              createdBy: 'system',
            })
            .returning();
          next = row?.startAt.toISOString() ?? null;
        }
        const results = {
          ...reviewData(review),
          items: items.length,
          kept,
          removed,
          unreviewed,
          nextStartAt: next,
        };
        await recordChange(tx, {
          actor: SYSTEM,
          action: 'review.finished',
          subjectType: 'review',
          subjectId: review.id,
          at: now,
          data: results,
          notify: (await listAdmins(tx)).map((a) => ({
            recipientId: a.id,
            kind: 'review_finished',
            data: results,
          })),
        });
      }),

    /** The running campaigns, ending soonest first, with how many of their items are decided. */
    running: () =>
      db
        .select({
          review: accessReviews,
          items: sql<number>`count(${accessReviewItems.id})::int`,
          decided: sql<number>`count(${accessReviewItems.decision})::int`,
        })
        .from(accessReviews)
        .leftJoin(accessReviewItems, eq(accessReviewItems.reviewId, accessReviews.id))
        .where(eq(accessReviews.status, 'running'))
        .groupBy(accessReviews.id)
        .orderBy(asc(accessReviews.endAt)),

    /** Review items as they are now (decided or not), for notices shown again; unknown ids are left out. */
    async items(itemIds: string[]): Promise<ReviewItemView[]> {
      const ids = itemIds.filter((id) => UUID.test(id));
      if (ids.length === 0) return [];
      return itemViews(
        db,
        await db.select().from(accessReviewItems).where(inArray(accessReviewItems.id, ids)),
      );
    },

    /** The latest 100 campaigns, newest first. */
    list: () => db.select().from(accessReviews).orderBy(desc(accessReviews.startAt)).limit(100),

    /** One campaign with its items. */
    async get(reviewId: string): Promise<{ review: Review; items: ReviewItemView[] }> {
      if (!UUID.test(reviewId)) throw notFound(`There is no access review ${reviewId}.`);
      const [review] = await db.select().from(accessReviews).where(eq(accessReviews.id, reviewId));
      if (!review) throw notFound(`There is no access review ${reviewId}.`);
      const items = await db.select().from(accessReviewItems).where(eq(accessReviewItems.reviewId, reviewId));
      const views = await itemViews(db, items);
      views.sort((a, b) => a.role.localeCompare(b.role) || a.principal.localeCompare(b.principal));
      return { review, items: views };
    },

    /** The items a principal still has to decide, across running campaigns (for `/elevate` later). */
    async waitingFor(principalId: string): Promise<ReviewItemView[]> {
      const items = await db
        .select({ item: accessReviewItems })
        .from(accessReviewItems)
        .innerJoin(accessReviews, eq(accessReviews.id, accessReviewItems.reviewId))
        .where(
          and(
            eq(accessReviews.status, 'running'),
            sql`${accessReviewItems.decision} is null`,
            sql`${accessReviewItems.reviewerIds} @> ${JSON.stringify([principalId])}::jsonb`,
          ),
        );
      return itemViews(
        db,
        items.map((r) => r.item),
      );
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The review service's interface, for the surfaces and the loop. */
export type ReviewService = ReturnType<typeof createReviewService>;
