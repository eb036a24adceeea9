import { afterAll, beforeAll, expect, test } from 'vitest';
import { ACTION, BLOCK, VIEW } from '../../src/chat/slack/ids.ts';
import {
  auditedRemovals,
  campaignTimePasses,
  decisionRow,
  exportCsv,
  exportJsonl,
} from '../support/review-campaign.ts';
import { buttonsOf, type ElevateServer, startElevate } from '../support/slack-harness.ts';
import { type Block, messageText, type SlackMessage, type SlackView } from '../support/slack-workspace.ts';

/**
 * A whole access review campaign in Slack, through the running server: the policy file's
 * `reviews:` starts two campaigns — db, reviewed by its approver, members nobody reviewed are
 * removed; payroll, reviewed by each member, members nobody reviewed are kept. Reviewers decide
 * in chat; a day before the end the reviewers of what is still open get the reminder; at the end
 * the loop applies the decisions (removed members lose the role and are told why and by whom),
 * the admin gets the results, and `elevate reviews export` has every decision. Campaign days pass
 * as review-campaign.ts explains (campaignTimePasses).
 */

const email = (user: string) => `${user.slice(1).toLowerCase()}@example.com`;
const [ANA, JUDGE, KIM, LOU, NED, MAX, OLA, PAT] = [
  'UANA',
  'UJUDGE',
  'UKIM',
  'ULOU',
  'UNED',
  'UMAX',
  'UOLA',
  'UPAT',
];
/** The loop's review pass runs every 15 s (SCHEDULES.reviews); generous for a loaded machine. */
const LOOP_WAIT = 90_000;

let elevate: ElevateServer;

beforeAll(async () => {
  elevate = await startElevate({
    policy: `
admins: [${email(ANA)}]
roles:
  - { name: db, provider: { type: none }, settings: { approvers: [${email(JUDGE)}] } }
  - { name: payroll, provider: { type: none } }
eligibility:
${[KIM, LOU, NED].map((u) => `  - { principal: ${email(u)}, role: db }`).join('\n')}
${[MAX, OLA, PAT].map((u) => `  - { principal: ${email(u)}, role: payroll }`).join('\n')}
reviews:
  db-members: { roles: [db], reviewers: approvers, recur: quarterly, unreviewed: remove }
  payroll-self: { roles: [payroll], reviewers: self, recur: quarterly, unreviewed: keep }
`,
    // In the workspace from the start, so the notices sent at start reach them at once.
    users: Object.fromEntries([ANA, JUDGE, KIM, LOU, NED, MAX, OLA, PAT].map((u) => [u, email(u)])),
  });
}, 120_000);

afterAll(async () => {
  if (!elevate) return;
  const output = elevate.output();
  expect(await elevate.stop(), output).toBe(0);
});

const text = (message: { text: string; blocks: Block[] }) => messageText(message);
const dms = (user: string) => elevate.slack.messagesFor(user).filter((m) => m.source === 'dm');

function waitForDm(user: string, what: string, pattern: RegExp, timeoutMs = 60_000, after = 0) {
  return elevate.slack.waitFor(
    `${user} to get ${what}`,
    () =>
      dms(user)
        .slice(after)
        .find((m) => pattern.test(text(m))),
    timeoutMs,
  );
}

/** The item id behind `member`'s buttons on a review notice (its fields, then its buttons). */
function itemOf(notice: SlackMessage, member: string): string {
  const at = notice.blocks.findIndex((b) => JSON.stringify(b.fields ?? []).includes(`*Member*\\n${member}`));
  const actions = notice.blocks.slice(at + 1).find((b) => b.type === 'actions');
  const value = at >= 0 && actions ? buttonsOf({ blocks: [actions] })[0]?.value : undefined;
  if (!value) throw new Error(`no item of ${member} in ${JSON.stringify(text(notice))}`);
  return value;
}

/** The members a notice asks about, in its order. */
const membersOf = (notice: SlackMessage) =>
  notice.blocks.flatMap((b) =>
    ((b.fields ?? []) as { text: string }[])
      .map((f) => /^\*Member\*\n(.+)$/.exec(f.text)?.[1])
      .filter((m): m is string => Boolean(m)),
  );

