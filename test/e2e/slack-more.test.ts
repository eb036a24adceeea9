import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ACTION, BLOCK, VIEW } from '../../src/chat/slack/ids.ts';
import { buttonsOf, type ElevateServer, startElevate } from '../support/slack-harness.ts';
import { messageText, type SlackMessage, type SlackView } from '../support/slack-workspace.ts';

/**
 * More of the Slack surface end to end (same harness and style as slack.test.ts; one server for
 * the file, each test with its own people): a role's approvals channel, Approve with a comment,
 * the admin dialogs' success paths from creating a role to revoking an activation and reading
 * the audit page, and a Slack user whose email Slack does not share.
 *
 * Assertions are what people see: cards in the channel and in DMs and how they change, what the
 * requester is told, the admin pages, the board — and, for real grants, the signed webhook events.
 */

const WEBHOOK_SECRET = 'e2e-webhook-secret-more-0123456789abcdef0123456789';
const CHANNEL = 'C0APPROVALS';
const email = (user: string) => `${user.slice(1).toLowerCase()}@example.com`;
const ADMIN = 'UADMIN';
/** An approver with no Slack account in this workspace. */
const GHOST = 'ghost.approver@example.com';

interface WebhookEvent {
  type: 'grant' | 'revoke';
  activationId: string;
  principal: { email: string };
  role: { name: string };
}

let elevate: ElevateServer;
let receiver: Server;
let webhookUrl: string;
const webhookEvents: WebhookEvent[] = [];

function policy(): string {
  return `
admins: [${email(ADMIN)}]
roles:
  - name: chan-prod
    description: Production cluster admin
    scope: prod/k8s
    provider: { type: none }
    settings:
      maxDuration: 2h
      requireApproval: true
      approvers: [${['UCHAPA', 'UCHAPB', 'UCHAPC'].map(email).join(', ')}]
      approvalChannel: ${CHANNEL}
  - name: commented
    scope: prod/payments
    provider: { type: none }
    settings: { requireApproval: true, approvers: [${email('UCOMAP')}] }
  - name: legacy
    description: Approvers who never used Elevate in Slack
    scope: legacy/erp
    provider: { type: none }
    settings:
      maxDuration: 2h
      requireApproval: true
      approvers: [${email('ULEGAPA')}, ${email('ULEGAPB')}, ${GHOST}]
eligibility:
  - { principal: ${email('URQCHAN')}, role: chan-prod }
  - { principal: ${email('URQCOMMENT')}, role: commented }
  - { principal: ${email('URQLEGACY')}, role: legacy }
`;
}

