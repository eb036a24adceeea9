import { afterAll, beforeAll, expect, test } from 'vitest';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { notificationMessage } from '../../src/chat/messages.ts';
import { reviewExport } from '../../src/cli/reviews-command.ts';
import { and, eq } from '../../src/db/drizzle.ts';
import { notifications } from '../../src/elevation/notification.sql.ts';
import { principals } from '../../src/elevation/principal.sql.ts';
import { findPrincipalByEmail } from '../../src/elevation/principal-repository.ts';
import { AlreadyDecided, createReviewService } from '../../src/elevation/review-service.ts';
import { findEligibility, getRoleByName } from '../../src/elevation/role-repository.ts';
import type { ElevateError } from '../../src/errors.ts';
import { accessReviewsJob } from '../../src/jobs/access-reviews.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

const DAY = 1440;
let n = 0;

/** The core and the review service on one clock, an admin, and a fresh role with `members`. */
async function scene(members: string[], settings = {}) {
  n += 1;
  const core = createCore(database.db);
  const reviews = createReviewService({ db: database.db, providers: core.providers, clock: core.clock });
  await core.admin.setAdmins(core.cli, ['boss@example.com']);
  const role = `reviewed-${n}`;
  await core.role(role, { requireJustification: false, ...settings });
  const emails = members.map((m) => `${m}${n}@example.com`);
  for (const email of emails) await core.eligible(email, role);
  const eligible = async (email: string) => {
    const p = await findPrincipalByEmail(database.db, email);
    const r = await getRoleByName(database.db, role);
    return p ? Boolean(await findEligibility(database.db, p.id, r.id)) : false;
  };
  return { core, reviews, role, emails, eligible };
}

/** The outbox rows of `kind` addressed to `email`. */
async function noticesTo(email: string, kind: string) {
  const rows = await database.db
    .select({ data: notifications.data })
    .from(notifications)
    .innerJoin(principals, eq(principals.id, notifications.recipientId))
    .where(and(eq(principals.email, email), eq(notifications.kind, kind)));
  return rows.map((r) => r.data);
}

const refusal = (e: unknown) => (e as ElevateError).code;

