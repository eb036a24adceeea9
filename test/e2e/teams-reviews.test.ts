import { afterAll, beforeAll, expect, test } from 'vitest';
import { cardProblems } from '../support/adaptive-cards.ts';
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
 * The notices are written at start, before the reviewers install the app: the outbox's first try
 * finds no Teams account and fails them for good; the install sends them again at once
 * (resendAwaitingAccount), so they arrive within a run or two of the outbox (every 2 s).
 */
const DELIVERY_WAIT = 60_000;

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
  for (const key of ['ana', 'eve']) expect((await elevate.install(user(key))).status).toBe(200);
  // The reviewers install late, always: after their notices failed for want of an account.
  await eventually(
    () => ['judge', 'max'].every((key) => elevate.output().includes(`${email(key)} has no account on teams`)),
    DELIVERY_WAIT,
  );
  for (const key of ['judge', 'max']) expect((await elevate.install(user(key))).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await elevate?.stop();
});

const chat = (key: string) => elevate.teams.messagesIn(elevate.personal(user(key)));
const noticeMessage = (key: string) =>
  eventually(() => chat(key).find((m) => /Access review/.test(textOf(cardOf(m)))), DELIVERY_WAIT);
const notice = async (key: string) => cardOf(await noticeMessage(key));
/** Anything else the server or the outbox does: generous, the machine is shared. */
const WAIT = 30_000;

