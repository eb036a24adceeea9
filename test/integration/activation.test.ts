import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { and, eq } from '../../src/db/drizzle.ts';
import { activations } from '../../src/elevation/activation.sql.ts';
import { notifications } from '../../src/elevation/notification.sql.ts';
import { principals } from '../../src/elevation/principal.sql.ts';
import { ElevateError } from '../../src/errors.ts';
import { GrantError } from '../../src/grants/grant-provider.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

let database: TestDatabase;
let core: ReturnType<typeof createCore>;
let run = 0;

beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

// Every test gets its own people and roles (unique names) on the shared database.
let n = '';
const email = (who: string) => `${who}${n}@example.com`;
const role = (name: string) => `${name}-${n}`;
beforeEach(async () => {
  run += 1;
  n = String(run);
  core = createCore(database.db);
  await core.admin.setAdmins(core.cli, [email('ana')]);
});

/** The message of the ElevateError `promise` rejects with (fails if it resolves). */
async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ElevateError);
  return (error as ElevateError).message;
}

async function requester(roleName: string, settings = {}) {
  await core.role(roleName, settings);
  await core.eligible(email('dee'), roleName);
  return core.person(email('dee'));
}

describe('durations', () => {
  test('longer than the maximum is refused with the maximum named', async () => {
    const dee = await requester(role('r'), { maxDuration: 120 });
    expect(
      await refusal(
        core.activations.requestActivation({
          actor: dee,
          roleName: role('r'),
          durationMinutes: 180,
          justification: 'x',
        }),
      ),
    ).toBe(`3h is longer than the maximum of 2h for ${role('r')}.`);
  });

  test('shorter than the minimum is refused with the minimum named', async () => {
    const dee = await requester(role('r'), { minDuration: 30 });
    expect(
      await refusal(
        core.activations.requestActivation({
          actor: dee,
          roleName: role('r'),
          durationMinutes: 10,
          justification: 'x',
        }),
      ),
    ).toBe(`10m is shorter than the minimum of 30m for ${role('r')}.`);
  });

  test('no duration given takes the role default, and the grant runs that long', async () => {
    const dee = await requester(role('r'), { defaultDuration: 45 });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    expect(view.activation.status).toBe('active');
    expect(view.activation.durationMinutes).toBe(45);
    expect(view.activation.endAt?.getTime()).toBe(core.clock().getTime() + 45 * 60_000);
  });
});

describe('justification and ticket', () => {
  test('a required justification must be given and at most 500 characters', async () => {
    const dee = await requester(role('r'));
    expect(
      await refusal(
        core.activations.requestActivation({ actor: dee, roleName: role('r'), justification: '  ' }),
      ),
    ).toBe(`${role('r')} requires a justification: say why you need it (1–500 characters).`);
    expect(
      await refusal(
        core.activations.requestActivation({
          actor: dee,
          roleName: role('r'),
          justification: 'y'.repeat(501),
        }),
      ),
    ).toBe('The justification is 501 characters; the limit is 500.');
  });

  test('a role that does not require a justification accepts none', async () => {
    const dee = await requester(role('r'), { requireJustification: false });
    const view = await core.activations.requestActivation({ actor: dee, roleName: role('r') });
    expect(view.activation.status).toBe('active');
  });

  test('a required ticket must be present and match the pattern', async () => {
    const dee = await requester(role('r'), {
      requireTicket: true,
      ticketSystem: 'ServiceNow',
      ticketPattern: '^INC[0-9]+$',
    });
    const ask = { actor: dee, roleName: role('r'), justification: 'outage' };
    expect(await refusal(core.activations.requestActivation(ask))).toBe(
      `${role('r')} requires a ticket number from ServiceNow.`,
    );
    expect(await refusal(core.activations.requestActivation({ ...ask, ticketNumber: 'CHG42' }))).toBe(
      `Ticket "CHG42" does not match the pattern ^INC[0-9]+$ that ${role('r')} requires.`,
    );
    const view = await core.activations.requestActivation({ ...ask, ticketNumber: 'INC42' });
    expect(view.activation).toMatchObject({
      status: 'active',
      ticketSystem: 'ServiceNow',
      ticketNumber: 'INC42',
    });
  });
});

