import { afterAll, beforeAll, expect, test } from 'vitest';
import type { PostedMessage, TeamsUser } from '../support/fake-teams.ts';
import { campaignTimePasses, decisionRow, exportCsv, exportJsonl } from '../support/review-campaign.ts';
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
  walk,
} from '../support/teams-harness.ts';

/**
 * A whole access review campaign in Teams, through the running server (as
 * slack-review-campaign.test.ts): the policy file gains a `reviews:` section and is applied at the
 * server's next start, as a deployment of policy as code does. It starts two campaigns — db,
 * reviewed by its approver, members nobody reviewed are removed; payroll, reviewed by each member,
 * members nobody reviewed are kept. Reviewers decide in dialogs; a day before the end the
 * reviewers of what is still open get the reminder; at the end the loop applies the decisions
 * (removed members lose the role and are told why and by whom), the admin gets the results, and
 * `elevate reviews export` has every decision. Campaign days pass as review-campaign.ts explains
 * (campaignTimePasses). The audit of the removals, the core's whatever the platform, is checked
 * in the Slack twin.
 */

const email = (key: string) => `${key}@example.com`;
const PEOPLE = ['ana', 'judge', 'kim', 'lou', 'ned', 'max', 'ola', 'pat'];
/** The loop's review pass runs every 15 s (SCHEDULES.reviews); generous for a loaded machine. */
const LOOP_WAIT = 90_000;

let elevate: TeamsElevate;
const user = (key: string): TeamsUser => {
  const found = elevate.teams.users.get(key);
  if (!found) throw new Error(`no user ${key}`);
  return found;
};

const POLICY = `
admins: [${email('ana')}]
roles:
  - { name: db, provider: { type: none }, settings: { approvers: [${email('judge')}] } }
  - { name: payroll, provider: { type: none } }
eligibility:
${['kim', 'lou', 'ned'].map((k) => `  - { principal: ${email(k)}, role: db }`).join('\n')}
${['max', 'ola', 'pat'].map((k) => `  - { principal: ${email(k)}, role: payroll }`).join('\n')}
`;

beforeAll(async () => {
  elevate = await startTeamsElevate({
    policy: POLICY,
    users: Object.fromEntries(PEOPLE.map((k) => [k, email(k)])),
  });
  // Everyone has the app before the campaigns start, so the notices reach them at once.
  for (const key of PEOPLE) expect((await elevate.install(user(key))).status).toBe(200);
}, 120_000);

afterAll(async () => {
  if (!elevate) return;
  const output = elevate.output();
  expect(await elevate.stop(), output).toBe(0);
});

const chat = (key: string) => elevate.teams.messagesIn(elevate.personal(user(key)));
const said = (answer: { body: unknown }) => JSON.stringify(answer.body);
const data = (b: CardJson) => b.data as Record<string, unknown>;

/** The first message in `key`'s chat (after `after`) whose card text matches. */
async function waitFor(key: string, pattern: RegExp, timeoutMs = 60_000, after = 0): Promise<CardJson> {
  const found: PostedMessage = await eventually(
    () =>
      chat(key)
        .slice(after)
        .find((m) => pattern.test(textOf(cardOf(m)))),
    timeoutMs,
  ).catch(() => {
    throw new Error(`${key} never got ${pattern}; they have: ${chat(key).map((m) => textOf(cardOf(m)))}`);
  });
  return cardOf(found);
}

/** The members a notice card asks about, in its order. */
const membersOf = (card: CardJson) =>
  walk(card).flatMap((el) =>
    el.type === 'FactSet'
      ? (el.facts as { title: string; value: string }[])
          .filter((f) => f.title === 'Member')
          .map((f) => f.value)
      : [],
  );

/** The button `title` of `member`'s item on a notice card (after their facts). */
function buttonOf(card: CardJson, member: string, title: string): CardJson {
  const all = walk(card);
  const at = all.findIndex(
    (el) =>
      el.type === 'FactSet' &&
      (el.facts as { title: string; value: string }[]).some(
        (f) => f.title === 'Member' && f.value === member,
      ),
  );
  const found = all.slice(at + 1).find((el) => el.title === title);
  if (at < 0 || !found) throw new Error(`no ${title} for ${member} on ${textOf(card)}`);
  return found;
}

/** A review button opens its dialog; submitted with `why`, it decides; what the reviewer reads. */
async function decide(key: string, opener: CardJson, why: string): Promise<string> {
  const dialog = cardOf((await elevate.fetchTask(user(key), data(opener))).body);
  return said(await elevate.submitTask(user(key), submission(dialog, { justification: why })));
}

/** `status` in the personal chat, and the board the bot answers with. */
async function board(key: string): Promise<CardJson> {
  const asked = await elevate.say(user(key), 'status');
  expect(asked.status).toBe(200);
  return cardOf(await eventually(() => chat(key).find((m) => m.activity.replyToId === asked.activityId)));
}

