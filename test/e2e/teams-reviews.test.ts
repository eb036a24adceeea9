import { afterAll, beforeAll, expect, test } from 'vitest';
import type { TeamsUser } from '../support/fake-teams.ts';
import {
  button,
  buttons,
  type CardJson,
  cardOf,
  eventually,
  inputsOf,
  startTeamsElevate,
  submission,
  type TeamsElevate,
  textOf,
} from '../support/teams-harness.ts';

/**
 * Access reviews in Teams, end to end (as slack-reviews.test.ts): the policy file's `reviews:`
 * opens a campaign on db (reviewed by its approver) and a self-review of payroll at start; the
 * notice card's Keep / Remove open a dialog for the justification, whose submit decides. A forged
 * click by someone who reviews nothing is refused and audited by the service.
 */

const email = (key: string) => `${key}@example.com`;
/**
 * The notices go out at start, before the reviewers install the app: each waits for the outbox's
 * next retry (backoff 5, 10, 20, 40, 80 s), which on a busy machine can be the fourth or fifth.
 */
const DELIVERY_WAIT = 170_000;

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
  - { name: db, provider: { type: none }, settings: { approvers: [${email('judge')}] } }
  - { name: payroll, provider: { type: none } }
eligibility:
  - { principal: kim@example.com, role: db }
  - { principal: lou@example.com, role: db }
  - { principal: ${email('max')}, role: payroll }
reviews:
  db-members: { roles: [db], reviewers: approvers, recur: quarterly }
  payroll-self: { roles: [payroll], reviewers: self, recur: quarterly }
`,
    users: { ana: email('ana'), judge: email('judge'), max: email('max'), eve: email('eve') },
  });
  for (const key of ['ana', 'judge', 'max', 'eve'])
    expect((await elevate.install(user(key))).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await elevate?.stop();
});

const chat = (key: string) => elevate.teams.messagesIn(elevate.personal(user(key)));
const notice = async (key: string) =>
  cardOf(
    await eventually(() => chat(key).find((m) => /Access review/.test(textOf(cardOf(m)))), DELIVERY_WAIT),
  );
const data = (b: CardJson) => b.data as Record<string, unknown>;
const said = (answer: { body: unknown }) => JSON.stringify(answer.body);

/** A review button opens its dialog; submitted empty it asks again, then with `why` it decides. */
async function decide(key: string, opener: CardJson, why: string) {
  const dialog = cardOf((await elevate.fetchTask(user(key), data(opener))).body);
  expect(inputsOf(dialog)).toHaveProperty('justification');
  expect(said(await elevate.submitTask(user(key), submission(dialog, { justification: '' })))).toMatch(
    /needs a justification/,
  );
  return said(await elevate.submitTask(user(key), submission(dialog, { justification: why })));
}

test('reviewers decide in Teams: Keep and Remove with a justification, self-review, a late click and a forged one', async () => {
  const card = await notice('judge');
  expect(textOf(card)).toContain('kim@example.com');
  const keeps = buttons(card).filter((b) => b.title === 'Keep');
  const removes = buttons(card).filter((b) => b.title === 'Remove');
  expect(keeps).toHaveLength(2);
  expect(removes).toHaveLength(2);
  // Both open a dialog (task/fetch) carrying the item id.
  const kimFirst = textOf(card).indexOf('kim@') < textOf(card).indexOf('lou@');
  const [keepKim, removeLou] = kimFirst ? [keeps[0], removes[1]] : [keeps[1], removes[0]];
  if (!keepKim || !removeLou) throw new Error('missing buttons');
  expect(data(keepKim).msteams).toEqual({ type: 'task/fetch' });
  expect(String(data(keepKim).value)).toMatch(/^[0-9a-f-]{36}$/);

  // Someone who reviews nothing sends the judge's click: refused, told so, no form.
  const forged = await elevate.fetchTask(user('eve'), data(keepKim));
  expect(said(forged)).toMatch(/not a reviewer of kim@example.com/);

  expect(await decide('judge', keepKim, 'on call for the database')).toContain(
    "Recorded: keep kim@example.com's db.",
  );
  expect(await decide('judge', removeLou, 'moved to another team')).toContain(
    "Recorded: remove lou@example.com's db when the review ends.",
  );
  // A later click on a decided item hears who decided.
  const late = await elevate.fetchTask(user('judge'), data(keepKim));
  expect(said(late)).toMatch(/Already decided: keep by judge@example.com/);

  // Self-review: the member's own words on the buttons.
  const own = await notice('max');
  expect(buttons(own).map((b) => b.title)).toEqual(['Keep (justify)', 'I no longer need it']);
  expect(await decide('max', button(own, 'Keep (justify)'), 'I run payroll every month')).toContain(
    `Recorded: keep ${email('max')}'s payroll.`,
  );

  // The audit trail: the service's refusal and the three decisions.
  const asked = await elevate.say(user('ana'), 'admin');
  const reply = chat('ana').find((m) => m.activity.replyToId === asked.activityId);
  const opener = button(cardOf(reply), 'Open admin');
  const menu = cardOf((await elevate.fetchTask(user('ana'), data(opener))).body);
  const audit = textOf(
    cardOf((await elevate.submitTask(user('ana'), data(button(menu, 'Audit events')))).body),
  );
  expect(audit).toMatch(/eve@example.com \*\*review\.decision_refused\*\*/);
  expect(audit.match(/review\.decided/g)).toHaveLength(3);
}, 240_000);