describe('eligibility', () => {
  test('a principal without eligibility is refused', async () => {
    await core.role(role('r'));
    const eve = await core.person(email('eve'));
    expect(
      await refusal(
        core.activations.requestActivation({ actor: eve, roleName: role('r'), justification: 'x' }),
      ),
    ).toBe(`You are not eligible for the role ${role('r')}.`);
  });

  test('an expired eligibility is refused', async () => {
    await core.role(role('r'));
    await core.eligible(email('dee'), role('r'), new Date(core.clock().getTime() + 60 * 60_000));
    const dee = await core.person(email('dee'));
    core.advance(61);
    expect(
      await refusal(
        core.activations.requestActivation({ actor: dee, roleName: role('r'), justification: 'x' }),
      ),
    ).toMatch(/^Your eligibility for .* ended at /);
  });

  test('an activation may not outlast the eligibility', async () => {
    await core.role(role('r'));
    await core.eligible(email('dee'), role('r'), new Date(core.clock().getTime() + 30 * 60_000));
    const dee = await core.person(email('dee'));
    expect(
      await refusal(
        core.activations.requestActivation({
          actor: dee,
          roleName: role('r'),
          durationMinutes: 60,
          justification: 'x',
        }),
      ),
    ).toMatch(/ask for at most 30m\.$/);
  });

  test('permanent eligibility is refused when the role does not allow it, and so is one too long', async () => {
    await core.role(role('r'), { allowPermanentEligibility: false, maxEligibility: 30 * 1440 });
    expect(
      await refusal(
        core.admin.assignEligibility(core.cli, { email: email('dee'), roleName: role('r'), endAt: null }),
      ),
    ).toBe(`${role('r')} does not allow a permanent eligibility; set an end at most 30d after the start.`);
    const tooLate = new Date(core.clock().getTime() + 31 * 1440 * 60_000);
    expect(
      await refusal(
        core.admin.assignEligibility(core.cli, { email: email('dee'), roleName: role('r'), endAt: tooLate }),
      ),
    ).toBe(`A eligibility for ${role('r')} may last at most 30d; choose an earlier end.`);
  });

  test('one open activation per principal and role', async () => {
    const dee = await requester(role('r'));
    await core.activations.requestActivation({ actor: dee, roleName: role('r'), justification: 'x' });
    expect(
      await refusal(
        core.activations.requestActivation({ actor: dee, roleName: role('r'), justification: 'x' }),
      ),
    ).toBe(`You already have an open activation of ${role('r')}; cancel or deactivate it first.`);
  });

  test('an archived role cannot be requested', async () => {
    const dee = await requester(role('r'));
    await core.admin.archiveRole(core.cli, role('r'));
    expect(
      await refusal(
        core.activations.requestActivation({ actor: dee, roleName: role('r'), justification: 'x' }),
      ),
    ).toBe(`There is no role named "${role('r')}".`);
  });
});

describe('custom start', () => {
  test('a future start is scheduled; beyond 14 days, in the past, or disallowed is refused', async () => {
    const dee = await requester(role('r'));
    const inDays = (days: number) => new Date(core.clock().getTime() + days * 1440 * 60_000);
    const ask = { actor: dee, roleName: role('r'), justification: 'x' };
    expect(await refusal(core.activations.requestActivation({ ...ask, startAt: inDays(15) }))).toBe(
      'The start time may be at most 14 days ahead.',
    );
    expect(await refusal(core.activations.requestActivation({ ...ask, startAt: inDays(-1) }))).toMatch(
      /is in the past\.$/,
    );
    const view = await core.activations.requestActivation({ ...ask, startAt: inDays(2) });
    expect(view.activation.status).toBe('approved');
    expect(core.recording.calls).toHaveLength(0);

    const eve = email('eve');
    await core.role(role('fixed'), { allowCustomStart: false });
    await core.eligible(eve, role('fixed'));
    expect(
      await refusal(
        core.activations.requestActivation({
          actor: await core.person(eve),
          roleName: role('fixed'),
          justification: 'x',
          startAt: inDays(1),
        }),
      ),
    ).toBe(`${role('fixed')} does not allow a custom start time; leave it empty to start now.`);
  });
});

