import { afterAll, beforeAll, expect, test } from 'vitest';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { eq } from '../../src/db/drizzle.ts';
import { principalActor } from '../../src/elevation/actor.ts';
import { linkChatIdentity, recordRefusal } from '../../src/elevation/identity-service.ts';
import { chatIdentities } from '../../src/elevation/principal.sql.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

test('a Slack user and a Teams user with the same email are one principal', async () => {
  const slack = await linkChatIdentity(database.db, {
    platform: 'slack',
    tenant: 'T1',
    externalId: 'U1',
    email: 'Dee@Example.com',
  });
  const teams = await linkChatIdentity(database.db, {
    platform: 'teams',
    tenant: 'tenant-1',
    externalId: '00000000-0000-0000-0000-000000000001',
    email: 'dee@example.com',
    data: { conversationId: 'a:1' },
  });
  expect(teams.id).toBe(slack.id);
  expect(slack.email).toBe('dee@example.com');
  const linked = await database.db
    .select()
    .from(chatIdentities)
    .where(eq(chatIdentities.principalId, slack.id));
  expect(linked.map((l) => `${l.platform}:${l.externalId}`).sort()).toEqual([
    'slack:U1',
    'teams:00000000-0000-0000-0000-000000000001',
  ]);
  // Linking again is idempotent and keeps the platform data unless new data comes.
  await linkChatIdentity(database.db, {
    platform: 'teams',
    tenant: 'tenant-1',
    externalId: '00000000-0000-0000-0000-000000000001',
    email: 'dee@example.com',
  });
  const [row] = await database.db.select().from(chatIdentities).where(eq(chatIdentities.platform, 'teams'));
  expect(row?.data).toEqual({ conversationId: 'a:1' });
});

test('a refused attempt is audited', async () => {
  const eve = await linkChatIdentity(database.db, {
    platform: 'slack',
    tenant: 'T1',
    externalId: 'U9',
    email: 'eve@example.com',
  });
  await recordRefusal(database.db, {
    actor: principalActor(eve),
    action: 'approve',
    subjectType: 'activation',
    subjectId: 'some-id',
    reason: 'You are not an approver of db.',
    at: new Date(),
  });
  const [event] = await database.db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.action, 'refused.approve'));
  expect(event).toMatchObject({
    actor: 'eve@example.com',
    subjectId: 'some-id',
    data: { reason: 'You are not an approver of db.' },
  });
});
