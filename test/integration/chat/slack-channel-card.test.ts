import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatMessages } from '../../../src/chat/chat-message.sql.ts';
import { createSlackPlatform, type SlackPlatform } from '../../../src/chat/slack/slack-platform.ts';
import { loadConfig } from '../../../src/config.ts';
import { type Database, openDatabase } from '../../../src/db/client.ts';
import { and, eq, isNull } from '../../../src/db/drizzle.ts';
import { createActivationService } from '../../../src/elevation/activation-service.ts';
import { saveAlertSettings } from '../../../src/elevation/alert-service.ts';
import { alertSettingsSchema } from '../../../src/elevation/alert-settings.ts';
import { notifications } from '../../../src/elevation/notification.sql.ts';
import { createNotificationDelivery } from '../../../src/jobs/deliver-notifications.ts';
import { createLogger } from '../../../src/log.ts';
import { createCore } from '../../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../../support/db.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../../support/fake-slack-api.ts';

/**
 * A role's approvals channel gets one card per request, and the alerts channel one card per alert,
 * however many approvers' (admins') notifications ask for it and however many replicas deliver them. With more approvers than one outbox claim
 * takes (25), two replicas each claim part of one request's notifications and deliver them at the
 * same moment; on PostgreSQL (DATABASE_URL) the replicas are two connection pools, really at once.
 */

const CHANNEL = 'C0APPROVALS';
const ALERTS = 'C0ALERTS';
const APPROVERS = Array.from({ length: 30 }, (_, i) => `approver${i + 1}@example.com`);

let database: TestDatabase;
let second: Database | undefined;
let core: ReturnType<typeof createCore>;
let fake: FakeSlackApi;
const platforms: SlackPlatform[] = [];
let replicas: ReturnType<typeof createNotificationDelivery>[] = [];

beforeAll(async () => {
  database = await openTestDatabase();
  // A second replica: its own pool on the same PostgreSQL database; PGlite has one process.
  second = database.url ? await openDatabase({ databaseUrl: database.url, dataDir: '' }) : undefined;
  core = createCore(database.db);
  fake = await startFakeSlackApi();
  fake.addUser({ id: 'U0REQ', email: 'requester@example.com' });
  let ts = 1000;
  // Slack takes a moment to post: both replicas are inside their delivery of the card together.
  fake.method('chat.postMessage', [], async (args) => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { channel: String(args.channel), ts: `${ts++}.000100` };
  });
  fake.method('conversations.open', [], (args) => ({ channel: { id: `D${String(args.users)}` } }));
  fake.method('chat.update', [], (args) => ({ channel: String(args.channel), ts: String(args.ts) }));
  fake.method('views.publish', [], () => ({ view: { id: 'V1' } }));

  const log = createLogger('silent');
  const config = loadConfig({
    SLACK_BOT_TOKEN: fake.token,
    SLACK_SIGNING_SECRET: 'channel-card-test-signing-secret',
    SLACK_API_URL: fake.url,
  });
  replicas = [];
  for (const db of [database.db, (second ?? database).db]) {
    const platform = createSlackPlatform({
      config,
      db,
      clock: core.clock,
      log,
      activations: createActivationService({ db, providers: core.providers, clock: core.clock }),
      admin: core.admin,
      alerts: core.alerts,
      reviews: core.reviews,
      boltOptions: { botId: 'B0ELEVATE', botUserId: fake.botUserId },
    });
    if (!platform) throw new Error('Slack should be on');
    platforms.push(platform);
    replicas.push(createNotificationDelivery({ db, clock: core.clock, log, platforms: [platform.delivery] }));
  }
  for (const email of APPROVERS) await core.person(email);
  await core.role('shared-prod', { requireApproval: true, approvers: APPROVERS, approvalChannel: CHANNEL });
  await core.eligible('requester@example.com', 'shared-prod');
});

afterAll(async () => {
  for (const platform of platforms) await platform.stop();
  await fake?.close();
  await second?.close();
  await database?.close();
});