/** A click on the notice's button for `item`, the modal's justification, and the outcome DM. */
async function decide(user: string, notice: SlackMessage, actionId: string, item: string, why: string) {
  const views = elevate.slack.viewsFor(user).length;
  const before = dms(user).length;
  expect((await elevate.click(user, notice, actionId, item)).status).toBe(200);
  const callbackId = actionId === ACTION.reviewKeep ? VIEW.reviewKeep : VIEW.reviewRemove;
  const modal: SlackView = await elevate.slack.waitFor(`a ${callbackId} modal for ${user}`, () =>
    elevate.slack
      .viewsFor(user)
      .slice(views)
      .find((v) => v.callback_id === callbackId && !v.closed),
  );
  expect((await elevate.submit(user, modal, { [BLOCK.justification]: why })).status).toBe(200);
  return (await waitForDm(user, 'the outcome', /Recorded: /, 30_000, before)).text;
}

/** `/elevate` and the board it answers with. */
async function board(user: string): Promise<SlackMessage> {
  const before = elevate.slack.messagesFor(user).length;
  expect((await elevate.command(user, '')).status).toBe(200);
  return elevate.slack.waitFor(`${user}'s board`, () =>
    elevate.slack
      .messagesFor(user)
      .slice(before)
      .find((m) => /Your roles/.test(text(m))),
  );
}

