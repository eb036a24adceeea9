import { afterAll, beforeAll, expect, test } from 'vitest';
import { ACTION, BLOCK, VIEW } from '../../src/chat/slack/ids.ts';
import { buttonsOf, type ElevateServer, startElevate } from '../support/slack-harness.ts';
import { messageText, type SlackMessage, type SlackView } from '../support/slack-workspace.ts';

/**
 * Access reviews in Slack, end to end: the policy file's `reviews:` opens two campaigns at start
 * (db reviewed by its approver, payroll by its member), the outbox brings each reviewer the notice
 * with Keep / Remove per member. Each button opens a modal for the justification, whose submit
 * decides; a forged click by someone who is not a reviewer is refused and audited by the service.
 */

const email = (user: string) => `${user.slice(1).toLowerCase()}@example.com`;
const ADMIN = 'UANA';
const JUDGE = 'UJUDGE';
const MAX = 'UMAX';
const EVE = 'UEVE';
/** The notices go out once the review job has opened the campaigns (every 15 s). */
const DELIVERY_WAIT = 60_000;
/** Anything else the server or the outbox does: generous, the machine is shared. */
const WAIT = 30_000;

let elevate: ElevateServer;

beforeAll(async () => {
  elevate = await startElevate({
    policy: `
admins: [${email(ADMIN)}]
roles:
  - { name: db, provider: { type: none }, settings: { approvers: [${email(JUDGE)}] } }
  - { name: payroll, provider: { type: none } }
eligibility:
  - { principal: kim@example.com, role: db }
  - { principal: lou@example.com, role: db }
  - { principal: ${email(MAX)}, role: payroll }
reviews:
  db-members: { roles: [db], reviewers: approvers, recur: quarterly }
  payroll-self: { roles: [payroll], reviewers: self, recur: quarterly }
`,
    // Known to Slack before the server starts: a notice to an unknown user would wait for the
    // outbox's backoff.
    users: Object.fromEntries([ADMIN, JUDGE, MAX, EVE].map((user) => [user, email(user)])),
  });
}, 120_000);

afterAll(async () => {
  if (!elevate) return;
  const output = elevate.output();
  expect(await elevate.stop(), output).toBe(0);
});

const text = (message: { text: string; blocks: SlackMessage['blocks'] }) => messageText(message);
const seen = (user: string) => elevate.slack.messagesFor(user).length;
const itemOf = (message: SlackMessage, actionId: string, label: string) =>
  buttonsOf(message).find((b) => b.actionId === actionId && b.label === label)?.value ?? '';

function waitForMessage(user: string, what: string, matches: (m: SlackMessage) => boolean, after = 0) {
  return elevate.slack.waitFor(
    `${user} to see ${what}`,
    () =>
      elevate.slack
        .messagesFor(user)
        .slice(after)
        .find((m) => matches(m)),
    WAIT,
  );
}

function waitForModal(user: string, callbackId: string, after: number): Promise<SlackView> {
  return elevate.slack.waitFor(
    `a ${callbackId} modal for ${user}`,
    () =>
      elevate.slack
        .viewsFor(user)
        .slice(after)
        .find((v) => v.callback_id === callbackId && !v.closed),
    WAIT,
  );
}

/** A click on a review button, its modal, and the submit with `justification`; the outcome DM. */
async function decide(user: string, notice: SlackMessage, actionId: string, itemId: string, why: string) {
  const views = elevate.slack.viewsFor(user).length;
  expect((await elevate.click(user, notice, actionId, itemId)).status).toBe(200);
  const callbackId = actionId === ACTION.reviewKeep ? VIEW.reviewKeep : VIEW.reviewRemove;
  const modal = await waitForModal(user, callbackId, views);
  expect(modal.private_metadata).toBe(itemId);
  // The server asks again for what the modal requires: no justification, no decision.
  const empty = await elevate.submit(user, modal, { [BLOCK.justification]: ' ' });
  expect(JSON.stringify(empty.body)).toMatch(/needs a justification/);
  const before = seen(user);
  expect((await elevate.submit(user, modal, { [BLOCK.justification]: why })).status).toBe(200);
  return waitForMessage(user, 'the outcome', (m) => m.source === 'dm' && /^Recorded/.test(m.text), before);
}