describe('approval', () => {
  test('approval required: pending until an approver approves, stores the approval timeout', async () => {
    const dee = await requester(role('r'), {
      requireApproval: true,
      approvers: [email('bo')],
      approvalTimeout: 120,
    });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    expect(view.activation.status).toBe('pending_approval');
    expect(view.activation.approvalExpiresAt?.getTime()).toBe(core.clock().getTime() + 120 * 60_000);
    expect(core.recording.calls).toHaveLength(0);
    const bo = await core.person(email('bo'));
    const outcome = await core.activations.approve({
      actor: bo,
      activationId: view.activation.id,
      comment: 'ok',
    });
    expect(outcome.view.activation.status).toBe('active');
    expect(core.recording.held.has(`${email('dee')}/${role('r')}`)).toBe(true);
  });

  test('after the approval timeout a click times the request out and says so', async () => {
    const dee = await requester(role('r'), {
      requireApproval: true,
      approvers: [email('bo')],
      approvalTimeout: 60,
    });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    core.advance(61);
    const bo = await core.person(email('bo'));
    const message = await refusal(core.activations.approve({ actor: bo, activationId: view.activation.id }));
    expect(message).toMatch(/^This request timed out at .* without a decision\.$/);
    const [row] = await core.activations.list({ principalId: dee.principalId ?? '' });
    expect(row?.activation.status).toBe('timed_out');
    expect(core.recording.calls).toHaveLength(0);
    const told = await database.db
      .select()
      .from(notifications)
      .where(
        and(
          eq(notifications.activationId, view.activation.id),
          eq(notifications.kind, 'activation_timed_out'),
        ),
      );
    expect(told).toHaveLength(1);
    expect(
      await refusal(core.activations.deny({ actor: bo, activationId: view.activation.id, comment: 'late' })),
    ).toBe(message);
  });

  test('a non-approver is refused', async () => {
    const dee = await requester(role('r'), { requireApproval: true, approvers: [email('bo')] });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    const eve = await core.person(email('eve'));
    expect(await refusal(core.activations.approve({ actor: eve, activationId: view.activation.id }))).toBe(
      `You are not an approver of ${role('r')}.`,
    );
  });

  test('self-approval is refused even when the requester is on the approver list', async () => {
    const dee = await requester(role('r'), { requireApproval: true, approvers: [email('dee'), email('bo')] });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    expect(await refusal(core.activations.approve({ actor: dee, activationId: view.activation.id }))).toBe(
      'You cannot approve or deny your own request.',
    );
    // The same principal as an admin, too: admin rights do not make self-approval possible.
    await database.db
      .update(principals)
      .set({ isAdmin: true })
      .where(eq(principals.email, email('dee')));
    const deeAdmin = await core.person(email('dee'));
    expect(
      await refusal(core.activations.approve({ actor: deeAdmin, activationId: view.activation.id })),
    ).toBe('You cannot approve or deny your own request.');
    expect((await core.activations.list({ principalId: dee.principalId ?? '' }))[0]?.activation.status).toBe(
      'pending_approval',
    );
  });

  test('with no approvers named, the admins approve; a lone admin cannot request what only they could approve', async () => {
    const dee = await requester(role('r'), { requireApproval: true });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    const bo = await core.person(email('bo'));
    expect(await refusal(core.activations.approve({ actor: bo, activationId: view.activation.id }))).toBe(
      `You are not an approver of ${role('r')}.`,
    );
    const ana = await core.person(email('ana'));
    expect(
      (await core.activations.approve({ actor: ana, activationId: view.activation.id })).view.activation
        .status,
    ).toBe('active');

    await core.eligible(email('ana'), role('r'));
    expect(
      await refusal(
        core.activations.requestActivation({ actor: ana, roleName: role('r'), justification: 'x' }),
      ),
    ).toBe(`Nobody but you can approve ${role('r')}; ask an admin to name approvers.`);
  });

  test('a quorum of two: the first approval is recorded, the second activates; nobody counts twice', async () => {
    const dee = await requester(role('r'), {
      requireApproval: true,
      approvers: [email('bo'), email('cy'), email('fay')],
      approvalsRequired: 2,
    });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    const bo = await core.person(email('bo'));
    const first = await core.activations.approve({ actor: bo, activationId: view.activation.id });
    expect(first).toMatchObject({ outcome: 'recorded', approvalsMissing: 1 });
    expect(first.view.activation.status).toBe('pending_approval');
    expect(await refusal(core.activations.approve({ actor: bo, activationId: view.activation.id }))).toBe(
      'You already approved this request; it needs 1 more approval(s).',
    );
    const cy = await core.person(email('cy'));
    const second = await core.activations.approve({ actor: cy, activationId: view.activation.id });
    expect(second.outcome).toBe('approved');
    expect(second.view.activation.status).toBe('active');
    const fay = await core.person(email('fay'));
    expect(await refusal(core.activations.approve({ actor: fay, activationId: view.activation.id }))).toMatch(
      new RegExp(`^This request was already approved by ${email('bo')} and ${email('cy')} at `),
    );
  });

  test('deny needs a reason, the requester is told it, and a later approve hears who denied', async () => {
    const dee = await requester(role('r'), { requireApproval: true, approvers: [email('bo'), email('cy')] });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    const bo = await core.person(email('bo'));
    expect(
      await refusal(core.activations.deny({ actor: bo, activationId: view.activation.id, comment: ' ' })),
    ).toBe('Say why you deny the request; the requester will read it.');
    const denied = await core.activations.deny({
      actor: bo,
      activationId: view.activation.id,
      comment: 'not during freeze',
    });
    expect(denied.activation).toMatchObject({ status: 'denied', endReason: 'not during freeze' });
    const told = await database.db
      .select()
      .from(notifications)
      .where(
        and(eq(notifications.activationId, view.activation.id), eq(notifications.kind, 'activation_denied')),
      );
    expect(told.map((t) => t.data)).toEqual([{ role: role('r'), reason: 'not during freeze' }]);
    const cy = await core.person(email('cy'));
    expect(await refusal(core.activations.approve({ actor: cy, activationId: view.activation.id }))).toMatch(
      new RegExp(`^This request was already denied by ${email('bo')} at `),
    );
  });

  test('a request tells the requester and each approver, in the same transaction as the audit event', async () => {
    const dee = await requester(role('r'), { requireApproval: true, approvers: [email('bo'), email('cy')] });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    const rows = await database.db
      .select({ kind: notifications.kind, to: principals.email })
      .from(notifications)
      .innerJoin(principals, eq(principals.id, notifications.recipientId))
      .where(eq(notifications.activationId, view.activation.id));
    expect(rows.sort((a, b) => a.to.localeCompare(b.to))).toEqual([
      { kind: 'approval_requested', to: email('bo') },
      { kind: 'approval_requested', to: email('cy') },
      { kind: 'activation_submitted', to: email('dee') },
    ]);
    const audit = await database.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.subjectId, view.activation.id));
    expect(audit.map((a) => a.action)).toEqual(['activation.requested']);
  });
});

