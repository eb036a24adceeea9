import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type FakeGraph, startFakeGraph } from '../support/fake-graph.ts';
import type { TeamsUser } from '../support/fake-teams.ts';
import {
  button,
  buttons,
  type CardJson,
  cardOf,
  eventually,
  startTeamsElevate,
  type TeamsElevate,
  textOf,
} from '../support/teams-harness.ts';

/**
 * Security alerts in a Teams admin channel (policy `alerts.channel.teams`), end to end, with the
 * real `elevate serve` and the local Microsoft cloud: until the app is added to the channel's team
 * Elevate cannot reach it and says so; then each alert is posted there once for the two admins (no
 * 1:1 cards), a non-admin's click is refused and changes nothing, an admin's click acts and the
 * channel's card is updated in place. Then *Scan now* finds a group member added in Entra behind
 * Elevate's back (the local Graph stand-in), and *Revoke* on the channel card removes them.
 */

const email = (key: string) => `${key}@example.com`;
const CHANNEL = '19:secalerts@thread.tacv2';
const GROUP = randomUUID();
const OUTSIDER = randomUUID();
const DAY_MS = 86_400_000;
/** The outbox every 2 s and its retries after 5 s, 10 s…, on a shared machine. */
const OUTBOX_WAIT = 60_000;

let graph: FakeGraph;
let elevate: TeamsElevate;
const user = (key: string): TeamsUser => {
  const found = elevate.teams.users.get(key);
  if (!found) throw new Error(`no user ${key}`);
  return found;
};