test('reviewers decide in Slack: Keep and Remove with a justification, self-review, a late click and a forged one', async () => {
  const notice = await elevate.slack.waitFor(
    'the review notice',
    () => elevate.slack.messagesFor(JUDGE).find((m) => m.source === 'dm' && /Access review/.test(m.text)),
    DELIVERY_WAIT,
  );
  // The notice as first posted: a stale copy on a screen that has not refreshed yet.
  const original: SlackMessage = structuredClone(notice);
  expect(text(notice)).toContain('kim@example.com');
  expect(text(notice)).toContain('lou@example.com');
  const labels = buttonsOf(notice).map((b) => b.label);
  expect(labels.filter((l) => l === 'Keep')).toHaveLength(2);
  expect(labels.filter((l) => l === 'Remove')).toHaveLength(2);
  // The items in the notice's order (by member); each pair of buttons carries its item id.
  const [first, second] = buttonsOf(notice).filter((b) => b.actionId === ACTION.reviewKeep);
  const kimFirst = text(notice).indexOf('kim@') < text(notice).indexOf('lou@');
  const kim = (kimFirst ? first : second)?.value ?? '';
  const lou = (kimFirst ? second : first)?.value ?? '';
  expect(kim).toMatch(/^[0-9a-f-]{36}$/);

  // Someone who reviews nothing replays the judge's button: refused, told so, no modal.
  const eveViews = elevate.slack.viewsFor(EVE).length;
  const eveSeen = seen(EVE);
  expect((await elevate.click(EVE, original, ACTION.reviewRemove, kim)).status).toBe(200);
  await waitForMessage(EVE, 'the refusal', (m) => /not a reviewer of kim@example.com/.test(text(m)), eveSeen);
  expect(elevate.slack.viewsFor(EVE).length).toBe(eveViews);

  const kept = await decide(JUDGE, notice, ACTION.reviewKeep, kim, 'on call for the database');
  expect(kept.text).toBe("Recorded: keep kim@example.com's db.");
  const removed = await decide(JUDGE, notice, ACTION.reviewRemove, lou, 'moved to another team');
  expect(removed.text).toBe("Recorded: remove lou@example.com's db when the review ends.");

  // The notice is updated in place (chat.update on its ts): each decided member shows the outcome,
  // who decided and when, and has no buttons left.
  const updated = await elevate.slack.waitFor(
    'the notice updated with both decisions',
    () => {
      const updates = elevate.slack.calls.filter(
        (c) => c.method === 'chat.update' && c.args.ts === notice.ts && c.status === 200,
      );
      const last = updates.at(-1);
      const blocks = last ? (JSON.parse(String(last.args.blocks)) as SlackMessage['blocks']) : [];
      const shown = text({ text: '', blocks });
      return (
        /Kept\* — decided by judge@example.com/.test(shown) && /Remove\* \(at the end/.test(shown) && blocks
      );
    },
    WAIT,
  );
  const shownNow = text({ text: '', blocks: updated });
  expect(shownNow).toMatch(
    /\*Kept\* — decided by judge@example\.com at \d{4}-\d\d-\d\d \d\d:\d\d UTC: “on call for the database”/,
  );
  expect(shownNow).toContain('“moved to another team”');
  expect(buttonsOf({ blocks: updated })).toEqual([]);
  expect(buttonsOf(notice)).toEqual([]); // what the judge sees now

  // A late click on the stale copy hears who decided, and opens nothing.
  const again = seen(JUDGE);
  await elevate.click(JUDGE, original, ACTION.reviewRemove, kim);
  await waitForMessage(
    JUDGE,
    'who decided',
    (m) => /Already decided: keep by judge@example.com/.test(text(m)),
    again,
  );

  // Self-review: the member's own words on the buttons.
  const own = await elevate.slack.waitFor(
    'the self-review notice',
    () => elevate.slack.messagesFor(MAX).find((m) => m.source === 'dm' && /Access review/.test(m.text)),
    DELIVERY_WAIT,
  );
  const item = itemOf(own, ACTION.reviewRemove, 'I no longer need it');
  expect(itemOf(own, ACTION.reviewKeep, 'Keep (justify)')).toBe(item);
  const gone = await decide(MAX, own, ACTION.reviewRemove, item, 'finished the payroll migration');
  expect(gone.text).toBe(`Recorded: remove ${email(MAX)}'s payroll when the review ends.`);

  // The audit trail holds the refusal (the service's) and the three decisions.
  const views = elevate.slack.viewsFor(ADMIN).length;
  await elevate.command(ADMIN, 'admin');
  const menu = await waitForModal(ADMIN, VIEW.admin, views);
  await elevate.click(ADMIN, menu, ACTION.adminAudit);
  const audit = await elevate.slack.waitFor(
    'the audit page',
    () => {
      const now = elevate.slack.view(menu.id);
      return now && /review\.decided/.test(text({ text: '', blocks: now.blocks })) && now;
    },
    WAIT,
  );
  const shown = text({ text: '', blocks: audit.blocks });
  expect(shown).toMatch(new RegExp(`${email(EVE)} \\*review\\.decision_refused\\*`));
  expect(shown.match(/review\.decided/g)).toHaveLength(3);
}, 150_000);

/** The text of a view as it is now. */
const viewText = (view: SlackView) => text({ text: '', blocks: elevate.slack.view(view.id)?.blocks ?? [] });

test('an admin starts a review from the admin dialog (a problem comes back on its field); the named reviewer gets the notice; a non-admin is refused and nothing starts', async () => {
  // /elevate admin → Access reviews: the running campaigns with their progress, and Start a review.
  const views = elevate.slack.viewsFor(ADMIN).length;
  await elevate.command(ADMIN, 'admin');
  const menu = await waitForModal(ADMIN, VIEW.admin, views);
  await elevate.click(ADMIN, menu, ACTION.adminReviews);
  const page = await elevate.slack.waitFor(
    'the access reviews page',
    () => {
      const now = elevate.slack.view(menu.id);
      return now && /Start a review/.test(viewText(menu)) && now;
    },
    WAIT,
  );
  expect(viewText(page)).toMatch(
    /\*db\* \(db-members\), reviewed by the role's approvers\nends .+ UTC: \d of 2 decided/,
  );
  expect(viewText(page)).toContain('*payroll* (payroll-self), reviewed by each member');

  const pushed = elevate.slack.viewsFor(ADMIN).length;
  await elevate.click(ADMIN, page, ACTION.adminReviewStart);
  const form = await waitForModal(ADMIN, VIEW.adminReview, pushed);
  const filled = {
    [BLOCK.role]: ['db'],
    [BLOCK.reviewerMode]: 'named',
    [BLOCK.reviewers]: [],
    [BLOCK.duration]: '3d',
    [BLOCK.recurrence]: 'monthly',
    [BLOCK.unreviewed]: 'remove',
  };

  // Named reviewers, none named; then a duration that is none: each inline, on its field.
  const nobody = await elevate.submit(ADMIN, form, filled);
  expect(nobody.body).toEqual({
    response_action: 'errors',
    errors: {
      [BLOCK.reviewers]: 'Name the reviewers (emails), or review by the approvers or by the members.',
    },
  });
  const badDuration = await elevate.submit(ADMIN, form, {
    ...filled,
    [BLOCK.reviewers]: [EVE],
    [BLOCK.duration]: 'a while',
  });
  expect(badDuration.body).toEqual({
    response_action: 'errors',
    errors: { [BLOCK.duration]: '"a while" is not a duration (use 30m, 8h, 2d or ISO 8601).' },
  });

  // A non-admin: /elevate admin is refused, and a forged submission of the form starts nothing.
  const eveSeen = seen(EVE);
  const eveViews = elevate.slack.viewsFor(EVE).length;
  await elevate.command(EVE, 'admin');
  await waitForMessage(
    EVE,
    'the refusal',
    (m) => /admin dialogs are for Elevate admins/.test(text(m)),
    eveSeen,
  );
  expect(elevate.slack.viewsFor(EVE).length).toBe(eveViews);
  const forged = await elevate.submit(EVE, form, { ...filled, [BLOCK.reviewers]: [EVE] });
  expect(JSON.stringify(forged.body)).toMatch(/admin dialogs are for Elevate admins/);

  // The admin's valid submission: the modal closes, the admin is told, the reviewer gets the notice.
  const adminSeen = seen(ADMIN);
  const started = await elevate.submit(ADMIN, form, { ...filled, [BLOCK.reviewers]: [EVE] });
  expect(started.status).toBe(200);
  expect(started.body).toBeUndefined();
  const told = await waitForMessage(
    ADMIN,
    'the start',
    (m) => /^Access review of db started/.test(m.text),
    adminSeen,
  );
  expect(told.text).toMatch(
    /^Access review of db started: 2 member\(s\) to review until .+ UTC\. The reviewers are told\.$/,
  );
  const eveNotice = await waitForMessage(
    EVE,
    'the review notice',
    (m) => m.source === 'dm' && /Access review/.test(m.text),
  );
  expect(text(eveNotice)).toContain('kim@example.com');
  expect(text(eveNotice)).toContain('lou@example.com');
  expect(text(eveNotice)).toContain('Anything not decided is removed at the end.');
  expect(buttonsOf(eveNotice).filter((b) => b.actionId === ACTION.reviewKeep)).toHaveLength(2);

  // Exactly one campaign more, started by the admin: on the page, and in the audit trail with the refusal.
  const again = elevate.slack.viewsFor(ADMIN).length;
  await elevate.command(ADMIN, 'admin');
  const menu2 = await waitForModal(ADMIN, VIEW.admin, again);
  await elevate.click(ADMIN, menu2, ACTION.adminReviews);
  const listed = await elevate.slack.waitFor(
    'the new campaign on the page',
    () => {
      const shown = viewText(menu2);
      return /reviewed by eve@example.com/.test(shown) && shown;
    },
    WAIT,
  );
  expect(listed).toMatch(
    /\*db\*, reviewed by eve@example.com\nends .+ UTC: 0 of 2 decided; unreviewed: remove, recurs monthly/,
  );
  expect(listed.match(/reviewed by/g)).toHaveLength(3);
  const last = elevate.slack.viewsFor(ADMIN).length;
  await elevate.command(ADMIN, 'admin');
  const menu3 = await waitForModal(ADMIN, VIEW.admin, last);
  await elevate.click(ADMIN, menu3, ACTION.adminAudit);
  const audit = await elevate.slack.waitFor(
    'the audit page',
    () => {
      const shown = viewText(menu3);
      return /review\.started/.test(shown) && shown;
    },
    WAIT,
  );
  expect(audit).toContain(`${email(ADMIN)} *review.started*`);
  expect(audit).toContain(`${email(EVE)} *refused.admin.review*`);
}, 150_000);
