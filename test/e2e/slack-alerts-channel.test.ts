import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ACTION, VIEW } from '../../src/chat/slack/ids.ts';
import { type FakeGraph, startFakeGraph } from '../support/fake-graph.ts';
import { buttonsOf, type ElevateServer, startElevate } from '../support/slack-harness.ts';
import { messageText, type SlackMessage, type SlackView } from '../support/slack-workspace.ts';

/**
 * Security alerts in a Slack admin channel (policy `alerts.channel.slack`), end to end, with the
 * real `elevate serve`: each alert is posted once to the channel for the two admins (no DMs), a
 * non-admin's click there is refused and changes nothing, an admin's click acts and the channel's
 * card is updated in place to show who resolved it. Then a group membership made behind
 * Elevate's back in Microsoft Entra ID (the local Graph stand-in) is found by the admin's
 * *Scan now* (reconciliation), and *Revoke* on the channel card takes it out of the group.
 */

const email = (user: string) => `${user.slice(1).toLowerCase()}@example.com`;
const ANA = 'UANA';
const BO = 'UBO';
const MEMBER = 'UMEMBER';
const INTRUDER = 'UINTRUDER';
const CHANNEL = 'C0SECALERTS';
const GROUP = randomUUID();
const OUTSIDER = randomUUID();
const DAY_MS = 86_400_000;
/** The outbox every 2 s, on a shared machine. */
const OUTBOX_WAIT = 45_000;

let graph: FakeGraph;
let elevate: ElevateServer;

beforeAll(async () => {
  graph = await startFakeGraph();
  graph.addGroup(GROUP);
  graph.addUser({ id: OUTSIDER, userPrincipalName: 'mallory@example.com', mail: 'mallory@example.com' });
  const start = new Date(Date.now() - 3 * DAY_MS).toISOString().slice(0, 10);
  elevate = await startElevate({
    policy: `
admins: [${email(ANA)}, ${email(BO)}]
roles:
  - { name: dusty, provider: { type: none }, settings: { maxDuration: 1h } }
  - { name: groupie, provider: { type: entra-group, group: ${GROUP} }, settings: { maxDuration: 1h } }
eligibility:
  - { principal: ${email(MEMBER)}, role: dusty, start: ${start} }
alerts:
  staleEligibility: { after: 1d }
  channel: { slack: ${CHANNEL} }
`,
    env: graph.env() as Record<string, string>,
  });
  for (const user of [ANA, BO, MEMBER, INTRUDER]) {
    elevate.slack.addUser(user, email(user), user.slice(1).toLowerCase());
  }
}, 120_000);

afterAll(async () => {
  if (elevate) {
    const output = elevate.output();
    expect(await elevate.stop(), output).toBe(0);
  }
  await graph?.close();
});

const text = (message: { text: string; blocks: SlackMessage['blocks'] }) => messageText(message);
const viewText = (view: SlackView) => text({ text: '', blocks: view.blocks });
const hasButton = (message: { blocks: SlackMessage['blocks'] }, actionId: string, value?: string) =>
  buttonsOf(message).some((b) => b.actionId === actionId && (value === undefined || b.value === value));
const seen = (user: string) => elevate.slack.messagesFor(user).length;
/** A message of the channel as everyone there sees it now. */
const inChannel = (ts: string) => elevate.slack.channel(CHANNEL).find((m) => m.ts === ts);
/** chat.postMessage calls to the channel. */
const channelPosts = () =>
  elevate.slack.calls.filter((c) => c.method === 'chat.postMessage' && c.args.channel === CHANNEL);
/** Alert cards any admin got in their DM with the bot. */
const alertDms = () =>
  [ANA, BO].flatMap((user) =>
    elevate.slack.channel(elevate.slack.dm(user)).filter((m) => /alert/i.test(text(m))),
  );

function waitForMessage(user: string, what: string, matches: (m: SlackMessage) => boolean, after = 0) {
  return elevate.slack.waitFor(
    `${user} to see ${what}`,
    () =>
      elevate.slack
        .messagesFor(user)
        .slice(after)
        .reverse()
        .find((m) => matches(m)),
    OUTBOX_WAIT,
  );
}

async function offersDusty(user: string): Promise<boolean> {
  const before = seen(user);
  expect((await elevate.command(user, '')).status).toBe(200);
  const board = await waitForMessage(user, 'the board', (m) => /your roles/i.test(text(m)), before);
  return hasButton(board, ACTION.activate, 'dusty');
}

/** A click in an admin view, then the same view once updated to read `shows`. */
async function adminClick(user: string, view: SlackView, actionId: string, shows: RegExp) {
  const versions = elevate.slack.view(view.id)?.versions.length ?? 0;
  expect((await elevate.click(user, elevate.slack.view(view.id) ?? view, actionId)).status).toBe(200);
  return elevate.slack.waitFor(
    `the admin view after ${actionId} showing ${shows}`,
    () => {
      const now = elevate.slack.view(view.id);
      return now && now.versions.length > versions && shows.test(viewText(now)) && now;
    },
    OUTBOX_WAIT,
  );
}

/** `/elevate admin` as an admin → a menu entry → the page once it reads `shows`. */
async function adminPage(user: string, actionId: string, shows: RegExp): Promise<SlackView> {
  const views = elevate.slack.viewsFor(user).length;
  expect((await elevate.command(user, 'admin')).status).toBe(200);
  const menu = await elevate.slack.waitFor('the admin menu', () =>
    elevate.slack
      .viewsFor(user)
      .slice(views)
      .find((v) => v.callback_id === VIEW.admin),
  );
  return adminClick(user, menu, actionId, shows);
}