beforeAll(async () => {
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      webhookEvents.push(JSON.parse(body) as WebhookEvent);
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/grants`;
  elevate = await startElevate({ policy: policy(), env: { ELEVATE_E2E_WEBHOOK_SECRET: WEBHOOK_SECRET } });
  for (const user of [
    ADMIN,
    'UCHAPA',
    'UCHAPB',
    'UCHAPC',
    'URQCHAN',
    'UCOMAP',
    'URQCOMMENT',
    'ULEGAPA',
    'ULEGAPB',
    'URQLEGACY',
    'URQNEWBIE',
  ]) {
    elevate.slack.addUser(user, email(user), user.slice(1).toLowerCase());
  }
}, 120_000);

afterAll(async () => {
  receiver?.closeAllConnections();
  receiver?.close();
  if (!elevate) return;
  const output = elevate.output();
  expect(await elevate.stop(), output).toBe(0);
});

// ---- what people see (as in slack.test.ts) ----

const text = (message: { text: string; blocks: SlackMessage['blocks'] }) => messageText(message);
const viewText = (view: SlackView) => text({ text: '', blocks: view.blocks });
const names = (content: string, user: string) =>
  content.includes(`<@${user}>`) || content.toLowerCase().includes(email(user));
const hasButton = (message: { blocks: SlackMessage['blocks'] }, actionId: string, value?: string) =>
  buttonsOf(message).some((b) => b.actionId === actionId && (value === undefined || b.value === value));
const newMessages = (user: string, after: number) => elevate.slack.messagesFor(user).slice(after);
const seen = (user: string) => elevate.slack.messagesFor(user).length;

async function waitForMessage(
  user: string,
  what: string,
  matches: (message: SlackMessage) => boolean,
  after = 0,
): Promise<SlackMessage> {
  const found = await elevate.slack.waitFor(`${user} to see ${what}`, () =>
    newMessages(user, after)
      .reverse()
      .find((m) => matches(m)),
  );
  if (process.env.SLACK_E2E_TRACE) console.log(`${user} sees ${what}: ${JSON.stringify(text(found))}`);
  return found;
}

async function board(user: string): Promise<SlackMessage> {
  const before = seen(user);
  expect((await elevate.command(user, '')).status).toBe(200);
  return waitForMessage(user, 'the board', (m) => /your roles/i.test(text(m)), before);
}

async function waitForModal(user: string, callbackId: string, after = 0): Promise<SlackView> {
  return elevate.slack.waitFor(`a ${callbackId} modal for ${user}`, () =>
    elevate.slack
      .viewsFor(user)
      .slice(after)
      .find((v) => v.callback_id === callbackId && !v.closed),
  );
}

/** `/elevate` → Activate → the modal → submitted with a justification. */
async function requestThroughModal(user: string, role: string, justification: string) {
  const shown = await board(user);
  expect(hasButton(shown, ACTION.activate, role), `Activate ${role} on ${text(shown)}`).toBe(true);
  const views = elevate.slack.viewsFor(user).length;
  await elevate.click(user, shown, ACTION.activate, role);
  const modal = await waitForModal(user, VIEW.activate, views);
  const answer = await elevate.submit(user, modal, { [BLOCK.justification]: justification });
  expect(answer.status).toBe(200);
  expect(answer.body).toBeUndefined();
}

/**
 * Waits until the outbox has sent what was due (it runs every 2 s): no Slack call for two ticks,
 * or at most about 20 s (a retry scheduled later does not matter to the caller).
 */
async function outboxSettled(): Promise<void> {
  let calls = -1;
  for (let round = 0; round < 4; round++) {
    const now = elevate.slack.calls.length;
    if (now === calls) return;
    calls = now;
    await new Promise((resolve) => setTimeout(resolve, 4_500));
  }
}

/** For tests that wait for the outbox to settle. */
const SLOW = 60_000;

// ---- admin dialogs ----

/** `/elevate admin` as the admin: the menu modal as it is now. */
async function adminMenu(): Promise<SlackView> {
  const views = elevate.slack.viewsFor(ADMIN).length;
  expect((await elevate.command(ADMIN, 'admin')).status).toBe(200);
  return waitForModal(ADMIN, VIEW.admin, views);
}

/** A click in an admin view, then the view it shows (the same view updated) once it reads `shows`. */
async function adminClick(view: SlackView, actionId: string, shows: RegExp, value?: string) {
  const versions = elevate.slack.view(view.id)?.versions.length ?? 0;
  const current = elevate.slack.view(view.id) ?? view;
  const response = await elevate.click(ADMIN, current, actionId, value);
  expect(response.status).toBe(200);
  return elevate.slack.waitFor(`the admin view after ${actionId} showing ${shows}`, () => {
    const now = elevate.slack.view(view.id);
    return now && now.versions.length > versions && shows.test(viewText(now)) && now;
  });
}

/** The admin menu → one of its pages. */
async function adminPage(actionId: string, shows: RegExp): Promise<SlackView> {
  return adminClick(await adminMenu(), actionId, shows);
}

/** A click on a page button that pushes a form (views.push); the form. */
async function pushForm(page: SlackView, actionId: string, callbackId: string, value?: string) {
  const views = elevate.slack.viewsFor(ADMIN).length;
  const response = await elevate.click(ADMIN, elevate.slack.view(page.id) ?? page, actionId, value);
  expect(response.status).toBe(200);
  return waitForModal(ADMIN, callbackId, views);
}

/** The initial text of an input block of a form. */
function initialOf(view: SlackView, blockId: string): string {
  const block = view.blocks.find((b) => b.block_id === blockId) as
    | { element: { initial_value?: string } }
    | undefined;
  return block?.element.initial_value ?? '';
}

/** The users preselected in the approvers picker of a role form. */
function pickedUsers(view: SlackView): string[] {
  const block = view.blocks.find((b) => b.block_id === BLOCK.approvers) as
    | { element: { initial_users?: string[] } }
    | undefined;
  return [...(block?.element.initial_users ?? [])].sort();
}

// ---- an approvals channel ----

describe('a role with an approvals channel', () => {
  test('posts ONE card to the channel (no DMs), updated in place after the decision', {
    timeout: SLOW,
  }, async () => {
    const requester = 'URQCHAN';
    const approvers = ['UCHAPA', 'UCHAPB', 'UCHAPC'];
    const seenRequester = seen(requester);
    const postsBefore = elevate.slack.api.callsTo('chat.postMessage').length;
    await requestThroughModal(requester, 'chan-prod', 'node pool upgrade');

    const card = await elevate.slack.waitFor('the card in the approvals channel', () =>
      elevate.slack.channel(CHANNEL).find((m) => names(text(m), requester) && hasButton(m, ACTION.approve)),
    );
    const content = text(card);
    for (const shown of ['chan-prod', 'prod/k8s', 'node pool upgrade']) expect(content).toContain(shown);
    expect(hasButton(card, ACTION.deny)).toBe(true);
    const id = buttonsOf(card).find((b) => b.actionId === ACTION.approve)?.value as string;
    await waitForMessage(requester, 'the request submitted', (m) => /approv/i.test(text(m)), seenRequester);
    await outboxSettled();

    // One post to the channel for three approvers, and no approver got a card in a DM.
    const toChannel = elevate.slack.api
      .callsTo('chat.postMessage')
      .slice(postsBefore)
      .filter((c) => c.args.channel === CHANNEL);
    expect(toChannel).toHaveLength(1);
    expect(elevate.slack.channel(CHANNEL).filter((m) => names(text(m), requester))).toHaveLength(1);
    for (const approver of approvers) {
      expect(
        elevate.slack.channel(elevate.slack.dm(approver)).filter((m) => hasButton(m, ACTION.approve, id)),
        `${approver}'s DM`,
      ).toEqual([]);
    }

    // An approver decides from the channel; the same message (same ts) shows the outcome.
    const snapshot = { ...card, blocks: structuredClone(card.blocks) };
    expect((await elevate.click('UCHAPB', snapshot, ACTION.approve, id)).status).toBe(200);
    const updated = await elevate.slack.waitFor('the channel card updated in place', () => {
      const now = elevate.slack.channel(CHANNEL).find((m) => m.ts === card.ts);
      return (
        now && now.updates > 0 && /approved by/i.test(text(now)) && !hasButton(now, ACTION.approve) && now
      );
    });
    expect(names(text(updated), 'UCHAPB')).toBe(true);
    expect(elevate.slack.channel(CHANNEL).filter((m) => names(text(m), requester))).toHaveLength(1);
    await waitForMessage(
      requester,
      'the role active',
      (m) => /active/i.test(text(m)) && hasButton(m, ACTION.deactivate, id),
      seenRequester,
    );

    // Another approver clicks the stale copy they still had on screen: told who decided.
    const late = seen('UCHAPA');
    await elevate.click('UCHAPA', snapshot, ACTION.approve, id);
    const told = await waitForMessage(
      'UCHAPA',
      '"already approved by …"',
      (m) => /already approved/i.test(text(m)),
      late,
    );
    expect(names(text(told), 'UCHAPB')).toBe(true);
    await outboxSettled();
    expect(
      elevate.slack.api
        .callsTo('chat.postMessage')
        .slice(postsBefore)
        .filter((c) => c.args.channel === CHANNEL),
    ).toHaveLength(1);
    // Each of the three approvers is told of the decision; the channel's one card is updated once.
    expect(
      elevate.slack.api
        .callsTo('chat.update')
        .filter((c) => c.args.channel === CHANNEL && c.args.ts === card.ts),
    ).toHaveLength(1);
  });
});