describe('cancel, deactivate, extend, revoke', () => {
  test('only the requester cancels, and only while pending or scheduled', async () => {
    const dee = await requester(role('r'), { requireApproval: true, approvers: [email('bo')] });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    const bo = await core.person(email('bo'));
    expect(await refusal(core.activations.cancel({ actor: bo, activationId: view.activation.id }))).toBe(
      `Only ${email('dee')} can cancel this activation.`,
    );
    expect(
      (await core.activations.cancel({ actor: dee, activationId: view.activation.id })).activation.status,
    ).toBe('cancelled');
    expect(await refusal(core.activations.approve({ actor: bo, activationId: view.activation.id }))).toMatch(
      /^This request was cancelled \(cancelled by the requester\) at /,
    );
  });

  test('deactivation waits for the role minimum, then revokes through the provider', async () => {
    const dee = await requester(role('r'));
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    core.advance(2);
    expect(
      await refusal(core.activations.deactivate({ actor: dee, activationId: view.activation.id })),
    ).toMatch(new RegExp(`^${role('r')} can be deactivated 5 minutes after activation, from `));
    core.advance(4);
    const ended = await core.activations.deactivate({ actor: dee, activationId: view.activation.id });
    expect(ended.activation).toMatchObject({ status: 'ended', endReason: 'deactivated by the requester' });
    expect(core.recording.calls.map((c) => c.op)).toEqual(['grant', 'revoke']);
  });

  test('extension without approval moves the end; beyond the maximum it is refused', async () => {
    const dee = await requester(role('r'), { maxDuration: 120, defaultDuration: 60 });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    const end = view.activation.endAt?.getTime() ?? 0;
    expect(
      await refusal(
        core.activations.extend({
          actor: dee,
          activationId: view.activation.id,
          durationMinutes: 90,
          justification: 'more',
        }),
      ),
    ).toBe(`${role('r')} may run at most 2h from now; extend by at most 1h.`);
    const extended = await core.activations.extend({
      actor: dee,
      activationId: view.activation.id,
      durationMinutes: 30,
      justification: 'more',
    });
    expect(extended.activation.endAt?.getTime()).toBe(end + 30 * 60_000);
  });

  test('extension needs approval when the role does, and is refused when the role forbids it', async () => {
    const dee = await requester(role('r'), { requireApproval: true, approvers: [email('bo')] });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    const bo = await core.person(email('bo'));
    await core.activations.approve({ actor: bo, activationId: view.activation.id });
    const active = (await core.activations.list({ principalId: dee.principalId ?? '' }))[0]?.activation;
    const request = await core.activations.extend({
      actor: dee,
      activationId: view.activation.id,
      durationMinutes: 30,
      justification: 'more',
    });
    expect(request.activation).toMatchObject({ kind: 'extension', status: 'pending_approval' });
    await core.activations.approve({ actor: bo, activationId: request.activation.id });
    const after = await core.activations.list({ principalId: dee.principalId ?? '', statuses: ['active'] });
    expect(after[0]?.activation.endAt?.getTime()).toBe((active?.endAt?.getTime() ?? 0) + 30 * 60_000);

    const eve = email('eve');
    await core.role(role('fixed'), { allowExtension: false });
    await core.eligible(eve, role('fixed'));
    const eveActor = await core.person(eve);
    const fixed = await core.activations.requestActivation({
      actor: eveActor,
      roleName: role('fixed'),
      justification: 'x',
    });
    expect(
      await refusal(
        core.activations.extend({
          actor: eveActor,
          activationId: fixed.activation.id,
          durationMinutes: 30,
          justification: 'x',
        }),
      ),
    ).toBe(`${role('fixed')} does not allow extensions.`);
  });

  test('only admins revoke; a revoke ends the grant', async () => {
    const dee = await requester(role('r'));
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    expect(await refusal(core.activations.revoke({ actor: dee, activationId: view.activation.id }))).toBe(
      'Only an admin can revoke an activation.',
    );
    const revoked = await core.activations.revoke({
      actor: core.cli,
      activationId: view.activation.id,
      reason: 'leaver',
    });
    expect(revoked.activation).toMatchObject({ status: 'ended', endReason: 'revoked by cli:test: leaver' });
    expect(core.recording.held.size).toBe(0);
  });
});