test('a whole campaign in Teams: decisions, self-review, the reminder, the end applied, results, export', async () => {
  // The reviews go into the policy file; the next start applies it.
  expect(await elevate.pause()).toBe(0);
  await elevate.writePolicy(`${POLICY}reviews:
  db-members: { roles: [db], reviewers: approvers, recur: quarterly, unreviewed: remove }
  payroll-self: { roles: [payroll], reviewers: self, recur: quarterly, unreviewed: keep }
`);
  await elevate.resume();

  const judged = await waitFor('judge', /Access review: decide Keep or Remove/);
  expect(membersOf(judged)).toEqual([email('kim'), email('lou'), email('ned')]);
  expect(textOf(judged)).toContain('Anything not decided is removed at the end.');
  expect(await decide('judge', buttonOf(judged, email('kim'), 'Keep'), 'on call for the database')).toContain(
    "Recorded: keep kim@example.com's db.",
  );
  expect(await decide('judge', buttonOf(judged, email('lou'), 'Remove'), 'moved to another team')).toContain(
    "Recorded: remove lou@example.com's db when the review ends.",
  );

  const own = async (key: string) => {
    const card = await waitFor(key, /do you still need these roles/);
    expect(membersOf(card)).toEqual([email(key)]);
    expect(textOf(card)).toContain('Anything not decided is kept.');
    return card;
  };
  const maxCard = await own('max');
  expect(await decide('max', button(maxCard, 'I no longer need it'), 'payroll migration done')).toContain(
    "Recorded: remove max@example.com's payroll when the review ends.",
  );
  const olaCard = await own('ola');
  expect(await decide('ola', button(olaCard, 'Keep (justify)'), 'I run payroll monthly')).toContain(
    "Recorded: keep ola@example.com's payroll.",
  );
  await own('pat'); // and pat does nothing

  // Six and a half of the seven days pass: a day or less is left, the reminder is due.
  await campaignTimePasses(elevate, '6 days 12 hours');
  const reminder = await waitFor('judge', /Reminder: the access review ends at/, LOOP_WAIT);
  // Only what is still open, with its buttons, and the end still ahead.
  expect(membersOf(reminder)).toEqual([email('ned')]);
  expect(buttons(reminder).map((b) => data(b).value)).toEqual([
    data(buttonOf(judged, email('ned'), 'Keep')).value,
    data(buttonOf(judged, email('ned'), 'Remove')).value,
  ]);
  const end = /ends at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC/.exec(textOf(reminder))?.[1] ?? '';
  expect(new Date(`${end.replace(' ', 'T')}Z`).getTime()).toBeGreaterThan(Date.now());
  expect(membersOf(await waitFor('pat', /Reminder: /, 30_000))).toEqual([email('pat')]);

  // The rest of the week passes: the loop ends both campaigns and applies them.
  await campaignTimePasses(elevate, '13 hours');
  const results = (role: string) =>
    waitFor('ana', new RegExp(`Access review of \\**${role}\\** finished`), LOOP_WAIT).then(textOf);
  const dbResults = await results('db');
  expect(dbResults).toContain('1 kept, 2 removed, 1 not reviewed.');
  expect(dbResults).toContain(`Removed: ${email('lou')} → db; ${email('ned')} → db`);
  const payrollResults = await results('payroll');
  expect(payrollResults).toContain('2 kept, 1 removed, 1 not reviewed.');
  expect(payrollResults).toContain(`Removed: ${email('max')} → payroll`);

  // Each removed member is told why and by whom: the reviewer, the review's default, themself.
  const told = (key: string, role: string) =>
    waitFor(key, new RegExp(`no longer eligible for \\**${role}`)).then(textOf);
  expect(await told('lou', 'db')).toContain(`decided by ${email('judge')}: “moved to another team”`);
  expect(await told('ned', 'db')).toContain(
    'decided by the review default: “nobody reviewed it and the review removes unreviewed members”',
  );
  expect(await told('max', 'payroll')).toContain(`decided by ${email('max')}: “payroll migration done”`);

  // Their boards say so; the kept ones (decided, and pat by payroll's default) still activate.
  for (const key of ['lou', 'ned', 'max'])
    expect(textOf(await board(key))).toContain('You are not eligible for any role yet.');
  const activates = async (key: string) =>
    buttons(await board(key))
      .filter((b) => b.title === 'Activate')
      .map((b) => data(b).value);
  expect(await activates('kim')).toEqual(['db']);
  expect(await activates('ola')).toEqual(['payroll']);
  expect(await activates('pat')).toEqual(['payroll']);
  // Those who had decided everything were not reminded.
  for (const key of ['max', 'ola'])
    expect(chat(key).filter((m) => /Reminder: /.test(textOf(cardOf(m))))).toEqual([]);

  // The operator exports what the admin's results name, at the command line on the same database.
  const idIn = (results: string) => /elevate reviews export (\S+) --format csv/.exec(results)?.[1] ?? '';
  const [dbId, payrollId] = [idIn(dbResults), idIn(payrollResults)];
  expect([dbId, payrollId]).toEqual([
    expect.stringMatching(/^[0-9a-f-]{36}$/),
    expect.stringMatching(/^[0-9a-f-]{36}$/),
  ]);
  expect(await elevate.pause()).toBe(0);
  const csv = await exportCsv(elevate, dbId);
  expect(csv).toHaveLength(4);
  const line = (who: string) => csv.find((l) => l.includes(`,${email(who)},db,`)) ?? '';
  expect(csv.every((l, n) => n === 0 || l.startsWith(`${dbId},`))).toBe(true);
  expect(line('kim')).toMatch(/,keep,on call for the database,judge@example\.com,[^,]+,kept$/);
  expect(line('lou')).toMatch(/,remove,moved to another team,judge@example\.com,[^,]+,removed$/);
  expect(line('ned')).toMatch(/,,,,removed$/);
  expect((await exportJsonl(elevate, payrollId)).map(decisionRow)).toEqual([
    [email('max'), [email('max')], 'remove', 'payroll migration done', email('max'), 'removed'],
    [email('ola'), [email('ola')], 'keep', 'I run payroll monthly', email('ola'), 'kept'],
    [email('pat'), [email('pat')], null, '', null, 'kept'],
  ]);
}, 420_000);
