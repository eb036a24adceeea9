import { afterAll, beforeAll, expect, onTestFinished, test, vi } from 'vitest';
import { z } from 'zod';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { and, eq, inArray } from '../../src/db/drizzle.ts';
import { activations } from '../../src/elevation/activation.sql.ts';
import { createActivationService, SETTLE_CONCURRENCY } from '../../src/elevation/activation-service.ts';
import { createAdminService } from '../../src/elevation/admin-service.ts';
import { notifications } from '../../src/elevation/notification.sql.ts';
import type { GrantProvider } from '../../src/grants/grant-provider.ts';
import { createProviderRegistry, PROVIDERS } from '../../src/grants/registry.ts';
import { revokeExpired } from '../../src/jobs/lifecycle-jobs.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

let n = 0;
/** A core with its own role and eligible requester, so tests on the shared database stay apart. */
async function scene(settings = {}, db = database.db) {
  n += 1;
  const core = createCore(db);
  const role = `loop-${n}`;
  const email = `dee${n}@example.com`;
  await core.admin.setAdmins(core.cli, [`ana${n}@example.com`]);
  await core.role(role, { requireJustification: false, ...settings });
  await core.eligible(email, role);
  return { core, role, requester: await core.person(email) };
}

async function actions(activationId: string) {
  const rows = await database.db
    .select({ action: auditEvents.action })
    .from(auditEvents)
    .where(eq(auditEvents.subjectId, activationId))
    .orderBy(auditEvents.seq);
  return rows.map((r) => r.action);
}

test('an activation is revoked through the provider once its time is up, and the requester is told', async () => {
  const { core, role, requester } = await scene();
  const view = await core.activations.requestActivation({
    actor: requester,
    roleName: role,
    durationMinutes: 30,
  });
  core.advance(29);
  expect(await core.activations.expireDue()).toBe(0);
  core.advance(2);
  expect(await core.activations.expireDue()).toBe(1);
  const [after] = await core.activations.list({ principalId: requester.principalId ?? '' });
  expect(after?.activation).toMatchObject({ status: 'ended', endReason: 'expired' });
  expect(core.recording.calls.map((c) => c.op)).toEqual(['grant', 'revoke']);
  expect(core.recording.held.size).toBe(0);
  expect(await actions(view.activation.id)).toEqual([
    'activation.requested',
    'activation.granted',
    'activation.expired',
    'activation.ended',
  ]);
  expect(await core.activations.expireDue()).toBe(0);
});

test('a scheduled activation is granted when its start comes', async () => {
  const { core, role, requester } = await scene();
  const start = new Date(core.clock().getTime() + 2 * 86_400_000);
  await core.activations.requestActivation({ actor: requester, roleName: role, startAt: start });
  expect(await core.activations.startDue()).toBe(0);
  core.advance(2 * 1440 + 1);
  expect(await core.activations.startDue()).toBe(1);
  const [after] = await core.activations.list({ principalId: requester.principalId ?? '' });
  expect(after?.activation.status).toBe('active');
  expect(core.recording.held.size).toBe(1);
});

test('a grant and a revoke that failed (or were cut short by a crash) are retried when due', async () => {
  const { core, role, requester } = await scene();
  core.recording.failWith(new Error('connect ETIMEDOUT'));
  const view = await core.activations.requestActivation({ actor: requester, roleName: role });
  expect(view.activation.status).toBe('activating');
  expect(await core.activations.retryDue()).toBe(0); // not before its backoff
  core.advance(20);
  expect(await core.activations.retryDue()).toBe(1);
  core.advance(10);
  core.recording.failWith(new Error('connect ETIMEDOUT'));
  expect(
    (await core.activations.deactivate({ actor: requester, activationId: view.activation.id })).activation
      .status,
  ).toBe('revoking');
  core.advance(20);
  expect(await core.activations.retryDue()).toBe(1);
  const [after] = await core.activations.list({ principalId: requester.principalId ?? '' });
  expect(after?.activation.status).toBe('ended');
  expect(core.recording.calls.map((c) => c.op)).toEqual(['grant', 'grant', 'revoke', 'revoke']);
});

