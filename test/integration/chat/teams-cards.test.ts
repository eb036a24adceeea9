import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  activationsPage,
  adminMenuForm,
  alertsPage,
  assignmentForm,
  auditPage,
  deliveriesPage,
  eligibilityPage,
  reviewStartForm,
  reviewsPage,
  roleForm,
  rolesPage,
} from '../../../src/chat/admin-messages.ts';
import {
  activationForm,
  alertCard,
  approvalCard,
  approvalsMessage,
  boardMessage,
  decisionForm,
  extensionForm,
  helpMessage,
  notificationMessage,
  reviewForm,
  stepUpMessage,
} from '../../../src/chat/messages.ts';
import { renderForm, renderMessage } from '../../../src/chat/teams/render.ts';
import { teamsCommand } from '../../../src/chat/teams/teams-delivery.ts';
import type { AlertView } from '../../../src/elevation/alert-repository.ts';
import { getRoleByName, listRoles } from '../../../src/elevation/role-repository.ts';
import { cardProblems } from '../../support/adaptive-cards.ts';
import { createCore } from '../../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../../support/db.ts';
import { buttons } from '../../support/teams-harness.ts';

/**
 * Every message and dialog Elevate can show in Teams, rendered from real core data, through the
 * official Adaptive Cards parser: no unknown element, no duplicate id, no unlabeled input.
 */

const KINDS = [
  'activation_submitted',
  'extension_submitted',
  'activation_approved',
  'extension_approved',
  'activation_active',
  'activation_extended',
  'assignment_created',
  'expiry_warning',
  'eligibility_expiring',
  'eligibility_expired',
  'activation_denied',
  'extension_denied',
  'activation_timed_out',
  'extension_timed_out',
  'activation_failed',
  'activation_ended',
  'eligibility_assigned',
  'eligibility_removed',
  'grant_failed',
  'revoke_failing',
  'extend_failed',
  'review_requested',
  'review_reminder',
  'review_finished',
  'something_new',
];

/** Access review notices with the data review-service.ts writes. */
const REVIEW_ITEM = {
  itemId: '6f1c1b8e-0000-4000-8000-000000000001',
  principal: 'dee@example.com',
  role: 'db',
  lastActivatedAt: '2026-05-30T10:00:00.000Z',
  activations90d: 4,
};
const REVIEW = { reviewId: 'r-1', roles: ['db'], endAt: '2026-06-08T09:00:00.000Z', unreviewed: 'remove' };

/** An open stale-eligibility alert of the role `db`. */
const STALE_ALERT = (roleId: string): AlertView => ({
  id: '0b3c5e52-6f0e-4a57-9d43-3a1c1a6f1e10',
  kind: 'stale_eligibility',
  roleId,
  role: 'db',
  subject: 'dee@example.com',
  details: { lastActivated: null, after: '30d' },
  raisedAt: new Date('2026-06-01T09:00:00Z'),
  resolvedAt: null,
  resolvedBy: null,
  resolution: null,
});

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