test('a whole campaign in Slack: decisions, self-review, the reminder, the end applied, results, export', async () => {
  // Started by the policy file: the judge gets db's members, each payroll member their own.
  const judged = await waitForDm(JUDGE, 'the review notice', /Access review: decide Keep or Remove/);
  expect(membersOf(judged)).toEqual([email(KIM), email(LOU), email(NED)]);
  expect(text(judged)).toContain('Anything not decided is removed at the end.');
  // Read before any decision: the fake Slack keeps a message as its last update, and a decided
  // member's buttons are gone from the updated notice.
  const itemIds = new Map([KIM, LOU, NED].map((who) => [who, itemOf(judged, email(who))]));
  const judgedItem = (who: string) => itemIds.get(who) ?? '';
  expect(await decide(JUDGE, judged, ACTION.reviewKeep, judgedItem(KIM), 'on call for the database')).toBe(
    `Recorded: keep ${email(KIM)}'s db.`,
  );
  expect(await decide(JUDGE, judged, ACTION.reviewRemove, judgedItem(LOU), 'moved to another team')).toBe(
    `Recorded: remove ${email(LOU)}'s db when the review ends.`,
  );

  const own = async (user: string) => {
    const notice = await waitForDm(user, 'the self-review notice', /do you still need these roles/);
    expect(membersOf(notice)).toEqual([email(user)]);
    expect(text(notice)).toContain('Anything not decided is kept.');
    return notice;
  };
  const maxNotice = await own(MAX);
  expect(
    await decide(
      MAX,
      maxNotice,
      ACTION.reviewRemove,
      itemOf(maxNotice, email(MAX)),
      'payroll migration done',
    ),
  ).toBe(`Recorded: remove ${email(MAX)}'s payroll when the review ends.`);
  const olaNotice = await own(OLA);
  expect(
    await decide(OLA, olaNotice, ACTION.reviewKeep, itemOf(olaNotice, email(OLA)), 'I run payroll monthly'),
  ).toBe(`Recorded: keep ${email(OLA)}'s payroll.`);
  await own(PAT); // and pat does nothing

  // Six and a half of the seven days pass: a day or less is left, the reminder is due.
  await campaignTimePasses(elevate, '6 days 12 hours');
  const reminder = await waitForDm(JUDGE, 'the reminder', /Reminder: the access review ends at/, LOOP_WAIT);
  // Only what is still open, with its buttons, and the end still ahead.
  expect(membersOf(reminder)).toEqual([email(NED)]);
  expect(buttonsOf(reminder).map((b) => b.value)).toEqual([judgedItem(NED), judgedItem(NED)]);
  const end = /ends at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC/.exec(reminder.text)?.[1] ?? '';
  expect(new Date(`${end.replace(' ', 'T')}Z`).getTime()).toBeGreaterThan(Date.now());
  const patReminder = await waitForDm(PAT, 'the reminder', /Reminder: /, 30_000);
  expect(membersOf(patReminder)).toEqual([email(PAT)]);

  // The rest of the week passes: the loop ends both campaigns and applies them.
  await campaignTimePasses(elevate, '13 hours');
  const results = async (role: string) =>
    (
      await waitForDm(
        ANA,
        `the results of ${role}`,
        new RegExp(`Access review of \\*?${role}\\*? finished`),
        LOOP_WAIT,
      )
    ).text;
  const dbResults = await results('db');
  expect(dbResults).toContain('1 kept, 2 removed, 1 not reviewed.');
  expect(dbResults).toContain(`Removed: ${email(LOU)} → db; ${email(NED)} → db`);
  const payrollResults = await results('payroll');
  expect(payrollResults).toContain('2 kept, 1 removed, 1 not reviewed.');
  expect(payrollResults).toContain(`Removed: ${email(MAX)} → payroll`);

  // Each removed member is told why and by whom: the reviewer, the review's default, themself.
  const told = async (user: string, role: string) =>
    (await waitForDm(user, 'the removal', new RegExp(`no longer eligible for \\*?${role}`))).text;
  expect(await told(LOU, 'db')).toContain(`decided by ${email(JUDGE)}: “moved to another team”`);
  expect(await told(NED, 'db')).toContain(
    'decided by the review default: “nobody reviewed it and the review removes unreviewed members”',
  );
  expect(await told(MAX, 'payroll')).toContain(`decided by ${email(MAX)}: “payroll migration done”`);

  // Their boards say so; the kept ones (decided, and pat by payroll's default) still activate.
  for (const user of [LOU, NED, MAX])
    expect(text(await board(user))).toContain('You are not eligible for any role yet.');
  const activates = async (user: string) =>
    buttonsOf(await board(user))
      .filter((b) => b.label === 'Activate')
      .map((b) => b.value);
  expect(await activates(KIM)).toEqual(['db']);
  expect(await activates(OLA)).toEqual(['payroll']);
  expect(await activates(PAT)).toEqual(['payroll']);
  // Those who had decided everything were not reminded.
  for (const user of [MAX, OLA]) expect(dms(user).filter((m) => /^Reminder/.test(m.text))).toEqual([]);

  // The operator exports what the admin's results name, at the command line on the same database.
  const dbId = /elevate reviews export (\S+) --format csv/.exec(dbResults)?.[1] ?? '';
  const payrollId = /elevate reviews export (\S+) --format csv/.exec(payrollResults)?.[1] ?? '';
  expect([dbId, payrollId]).toEqual([
    expect.stringMatching(/^[0-9a-f-]{36}$/),
    expect.stringMatching(/^[0-9a-f-]{36}$/),
  ]);
  expect(await elevate.pause()).toBe(0);
  const csv = await exportCsv(elevate, dbId);
  expect(csv[0]).toBe(
    'reviewId,itemId,principal,role,reviewers,lastActivatedAt,activations90d,decision,justification,decidedBy,decidedAt,outcome',
  );
  const row = (who: string, rest: string) =>
    new RegExp(`^${dbId},${judgedItem(who)},${email(who)},db,${email(JUDGE)},,0,${rest}$`);
  const at = '\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z';
  expect(csv.slice(1)).toEqual([
    expect.stringMatching(row(KIM, `keep,on call for the database,${email(JUDGE)},${at},kept`)),
    expect.stringMatching(row(LOU, `remove,moved to another team,${email(JUDGE)},${at},removed`)),
    expect.stringMatching(row(NED, ',,,,removed')),
  ]);
  expect((await exportJsonl(elevate, payrollId)).map(decisionRow)).toEqual([
    [email(MAX), [email(MAX)], 'remove', 'payroll migration done', email(MAX), 'removed'],
    [email(OLA), [email(OLA)], 'keep', 'I run payroll monthly', email(OLA), 'kept'],
    [email(PAT), [email(PAT)], null, '', null, 'kept'],
  ]);

  // The removals are the core's eligibility removals, audited with the review, decider and reason
  // (the two campaigns end in one pass, in either order).
  const removals = (await auditedRemovals(elevate)).sort((a, b) =>
    String(a.data.principal).localeCompare(String(b.data.principal)),
  );
  expect(removals.map((e) => [e.actor, e.data])).toEqual([
    [
      'system',
      expect.objectContaining({ principal: email(LOU), role: 'db', reviewId: dbId, decidedBy: email(JUDGE) }),
    ],
    [
      'system',
      expect.objectContaining({
        principal: email(MAX),
        role: 'payroll',
        reviewId: payrollId,
        reason: 'payroll migration done',
      }),
    ],
    [
      'system',
      expect.objectContaining({ principal: email(NED), role: 'db', reviewId: dbId, decidedBy: 'system' }),
    ],
  ]);
}, 420_000);