test('a request nobody decides times out, and requester and approvers are told', async () => {
  const { core, role, requester } = await scene({
    requireApproval: true,
    approvers: [`bo${n + 1}@example.com`],
    approvalTimeout: 60,
  });
  const view = await core.activations.requestActivation({ actor: requester, roleName: role });
  core.advance(59);
  expect(await core.activations.timeOutDue()).toBe(0);
  core.advance(2);
  expect(await core.activations.timeOutDue()).toBe(1);
  const told = await database.db
    .select({ kind: notifications.kind })
    .from(notifications)
    .where(
      and(
        eq(notifications.activationId, view.activation.id),
        inArray(notifications.kind, ['activation_timed_out', 'request_decided']),
      ),
    );
  expect(told.map((t) => t.kind).sort()).toEqual(['activation_timed_out', 'request_decided']);
});

test("an admin's assignment and its removal hold their grant and revoke for the configured in-flight lease", async () => {
  const { core, role } = await scene();
  const leaseMs = 7_000;
  // Settling is left to the loop here: what a crash right after the commit would leave behind.
  const admin = createAdminService({
    db: database.db,
    providers: core.providers,
    clock: core.clock,
    settle: async () => {},
    inFlightLeaseMs: leaseMs,
  });
  const email = `assigned${n}@example.com`;
  const until = new Date(core.clock().getTime() + 86_400_000);
  await admin.assignActive(core.cli, { email, roleName: role, endAt: until });
  const principalId = (await core.person(email)).principalId ?? '';
  const [granting] = await core.activations.list({ principalId });
  expect(granting?.activation).toMatchObject({ kind: 'assignment', status: 'activating' });
  expect(granting?.activation.nextAttemptAt?.getTime()).toBe(core.clock().getTime() + leaseMs);

  await core.activations.settle(granting?.activation.id ?? '');
  await admin.removeActive(core.cli, { email, roleName: role });
  const [revoking] = await core.activations.list({ principalId });
  expect(revoking?.activation.status).toBe('revoking');
  expect(revoking?.activation.nextAttemptAt?.getTime()).toBe(core.clock().getTime() + leaseMs);
});

// On PostgreSQL this is real concurrency between connections; on PGlite they take turns.
test('three replicas expiring the same 60 activations revoke each exactly once', async () => {
  const { core, role } = await scene({ maxDuration: 60 });
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) {
    const email = `many${n}-${i}@example.com`;
    await core.eligible(email, role);
    const view = await core.activations.requestActivation({
      actor: await core.person(email),
      roleName: role,
      durationMinutes: 30,
    });
    ids.push(view.activation.id);
  }
  core.advance(31);
  const replicas = [0, 1, 2].map(() =>
    createActivationService({ db: database.db, providers: core.providers, clock: core.clock }),
  );
  const done = await Promise.all(replicas.map((r) => r.expireDue(25)));
  const more = await Promise.all(replicas.map((r) => r.expireDue(25)));
  expect([...done, ...more].reduce((a, b) => a + b, 0)).toBe(60);
  const revoked = core.recording.calls.filter((c) => c.op === 'revoke').map((c) => c.target.activationId);
  expect(revoked.sort()).toEqual([...ids].sort());
  const ended = await database.db
    .select({ id: auditEvents.subjectId })
    .from(auditEvents)
    .where(and(eq(auditEvents.action, 'activation.ended'), inArray(auditEvents.subjectId, ids)));
  expect(ended).toHaveLength(60);
  const told = await database.db
    .select({ id: notifications.activationId })
    .from(notifications)
    .where(and(eq(notifications.kind, 'activation_ended'), inArray(notifications.activationId, ids)));
  expect(told).toHaveLength(60);
});