test('every Teams card and dialog passes the official Adaptive Cards parser', async () => {
  const core = createCore(database.db);
  await core.role('db', {
    requireApproval: true,
    approvers: ['bo@example.com'],
    requireTicket: true,
    ticketSystem: 'Jira',
  });
  await core.role('open', { maxDuration: 240 }, { scope: 'staging', description: 'Staging admin' });
  await core.eligible('dee@example.com', 'db');
  await core.eligible('dee@example.com', 'open');
  const dee = await core.person('dee@example.com');
  const bo = await core.person('bo@example.com');
  const pending = await core.activations.requestActivation({
    actor: dee,
    roleName: 'db',
    justification: 'fix',
    ticketNumber: 'OPS-1',
  });
  const active = await core.activations.requestActivation({
    actor: dee,
    roleName: 'open',
    justification: 'look',
  });
  const now = core.clock();
  const access = await core.activations.listAccess(dee.principalId ?? '');
  const messages = [
    boardMessage(access, now, teamsCommand),
    helpMessage('I do not know "x".', teamsCommand),
    approvalsMessage(await core.activations.listApprovals(bo.principalId ?? '')),
    approvalsMessage([]),
    approvalCard(pending, [active], []),
    stepUpMessage({
      url: 'https://elevate.example.com/auth/step-up/abc',
      expiresAt: now,
      purpose: { kind: 'activation', roleName: 'db', ask: {} },
    }),
    notificationMessage('review_requested', { ...REVIEW, items: [REVIEW_ITEM] }, undefined, now),
    notificationMessage('review_requested', { ...REVIEW, self: true, items: [REVIEW_ITEM] }, undefined, now),
    notificationMessage('review_reminder', { ...REVIEW, items: [REVIEW_ITEM] }, undefined, now),
    // The notice shown again after a decision: the outcome in place of the buttons.
    notificationMessage(
      'review_requested',
      {
        ...REVIEW,
        items: [
          {
            ...REVIEW_ITEM,
            decision: 'remove',
            decidedBy: 'bo@example.com',
            decidedAt: '2026-06-02T10:00:00.000Z',
            justification: 'left the team',
          },
          { ...REVIEW_ITEM, itemId: '6f1c1b8e-0000-4000-8000-000000000002', principal: 'eve@example.com' },
        ],
      },
      undefined,
      now,
    ),
    notificationMessage(
      'review_finished',
      { ...REVIEW, kept: 1, removed: ['dee@example.com → db'], unreviewed: 0, nextStartAt: null },
      undefined,
      now,
    ),
    notificationMessage(
      'eligibility_removed',
      { role: 'db', reviewId: 'r-1', decidedBy: 'bo@example.com', reason: 'left the team' },
      undefined,
      now,
    ),
    ...KINDS.flatMap((kind) => [
      notificationMessage(kind, { role: 'db', reason: 'because', error: 'boom' }, pending, now, teamsCommand),
      notificationMessage(kind, { role: 'open' }, active, now, teamsCommand),
      notificationMessage(kind, {}, undefined, now, teamsCommand),
    ]),
    // An alert's card, open (with its Action.Execute) and resolved (no button).
    alertCard(STALE_ALERT('r-db')),
    alertCard({
      ...STALE_ALERT('r-db'),
      resolvedAt: now,
      resolvedBy: 'ana@example.com',
      resolution: 'eligibility removed',
    }),
    // An alert notice with its Action.Execute button.
    notificationMessage(
      'alert_raised',
      {
        alertId: '0b3c5e52-6f0e-4a57-9d43-3a1c1a6f1e10',
        kind: 'unmanaged_grant',
        role: 'db',
        subject: 'U0EVE',
        details: {},
      },
      undefined,
      now,
    ),
  ];
  await core.activations.approve({ actor: bo, activationId: pending.activation.id, comment: 'ok' });
  const decided = await core.activations.get(pending.activation.id);
  messages.push(approvalCard(decided, [], await core.activations.decisions(decided.activation.id)));

  const role = await getRoleByName(database.db, 'db');
  const forms = [
    activationForm(role, { durationMinutes: 60, justification: 'x', problem: 'Add a ticket.' }),
    activationForm(await getRoleByName(database.db, 'open')),
    extensionForm(active, now),
    decisionForm('approve', pending),
    decisionForm('deny', pending),
    reviewForm('keep', REVIEW_ITEM, false),
    reviewForm('remove', REVIEW_ITEM, true),
    adminMenuForm(),
    rolesPage(await listRoles(database.db)),
    roleForm(undefined, []),
    roleForm(role, ['bo@example.com'], ['gone@example.com']),
    eligibilityPage([{ email: 'dee@example.com', roleName: 'db', startAt: now, endAt: null }]),
    assignmentForm('adminEligibility', await listRoles(database.db)),
    assignmentForm('adminAssignment', await listRoles(database.db)),
    activationsPage('Running activations', [active, decided], true),
    activationsPage('Running activations', [], false),
    auditPage([{ at: now, actor: 'ana@example.com', action: 'role.saved', subjectId: 'db' }]),
    deliveriesPage([
      { createdAt: now, kind: 'activation_active', attempts: 8, lastError: 'Teams answered 403' },
    ]),
    reviewStartForm(await listRoles(database.db)),
    reviewsPage([]),
    reviewsPage([
      {
        review: await core.reviews.start(core.cli, {
          roleNames: ['db'],
          reviewers: 'approvers',
          recurrence: 'monthly',
        }),
        items: 1,
        decided: 0,
      },
    ]),
    alertsPage([STALE_ALERT(role.id)], 'Scanned: 1 role(s) compared with their target.'),
  ];
  const cards = [
    ...messages.map((m) => renderMessage(m)),
    renderMessage(approvalCard(pending, [], []), {
      refresh: { activationId: pending.activation.id, userIds: ['29:bo'] },
      notice: 'This request was already approved by bo@example.com at 2026-06-01T09:00:00Z.',
    }),
    ...forms.map((f) => renderForm(f)),
    // Re-shown with what was typed and an error on every field.
    ...forms.map((f) =>
      renderForm(f, {
        values: { duration: '60', justification: 'typed', startDate: '2026-06-02', startTime: '10:00' },
        errors: Object.fromEntries(f.inputs.map((i) => [i.name, `${i.label} is wrong.`])),
        notice: 'Something to fix.',
      }),
    ),
  ];
  // The step-up's link is a button that opens the browser, not text.
  const verify = cards.flatMap((c) => buttons({ ...c })).filter((b) => b.title === 'Verify your identity');
  expect(verify).toEqual([
    {
      type: 'Action.OpenUrl',
      title: 'Verify your identity',
      url: 'https://elevate.example.com/auth/step-up/abc',
      style: 'positive',
    },
  ]);
  const problems = cards.flatMap((card, i) => cardProblems(card).map((p) => `card ${i}: ${p}`));
  expect(problems).toEqual([]);
  expect(cards.length).toBeGreaterThan(90);
});
