import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import type { ChatPlatform } from '../../src/chat/chat-platform.ts';
import { and, eq } from '../../src/db/drizzle.ts';
import { notifications } from '../../src/elevation/notification.sql.ts';
import { createNotificationDelivery, resendAwaitingAccount } from '../../src/jobs/deliver-notifications.ts';
import { createLogger } from '../../src/log.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

/** The outbox's delivery through `platform` alone, on the test database and `core`'s clock. */
function deliveryThrough(core: ReturnType<typeof createCore>, platform: ChatPlatform) {
  return createNotificationDelivery({
    db: database.db,
    clock: core.clock,
    log: createLogger('silent'),
    platforms: [platform],
  });
}

/** A replica's delivery through a chat platform that records and, until `open()`, hangs. */
function slowReplica(core: ReturnType<typeof createCore>, gated: boolean) {
  let open = () => {};
  const gate = gated
    ? new Promise<void>((resolve) => {
        open = resolve;
      })
    : Promise.resolve();
  const sent: string[] = [];
  const platform: ChatPlatform = {
    name: 'slack',
    async deliver(n) {
      sent.push(n.id);
      await gate;
      return 'sent';
    },
  };
  return { delivery: deliveryThrough(core, platform), sent, open };
}

test('a replica whose batch outlasted the lease does not deliver again what another replica took over', async () => {
  const core = createCore(database.db);
  await core.role('told', { requireJustification: false });
  await core.eligible('dee@example.com', 'told');
  // Eligibility, approval and grant: three notices for one person, in one batch.
  await core.activations.requestActivation({ actor: await core.person('dee@example.com'), roleName: 'told' });
  const a = slowReplica(core, true);
  const b = slowReplica(core, false);
  const aDone = a.delivery.run();
  await vi.waitFor(() => expect(a.sent).toHaveLength(1));
  core.advance(2); // A's lease runs out while its first delivery hangs
  expect(await b.delivery.run()).toBe(3);
  a.open();
  await aDone;
  // The one A had in hand went out twice (at least once, as promised); the others only once.
  expect(a.sent).toHaveLength(1);
  expect(b.sent).toHaveLength(3);
});

test('notices that found no account go out at once when the person installs the app, recent ones only', async () => {
  // Rows are stamped by the database's now(): the clock starts there too.
  const core = createCore(database.db, new Date());
  for (const role of ['gated', 'gated-too']) {
    await core.role(role, {
      requireJustification: false,
      requireApproval: true,
      approvers: ['late-approver@example.com'],
    });
    await core.eligible('asker@example.com', role);
  }
  const installed = new Set<string>();
  const sent: string[] = [];
  const platform: ChatPlatform = {
    name: 'teams',
    async deliver(n, recipient) {
      if (!installed.has(recipient.email)) return 'no_identity';
      sent.push(`${recipient.email} ${n.kind}`);
      return 'sent';
    },
  };
  const delivery = deliveryThrough(core, platform);
  const asker = await core.person('asker@example.com');
  const recipientId = String((await core.person('late-approver@example.com')).principalId);
  const failed = () =>
    database.db
      .select()
      .from(notifications)
      .where(and(eq(notifications.recipientId, recipientId), eq(notifications.status, 'failed')));

  await core.activations.requestActivation({ actor: asker, roleName: 'gated' });
  // That first card was asked for eight days ago: too old to send late.
  await database.db
    .update(notifications)
    .set({ createdAt: new Date(Date.now() - 8 * 24 * 60 * 60_000) })
    .where(eq(notifications.recipientId, recipientId));
  await core.activations.requestActivation({ actor: asker, roleName: 'gated-too' });
  core.advance(1); // past the rows' now()
  await delivery.run();
  // Neither card reached the approver, who has not installed the app: failed for good.
  expect((await failed()).map((n) => n.lastError)).toEqual([
    'late-approver@example.com has no account on teams',
    'late-approver@example.com has no account on teams',
  ]);

  // They install it: the recent card is due at once (no backoff, no admin), the old one stays failed.
  installed.add('late-approver@example.com');
  const now = core.clock();
  expect(await resendAwaitingAccount(database.db, { recipientId, now })).toBe(1);
  await delivery.run();
  expect(sent).toEqual(['late-approver@example.com approval_requested']);
  expect(await failed()).toHaveLength(1);
  // Nothing more to resend.
  expect(await resendAwaitingAccount(database.db, { recipientId, now })).toBe(0);
});