beforeAll(async () => {
  graph = await startFakeGraph();
  graph.addGroup(GROUP);
  graph.addUser({ id: OUTSIDER, userPrincipalName: 'mallory@example.com', mail: 'mallory@example.com' });
  const start = new Date(Date.now() - 3 * DAY_MS).toISOString().slice(0, 10);
  elevate = await startTeamsElevate({
    policy: `
admins: [${email('ana')}, ${email('bo')}]
roles:
  - { name: dusty, provider: { type: none }, settings: { maxDuration: 1h } }
  - { name: groupie, provider: { type: entra-group, group: ${GROUP} }, settings: { maxDuration: 1h } }
eligibility:
  - { principal: ${email('member')}, role: dusty, start: ${start} }
alerts:
  staleEligibility: { after: 1d }
  channel: { teams: '${CHANNEL}' }
`,
    users: { ana: email('ana'), bo: email('bo'), member: email('member'), eve: email('eve') },
    env: graph.env() as Record<string, string>,
  });
  for (const key of ['ana', 'bo', 'member', 'eve'])
    expect((await elevate.install(user(key))).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await elevate?.stop();
  await graph?.close();
});

const chat = (key: string) => elevate.teams.messagesIn(elevate.personal(user(key)));
/** Cards in the admins' own chats that are about an alert. */
const alertsInChats = () =>
  ['ana', 'bo'].flatMap((key) => chat(key)).filter((m) => /alert/i.test(textOf(cardOf(m))));
/** Messages the connector took for the channel (posts, not updates). */
const channelPosts = () =>
  elevate.teams.calls.filter((c) => c.method === 'POST' && c.conversationId === CHANNEL && !c.activityId);
const titles = (card: CardJson) => buttons(card).map((b) => b.title);

async function ask(key: string, text: string): Promise<CardJson> {
  const said = await elevate.say(user(key), text);
  expect(said.status).toBe(200);
  const reply = chat(key).find((m) => m.activity.replyToId === said.activityId);
  if (!reply) throw new Error(`no reply to "${text}"`);
  return cardOf(reply);
}

/** `admin` → Open admin → the page titled `title`. */
async function adminPage(title: string): Promise<CardJson> {
  const opener = button(await ask('ana', 'admin'), 'Open admin');
  const menu = cardOf((await elevate.fetchTask(user('ana'), opener.data as Record<string, unknown>)).body);
  const answer = await elevate.submitTask(user('ana'), button(menu, title).data as Record<string, unknown>);
  expect(answer.status).toBe(200);
  return cardOf(answer.body);
}

async function scanNow(): Promise<CardJson> {
  const page = await adminPage('Alerts');
  const answer = await elevate.submitTask(
    user('ana'),
    button(page, 'Scan now').data as Record<string, unknown>,
  );
  expect(answer.status).toBe(200);
  return cardOf(answer.body);
}

const offersDusty = async (key: string) =>
  buttons(await ask(key, 'elevate')).some(
    (b) => b.title === 'Activate' && (b.data as { value?: string } | undefined)?.value === 'dusty',
  );

/** The channel's one message, once `ready` holds for its card. */
const channelCard = (what: string, ready: (card: CardJson, updates: number) => boolean) =>
  eventually(() => {
    const posted = elevate.teams.messagesIn(CHANNEL);
    const found = posted.find((m) => ready(cardOf(m), m.updates));
    return found && { ...found, card: cardOf(found) };
  }, OUTBOX_WAIT).catch((error: Error) => {
    throw new Error(`${what}: ${error.message}`);
  });

test('the channel is unknown until the app is in its team, and the delivery says so; then the alert is posted there once; a non-admin’s click is refused; an admin’s click resolves it in place', async () => {
  // Raised now (Scan now also evaluates); Elevate has never heard from the channel.
  await scanNow();
  await eventually(
    () => elevate.output().includes(`Elevate has not heard from the Teams alerts conversation ${CHANNEL}`),
    OUTBOX_WAIT,
  );
  expect(channelPosts()).toEqual([]);

  // Added to the team (its General channel is the alerts channel): the retry posts it, once.
  expect((await elevate.installInTeam(['ana', 'bo', 'member', 'eve'], CHANNEL)).status).toBe(200);
  const posted = await channelCard('the alert card in the channel', (card) =>
    /Eligibility not used/.test(textOf(card)),
  );
  expect(textOf(posted.card)).toContain(email('member'));
  const remove = button(posted.card, 'Remove eligibility');
  expect(remove.type).toBe('Action.Execute');

  // Eve, not an admin, clicks in the channel: refused, only to her; nothing changes.
  const forged = await elevate.execute(user('eve'), remove, CHANNEL);
  expect(JSON.stringify(forged.body)).toMatch(/Only an Elevate admin/);
  expect(await offersDusty('member')).toBe(true);
  expect(elevate.teams.messagesIn(CHANNEL)[0]?.updates).toBe(0);

  // Bo, an admin: the answer replaces the card; the eligibility is gone; the channel's copy is
  // updated through the connector to show who resolved it, with no button left.
  const done = cardOf((await elevate.execute(user('bo'), remove, CHANNEL)).body);
  expect(textOf(done)).toMatch(/Resolved by bo@example\.com/);
  expect(titles(done)).toEqual([]);
  expect(await offersDusty('member')).toBe(false);
  const resolved = await channelCard(
    'the channel card updated',
    (card, updates) => updates > 0 && /Resolved by bo@example\.com/.test(textOf(card)),
  );
  expect(textOf(resolved.card)).toMatch(/eligibility removed/);
  expect(titles(resolved.card)).toEqual([]);

  // One post for two admins, none in their own chats.
  expect(channelPosts()).toHaveLength(1);
  expect(alertsInChats()).toEqual([]);
  const audit = textOf(await adminPage('Audit events'));
  expect(audit).toMatch(/eve@example.com \*\*alert\.action_refused\*\*/);
  expect(audit).toMatch(/ana@example.com \*\*alerts\.scan_requested\*\*/);
}, 180_000);

test('Scan now finds a group member added in Entra behind Elevate’s back; Revoke on the channel card takes them out of the group', async () => {
  graph.addMember(GROUP, OUTSIDER);
  const scanned = await scanNow();
  expect(textOf(scanned)).toMatch(/Scanned: 1 role\(s\) compared with their target/);
  expect(textOf(scanned)).toContain(OUTSIDER);

  const posted = await channelCard('the unmanaged grant card', (card) => textOf(card).includes(OUTSIDER));
  expect(textOf(posted.card)).toMatch(/Role assigned outside Elevate/);
  const revoke = button(posted.card, 'Revoke');

  const forged = await elevate.execute(user('eve'), revoke, CHANNEL);
  expect(JSON.stringify(forged.body)).toMatch(/Only an Elevate admin/);
  expect(graph.members(GROUP)).toEqual([OUTSIDER]);

  const done = cardOf((await elevate.execute(user('ana'), revoke, CHANNEL)).body);
  expect(textOf(done)).toMatch(/Resolved by ana@example\.com at .*: revoked in the target/);
  expect(graph.members(GROUP)).toEqual([]);
  const resolved = await channelCard(
    'the channel card updated',
    (card, updates) => updates > 0 && textOf(card).includes(OUTSIDER) && /Resolved by ana/.test(textOf(card)),
  );
  expect(titles(resolved.card)).toEqual([]);
  expect(channelPosts()).toHaveLength(2);
  expect(alertsInChats()).toEqual([]);
}, 180_000);