// ---- approve with a comment ----

describe('Approve with a comment', () => {
  test('the modal takes a comment; the card and the requester show it', async () => {
    const requester = 'URQCOMMENT';
    const approver = 'UCOMAP';
    const seenRequester = seen(requester);
    await requestThroughModal(requester, 'commented', 'refund batch stuck');
    const card = await elevate.slack.waitFor(`${approver}'s card`, () =>
      elevate.slack
        .channel(elevate.slack.dm(approver))
        .find((m) => names(text(m), requester) && hasButton(m, ACTION.approve)),
    );
    const id = buttonsOf(card).find((b) => b.actionId === ACTION.approve)?.value as string;
    expect(hasButton(card, ACTION.approveWithComment, id)).toBe(true);

    const views = elevate.slack.viewsFor(approver).length;
    await elevate.click(approver, card, ACTION.approveWithComment, id);
    const modal = await waitForModal(approver, VIEW.approve, views);
    expect(viewText(modal)).toContain('commented');
    expect(names(viewText(modal), requester)).toBe(true);
    const comment = 'go ahead, watch the error rate';
    const answer = await elevate.submit(approver, modal, { [BLOCK.comment]: comment });
    expect(answer.status).toBe(200);
    expect(answer.body).toBeUndefined();
    expect(elevate.slack.view(modal.id)?.closed).toBe(true);

    // The card: approved, by whom, with the comment, no buttons.
    const updated = await elevate.slack.waitFor('the card updated with the comment', () => {
      const now = elevate.slack.channel(card.channel).find((m) => m.ts === card.ts);
      return now && /approved by/i.test(text(now)) && !hasButton(now, ACTION.approve) && now;
    });
    expect(text(updated)).toContain(comment);
    expect(names(text(updated), approver)).toBe(true);
    // The requester reads the comment in the message that says it is approved.
    const approved = await waitForMessage(
      requester,
      'the approval',
      (m) => /approved/i.test(text(m)),
      seenRequester,
    );
    expect(text(approved)).toContain(comment);
    await waitForMessage(
      requester,
      'the role active',
      (m) => hasButton(m, ACTION.deactivate, id),
      seenRequester,
    );
  });
});

