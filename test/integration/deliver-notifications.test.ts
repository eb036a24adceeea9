import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import type { ChatPlatform } from '../../src/chat/chat-platform.ts';
import { createNotificationDelivery } from '../../src/jobs/deliver-notifications.ts';
import { createLogger } from '../../src/log.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

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
  const delivery = createNotificationDelivery({
    db: database.db,
    clock: core.clock,
    log: createLogger('silent'),
    platforms: [platform],
  });
  return { delivery, sent, open };
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