describe('active assignments', () => {
  test('permanent is refused by default, too long is refused, a valid one is granted', async () => {
    await core.role(role('r'));
    const assign = (endAt: Date | null) =>
      core.admin.assignActive(core.cli, {
        email: email('dee'),
        roleName: role('r'),
        endAt,
        justification: 'on call',
      });
    expect(await refusal(assign(null))).toBe(
      `${role('r')} does not allow a permanent active assignment; set an end at most 15d after the start.`,
    );
    expect(await refusal(assign(new Date(core.clock().getTime() + 16 * 1440 * 60_000)))).toBe(
      `A active assignment for ${role('r')} may last at most 15d; choose an earlier end.`,
    );
    await assign(new Date(core.clock().getTime() + 7 * 1440 * 60_000));
    const [row] = await database.db.select().from(activations).where(eq(activations.requestedBy, 'cli:test'));
    expect(row).toMatchObject({ kind: 'assignment', status: 'active' });
    expect(core.recording.held.has(`${email('dee')}/${role('r')}`)).toBe(true);
    await core.admin.removeActive(core.cli, { email: email('dee'), roleName: role('r') });
    expect(core.recording.held.size).toBe(0);
  });

  test('a non-admin cannot change roles or assignments', async () => {
    const dee = await core.person(email('dee'));
    expect(await refusal(core.admin.saveRole(dee, { name: role('r') }))).toBe(
      'Only an Elevate admin can change roles, eligibility and assignments.',
    );
  });
});

