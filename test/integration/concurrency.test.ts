import { afterAll, beforeAll, expect, test } from 'vitest';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { eq } from '../../src/db/drizzle.ts';
import { activations, decisions } from '../../src/elevation/activation.sql.ts';
import { ElevateError } from '../../src/errors.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

// Real concurrency needs the PostgreSQL run (CI's second pass); on PGlite the same calls
// are serialised by its single connection and the same outcome must still hold.
let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

test('50 approvers clicking Approve at once: one decision, one transition, one audit event, one grant', async () => {
  const core = createCore(database.db);
  const approverEmails = Array.from({ length: 50 }, (_, i) => `approver${i}@example.com`);
  await core.role('race', { requireApproval: true, approvers: approverEmails });
  await core.eligible('dee@example.com', 'race');
  const dee = await core.person('dee@example.com');
  const request = await core.activations.requestActivation({
    actor: dee,
    roleName: 'race',
    justification: 'deploy',
  });
  const approvers = await Promise.all(approverEmails.map((e) => core.person(e)));

  const results = await Promise.allSettled(
    approvers.map((actor) => core.activations.approve({ actor, activationId: request.activation.id })),
  );

  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  expect(won).toHaveLength(1);
  const rows = await database.db
    .select()
    .from(decisions)
    .where(eq(decisions.activationId, request.activation.id));
  expect(rows).toHaveLength(1);
  const winner = approverEmails[approvers.findIndex((a) => a.principalId === rows[0]?.approverId)];
  for (const loss of lost) {
    expect(loss.reason).toBeInstanceOf(ElevateError);
    expect((loss.reason as ElevateError).message).toMatch(
      new RegExp(`^This request was already approved by ${winner} at `),
    );
  }
  const events = await database.db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.subjectId, request.activation.id));
  expect(events.filter((e) => e.action === 'activation.approved')).toHaveLength(1);
  expect(events.filter((e) => e.action === 'activation.granted')).toHaveLength(1);
  expect(core.recording.calls.filter((c) => c.op === 'grant')).toHaveLength(1);
  const [row] = await database.db.select().from(activations).where(eq(activations.id, request.activation.id));
  expect(row?.status).toBe('active');
});

test('the same request sent 10 times at once opens one activation', async () => {
  const core = createCore(database.db);
  await core.role('double', {});
  await core.eligible('eve@example.com', 'double');
  const eve = await core.person('eve@example.com');
  const results = await Promise.allSettled(
    Array.from({ length: 10 }, () =>
      core.activations.requestActivation({ actor: eve, roleName: 'double', justification: 'twice' }),
    ),
  );
  expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  for (const r of results) {
    if (r.status === 'rejected') expect((r.reason as ElevateError).code).toBe('conflict');
  }
  const rows = await database.db
    .select()
    .from(activations)
    .where(eq(activations.principalId, eve.principalId ?? ''));
  expect(rows).toHaveLength(1);
  expect(core.recording.calls).toHaveLength(1);
});

test('Deactivate clicked twice at once revokes once', async () => {
  const core = createCore(database.db);
  await core.role('twice', {});
  await core.eligible('fay@example.com', 'twice');
  const fay = await core.person('fay@example.com');
  const view = await core.activations.requestActivation({
    actor: fay,
    roleName: 'twice',
    justification: 'x',
  });
  core.advance(6);
  const results = await Promise.allSettled([
    core.activations.deactivate({ actor: fay, activationId: view.activation.id }),
    core.activations.deactivate({ actor: fay, activationId: view.activation.id }),
  ]);
  expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  expect(core.recording.calls.filter((c) => c.op === 'revoke')).toHaveLength(1);
  const events = await database.db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.subjectId, view.activation.id));
  expect(events.filter((e) => e.action === 'activation.ended')).toHaveLength(1);
});