test('a raised alert is posted once to the alerts channel, not DMed; a non-admin’s click there is refused; an admin’s click acts and the card shows it resolved', async () => {
  // Scan now raises the stale eligibility (three days, threshold one day) as the loop's alerts job
  // would (slack-alerts.test.ts waits for the job itself), and it is posted once.
  const page = await adminPage(ANA, ACTION.adminAlerts, /Scan now/);
  await adminClick(ANA, page, ACTION.adminAlertsScan, /Scanned: /);
  const card = await elevate.slack.waitFor(
    'the alert card in the channel',
    () => elevate.slack.channel(CHANNEL).find((m) => hasButton(m, ACTION.alertRemoveEligibility)),
    OUTBOX_WAIT,
  );
  expect(card.source).toBe('channel');
  expect(text(card)).toMatch(/Eligibility not used/);
  expect(text(card)).toContain(email(MEMBER));
  const alertId = buttonsOf(card).find((b) => b.actionId === ACTION.alertRemoveEligibility)?.value ?? '';
  expect(alertId).toMatch(/^[0-9a-f-]{36}$/);

  // A non-admin in the channel clicks: told so, only to them; nothing changes.
  const seenIntruder = seen(INTRUDER);
  expect((await elevate.click(INTRUDER, card, ACTION.alertRemoveEligibility, alertId)).status).toBe(200);
  const refusal = await waitForMessage(
    INTRUDER,
    'the refusal',
    (m) => /only an elevate admin/i.test(text(m)),
    seenIntruder,
  );
  expect(refusal.source).toBe('respond');
  expect(refusal.replaceOriginal).toBe(false);
  expect(await offersDusty(MEMBER)).toBe(true);
  expect(inChannel(card.ts)?.updates).toBe(0);
  expect(hasButton(inChannel(card.ts) ?? { blocks: [] }, ACTION.alertRemoveEligibility, alertId)).toBe(true);

  // Bo, an admin, clicks the channel's card: the eligibility goes, and the card (everyone's) shows
  // who resolved it, how, and no button any more.
  expect((await elevate.click(BO, card, ACTION.alertRemoveEligibility, alertId)).status).toBe(200);
  const resolved = await elevate.slack.waitFor(
    'the channel card updated to resolved',
    () => {
      const now = inChannel(card.ts);
      return now && now.updates > 0 && /Resolved by bo@example\.com/.test(text(now)) && now;
    },
    OUTBOX_WAIT,
  );
  expect(text(resolved)).toMatch(/Eligibility not used/);
  expect(text(resolved)).toMatch(/eligibility removed/);
  expect(buttonsOf(resolved)).toEqual([]);
  expect(await offersDusty(MEMBER)).toBe(false);

  // One post for two admins, and no admin got it as a DM.
  expect(channelPosts()).toHaveLength(1);
  expect(alertDms()).toEqual([]);

  const audit = await adminPage(ANA, ACTION.adminAudit, /alert\.resolved/);
  expect(viewText(audit)).toMatch(new RegExp(`${email(INTRUDER)} \\*alert\\.action_refused\\*`));
}, 180_000);

test('Scan now finds a group member added in Entra behind Elevate’s back; Revoke on the channel card takes them out of the group', async () => {
  graph.addMember(GROUP, OUTSIDER);
  const posts = channelPosts().length;

  // The admin's Scan now reads the target at once (the schedule would in up to 5 minutes).
  const page = await adminPage(ANA, ACTION.adminAlerts, /Scan now/);
  const scanned = await adminClick(ANA, page, ACTION.adminAlertsScan, /Scanned: /);
  expect(viewText(scanned)).toMatch(/Scanned: 1 role\(s\) compared with their target/);
  expect(viewText(scanned)).toContain(OUTSIDER);

  const card = await elevate.slack.waitFor(
    'the unmanaged grant card in the channel',
    () =>
      elevate.slack
        .channel(CHANNEL)
        .find((m) => hasButton(m, ACTION.alertRevoke) && text(m).includes(OUTSIDER)),
    OUTBOX_WAIT,
  );
  expect(text(card)).toMatch(/Role assigned outside Elevate/);
  expect(text(card)).toContain('groupie');
  const alertId = buttonsOf(card).find((b) => b.actionId === ACTION.alertRevoke)?.value ?? '';
  expect(graph.members(GROUP)).toEqual([OUTSIDER]);

  // A non-admin's Revoke is refused; the member stays in the group.
  const seenIntruder = seen(INTRUDER);
  await elevate.click(INTRUDER, card, ACTION.alertRevoke, alertId);
  await waitForMessage(INTRUDER, 'the refusal', (m) => /only an elevate admin/i.test(text(m)), seenIntruder);
  expect(graph.members(GROUP)).toEqual([OUTSIDER]);

  // Ana's Revoke: removed from the group in Entra; the card shows it.
  expect((await elevate.click(ANA, card, ACTION.alertRevoke, alertId)).status).toBe(200);
  const resolved = await elevate.slack.waitFor(
    'the channel card updated to resolved',
    () => {
      const now = inChannel(card.ts);
      return now && now.updates > 0 && /Resolved by ana@example\.com/.test(text(now)) && now;
    },
    OUTBOX_WAIT,
  );
  expect(text(resolved)).toMatch(/revoked in the target/);
  expect(buttonsOf(resolved)).toEqual([]);
  expect(graph.members(GROUP)).toEqual([]);
  expect(
    graph.requests.some(
      (r) => r.method === 'DELETE' && r.path.endsWith(`/groups/${GROUP}/members/${OUTSIDER}/$ref`),
    ),
  ).toBe(true);

  expect(channelPosts()).toHaveLength(posts + 1);
  expect(alertDms()).toEqual([]);
}, 180_000);