describe('provider failures', () => {
  test('a permanent grant failure marks the activation failed and tells requester and admins', async () => {
    const dee = await requester(role('r'));
    core.recording.failWith(new GrantError('no such login dee', { retryable: false }));
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    expect(view.activation).toMatchObject({ status: 'failed', lastError: 'no such login dee' });
    const kinds = await database.db
      .select({ kind: notifications.kind })
      .from(notifications)
      .where(eq(notifications.activationId, view.activation.id));
    expect(kinds.map((k) => k.kind).sort()).toEqual([
      'activation_approved',
      'activation_failed',
      'grant_failed',
    ]);
  });

  test('a retryable grant failure stays activating with a retry time', async () => {
    const dee = await requester(role('r'));
    core.recording.failWith(new Error('connect ECONNREFUSED'));
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    expect(view.activation).toMatchObject({
      status: 'activating',
      attempts: 1,
      lastError: 'connect ECONNREFUSED',
    });
    expect(view.activation.nextAttemptAt?.getTime()).toBeGreaterThan(core.clock().getTime());
    const retried = await core.activations.settle(view.activation.id);
    expect(retried.activation.status).toBe('active');
  });

  test('a failing revoke is never reported as ended; admins are alerted once', async () => {
    const dee = await requester(role('r'));
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    core.advance(10);
    core.recording.failWith(new Error('timeout'), new Error('timeout'));
    const stuck = await core.activations.deactivate({ actor: dee, activationId: view.activation.id });
    expect(stuck.activation).toMatchObject({ status: 'revoking', lastError: 'timeout', attempts: 1 });
    expect((await core.activations.settle(view.activation.id)).activation.status).toBe('revoking');
    const alerts = await database.db
      .select()
      .from(notifications)
      .where(
        and(eq(notifications.activationId, view.activation.id), eq(notifications.kind, 'revoke_failing')),
      );
    expect(alerts).toHaveLength(1);
    expect((await core.activations.settle(view.activation.id)).activation.status).toBe('ended');
  });
});

test('a NUL character typed into a justification is dropped, not a database error', async () => {
  const dee = await requester(role('nul'));
  const view = await core.activations.requestActivation({
    actor: dee,
    roleName: role('nul'),
    justification: 'fix\u0000 it',
  });
  expect(view.activation.justification).toBe('fix it');
});