test('a campaign by the approvers: decisions, a refused non-reviewer, a reminder, removal at the end', async () => {
  const { core, reviews, role, emails, eligible } = await scene(['kim', 'lou', 'max'], {
    approvers: ['judge@example.com'],
  });
  const [kim, lou, max] = emails as [string, string, string];
  // kim used the role once: the reviewer's card shows it.
  await core.activations.requestActivation({
    actor: await core.person(kim),
    roleName: role,
    durationMinutes: 60,
  });
  const review = await reviews.start(core.cli, {
    roleNames: [role],
    reviewers: 'approvers',
    durationMinutes: 2 * DAY,
    unreviewed: 'remove',
  });
  const { items } = await reviews.get(review.id);
  expect(items.map((i) => [i.principal, i.reviewers, i.activations90d])).toEqual([
    [kim, ['judge@example.com'], 1],
    [lou, ['judge@example.com'], 0],
    [max, ['judge@example.com'], 0],
  ]);
  expect(items[0]?.lastActivatedAt).not.toBeNull();
  const [request] = await noticesTo('judge@example.com', 'review_requested');
  expect((request?.items as unknown[] | undefined)?.length).toBe(3);
  expect(notificationMessage('review_requested', request ?? {}, undefined, core.clock()).text).toContain(
    '3 member(s)',
  );

  // lou is no reviewer: refused, audited, nothing changed.
  const [kimItem, louItem, maxItem] = items as [(typeof items)[0], (typeof items)[0], (typeof items)[0]];
  const louActor = await core.person(lou);
  await expect(
    reviews.decide({ actor: louActor, itemId: louItem.itemId, decision: 'keep', justification: 'mine' }),
  ).rejects.toSatisfy((e) => refusal(e) === 'forbidden');
  const refused = await database.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.action, 'review.decision_refused'), eq(auditEvents.actor, lou)));
  expect(refused).toHaveLength(1);
  expect((await reviews.get(review.id)).items[1]?.decision).toBeNull();

  const judge = await core.person('judge@example.com');
  await expect(
    reviews.decide({ actor: judge, itemId: kimItem.itemId, decision: 'keep', justification: ' ' }),
  ).rejects.toSatisfy((e) => refusal(e) === 'invalid');
  const kept = await reviews.decide({
    actor: judge,
    itemId: kimItem.itemId,
    decision: 'keep',
    justification: 'on call',
  });
  expect(kept).toMatchObject({ decision: 'keep', decidedBy: 'judge@example.com' });
  await reviews.decide({
    actor: judge,
    itemId: louItem.itemId,
    decision: 'remove',
    justification: 'left the team',
  });
  // Every reviewer of a decided item is sent `review_decided`, so their notices show the outcome.
  expect((await noticesTo('judge@example.com', 'review_decided')).map((d) => d.itemId)).toEqual([
    kimItem.itemId,
    louItem.itemId,
  ]);
  // The admin dialog's list: the running campaign with how many are decided; items as they are now.
  const running = (await reviews.running()).find((r) => r.review.id === review.id);
  expect(running).toMatchObject({ items: 3, decided: 2 });
  const now = await reviews.items([louItem.itemId, kimItem.itemId, 'not-an-id']);
  expect(now.map((i) => [i.principal, i.decision]).sort()).toEqual([
    [kim, 'keep'],
    [lou, 'remove'],
  ]);
  // A second decision is told who decided.
  const second = await reviews
    .decide({ actor: judge, itemId: kimItem.itemId, decision: 'remove', justification: 'x' })
    .catch((e: unknown) => e);
  expect(second).toBeInstanceOf(AlreadyDecided);
  expect((second as AlreadyDecided).message).toContain('keep by judge@example.com');

  // A day before the end: one reminder, with the item still waiting.
  expect(await reviews.remindDue()).toBe(0);
  core.advance(DAY + 1);
  expect(await reviews.remindDue()).toBe(1);
  expect(await reviews.remindDue()).toBe(0);
  const [reminder] = await noticesTo('judge@example.com', 'review_reminder');
  expect((reminder?.items as { itemId: string }[] | undefined)?.map((i) => i.itemId)).toEqual([
    maxItem.itemId,
  ]);

  expect(await reviews.finishDue()).toBe(0);
  core.advance(DAY);
  expect(await reviews.finishDue()).toBe(1);
  expect([await eligible(kim), await eligible(lou), await eligible(max)]).toEqual([true, false, false]);
  const [louTold] = await noticesTo(lou, 'eligibility_removed');
  expect(louTold).toMatchObject({ role, decidedBy: 'judge@example.com', reason: 'left the team' });
  expect(notificationMessage('eligibility_removed', louTold ?? {}, undefined, core.clock()).text).toContain(
    'decided by judge@example.com: “left the team”',
  );
  const [maxTold] = await noticesTo(max, 'eligibility_removed');
  expect(maxTold).toMatchObject({ decidedBy: 'system' });
  const results = (await noticesTo('boss@example.com', 'review_finished')).filter(
    (d) => d.reviewId === review.id,
  );
  expect(results).toHaveLength(1);
  expect(results[0]).toMatchObject({
    kept: 1,
    unreviewed: 1,
    removed: [`${lou} → ${role}`, `${max} → ${role}`],
  });
  const done = await reviews.get(review.id);
  expect(done.review.status).toBe('finished');
  expect(done.items.map((i) => i.outcome)).toEqual(['kept', 'removed', 'removed']);
  // Ending is audited, and the removals are the core's eligibility removals.
  const removals = await database.db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.action, 'eligibility.removed'));
  expect(removals.filter((e) => (e.data as { reviewId?: string }).reviewId === review.id)).toHaveLength(2);
  // A finished campaign takes no more decisions.
  await expect(
    reviews.decide({ actor: judge, itemId: maxItem.itemId, decision: 'keep', justification: 'late' }),
  ).rejects.toSatisfy((e) => refusal(e) === 'invalid');
});

