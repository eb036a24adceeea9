import { afterAll, beforeAll, expect, test } from 'vitest';
import { ACTION, BLOCK, VIEW } from '../../src/chat/slack/ids.ts';
import { buttonsOf, type ElevateServer, startElevate } from '../support/slack-harness.ts';
import { messageText, type SlackMessage, type SlackView } from '../support/slack-workspace.ts';

/**
 * Security alerts in Slack, end to end: an admin backdates an eligibility (start two days ago)
 * under a one-day staleEligibility threshold, the server's own alerts job (SCHEDULES.alerts, once
 * a minute) raises the alert, and the admin's DM notice and the admin dialog's alerts page offer
 * *Remove eligibility*. A non-admin's forged click changes nothing and is audited; the admin's
 * click removes the eligibility and resolves the alert.
 */

const email = (user: string) => `${user.slice(1).toLowerCase()}@example.com`;
const ADMIN = 'UADMIN';
const MEMBER = 'UMEMBER';
const INTRUDER = 'UINTRUDER';
const ROLE = 'dusty';
const DAY_S = 86_400;
/** The alerts job runs once a minute: a wait for it may take that long, plus the outbox. */
const JOB_WAIT = 75_000;

let elevate: ElevateServer;

beforeAll(async () => {
  elevate = await startElevate({
    policy: `
admins: [${email(ADMIN)}]
roles:
  - { name: ${ROLE}, provider: { type: none }, settings: { maxDuration: 1h } }
alerts:
  staleEligibility: { after: 1d }
`,
  });
  for (const user of [ADMIN, MEMBER, INTRUDER]) {
    elevate.slack.addUser(user, email(user), user.slice(1).toLowerCase());
  }
}, 120_000);

afterAll(async () => {
  if (!elevate) return;
  const output = elevate.output();
  expect(await elevate.stop(), output).toBe(0);
});

const text = (message: { text: string; blocks: SlackMessage['blocks'] }) => messageText(message);
const viewText = (view: SlackView) => text({ text: '', blocks: view.blocks });
const hasButton = (message: { blocks: SlackMessage['blocks'] }, actionId: string, value?: string) =>
  buttonsOf(message).some((b) => b.actionId === actionId && (value === undefined || b.value === value));
const seen = (user: string) => elevate.slack.messagesFor(user).length;

function waitForMessage(user: string, what: string, matches: (m: SlackMessage) => boolean, after = 0) {
  return elevate.slack.waitFor(`${user} to see ${what}`, () =>
    elevate.slack
      .messagesFor(user)
      .slice(after)
      .reverse()
      .find((m) => matches(m)),
  );
}

async function board(user: string): Promise<SlackMessage> {
  const before = seen(user);
  expect((await elevate.command(user, '')).status).toBe(200);
  return waitForMessage(user, 'the board', (m) => /your roles/i.test(text(m)), before);
}

function waitForModal(user: string, callbackId: string, after = 0): Promise<SlackView> {
  return elevate.slack.waitFor(`a ${callbackId} modal for ${user}`, () =>
    elevate.slack
      .viewsFor(user)
      .slice(after)
      .find((v) => v.callback_id === callbackId && !v.closed),
  );
}

/** `/elevate admin` → a menu entry → the page once it reads `shows`. */
async function adminPage(actionId: string, shows: RegExp): Promise<SlackView> {
  const views = elevate.slack.viewsFor(ADMIN).length;
  expect((await elevate.command(ADMIN, 'admin')).status).toBe(200);
  const menu = await waitForModal(ADMIN, VIEW.admin, views);
  return adminClick(menu, actionId, shows);
}

/** A click in an admin view, then the same view once updated to read `shows`. */
async function adminClick(view: SlackView, actionId: string, shows: RegExp, value?: string) {
  const versions = elevate.slack.view(view.id)?.versions.length ?? 0;
  const response = await elevate.click(ADMIN, elevate.slack.view(view.id) ?? view, actionId, value);
  expect(response.status).toBe(200);
  return elevate.slack.waitFor(`the admin view after ${actionId} showing ${shows}`, () => {
    const now = elevate.slack.view(view.id);
    return now && now.versions.length > versions && shows.test(viewText(now)) && now;
  });
}