describe('the target system follows extensions and failures', () => {
  test('an extension moves the end in the target too, with or without approval', async () => {
    const dee = await requester(role('r'), { maxDuration: 240 });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    const extended = await core.activations.extend({
      actor: dee,
      activationId: view.activation.id,
      durationMinutes: 30,
      justification: 'more',
    });
    const told = core.recording.calls.filter((c) => c.op === 'extend');
    expect(told.map((c) => c.target.activation.endAt?.getTime())).toEqual([
      extended.activation.endAt?.getTime(),
    ]);

    const eve = email('eve');
    await core.role(role('gated'), { requireApproval: true, approvers: [email('bo')], maxDuration: 240 });
    await core.eligible(eve, role('gated'));
    const eveActor = await core.person(eve);
    const bo = await core.person(email('bo'));
    const gated = await core.activations.requestActivation({
      actor: eveActor,
      roleName: role('gated'),
      justification: 'x',
    });
    await core.activations.approve({ actor: bo, activationId: gated.activation.id });
    const ask = await core.activations.extend({
      actor: eveActor,
      activationId: gated.activation.id,
      durationMinutes: 45,
      justification: 'y',
    });
    expect(core.recording.calls.filter((c) => c.op === 'extend')).toHaveLength(1); // not before approval
    await core.activations.approve({ actor: bo, activationId: ask.activation.id });
    const last = core.recording.calls.filter((c) => c.op === 'extend').at(-1);
    expect(last?.target.activationId).toBe(gated.activation.id);
    expect(last?.target.activation.endAt?.getTime()).toBe(ask.activation.endAt?.getTime());
  });

  /** An active activation of a 4-hour role for dee, and how to read what followed. */
  async function running() {
    const dee = await requester(role('r'), { maxDuration: 240 });
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    const oldEnd = view.activation.endAt;
    const told = async (kind: string) =>
      database.db
        .select({ to: principals.email, data: notifications.data })
        .from(notifications)
        .innerJoin(principals, eq(principals.id, notifications.recipientId))
        .where(eq(notifications.kind, kind))
        .then((rows) => rows.filter((r) => r.to.endsWith(`${n}@example.com`)));
    const extensions = () =>
      database.db.select().from(activations).where(eq(activations.extendsId, view.activation.id));
    return { dee, view, oldEnd, told, extensions };
  }

  test('a target that refuses the new end for good: the activation keeps its old end, requester and admins told', async () => {
    const { dee, view, oldEnd, told, extensions } = await running();
    core.recording.failWith(new GrantError('directory says no', { retryable: false }));
    await core.activations.extend({
      actor: dee,
      activationId: view.activation.id,
      durationMinutes: 30,
      justification: 'm',
    });
    expect((await core.activations.get(view.activation.id)).activation).toMatchObject({
      status: 'active',
      endAt: oldEnd,
    });
    const [extension] = await extensions();
    expect(extension).toMatchObject({ status: 'failed', attempts: 1, lastError: 'directory says no' });
    const events = await database.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.subjectId, extension?.id ?? ''));
    expect(events.find((e) => e.action === 'extension.failed')?.data).toMatchObject({
      error: 'directory says no',
      provider: 'recording',
    });
    expect(await told('extend_failed')).toEqual([
      { to: email('ana'), data: { role: role('r'), error: 'directory says no' } },
    ]);
    expect(await told('extension_failed')).toEqual([
      {
        to: email('dee'),
        data: { role: role('r'), error: 'directory says no', endAt: oldEnd?.toISOString() },
      },
    ]);
    expect(await told('activation_extended')).toEqual([]);
  });

  test('a transient failure of the new end is retried by the loop with backoff, then applied', async () => {
    const { dee, view, oldEnd, told, extensions } = await running();
    core.recording.failWith(new GrantError('Graph answered 503', { retryable: true }));
    const pending = await core.activations.extend({
      actor: dee,
      activationId: view.activation.id,
      durationMinutes: 30,
      justification: 'm',
    });
    expect(pending.activation).toMatchObject({ kind: 'extension', status: 'activating', attempts: 1 });
    // Not applied yet: the activation still ends at its old end, and a second extension waits.
    expect((await core.activations.get(view.activation.id)).activation.endAt).toEqual(oldEnd);
    const again = await core.activations
      .extend({ actor: dee, activationId: view.activation.id, durationMinutes: 30, justification: 'm' })
      .catch((e: unknown) => e);
    expect((again as ElevateError).message).toContain('still being applied');
    expect(await core.activations.retryDue()).toBe(0); // not before its backoff
    core.advance(1);
    expect(await core.activations.retryDue()).toBe(1);
    const after = (await core.activations.get(view.activation.id)).activation;
    expect(after.status).toBe('active');
    expect(after.endAt?.getTime()).toBe((oldEnd?.getTime() ?? 0) + 30 * 60_000);
    expect((await extensions()).map((e) => e.status)).toEqual(['approved']);
    const extendCalls = core.recording.calls.filter((c) => c.op === 'extend');
    expect(extendCalls.map((c) => c.target.attempt)).toEqual([1, 2]);
    expect(extendCalls.map((c) => c.target.activation.endAt)).toEqual([after.endAt, after.endAt]);
    expect(await told('activation_extended')).toHaveLength(1);
    expect(await told('extension_failed')).toEqual([]);
  });

  test('an approved extension whose new end fails transiently is retried too, and never outlives its activation', async () => {
    const eve = email('eve');
    await core.role(role('gated'), { requireApproval: true, approvers: [email('bo')], maxDuration: 240 });
    await core.eligible(eve, role('gated'));
    const eveActor = await core.person(eve);
    const bo = await core.person(email('bo'));
    const gated = await core.activations.requestActivation({
      actor: eveActor,
      roleName: role('gated'),
      justification: 'x',
    });
    await core.activations.approve({ actor: bo, activationId: gated.activation.id });
    const oldEnd = (await core.activations.get(gated.activation.id)).activation.endAt;
    const ask = await core.activations.extend({
      actor: eveActor,
      activationId: gated.activation.id,
      durationMinutes: 45,
      justification: 'y',
    });
    core.recording.failWith(new Error('socket hang up'));
    const decided = await core.activations.approve({ actor: bo, activationId: ask.activation.id });
    expect(decided.view.activation).toMatchObject({ status: 'activating', attempts: 1 });
    expect((await core.activations.get(gated.activation.id)).activation.endAt).toEqual(oldEnd);
    // The activation ends before the retry: the extension fails without another call.
    core.advance(61);
    await core.activations.expireDue();
    expect((await core.activations.get(gated.activation.id)).activation.status).toBe('ended');
    await core.activations.retryDue();
    expect((await core.activations.get(ask.activation.id)).activation).toMatchObject({
      status: 'failed',
      lastError: 'the activation ended before its new end was applied',
    });
    expect(core.recording.calls.filter((c) => c.op === 'extend')).toHaveLength(1);
  });

  test('when transient failures of the new end run out, the activation keeps its old end and the requester is told', async () => {
    const { dee, view, oldEnd, told, extensions } = await running();
    core.recording.failWith(...Array.from({ length: 5 }, () => new Error('connect ETIMEDOUT')));
    await core.activations.extend({
      actor: dee,
      activationId: view.activation.id,
      durationMinutes: 60,
      justification: 'm',
    });
    // Backoff of 2, 4, 8, 16 s (with jitter): well inside a minute a tick, and before the old end.
    for (let i = 0; i < 10; i++) {
      core.advance(1);
      await core.activations.retryDue();
    }
    expect(core.recording.calls.filter((c) => c.op === 'extend')).toHaveLength(5);
    const [extension] = await extensions();
    expect(extension).toMatchObject({ status: 'failed', attempts: 5, lastError: 'connect ETIMEDOUT' });
    expect((await core.activations.get(view.activation.id)).activation).toMatchObject({
      status: 'active',
      endAt: oldEnd,
    });
    expect(await told('extension_failed')).toMatchObject([
      { to: email('dee'), data: { error: 'connect ETIMEDOUT', endAt: oldEnd?.toISOString() } },
    ]);
    expect(await told('extend_failed')).toHaveLength(1);
  });

  test('when transient grant failures run out, the activation fails and whatever may be granted is taken back', async () => {
    const dee = await requester(role('r'));
    core.recording.failWith(...Array.from({ length: 5 }, () => new Error('timeout')));
    let view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('r'),
      justification: 'x',
    });
    for (let i = 0; i < 10 && view.activation.status === 'activating'; i++) {
      view = await core.activations.settle(view.activation.id);
    }
    expect(view.activation).toMatchObject({ status: 'failed', attempts: 5, lastError: 'timeout' });
    expect(core.recording.calls.map((c) => c.op)).toEqual([
      'grant',
      'grant',
      'grant',
      'grant',
      'grant',
      'revoke',
    ]);
    const events = await database.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.subjectId, view.activation.id))
      .orderBy(auditEvents.seq);
    expect(events.map((e) => e.action).slice(-2)).toEqual(['activation.failed', 'activation.cleaned_up']);
    expect(events.find((e) => e.action === 'activation.failed')?.data).toMatchObject({
      provider: 'recording',
    });
  });
});