test('self-review: only the member decides; unreviewed kept; a weekly review starts its next campaign', async () => {
  const { core, reviews, role, emails, eligible } = await scene(['sam', 'tia']);
  const [sam, tia] = emails as [string, string];
  const review = await reviews.start(core.cli, {
    roleNames: [role],
    reviewers: 'self',
    durationMinutes: 3 * DAY,
    recurrence: 'weekly',
    unreviewed: 'keep',
  });
  const { items } = await reviews.get(review.id);
  expect(items.map((i) => i.reviewers)).toEqual([[sam], [tia]]);
  expect((await noticesTo(sam, 'review_requested'))[0]).toMatchObject({ self: true });
  const samActor = await core.person(sam);
  // Not even an admin decides someone else's self-review.
  await expect(
    reviews.decide({
      actor: samActor,
      itemId: items[1]?.itemId ?? '',
      decision: 'remove',
      justification: 'x',
    }),
  ).rejects.toSatisfy((e) => refusal(e) === 'forbidden');
  expect(await reviews.waitingFor(samActor.principalId ?? '')).toHaveLength(1);
  await reviews.decide({
    actor: samActor,
    itemId: items[0]?.itemId ?? '',
    decision: 'remove',
    justification: 'I no longer need it',
  });
  core.advance(3 * DAY);
  expect(await reviews.finishDue()).toBe(1);
  expect([await eligible(sam), await eligible(tia)]).toEqual([false, true]);
  expect((await noticesTo(sam, 'eligibility_removed'))[0]).toMatchObject({ decidedBy: sam });

  // The next one is scheduled a week after this one started, and opens then with who is left.
  const next = (await reviews.list()).find((r) => r.status === 'scheduled' && r.roleNames.includes(role));
  expect(next?.startAt.toISOString()).toBe(
    new Date(review.startAt.getTime() + 7 * DAY * 60_000).toISOString(),
  );
  expect(await reviews.startDue()).toBe(0);
  core.advance(4 * DAY);
  // The loop's job opens it (one campaign handled).
  expect(await accessReviewsJob(reviews).run(new AbortController().signal)).toBe(1);
  const opened = await reviews.get(next?.id ?? '');
  expect(opened.review.status).toBe('running');
  expect(opened.items.map((i) => i.principal)).toEqual([tia]);
  expect(await noticesTo(tia, 'review_requested')).toHaveLength(2);
});

test('only an admin starts a review, with known roles and named reviewers', async () => {
  const { core, reviews, role } = await scene(['uma']);
  const someone = await core.person(`someone${n}@example.com`);
  await expect(reviews.start(someone, { roleNames: [role], reviewers: 'self' })).rejects.toSatisfy(
    (e) => refusal(e) === 'forbidden',
  );
  // Each problem names the field a form shows it on.
  const field = (e: unknown) => `${refusal(e)} ${(e as ElevateError).field}`;
  await expect(reviews.start(core.cli, { roleNames: ['no-such-role'], reviewers: 'self' })).rejects.toSatisfy(
    (e) => field(e) === 'invalid role' && /no role named "no-such-role"/.test((e as Error).message),
  );
  await expect(reviews.start(core.cli, { roleNames: [role], reviewers: 'named' })).rejects.toSatisfy(
    (e) => field(e) === 'invalid reviewers',
  );
  await expect(
    reviews.start(core.cli, { roleNames: [role], reviewers: 'named', reviewerEmails: ['rev at example'] }),
  ).rejects.toSatisfy(
    (e) =>
      field(e) === 'invalid reviewers' &&
      (e as Error).message === '"rev at example" is not an email address.',
  );
  await expect(
    reviews.start(core.cli, { roleNames: [role], reviewers: 'self', durationMinutes: 30 }),
  ).rejects.toSatisfy((e) => field(e) === 'invalid duration');
  const review = await reviews.start(core.cli, {
    roleNames: [role],
    reviewers: 'named',
    reviewerEmails: ['Rev@Example.com'],
  });
  expect(review.endAt.getTime() - review.startAt.getTime()).toBe(7 * DAY * 60_000);
  expect((await reviews.get(review.id)).items[0]?.reviewers).toEqual(['rev@example.com']);
});

