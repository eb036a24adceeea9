import { afterAll, beforeAll, expect, test } from 'vitest';
import { UnknownPerson } from '../../../src/chat/answers.ts';
import type { Connector, TeamsMember } from '../../../src/chat/teams/connector.ts';
import { createTeamsIdentity } from '../../../src/chat/teams/teams-identity.ts';
import { linkChatIdentity } from '../../../src/elevation/identity-service.ts';
import { openTestDatabase, type TestDatabase } from '../../support/db.ts';

/** Teams users → principals, on a real database; the connector is a stub that answers member lookups. */

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

function stubConnector(members: Record<string, TeamsMember>) {
  const created: string[] = [];
  const lookups: string[] = [];
  const connector = {
    member: async (_url: string, _conversation: string, userId: string) => {
      lookups.push(userId);
      const member = members[userId];
      if (!member) throw new Error('no member');
      return member;
    },
    members: async () => Object.values(members),
    createPersonalConversation: async (_url: string, input: { userId: string }) => {
      created.push(input.userId);
      return `a:new-${input.userId}`;
    },
  } as unknown as Connector;
  return { connector, created, lookups };
}

const activity = (userId: string, aad: string, conversation: { id: string; conversationType: string }) => ({
  serviceUrl: 'https://smba.example/teams/',
  from: { id: userId, aadObjectId: aad },
  conversation: { ...conversation, tenantId: 'tenant-1' },
});

test('a Teams user is the same principal as the Slack user with the same email', async () => {
  const slack = await linkChatIdentity(database.db, {
    platform: 'slack',
    tenant: 'T1',
    externalId: 'U1',
    email: 'Dee@Example.com',
  });
  const { connector } = stubConnector({
    '29:dee': { id: '29:dee', aadObjectId: 'aad-dee', email: 'dee@EXAMPLE.com', name: 'Dee' },
  });
  const identity = createTeamsIdentity({
    db: database.db,
    clock: () => new Date(),
    connector,
    botId: '28:bot',
  });
  const principal = await identity.principalOf(
    activity('29:dee', 'aad-dee', { id: 'a:dee', conversationType: 'personal' }),
  );
  expect(principal.id).toBe(slack.id);
});

test('a channel message keeps the personal conversation; a known person without one gets one, once', async () => {
  const { connector, created } = stubConnector({
    '29:bo': { id: '29:bo', aadObjectId: 'aad-bo', email: 'bo@example.com' },
    '29:cy': { id: '29:cy', aadObjectId: 'aad-cy', userPrincipalName: 'cy@example.com' },
  });
  const identity = createTeamsIdentity({
    db: database.db,
    clock: () => new Date(),
    connector,
    botId: '28:bot',
  });
  const bo = await identity.principalOf(
    activity('29:bo', 'aad-bo', { id: 'a:bo', conversationType: 'personal' }),
  );
  await identity.principalOf(
    activity('29:bo', 'aad-bo', { id: '19:team@thread', conversationType: 'channel' }),
  );
  expect(await identity.conversationOf(bo)).toMatchObject({ conversationId: 'a:bo', userId: '29:bo' });
  // cy is known from a roster (email as the user principal name), never wrote to the bot.
  expect(
    await identity.linkRoster(
      activity('29:bo', 'aad-bo', { id: '19:team@thread', conversationType: 'channel' }),
    ),
  ).toBe(2);
  const cy = await identity.principalOf(
    activity('29:cy', 'aad-cy', { id: '19:team@thread', conversationType: 'channel' }),
  );
  expect(cy.email).toBe('cy@example.com');
  expect(await identity.conversationOf(cy)).toMatchObject({ conversationId: 'a:new-29:cy' });
  expect(await identity.conversationOf(cy)).toMatchObject({ conversationId: 'a:new-29:cy' });
  expect(created).toEqual(['29:cy']);
});

test('a user Teams gives no email for cannot act, and is told why', async () => {
  const { connector } = stubConnector({ '29:x': { id: '29:x', aadObjectId: 'aad-x' } });
  const identity = createTeamsIdentity({
    db: database.db,
    clock: () => new Date(),
    connector,
    botId: '28:bot',
  });
  await expect(
    identity.principalOf(activity('29:x', 'aad-x', { id: 'a:x', conversationType: 'personal' })),
  ).rejects.toThrow(UnknownPerson);
});