// ---- admin dialogs: the success paths ----

describe('admin dialogs', () => {
  const role = 'ops-hook';
  let activationId = '';

  test('create a role in the dialog; it is listed with its provider and settings', async () => {
    const roles = await adminPage(ACTION.adminRoles, /chan-prod/);
    expect(hasButton(roles, ACTION.adminRoleCreate)).toBe(true);
    const form = await pushForm(roles, ACTION.adminRoleCreate, VIEW.adminRole);
    expect(form.blocks.some((b) => b.block_id === BLOCK.name)).toBe(true);
    const answer = await elevate.submit(ADMIN, form, {
      [BLOCK.name]: role,
      [BLOCK.description]: 'Ops console through a signed webhook',
      [BLOCK.scope]: 'ops/console',
      [BLOCK.provider]: `type: webhook\nurl: ${webhookUrl}\nsecret: env:ELEVATE_E2E_WEBHOOK_SECRET`,
      [BLOCK.approvers]: [],
      [BLOCK.settings]:
        'maxDuration: 2h\nminDuration: 15m\ndefaultDuration: 30m\nminActiveBeforeDeactivation: 0m',
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toBeUndefined(); // saved: the form closes
    const listed = viewText(await adminPage(ACTION.adminRoles, new RegExp(role)));
    expect(listed).toMatch(new RegExp(`${role}\\* \\(webhook\\) — ops/console\\s+max 2h, no approval`));
  });

  test('edit one setting of that role; the others stay as they were', async () => {
    const roles = await adminPage(ACTION.adminRoles, new RegExp(role));
    const form = await pushForm(roles, ACTION.adminRoleEdit, VIEW.adminRole, role);
    expect(form.private_metadata).toBe(role);
    const settings = initialOf(form, BLOCK.settings);
    expect(settings).toMatch(/^maxDuration: 2h$/m);
    expect(settings).toMatch(/^defaultDuration: 30m$/m);
    const answer = await elevate.submit(ADMIN, form, {
      [BLOCK.settings]: settings.replace(/^maxDuration: 2h$/m, 'maxDuration: 3h'),
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toBeUndefined();
    const listed = viewText(await adminPage(ACTION.adminRoles, new RegExp(`${role}.*\\s+max 3h`)));
    expect(listed).toMatch(new RegExp(`${role}\\* \\(webhook\\) — ops/console\\s+max 3h, no approval`));
    // Opened again, the form shows the new value and the untouched ones.
    const again = await pushForm(
      await adminPage(ACTION.adminRoles, new RegExp(role)),
      ACTION.adminRoleEdit,
      VIEW.adminRole,
      role,
    );
    const now = initialOf(again, BLOCK.settings);
    expect(now).toMatch(/^maxDuration: 3h$/m);
    expect(now).toMatch(/^defaultDuration: 30m$/m);
    expect(now).toMatch(/^minDuration: 15m$/m);
    expect(initialOf(again, BLOCK.provider)).toContain(webhookUrl);
    elevate.slack.closeView(again.id);
  });

  test('editing a role whose approvers never used Elevate keeps its approvers', {
    timeout: SLOW,
  }, async () => {
    const roles = await adminPage(ACTION.adminRoles, /legacy/);
    const form = await pushForm(roles, ACTION.adminRoleEdit, VIEW.adminRole, 'legacy');
    // The picker shows the approvers Slack knows (found by email); the form names the other one.
    expect(pickedUsers(form)).toEqual(['ULEGAPA', 'ULEGAPB']);
    expect(viewText(form)).toContain(GHOST);
    const settings = initialOf(form, BLOCK.settings);
    const answer = await elevate.submit(ADMIN, form, {
      [BLOCK.settings]: settings.replace(/^maxDuration: 2h$/m, 'maxDuration: 4h'),
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toBeUndefined();
    await adminPage(ACTION.adminRoles, /legacy\*[^\n]*\n\s*max 4h/);
    const again = await pushForm(
      await adminPage(ACTION.adminRoles, /legacy/),
      ACTION.adminRoleEdit,
      VIEW.adminRole,
      'legacy',
    );
    expect(pickedUsers(again)).toEqual(['ULEGAPA', 'ULEGAPB']);
    expect(viewText(again)).toContain(GHOST);
    expect(initialOf(again, BLOCK.settings)).toMatch(/^maxDuration: 4h$/m);
    elevate.slack.closeView(again.id);
    // A request still goes to the role's approvers, not to the admins.
    const requester = 'URQLEGACY';
    await requestThroughModal(requester, 'legacy', 'month-end close');
    for (const approver of ['ULEGAPA', 'ULEGAPB']) {
      await elevate.slack.waitFor(`${approver}'s card`, () =>
        elevate.slack
          .channel(elevate.slack.dm(approver))
          .find((m) => names(text(m), requester) && hasButton(m, ACTION.approve)),
      );
    }
    await outboxSettled();
    expect(
      elevate.slack
        .channel(elevate.slack.dm(ADMIN))
        .filter((m) => names(text(m), requester) && hasButton(m, ACTION.approve)),
    ).toEqual([]);
  });

  test('assign eligibility with the user picker; the person is told and sees the role on their board', async () => {
    const user = 'URQNEWBIE';
    const before = await board(user);
    expect(hasButton(before, ACTION.activate, role)).toBe(false);
    const seenUser = seen(user);
    const page = await adminPage(ACTION.adminEligibility, /Assign/);
    const form = await pushForm(page, ACTION.adminEligibilityAssign, VIEW.adminEligibility);
    const picker = form.blocks.find((b) => b.block_id === BLOCK.users) as { element: { type: string } };
    expect(picker.element.type).toBe('users_select');
    const answer = await elevate.submit(ADMIN, form, {
      [BLOCK.users]: user,
      [BLOCK.role]: role,
      [BLOCK.justification]: 'joins the ops rotation',
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toBeUndefined();

    const listed = viewText(await adminPage(ACTION.adminEligibility, new RegExp(email(user))));
    expect(listed).toContain(`${email(user)} → *${role}* (permanent)`);
    await waitForMessage(
      user,
      'the eligibility message',
      (m) => /now eligible/i.test(text(m)) && text(m).includes(role),
      seenUser,
    );
    expect(hasButton(await board(user), ACTION.activate, role)).toBe(true);
  });

  test('revoke a running activation from the admin dialog: the grant is taken back and the person told', async () => {
    const user = 'URQNEWBIE';
    const seenUser = seen(user);
    expect((await elevate.command(user, `activate ${role} 1h triage the queue`)).status).toBe(200);
    const active = await waitForMessage(
      user,
      'the role active',
      (m) => hasButton(m, ACTION.deactivate) && text(m).includes(role),
      seenUser,
    );
    activationId = buttonsOf(active).find((b) => b.actionId === ACTION.deactivate)?.value as string;
    await elevate.slack.waitFor('the webhook grant', () =>
      webhookEvents.find((e) => e.activationId === activationId && e.type === 'grant'),
    );

    const line = new RegExp(`${email(user)} — \\*${role}\\* \\(activation, active`);
    const page = await adminPage(ACTION.adminActivations, line);
    expect(hasButton(page, ACTION.adminRevoke, activationId)).toBe(true);
    const beforeRevoke = seen(user);
    const after = await adminClick(page, ACTION.adminRevoke, /Nothing running|Revoke/, activationId);
    expect(hasButton(after, ACTION.adminRevoke, activationId)).toBe(false);

    const revoke = await elevate.slack.waitFor('the webhook revoke', () =>
      webhookEvents.find((e) => e.activationId === activationId && e.type === 'revoke'),
    );
    expect(revoke.principal.email).toBe(email(user));
    const ended = await waitForMessage(
      user,
      'the role ended',
      (m) => /ended/i.test(text(m)) && text(m).includes(role),
      beforeRevoke,
    );
    expect(text(ended)).toMatch(/revoked by/i);
    expect(text(ended)).toContain(email(ADMIN));
    // The message that offered Deactivate no longer does.
    await elevate.slack.waitFor('the earlier message without Deactivate', () =>
      elevate.slack
        .channel(elevate.slack.dm(user))
        .filter((m) => m.ts === active.ts)
        .every((m) => !hasButton(m, ACTION.deactivate)),
    );
    const shown = await board(user);
    expect(hasButton(shown, ACTION.deactivate, activationId)).toBe(false);
    expect(hasButton(shown, ACTION.activate, role)).toBe(true);
    expect(webhookEvents.filter((e) => e.activationId === activationId).map((e) => e.type)).toEqual([
      'grant',
      'revoke',
    ]);
  });

  test('the audit page shows what the admin did', async () => {
    expect(activationId).not.toBe('');
    const audit = viewText(await adminPage(ACTION.adminAudit, /revoke_started/));
    const admin = email(ADMIN).replace('.', '\\.');
    for (const entry of [
      `${admin} \\*role\\.created\\* ${role}`,
      `${admin} \\*role\\.updated\\* ${role}`,
      `${admin} \\*role\\.updated\\* legacy`,
      `${admin} \\*eligibility\\.assigned\\* ${email('URQNEWBIE').replace('.', '\\.')}/${role}`,
      `${admin} \\*activation\\.revoke_started\\* ${activationId}`,
    ])
      expect(audit).toMatch(new RegExp(entry));
  });
});

// ---- a person Slack does not share an email for ----

describe('a Slack user without an email', () => {
  test('gets a clear message from /elevate, the App Home and a button, and nothing else happens', async () => {
    const user = 'UNOEMAIL';
    elevate.slack.addUser(user, undefined, 'noemail');
    const clear = /knows people by their email address/i;

    const before = seen(user);
    expect((await elevate.command(user, '')).status).toBe(200);
    const answer = await waitForMessage(user, 'the explanation', (m) => clear.test(text(m)), before);
    expect(text(answer)).toMatch(/users:read\.email/);
    expect(text(answer)).not.toMatch(/something went wrong/i);

    expect((await elevate.command(user, 'activate chan-prod 1h please')).status).toBe(200);
    await elevate.slack.waitFor('the explanation again', () => newMessages(user, before).length >= 2);
    expect(newMessages(user, before).every((m) => clear.test(text(m)))).toBe(true);

    expect((await elevate.appHomeOpened(user)).status).toBe(200);
    const home = await elevate.slack.waitFor('the App Home', () => elevate.slack.home(user));
    expect(viewText(home)).toMatch(clear);

    // A click (a replayed Activate button) is answered the same way.
    const clicks = seen(user);
    await elevate.action(user, {
      actions: [
        {
          action_id: ACTION.activate,
          block_id: 'x',
          type: 'button',
          value: 'chan-prod',
          action_ts: '1',
        },
      ],
    });
    await waitForMessage(user, 'the explanation for a click', (m) => clear.test(text(m)), clicks);
    expect(elevate.slack.viewsFor(user)).toEqual([]);
    expect(elevate.slack.channel(CHANNEL).filter((m) => text(m).includes('noemail'))).toEqual([]);
  });
});