test('a stale eligibility: notice and alerts page with Remove eligibility; a forged click is refused and audited; the admin’s click removes it', async () => {
  // The admin assigns the eligibility through the dialog, backdated two days (past the threshold).
  const page = await adminPage(ACTION.adminEligibility, /Assign/);
  const views = elevate.slack.viewsFor(ADMIN).length;
  await elevate.click(ADMIN, elevate.slack.view(page.id) ?? page, ACTION.adminEligibilityAssign);
  const form = await waitForModal(ADMIN, VIEW.adminEligibility, views);
  const submitted = await elevate.submit(ADMIN, form, {
    [BLOCK.users]: MEMBER,
    [BLOCK.role]: ROLE,
    [BLOCK.start]: Math.floor(Date.now() / 1000) - 2 * DAY_S,
  });
  expect(submitted.status).toBe(200);
  expect(hasButton(await board(MEMBER), ACTION.activate, ROLE)).toBe(true);

  // The loop raises it; the admin's DM notice carries the button, value = the alert id.
  const notice = await elevate.slack.waitFor(
    'the alert notice',
    () =>
      elevate.slack
        .messagesFor(ADMIN)
        .find((m) => m.source === 'dm' && hasButton(m, ACTION.alertRemoveEligibility)),
    JOB_WAIT,
  );
  expect(text(notice)).toMatch(/Eligibility not used/);
  expect(text(notice)).toContain(email(MEMBER));
  const alertId = buttonsOf(notice).find((b) => b.actionId === ACTION.alertRemoveEligibility)?.value ?? '';
  // The workspace updates its messages in place; keep the notice as it was first shown.
  const asSent = structuredClone(notice);
  expect(alertId).toMatch(/^[0-9a-f-]{36}$/);

  const alerts = await adminPage(ACTION.adminAlerts, /Eligibility not used/);
  expect(viewText(alerts)).toContain(email(MEMBER));
  expect(hasButton(alerts, ACTION.alertRemoveEligibility, alertId)).toBe(true);

  // A non-admin replays the admin's button: refused, told so, nothing removed.
  const seenIntruder = seen(INTRUDER);
  expect((await elevate.click(INTRUDER, notice, ACTION.alertRemoveEligibility, alertId)).status).toBe(200);
  await waitForMessage(INTRUDER, 'the refusal', (m) => /only an elevate admin/i.test(text(m)), seenIntruder);
  expect(hasButton(await board(MEMBER), ACTION.activate, ROLE)).toBe(true);

  // The admin's click on the notice: the notice becomes the outcome, the role is gone.
  const seenAdmin = seen(ADMIN);
  expect((await elevate.click(ADMIN, notice, ACTION.alertRemoveEligibility, alertId)).status).toBe(200);
  const outcome = await waitForMessage(
    ADMIN,
    'the outcome',
    (m) => m.source === 'respond' && /resolved by/i.test(text(m)),
    seenAdmin,
  );
  expect(outcome.replaceOriginal).toBe(true);
  expect(text(outcome)).toContain(email(ADMIN));
  expect(hasButton(await board(MEMBER), ACTION.activate, ROLE)).toBe(false);
  // The DM itself is updated too (the outbox's alert_resolved), as every admin's copy would be.
  const updated = await elevate.slack.waitFor(
    'the DM notice updated to resolved',
    () => {
      const now = elevate.slack.channel(notice.channel).find((m) => m.ts === notice.ts);
      return now && now.updates > 0 && now;
    },
    JOB_WAIT,
  );
  expect(text(updated)).toMatch(new RegExp(`Resolved by ${email(ADMIN)} at .*: eligibility removed`));
  expect(buttonsOf(updated)).toEqual([]);

  // The page has nothing open; a second click (a copy shown before the update) hears who resolved it.
  await adminPage(ACTION.adminAlerts, /No open alerts/);
  const again = seen(ADMIN);
  await elevate.click(ADMIN, asSent, ACTION.alertRemoveEligibility, alertId);
  await waitForMessage(ADMIN, 'the conflict', (m) => /already resolved by/i.test(text(m)), again);

  const audit = viewText(await adminPage(ACTION.adminAudit, /alert\.resolved/));
  expect(audit).toMatch(new RegExp(`${email(INTRUDER)} \\*alert\\.action_refused\\*`));
  expect(audit).toMatch(/alert\.raised/);
}, 150_000);