describe('an approvals channel with two replicas delivering', () => {
  it('gets exactly one card per request, and every approver notification is done', async () => {
    for (let round = 0; round < 3; round++) {
      const posted = fake.callsTo('chat.postMessage').filter((c) => c.args.channel === CHANNEL).length;
      const view = await core.activations.requestActivation({
        actor: await core.person('requester@example.com'),
        roleName: 'shared-prod',
        justification: `round ${round}`,
      });
      await Promise.all(replicas.map((replica) => replica.run()));

      const cards = fake.callsTo('chat.postMessage').filter((c) => c.args.channel === CHANNEL);
      expect(cards.length - posted).toBe(1);
      const copies = await database.db
        .select()
        .from(chatMessages)
        .where(and(eq(chatMessages.activationId, view.activation.id), isNull(chatMessages.recipientId)));
      expect(copies).toHaveLength(1);
      expect(copies[0]?.channel).toBe(CHANNEL);
      expect(copies[0]?.messageId).not.toBe('');
      const rows = await database.db
        .select({ status: notifications.status })
        .from(notifications)
        .where(
          and(
            eq(notifications.activationId, view.activation.id),
            eq(notifications.kind, 'approval_requested'),
          ),
        );
      expect(rows).toHaveLength(APPROVERS.length);
      expect(rows.every((r) => r.status === 'sent')).toBe(true);

      await core.activations.cancel({
        actor: await core.person('requester@example.com'),
        activationId: view.activation.id,
      });
    }
  });
});

describe('an alerts channel with two replicas delivering', () => {
  it('gets one card per alert for thirty admins, updated in place once it is resolved', async () => {
    await core.admin.setAdmins(core.cli, APPROVERS);
    await core.admin.batch(core.cli, (ctx) =>
      saveAlertSettings(ctx, alertSettingsSchema.parse({ channel: { slack: ALERTS } })),
    );
    // A sensitive role anyone may activate without approval or MFA: one alert for the role.
    await core.role('loose', { sensitive: true });
    expect(await core.alerts.evaluate()).toEqual({ raised: 1, resolved: 0 });
    const [alert] = await core.alerts.list();
    await Promise.all(replicas.map((replica) => replica.run()));

    const posts = fake.callsTo('chat.postMessage').filter((c) => c.args.channel === ALERTS);
    expect(posts).toHaveLength(1);
    expect(String(posts[0]?.args.text)).toMatch(/Sensitive role without approval or MFA/);
    const dms = fake.callsTo('chat.postMessage').filter((c) => /Sensitive role/.test(String(c.args.text)));
    expect(dms).toHaveLength(1);
    const copies = await database.db
      .select()
      .from(chatMessages)
      .where(eq(chatMessages.alertId, alert?.id ?? ''));
    expect(copies.map((c) => [c.channel, c.recipientId])).toEqual([[ALERTS, null]]);
    const status = async (kind: string) =>
      (await database.db.select().from(notifications).where(eq(notifications.kind, kind))).map(
        (n) => n.status,
      );
    expect(await status('alert_raised')).toEqual(APPROVERS.map(() => 'sent'));

    // Approval required now: the condition is gone, the card says so (once per replica at most).
    await core.role('loose', { sensitive: true, requireApproval: true });
    expect(await core.alerts.evaluate()).toEqual({ raised: 0, resolved: 1 });
    await Promise.all(replicas.map((replica) => replica.run()));
    const updates = fake
      .callsTo('chat.update')
      .filter((c) => c.args.channel === ALERTS && c.args.ts === copies[0]?.messageId);
    expect(updates.length).toBeGreaterThanOrEqual(1);
    expect(updates.length).toBeLessThanOrEqual(replicas.length);
    expect(String(updates.at(-1)?.args.text)).toMatch(/Resolved by itself at .*: the condition went away/);
    expect(await status('alert_resolved')).toEqual(APPROVERS.map(() => 'sent'));
  });
});
