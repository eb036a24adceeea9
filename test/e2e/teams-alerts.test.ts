import { afterAll, beforeAll, expect, test } from 'vitest';
import type { TeamsUser } from '../support/fake-teams.ts';
import {
  button,
  buttons,
  type CardJson,
  cardOf,
  eventually,
  startTeamsElevate,
  submission,
  type TeamsElevate,
  textOf,
} from '../support/teams-harness.ts';

/**
 * Security alerts in Teams, end to end (as slack-alerts.test.ts): an eligibility backdated two
 * days by an admin in the dialog, a one-day staleEligibility threshold, the admin's *Scan now*
 * raises the alert (slack-alerts.test.ts waits for the alerts job itself); the notice card's *Remove eligibility* (Action.Execute) and the Alerts page of
 * the admin dialog act on it; a non-admin's forged click is refused and audited.
 */

const email = (key: string) => `${key}@example.com`;
const ROLE = 'dusty';
/** The outbox every 2 s, on a shared machine. */
const OUTBOX_WAIT = 45_000;

let elevate: TeamsElevate;
const user = (key: string): TeamsUser => {
  const found = elevate.teams.users.get(key);
  if (!found) throw new Error(`no user ${key}`);
  return found;
};

beforeAll(async () => {
  elevate = await startTeamsElevate({
    policy: `
admins: [${email('ana')}]
roles:
  - { name: ${ROLE}, provider: { type: none }, settings: { maxDuration: 1h } }
alerts:
  staleEligibility: { after: 1d }
`,
    users: { ana: email('ana'), member: email('member'), eve: email('eve') },
  });
  for (const key of ['ana', 'member', 'eve']) expect((await elevate.install(user(key))).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await elevate?.stop();
});

const chat = (key: string) => elevate.teams.messagesIn(elevate.personal(user(key)));

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

const offersRole = async (key: string) =>
  buttons(await ask(key, 'elevate')).some(
    (b) => b.title === 'Activate' && (b.data as { value?: string } | undefined)?.value === ROLE,
  );

test('a stale eligibility: notice and alerts page with Remove eligibility; a forged click is refused and audited; the admin’s click removes it', async () => {
  // The admin assigns the eligibility in the dialog, starting two days ago (past the threshold).
  const page = await adminPage('Eligibility');
  const form = cardOf(
    (await elevate.submitTask(user('ana'), button(page, 'Assign').data as Record<string, unknown>)).body,
  );
  const start = new Date(Date.now() - 2 * 86_400_000).toISOString();
  const assigned = await elevate.submitTask(
    user('ana'),
    submission(form, {
      users: email('member'),
      role: ROLE,
      startDate: start.slice(0, 10),
      startTime: start.slice(11, 16),
    }),
  );
  expect(textOf(cardOf(assigned.body))).toContain(`${email('member')} → **${ROLE}**`);
  expect(await offersRole('member')).toBe(true);

  // Scan now raises it, as the alerts job would; the notice in the admin's chat carries the button
  // (value: the alert id).
  const alertsPage = await adminPage('Alerts');
  const scanned = await elevate.submitTask(
    user('ana'),
    button(alertsPage, 'Scan now').data as Record<string, unknown>,
  );
  expect(scanned.status).toBe(200);
  const notice = cardOf(
    await eventually(
      () => chat('ana').find((m) => /Eligibility not used/.test(textOf(cardOf(m)))),
      OUTBOX_WAIT,
    ),
  );
  expect(textOf(notice)).toContain(email('member'));
  const remove = button(notice, 'Remove eligibility');
  expect(remove.type).toBe('Action.Execute');
  const alertId = (remove.data as { value: string }).value;

  const alerts = await adminPage('Alerts');
  expect(textOf(alerts)).toMatch(/Eligibility not used/);
  expect(button(alerts, 'Remove eligibility', alertId).type).toBe('Action.Submit');

  // A non-admin sends the same click: refused, told so, nothing removed.
  const forged = await elevate.execute(user('eve'), remove);
  expect(JSON.stringify(forged.body)).toMatch(/Only an Elevate admin/);
  expect(await offersRole('member')).toBe(true);

  // The admin's click: the card becomes the outcome, without the button; the role is gone.
  const done = cardOf((await elevate.execute(user('ana'), remove)).body);
  expect(textOf(done)).toMatch(new RegExp(`Resolved by ${email('ana')}`));
  expect(buttons(done).map((b) => b.title)).not.toContain('Remove eligibility');
  expect(await offersRole('member')).toBe(false);
  // The notice in the admin's chat is updated through the connector too (outbox alert_resolved).
  const updated = await eventually(
    () => chat('ana').find((m) => m.updates > 0 && /Resolved by ana@example.com/.test(textOf(cardOf(m)))),
    OUTBOX_WAIT,
  );
  expect(textOf(cardOf(updated))).toMatch(/eligibility removed/);
  expect(buttons(cardOf(updated))).toEqual([]);

  // Nothing open any more; a second click hears who resolved it.
  expect(textOf(await adminPage('Alerts'))).toMatch(/No open alerts/);
  const late = await elevate.execute(user('ana'), remove);
  expect(JSON.stringify(late.body)).toMatch(/already resolved by ana@example.com/);

  const audit = textOf(await adminPage('Audit events'));
  expect(audit).toMatch(/eve@example.com \*\*alert\.action_refused\*\*/);
  expect(audit).toMatch(/alert\.resolved/);
}, 150_000);