/** A `recording` provider whose revokes wait until `open()`: a slow target, per replica. */
function gatedReplica(core: ReturnType<typeof createCore>) {
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const revoked: string[] = [];
  const provider: GrantProvider = {
    type: 'recording',
    async grant() {},
    async revoke(target) {
      revoked.push(target.activationId);
      await gate;
    },
  };
  const providers = createProviderRegistry({
    env: {},
    definitions: [
      ...PROVIDERS,
      { type: 'recording', roleConfig: z.object({}).strict(), create: () => provider },
    ],
  });
  const service = createActivationService({ db: core.db, providers, clock: core.clock });
  return { service, revoked, open };
}

test('a replica whose batch outlasted the lease leaves rows another replica took over to it', async () => {
  // A database of its own: rows other tests leave in flight would be due too, and a claim bounded
  // to this test's rows could take one of them instead of one of these.
  const own = await openTestDatabase();
  onTestFinished(() => own.close());
  const { core, role } = await scene({ maxDuration: 60 }, own.db);
  // One row more than a replica renews and calls for at once: the last waits for the first chunk.
  const count = SETTLE_CONCURRENCY + 1;
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const email = `slow${n}-${i}@example.com`;
    await core.eligible(email, role);
    const view = await core.activations.requestActivation({
      actor: await core.person(email),
      roleName: role,
      durationMinutes: 30,
    });
    ids.push(view.activation.id);
  }
  core.advance(31);
  const [a, b] = [gatedReplica(core), gatedReplica(core)];
  // A claims them all and calls the target for the first chunk at once; the target is slow.
  const aDone = a.service.expireDue(count);
  await vi.waitFor(() => expect(a.revoked).toHaveLength(SETTLE_CONCURRENCY));
  // A's lease runs out: B takes every row still `revoking` over, and is slow too.
  core.advance(2);
  const bDone = b.service.retryDue(count);
  await vi.waitFor(() => expect(b.revoked).toHaveLength(SETTLE_CONCURRENCY));
  // A's first calls return; its last row now belongs to B, so A does not call for it again.
  a.open();
  await aDone;
  b.open();
  await bDone;
  expect(a.revoked).toHaveLength(SETTLE_CONCURRENCY);
  const last = ids.find((id) => !a.revoked.includes(id));
  expect(b.revoked.filter((id) => id === last)).toHaveLength(1);
  const statuses = await own.db
    .select({ status: activations.status })
    .from(activations)
    .where(inArray(activations.id, ids));
  expect(statuses.map((s) => s.status)).toEqual(Array(count).fill('ended'));
  const ended = await own.db
    .select({ id: auditEvents.subjectId })
    .from(auditEvents)
    .where(and(eq(auditEvents.action, 'activation.ended'), inArray(auditEvents.subjectId, ids)));
  expect(ended).toHaveLength(count);
}, 60_000);

// Real time: the run sleeps on the real clock. Last in this file: the real-clock service also
// revokes what earlier tests left running (their ends, on the test clock, lie in the real past).
test('a revoke run that finds the next end before the next tick sleeps until it and revokes it then', async () => {
  const { core, role, requester } = await scene();
  const view = await core.activations.requestActivation({ actor: requester, roleName: role });
  const service = createActivationService({
    db: database.db,
    providers: core.providers,
    clock: () => new Date(),
  });
  // Just after a tick, an end 400 ms ahead: before the next tick.
  await new Promise((resolve) => setTimeout(resolve, 1_000 - (Date.now() % 1_000) + 10));
  const end = new Date(Date.now() + 400);
  await database.db
    .update(activations)
    .set({ endAt: end, nextAttemptAt: end })
    .where(eq(activations.id, view.activation.id));
  await revokeExpired(service, new AbortController().signal);
  const [after] = await database.db.select().from(activations).where(eq(activations.id, view.activation.id));
  expect(after?.status).toBe('ended');
  const revoke = core.recording.calls.find(
    (c) => c.op === 'revoke' && c.target.activationId === view.activation.id,
  );
  expect(revoke).toBeDefined();
  expect(after?.endedAt?.getTime()).toBeGreaterThanOrEqual(end.getTime()); // never before its end
}, 30_000);
