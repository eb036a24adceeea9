import { afterAll, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { verifyAudit } from '../../src/audit/audit-verify.ts';
import { and, eq, inArray } from '../../src/db/drizzle.ts';
import { activations } from '../../src/elevation/activation.sql.ts';
import { createActivationService } from '../../src/elevation/activation-service.ts';
import { notifications } from '../../src/elevation/notification.sql.ts';
import type { GrantProvider } from '../../src/grants/grant-provider.ts';
import { createProviderRegistry } from '../../src/grants/registry.ts';
import { untilDone } from '../../src/jobs/lifecycle-jobs.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

// The loop's batched expiry: whole batches move active → revoking in one statement, the providers
// are called, and the confirmed ones end together. These tests hold it to the same invariants as
// one row at a time: each activation revoked, audited and announced exactly once.

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

let n = 0;
/** A core with its own role, an admin, and `count` requesters each with a running activation. */
async function running(count: number) {
  n += 1;
  const core = createCore(database.db);
  const role = `batch-${n}`;
  await core.admin.setAdmins(core.cli, [`ana${n}@example.com`]);
  await core.role(role, { requireJustification: false });
  const ids: string[] = [];
  const requesters: string[] = [];
  for (let i = 0; i < count; i++) {
    const email = `batch${n}-${i}@example.com`;
    await core.eligible(email, role);
    const requester = await core.person(email);
    const view = await core.activations.requestActivation({
      actor: requester,
      roleName: role,
      durationMinutes: 30,
    });
    expect(view.activation.status).toBe('active');
    ids.push(view.activation.id);
    requesters.push(requester.principalId ?? '');
  }
  return { core, ids, requesters };
}

/** How often each activation was revoked through the provider, audited with `action`, and its requester told it ended. */
async function tally(core: ReturnType<typeof createCore>, ids: string[]) {
  const revokes = core.recording.calls.filter((c) => c.op === 'revoke').map((c) => c.target.activationId);
  const events = async (action: string) =>
    (
      await database.db
        .select({ id: auditEvents.subjectId })
        .from(auditEvents)
        .where(and(eq(auditEvents.action, action), inArray(auditEvents.subjectId, ids)))
    ).map((e) => e.id);
  const told = await database.db
    .select({ id: notifications.activationId, recipient: notifications.recipientId })
    .from(notifications)
    .where(and(eq(notifications.kind, 'activation_ended'), inArray(notifications.activationId, ids)));
  const statuses = await database.db
    .select({ id: activations.id, status: activations.status })
    .from(activations)
    .where(inArray(activations.id, ids));
  return {
    revokes: revokes.filter((id) => ids.includes(id)).sort(),
    expired: (await events('activation.expired')).sort(),
    ended: (await events('activation.ended')).sort(),
    told,
    status: new Map(statuses.map((s) => [s.id, s.status])),
  };
}

test('a batched expiry revokes, audits and announces each activation exactly once, and the chain verifies', async () => {
  const { core, ids, requesters } = await running(25);
  core.advance(31);
  // Batches of 10: two full ones, then the rest — the loop's drain runs until a batch is not full.
  expect(
    await untilDone((limit) => core.activations.expireDue(limit), new AbortController().signal, 10),
  ).toBe(25);
  expect(await core.activations.expireDue(10)).toBe(0);

  const after = await tally(core, ids);
  const sorted = [...ids].sort();
  expect(after.revokes).toEqual(sorted);
  expect(after.expired).toEqual(sorted);
  expect(after.ended).toEqual(sorted);
  expect(after.told.map((t) => t.id).sort()).toEqual(sorted);
  expect(after.told.map((t) => t.recipient).sort()).toEqual([...requesters].sort());
  expect([...after.status.values()].every((s) => s === 'ended')).toBe(true);
  expect(core.recording.held.size).toBe(0);
  expect(await verifyAudit(database.db)).toMatchObject({ ok: true });
});

test('a provider failing for some rows of a batch leaves those revoking with a retry while the others end', async () => {
  const { core, ids } = await running(12);
  core.advance(31);
  core.recording.failWith(new Error('connect ETIMEDOUT'), new Error('connect ECONNRESET'));
  expect(await core.activations.expireDue(100)).toBe(12);

  const failed = core.recording.calls
    .filter((c) => c.op === 'revoke')
    .slice(0, 2)
    .map((c) => c.target.activationId);
  let after = await tally(core, ids);
  for (const id of ids) expect(after.status.get(id)).toBe(failed.includes(id) ? 'revoking' : 'ended');
  expect(after.ended.sort()).toEqual(ids.filter((id) => !failed.includes(id)).sort());
  expect(after.told.map((t) => t.id).sort()).toEqual(after.ended);
  const stuck = await database.db.select().from(activations).where(inArray(activations.id, failed));
  for (const row of stuck) {
    expect(row).toMatchObject({ status: 'revoking', attempts: 1 });
    expect(row.lastError).toMatch(/^connect E/);
    expect(row.nextAttemptAt?.getTime()).toBeGreaterThan(core.clock().getTime());
  }
  // The admins hear of each failing revoke once.
  const alerts = await database.db
    .select({ id: notifications.activationId })
    .from(notifications)
    .where(and(eq(notifications.kind, 'revoke_failing'), inArray(notifications.activationId, ids)));
  expect(alerts.map((a) => a.id).sort()).toEqual([...failed].sort());

  expect(await core.activations.retryDue()).toBe(0); // not before its backoff
  core.advance(1);
  expect(await core.activations.retryDue()).toBe(2);
  after = await tally(core, ids);
  const sorted = [...ids].sort();
  expect(after.ended).toEqual(sorted);
  expect(after.expired).toEqual(sorted);
  expect(after.told.map((t) => t.id).sort()).toEqual(sorted);
  expect(after.revokes).toEqual([...sorted, ...failed].sort());
  expect(await verifyAudit(database.db)).toMatchObject({ ok: true });
});

test('a target that is down for a whole batch: the admins get one notice per role and error, then none while it is retried', async () => {
  const { core, ids } = await running(5);
  const admins = ['ana', 'bo'].map((name) => `${name}${n}@example.com`);
  await core.admin.setAdmins(core.cli, admins);
  core.advance(31);
  const down = () => new Error('connect ECONNREFUSED');
  core.recording.failWith(down(), down(), down(), down(), down());
  expect(await core.activations.expireDue(100)).toBe(5);
  const notices = async () =>
    database.db
      .select({ recipient: notifications.recipientId, data: notifications.data })
      .from(notifications)
      .where(and(eq(notifications.kind, 'revoke_failing'), inArray(notifications.activationId, ids)));
  const first = await notices();
  expect(first).toHaveLength(admins.length);
  for (const notice of first) {
    expect(notice.data).toMatchObject({ error: 'connect ECONNREFUSED', reason: 'expired', others: 4 });
  }
  // Each activation still has its own audit event for the failure.
  const failing = await database.db
    .select({ id: auditEvents.subjectId })
    .from(auditEvents)
    .where(and(eq(auditEvents.action, 'activation.revoke_failing'), inArray(auditEvents.subjectId, ids)));
  expect(failing.map((e) => e.id).sort()).toEqual([...ids].sort());

  core.recording.failWith(down(), down(), down(), down(), down());
  core.advance(1);
  expect(await core.activations.retryDue()).toBe(5);
  expect(await notices()).toHaveLength(admins.length);
  core.advance(5);
  expect(await core.activations.retryDue()).toBe(5);
  expect((await tally(core, ids)).ended.sort()).toEqual([...ids].sort());
});

test('a replica that stops while its batch is at the provider leaves it revoking; after the lease another finishes it once', async () => {
  const { core, ids } = await running(8);
  core.advance(31);
  // This replica's provider never answers: as if the process died after the claim committed.
  const hanging: GrantProvider = {
    type: 'recording',
    grant: () => new Promise(() => {}),
    revoke: () => new Promise(() => {}),
  };
  const stopped = createActivationService({
    db: database.db,
    clock: core.clock,
    providers: createProviderRegistry({
      env: {},
      definitions: [{ type: 'recording', roleConfig: z.object({}).strict(), create: () => hanging }],
    }),
  });
  void stopped.expireDue(100);
  await expect.poll(async () => (await tally(core, ids)).expired.length).toBe(8);
  let after = await tally(core, ids);
  expect([...after.status.values()].every((s) => s === 'revoking')).toBe(true);

  expect(await core.activations.retryDue()).toBe(0); // the lease still holds
  core.advance(2);
  expect(await core.activations.retryDue()).toBe(8);
  after = await tally(core, ids);
  const sorted = [...ids].sort();
  expect(after.revokes).toEqual(sorted);
  expect(after.ended).toEqual(sorted);
  expect(after.told.map((t) => t.id).sort()).toEqual(sorted);
  expect(await verifyAudit(database.db)).toMatchObject({ ok: true });
});

// On PostgreSQL the two run at once on separate connections and meet at SKIP LOCKED and the
// conditional updates; on PGlite (one connection) they take turns, which must hold all the same.
test('two replicas expiring at once in small batches never process an activation twice', async () => {
  const { core, ids } = await running(60);
  core.advance(31);
  const replicas = [0, 1].map(() =>
    createActivationService({ db: database.db, providers: core.providers, clock: core.clock }),
  );
  const done = await Promise.all(
    replicas.map((r) => untilDone((limit) => r.expireDue(limit), new AbortController().signal, 7)),
  );
  const rest = await Promise.all(replicas.map((r) => r.expireDue(7)));
  expect([...done, ...rest].reduce((a, b) => a + b, 0)).toBe(60);

  const after = await tally(core, ids);
  const sorted = [...ids].sort();
  expect(after.revokes).toEqual(sorted);
  expect(after.expired).toEqual(sorted);
  expect(after.ended).toEqual(sorted);
  expect(after.told.map((t) => t.id).sort()).toEqual(sorted);
  expect(await verifyAudit(database.db)).toMatchObject({ ok: true });
});