/** The card of the last update (connector PUT) of the posted activity `id` that satisfies `shows`. */
const updatedTo = (id: string, shows: (card: CardJson) => boolean) =>
  eventually(() => {
    const puts = elevate.teams.calls.filter((c) => c.method === 'PUT' && c.activityId === id);
    const last = puts.at(-1);
    return last && shows(cardOf(last.body)) && cardOf(last.body);
  }, WAIT);
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
  const posted = await noticeMessage('judge');
  const card = cardOf(posted);
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
  // The notice card is updated in place (connector PUT of its activity): each decided member shows
  // the outcome, who decided and when, and has no buttons left.
  const updated = await updatedTo(
    posted.id,
    (c) => /Kept\*\* — decided by/.test(textOf(c)) && /Remove\*\* \(at the end/.test(textOf(c)),
  );
  expect(textOf(updated)).toMatch(
    /\*\*Kept\*\* — decided by judge@example\.com at \d{4}-\d\d-\d\d \d\d:\d\d UTC: “on call for the database”/,
  );
  expect(textOf(updated)).toMatch(
    /\*\*Remove\*\* \(at the end of the review\) — decided by judge@example\.com at .+“moved to another team”/,
  );
  expect(buttons(updated)).toEqual([]);
  expect(cardProblems(updated)).toEqual([]);

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

/** `admin` → *Open admin* → the menu dialog, as `key` sees it (or the refusal). */
async function openAdmin(key: string) {
  const asked = await elevate.say(user('ana'), 'admin');
  const reply = chat('ana').find((m) => m.activity.replyToId === asked.activityId);
  return elevate.fetchTask(user(key), data(button(cardOf(reply), 'Open admin')));
}

test('an admin starts a review from the admin dialog (problems shown under their fields); the named reviewer gets the notice, updated after a decision; a non-admin is refused and nothing starts', async () => {
  // The admin dialog → Access reviews: the running campaigns with their progress, and Start a review.
  const menu = cardOf((await openAdmin('ana')).body);
  const page = cardOf((await elevate.submitTask(user('ana'), data(button(menu, 'Access reviews')))).body);
  expect(textOf(page)).toMatch(
    /\*\*db\*\* \(db-members\), reviewed by the role's approvers\nends .+ UTC: \d of 2 decided/,
  );
  const form = cardOf((await elevate.submitTask(user('ana'), data(button(page, 'Start a review')))).body);
  expect(Object.keys(inputsOf(form))).toEqual([
    'role',
    'reviewerMode',
    'reviewers',
    'duration',
    'recurrence',
    'unreviewed',
  ]);
  expect(inputsOf(form)).toMatchObject({
    reviewerMode: 'approvers',
    duration: '7d',
    recurrence: 'none',
    unreviewed: 'keep',
  });
  expect(cardProblems(form)).toEqual([]);
  const filled = {
    role: 'db',
    reviewerMode: 'named',
    reviewers: '',
    duration: '3d',
    recurrence: 'monthly',
    unreviewed: 'remove',
  };

  // Named reviewers, none named; then one Elevate does not know: each shown under the field, typed values kept.
  const nobody = cardOf((await elevate.submitTask(user('ana'), submission(form, filled))).body);
  expect(errorUnder(nobody, 'reviewers')).toBe(
    '⚠️ Name the reviewers (emails), or review by the approvers or by the members.',
  );
  expect(inputsOf(nobody)).toMatchObject({ role: 'db', duration: '3d', recurrence: 'monthly' });
  const stranger = cardOf(
    (await elevate.submitTask(user('ana'), submission(form, { ...filled, reviewers: 'nobody@example.com' })))
      .body,
  );
  expect(errorUnder(stranger, 'reviewers')).toMatch(/Elevate does not know nobody@example.com/);

  // A non-admin: the admin dialog does not open, and a forged submission of the form starts nothing.
  expect(said(await openAdmin('eve'))).toMatch(/admin dialogs are for Elevate admins/);
  const forged = await elevate.submitTask(
    user('eve'),
    submission(form, { ...filled, reviewers: email('eve') }),
  );
  expect(said(forged)).toMatch(/admin dialogs are for Elevate admins/);

  // The admin's valid submission: the page lists the new campaign; the named reviewer gets the notice.
  const started = cardOf(
    (await elevate.submitTask(user('ana'), submission(form, { ...filled, reviewers: email('eve') }))).body,
  );
  expect(textOf(started)).toMatch(
    /\*\*db\*\*, reviewed by eve@example.com\nends .+ UTC: 0 of 2 decided; unreviewed: remove, recurs monthly/,
  );
  expect(textOf(started).match(/reviewed by/g)).toHaveLength(3); // the two from the policy file, and this one
  const posted = await noticeMessage('eve');
  const card = cardOf(posted);
  expect(textOf(card)).toContain('kim@example.com');
  expect(textOf(card)).toContain('Anything not decided is removed at the end.');

  // Eve keeps kim: her notice is updated in place; lou still waits, with his buttons.
  const kimFirst = textOf(card).indexOf('kim@') < textOf(card).indexOf('lou@');
  const keeps = buttons(card).filter((b) => b.title === 'Keep');
  const keepKim = kimFirst ? keeps[0] : keeps[1];
  if (!keepKim) throw new Error('no Keep button');
  expect(await decide('eve', keepKim, 'still on call')).toContain("Recorded: keep kim@example.com's db.");
  const updated = await updatedTo(posted.id, (c) => /decided by eve@example.com/.test(textOf(c)));
  expect(textOf(updated)).toMatch(/\*\*Kept\*\* — decided by eve@example\.com at .+ UTC: “still on call”/);
  expect(buttons(updated).map((b) => b.title)).toEqual(['Keep', 'Remove']);

  // The audit trail: the admin's start, and eve's refusals.
  const audit = textOf(
    cardOf((await elevate.submitTask(user('ana'), data(button(menu, 'Audit events')))).body),
  );
  expect(audit).toContain('ana@example.com **review.started**');
  expect(audit).toContain('eve@example.com **refused.admin.open**');
  // Each refusal once, under one name.
  expect(audit.match(/eve@example.com \*\*refused\.(admin\.)?adminReview\*\*/g)).toEqual([
    'eve@example.com **refused.admin.adminReview**',
  ]);
}, 240_000);

/** The error shown under a dialog field. */
function errorUnder(card: CardJson, field: string): string {
  const found = (card.body as CardJson[]).find((el) => el.id === `${field}Error`);
  return String(found?.text ?? '');
}