test('the export: a justification never runs as a spreadsheet formula; JSONL keeps it exactly', async () => {
  const { core, reviews, role, emails } = await scene(['vic']);
  const review = await reviews.start(core.cli, { roleNames: [role], reviewers: 'self' });
  const [item] = (await reviews.get(review.id)).items;
  const vic = await core.person(emails[0] ?? '');
  const formula = '=HYPERLINK("http://evil.example","ok"), really';
  await reviews.decide({ actor: vic, itemId: item?.itemId ?? '', decision: 'keep', justification: formula });
  const { items } = await reviews.get(review.id);
  const csv = reviewExport(items, 'csv').split('\r\n');
  expect(csv[1]).toContain(`,"'=HYPERLINK(""http://evil.example"",""ok""), really",${emails[0]},`);
  const [line] = reviewExport(items, 'jsonl').split('\n');
  expect(JSON.parse(line ?? '{}')).toMatchObject({
    justification: formula,
    decision: 'keep',
    decidedBy: emails[0],
  });
});

test('a decision racing the end is either applied or refused as too late, never lost', async () => {
  const { core, reviews, role, emails, eligible } = await scene(['wes'], { approvers: ['ref@example.com'] });
  const review = await reviews.start(core.cli, {
    roleNames: [role],
    reviewers: 'approvers',
    durationMinutes: 60,
  });
  const [item] = (await reviews.get(review.id)).items;
  const ref = await core.person('ref@example.com');
  core.advance(60);
  const [decided] = await Promise.allSettled([
    reviews.decide({ actor: ref, itemId: item?.itemId ?? '', decision: 'remove', justification: 'gone' }),
    reviews.finishDue(),
  ]);
  await reviews.finishDue(); // in case the decision held the campaign when the first pass looked
  const done = await reviews.get(review.id);
  expect(done.review.status).toBe('finished');
  if (decided.status === 'fulfilled') {
    expect(await eligible(emails[0] ?? '')).toBe(false);
    expect(done.items[0]?.outcome).toBe('removed');
  } else {
    expect(refusal(decided.reason)).toBe('invalid');
    expect(await eligible(emails[0] ?? '')).toBe(true);
    expect(done.items[0]).toMatchObject({ decision: null, outcome: 'kept' });
  }
});

test('a loop that was down through the reminder and the end sends no late reminder, only the results', async () => {
  const { core, reviews, role, emails, eligible } = await scene(['xan'], { approvers: ['rev@example.com'] });
  const review = await reviews.start(core.cli, {
    roleNames: [role],
    reviewers: 'approvers',
    durationMinutes: 2 * DAY,
    unreviewed: 'remove',
  });
  core.advance(2 * DAY + 5);
  // One run of the loop's job: no reminder for a campaign already over, the end applied.
  expect(await accessReviewsJob(reviews).run(new AbortController().signal)).toBe(1);
  const reminders = (await noticesTo('rev@example.com', 'review_reminder')).filter(
    (d) => d.reviewId === review.id,
  );
  expect(reminders).toEqual([]);
  expect(await eligible(emails[0] ?? '')).toBe(false);
  const done = await reviews.get(review.id);
  expect(done.review).toMatchObject({ status: 'finished', remindedAt: null });
  const results = (await noticesTo('boss@example.com', 'review_finished')).filter(
    (d) => d.reviewId === review.id,
  );
  expect(results).toMatchObject([{ kept: 0, unreviewed: 1, removed: [`${emails[0]} → ${role}`] }]);
});
