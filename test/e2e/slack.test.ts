import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ACTION, BLOCK, VIEW } from '../../src/chat/slack/ids.ts';
import { buttonsOf, type ElevateServer, startElevate } from '../support/slack-harness.ts';
import { messageText, type SlackMessage, type SlackView } from '../support/slack-workspace.ts';

/**
 * The Slack surface end to end: the real `elevate serve` as a child process, a local Slack Web API,
 * and requests signed as Slack signs them. One server for the file; every test uses its own
 * people (and so its own activations), so tests do not see each other's state.
 *
 * Assertions are what people see: the modal that opens, the cards approvers get and how they
 * change, what the requester is told, the board's buttons — and, for the real grant, the signed
 * webhook the `webhook` provider sends to a local receiver.
 */

const FORM = 'application/x-www-form-urlencoded';
const WEBHOOK_SECRET = 'e2e-webhook-secret-0123456789abcdef0123456789';
const APPROVERS = Array.from({ length: 20 }, (_, i) => `UAP${String(i + 1).padStart(2, '0')}`);
const email = (user: string) => `${user.slice(1).toLowerCase()}@example.com`;
/** The Slack display name: the email's local part. */
const nameOf = (user: string) => user.slice(1).toLowerCase();

interface WebhookEvent {
  type: 'grant' | 'revoke';
  activationId: string;
  principal: { email: string };
  role: { name: string };
  endAt: string | null;
}

let elevate: ElevateServer;
let receiver: Server;
const webhookEvents: WebhookEvent[] = [];

function policy(webhookUrl: string): string {
  const approvers = APPROVERS.map(email);
  const webhook = `{ type: webhook, url: "${webhookUrl}", secret: env:ELEVATE_E2E_WEBHOOK_SECRET }`;
  const eligible = (role: string, ...users: string[]) =>
    users.map((user) => `  - { principal: ${email(user)}, role: ${role} }`).join('\n');
  return `
admins: [${email('UADMIN')}]
roles:
  - name: db-prod
    description: Admin on the production database
    scope: prod/db
    provider: ${webhook}
    settings:
      maxDuration: 4h
      minDuration: 15m
      defaultDuration: 1h
      requireApproval: true
      approvers: [${approvers.slice(0, 3).join(', ')}]
      minActiveBeforeDeactivation: 0m
  - name: crowd
    scope: everyone
    provider: ${webhook}
    settings:
      maxDuration: 2h
      requireApproval: true
      approvers: [${approvers.join(', ')}]
  - name: paged
    scope: pager
    provider: { type: none }
    settings: { requireApproval: true, approvers: [${approvers[18]}] }
  - name: quick
    scope: staging
    provider: { type: none }
    settings:
      maxDuration: 2h
      minDuration: 15m
      defaultDuration: 30m
      minActiveBeforeDeactivation: 0m
  - name: ticketed
    provider: { type: none }
    settings: { requireTicket: true, ticketSystem: Jira, ticketPattern: "^OPS-[0-9]+$" }
  - name: peer
    provider: { type: none }
    settings: { requireApproval: true, approvers: [${email('URQSELF')}, ${approvers[3]}] }
  - name: vault
    provider: { type: none }
eligibility:
${eligible('db-prod', 'URQMAIN', 'URQDENY', 'URQCANCEL', 'URQSTRANGER', 'URQDOUBLE', 'URQMAXDUR', 'URQNOREASON')}
${eligible('crowd', 'URQCROWD')}
${eligible('paged', 'URQPAGED')}
${eligible('quick', 'URQDEACT', 'URQEXTEND', 'URQFAST', 'URQFASTMISS', 'URQVICTIM', 'URQVICTIM2', 'URQHOME', 'URQATTACK', 'URQSIGNED', 'UNONADMIN')}
${eligible('ticketed', 'URQTICKET')}
${eligible('peer', 'URQSELF')}
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
  const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/grants`;
  elevate = await startElevate({
    policy: policy(webhookUrl),
    env: { ELEVATE_E2E_WEBHOOK_SECRET: WEBHOOK_SECRET },
  });
  const people = [
    'UADMIN',
    ...APPROVERS,
    'URQMAIN',
    'URQDENY',
    'URQCANCEL',
    'URQSTRANGER',
    'URQDOUBLE',
    'URQMAXDUR',
    'URQNOREASON',
    'URQCROWD',
    'URQPAGED',
    'URQDEACT',
    'URQEXTEND',
    'URQFAST',
    'URQFASTMISS',
    'URQVICTIM',
    'URQVICTIM2',
    'URQHOME',
    'URQATTACK',
    'URQSIGNED',
    'UNONADMIN',
    'URQTICKET',
    'URQSELF',
    'URQVAULT',
  ];
  for (const user of people) elevate.slack.addUser(user, email(user), nameOf(user));
}, 120_000);

afterAll(async () => {
  receiver?.closeAllConnections();
  receiver?.close();
  if (!elevate) return;
  const output = elevate.output();
  // SIGTERM stops the server cleanly.
  expect(await elevate.stop(), output).toBe(0);
});

// ---- what people see ----

const text = (message: { text: string; blocks: SlackMessage['blocks'] }) => messageText(message);
/** Whether a text names this Slack user: a mention, the email, or the name. */
const names = (content: string, user: string) =>
  content.includes(`<@${user}>`) || content.toLowerCase().includes(email(user));
const hasButton = (message: { blocks: SlackMessage['blocks'] }, actionId: string, value?: string) =>
  buttonsOf(message).some((b) => b.actionId === actionId && (value === undefined || b.value === value));

/** What the user has been shown since `after` messages (ephemerals, DMs, respond posts). */
function newMessages(user: string, after: number): SlackMessage[] {
  return elevate.slack.messagesFor(user).slice(after);
}

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
  // SLACK_E2E_TRACE=1 prints what each step found, to read what people are shown.
  if (process.env.SLACK_E2E_TRACE) console.log(`${user} sees ${what}: ${JSON.stringify(text(found))}`);
  return found;
}

/** `/elevate` and the board it shows. */
async function board(user: string): Promise<SlackMessage> {
  const before = elevate.slack.messagesFor(user).length;
  const response = await elevate.command(user, '');
  expect(response.status).toBe(200);
  return waitForMessage(user, 'the board', (m) => /your roles/i.test(text(m)), before);
}

/** The modal with this callback_id opened for the user after `after` views. */
async function waitForModal(user: string, callbackId: string, after = 0): Promise<SlackView> {
  return elevate.slack.waitFor(`a ${callbackId} modal for ${user}`, () =>
    elevate.slack
      .viewsFor(user)
      .slice(after)
      .find((v) => v.callback_id === callbackId && !v.closed),
  );
}

/** `/elevate` → Activate on the role → the modal. */
async function openActivationModal(user: string, role: string): Promise<SlackView> {
  const shown = await board(user);
  expect(hasButton(shown, ACTION.activate, role), `Activate ${role} on ${text(shown)}`).toBe(true);
  const views = elevate.slack.viewsFor(user).length;
  const click = await elevate.click(user, shown, ACTION.activate, role);
  expect(click.status).toBe(200);
  return waitForModal(user, VIEW.activate, views);
}

/** The approver's card for the requester's pending request (it carries Approve). */
async function cardFor(approver: string, requester: string): Promise<SlackMessage> {
  const card = await elevate.slack.waitFor(`${approver}'s card for ${requester}`, () =>
    elevate.slack
      .channel(elevate.slack.dm(approver))
      .find((m) => names(text(m), requester) && hasButton(m, ACTION.approve)),
  );
  // A copy: what the approver has on screen now, even after the card is updated (a stale click).
  return { ...card, blocks: structuredClone(card.blocks) };
}

/** Every approver's card about this activation, as they look now (by the message ts they had). */
function cardsNow(cards: SlackMessage[]): SlackMessage[] {
  return cards.map(
    (card) => elevate.slack.channel(card.channel).find((m) => m.ts === card.ts) as SlackMessage,
  );
}

const activationIdOf = (card: SlackMessage) =>
  buttonsOf(card).find((b) => b.actionId === ACTION.approve)?.value as string;

/** `/elevate admin` as the admin, then a menu entry; the text of the page it shows once it matches. */
async function adminPage(actionId: string, shows: RegExp): Promise<string> {
  const admin = 'UADMIN';
  const views = elevate.slack.viewsFor(admin).length;
  await elevate.command(admin, 'admin');
  const menu = await waitForModal(admin, VIEW.admin, views);
  const versions = menu.versions.length;
  await elevate.click(admin, menu, actionId);
  const page = await elevate.slack.waitFor(`the admin page ${actionId} showing ${shows}`, () => {
    const candidates = [elevate.slack.view(menu.id), ...elevate.slack.viewsFor(admin).slice(views + 1)];
    return candidates.find(
      (v) =>
        v &&
        (v.id !== menu.id || v.versions.length > versions) &&
        shows.test(text({ text: '', blocks: v.blocks })),
    );
  });
  return text({ text: '', blocks: page.blocks });
}

/** Requests a role through the modal, with a justification; returns the submit's answer. */
async function requestThroughModal(user: string, role: string, fields: Record<string, unknown> = {}) {
  const modal = await openActivationModal(user, role);
  return elevate.submit(user, modal, { [BLOCK.justification]: `e2e: ${user} needs ${role}`, ...fields });
}

/** Every ephemeral/DM the user got that mentions `pattern`. */
const told = (user: string, pattern: RegExp, after = 0) =>
  newMessages(user, after).filter((m) => pattern.test(text(m)));

// ---- the happy path ----

describe('the whole path', () => {
  test('/elevate → modal → submit → approver cards → Approve → real grant → requester told → every card updated', async () => {
    const requester = 'URQMAIN';
    const approvers = APPROVERS.slice(0, 3);
    const modal = await openActivationModal(requester, 'db-prod');
    // The modal offers durations inside the role's bounds, the default preselected.
    const duration = modal.blocks.find((b) => b.block_id === BLOCK.duration) as {
      element: { options: { value: string }[]; initial_option?: { value: string } };
    };
    const offered = duration.element.options.map((o) => Number(o.value));
    expect(Math.min(...offered)).toBe(15);
    expect(Math.max(...offered)).toBe(240);
    expect(duration.element.initial_option?.value).toBe('60');

    const seenBefore = elevate.slack.messagesFor(requester).length;
    const submitted = await elevate.submit(requester, modal, {
      [BLOCK.duration]: '120',
      [BLOCK.justification]: 'rotate the replication password',
    });
    expect(submitted.status).toBe(200);
    expect(submitted.body).toBeUndefined(); // the modal closes
    expect(elevate.slack.view(modal.id)?.closed).toBe(true);

    // Each approver gets a card in their DM with the request.
    const cards = await Promise.all(approvers.map((a) => cardFor(a, requester)));
    for (const card of cards) {
      const content = text(card);
      expect(content).toContain('db-prod');
      expect(content).toContain('prod/db');
      expect(content).toContain('2h');
      expect(content).toContain('rotate the replication password');
      expect(hasButton(card, ACTION.deny)).toBe(true);
    }
    const id = activationIdOf(cards[0] as SlackMessage);
    expect(cards.map(activationIdOf)).toEqual([id, id, id]);
    // The requester is told it is waiting, and nothing is granted yet.
    await waitForMessage(requester, 'the request submitted', (m) => /approv/i.test(text(m)), seenBefore);
    expect(webhookEvents.filter((e) => e.activationId === id)).toEqual([]);
    const pendingBoard = await board(requester);
    expect(hasButton(pendingBoard, ACTION.cancel, id)).toBe(true);

    // Approve.
    const approver = approvers[1] as string;
    const click = await elevate.click(approver, cards[1] as SlackMessage, ACTION.approve, id);
    expect(click.status).toBe(200);

    // The real grant: the webhook receiver gets the grant for this person and role.
    const grant = await elevate.slack.waitFor('the webhook grant', () =>
      webhookEvents.find((e) => e.activationId === id && e.type === 'grant'),
    );
    expect(grant.principal.email).toBe(email(requester));
    expect(grant.role.name).toBe('db-prod');
    expect(grant.endAt).not.toBeNull();

    // The requester is told it is active, with Extend / Deactivate.
    const active = await waitForMessage(
      requester,
      'the activation active',
      (m) => /active/i.test(text(m)) && hasButton(m, ACTION.deactivate, id),
      seenBefore,
    );
    expect(hasButton(active, ACTION.extend, id)).toBe(true);

    // Every approver's copy is updated in place: outcome and who decided, no buttons left.
    const updated = await elevate.slack.waitFor('every card updated', () => {
      const now = cardsNow(cards);
      return (
        now.every((c) => c.updates > 0 && /approved/i.test(text(c)) && !hasButton(c, ACTION.approve)) && now
      );
    });
    for (const card of updated) expect(names(text(card), approver)).toBe(true);

    // The board shows the role active now.
    const after = await board(requester);
    expect(hasButton(after, ACTION.deactivate, id)).toBe(true);
    expect(hasButton(after, ACTION.activate, 'db-prod')).toBe(false);
  });

  test('App Home shows the board (views.publish on app_home_opened) and is refreshed after a change', async () => {
    const user = 'URQHOME';
    const published = () => elevate.slack.home(user)?.versions.length ?? 0;
    const response = await elevate.appHomeOpened(user);
    expect(response.status).toBe(200);
    const home = await elevate.slack.waitFor(
      'the App Home published',
      () => published() > 0 && elevate.slack.home(user),
    );
    expect(text({ text: '', blocks: home.blocks })).toContain('quick');
    expect(hasButton(home, ACTION.activate, 'quick')).toBe(true);
    // Activating elsewhere refreshes the tab without the user reopening it.
    const before = published();
    await elevate.command(user, 'activate quick 30m home check');
    const refreshed = await elevate.slack.waitFor('the App Home refreshed with the active role', () => {
      const now = elevate.slack.home(user);
      return now && published() > before && hasButton(now, ACTION.deactivate) && now;
    });
    expect(hasButton(refreshed, ACTION.activate, 'quick')).toBe(false);
  });
});

// ---- requests decided or withdrawn ----

describe('deny, cancel, deactivate, extend', () => {
  test('Deny asks for a reason; the requester is told it; every card shows the denial', async () => {
    const requester = 'URQDENY';
    const seen = elevate.slack.messagesFor(requester).length;
    const submitted = await requestThroughModal(requester, 'db-prod');
    expect(submitted.status).toBe(200);
    const cards = await Promise.all(APPROVERS.slice(0, 3).map((a) => cardFor(a, requester)));
    const id = activationIdOf(cards[0] as SlackMessage);
    const denier = APPROVERS[2] as string;

    const views = elevate.slack.viewsFor(denier).length;
    await elevate.click(denier, cards[2] as SlackMessage, ACTION.deny, id);
    const modal = await waitForModal(denier, VIEW.deny, views);
    const answer = await elevate.submit(denier, modal, { [BLOCK.comment]: 'not during the change freeze' });
    expect(answer.status).toBe(200);
    expect((answer.body as { response_action?: string } | undefined)?.response_action).not.toBe('errors');

    const denied = await waitForMessage(requester, 'the denial', (m) => /denied/i.test(text(m)), seen);
    expect(text(denied)).toContain('not during the change freeze');
    const updated = await elevate.slack.waitFor('every card shows the denial', () => {
      const now = cardsNow(cards);
      return now.every((c) => /denied/i.test(text(c)) && !hasButton(c, ACTION.approve)) && now;
    });
    for (const card of updated) {
      expect(names(text(card), denier)).toBe(true);
      expect(text(card)).toContain('not during the change freeze');
    }
    expect(webhookEvents.filter((e) => e.activationId === id)).toEqual([]);
    // The role can be requested again.
    expect(hasButton(await board(requester), ACTION.activate, 'db-prod')).toBe(true);
  });

  test('Cancel withdraws a pending request; approvers see it cancelled', async () => {
    const requester = 'URQCANCEL';
    await requestThroughModal(requester, 'db-prod');
    const cards = await Promise.all(APPROVERS.slice(0, 3).map((a) => cardFor(a, requester)));
    const id = activationIdOf(cards[0] as SlackMessage);
    const shown = await board(requester);
    const seen = elevate.slack.messagesFor(requester).length;
    await elevate.click(requester, shown, ACTION.cancel, id);
    // The answer itself: the request's own notice (with its Cancel button) may arrive after `seen`.
    await waitForMessage(
      requester,
      'the cancellation',
      (m) => /request for db-prod is cancelled/i.test(text(m)),
      seen,
    );
    const after = await board(requester);
    expect(hasButton(after, ACTION.cancel, id)).toBe(false);
    expect(hasButton(after, ACTION.activate, 'db-prod')).toBe(true);
    await elevate.slack.waitFor('every card shows the cancellation', () =>
      cardsNow(cards).every((c) => /cancel/i.test(text(c)) && !hasButton(c, ACTION.approve)),
    );
    // A late Approve on the cancelled card changes nothing and says why.
    const late = elevate.slack.messagesFor(APPROVERS[0] as string).length;
    await elevate.click(APPROVERS[0] as string, cards[0] as SlackMessage, ACTION.approve, id);
    await waitForMessage(
      APPROVERS[0] as string,
      'why it cannot be approved',
      (m) => /cancel/i.test(text(m)),
      late,
    );
    expect(webhookEvents.filter((e) => e.activationId === id)).toEqual([]);
  });

  test('Deactivate ends an active role; the requester is told and can activate again', async () => {
    const requester = 'URQDEACT';
    const seen = elevate.slack.messagesFor(requester).length;
    await requestThroughModal(requester, 'quick');
    const active = await waitForMessage(
      requester,
      'the role active',
      (m) => hasButton(m, ACTION.deactivate),
      seen,
    );
    const id = buttonsOf(active).find((b) => b.actionId === ACTION.deactivate)?.value as string;
    const before = elevate.slack.messagesFor(requester).length;
    await elevate.click(requester, active, ACTION.deactivate, id);
    await waitForMessage(requester, 'the role ended', (m) => /(ended|deactivated)/i.test(text(m)), before);
    const after = await board(requester);
    expect(hasButton(after, ACTION.deactivate, id)).toBe(false);
    expect(hasButton(after, ACTION.activate, 'quick')).toBe(true);
  });

  test('Extend asks for more time and moves the end', async () => {
    const requester = 'URQEXTEND';
    const seen = elevate.slack.messagesFor(requester).length;
    await requestThroughModal(requester, 'quick', { [BLOCK.duration]: '30' });
    const active = await waitForMessage(
      requester,
      'the role active',
      (m) => hasButton(m, ACTION.extend),
      seen,
    );
    const id = buttonsOf(active).find((b) => b.actionId === ACTION.extend)?.value as string;
    const untilBefore = /active until ([0-9-]+ [0-9:]+ UTC)/.exec(text(await board(requester)))?.[1];
    expect(untilBefore).toBeDefined();

    const views = elevate.slack.viewsFor(requester).length;
    await elevate.click(requester, active, ACTION.extend, id);
    const modal = await waitForModal(requester, VIEW.extend, views);
    const before = elevate.slack.messagesFor(requester).length;
    const answer = await elevate.submit(requester, modal, {
      [BLOCK.duration]: '60',
      [BLOCK.justification]: 'the migration runs long',
    });
    expect(answer.status).toBe(200);
    expect((answer.body as { response_action?: string } | undefined)?.response_action).not.toBe('errors');
    await waitForMessage(requester, 'the extension', (m) => /extend/i.test(text(m)), before);
    const after = /active until ([0-9-]+ [0-9:]+ UTC)/.exec(text(await board(requester)))?.[1];
    expect(after).toBeDefined();
    // 30 min + 60 min more: the end moved by an hour.
    const moved =
      Date.parse(`${after?.replace(' UTC', 'Z').replace(' ', 'T')}`) -
      Date.parse(`${untilBefore?.replace(' UTC', 'Z').replace(' ', 'T')}`);
    expect(moved).toBe(60 * 60_000);
  });
});

// ---- the fast path ----

describe('fast path', () => {
  test('/elevate activate <role> <duration> <reason> with everything given: active without a modal', async () => {
    const requester = 'URQFAST';
    const views = elevate.slack.viewsFor(requester).length;
    const seen = elevate.slack.messagesFor(requester).length;
    const response = await elevate.command(requester, 'activate quick 45m fix the staging deploy');
    expect(response.status).toBe(200);
    const active = await waitForMessage(
      requester,
      'the role active',
      (m) => hasButton(m, ACTION.deactivate),
      seen,
    );
    expect(text(active)).toContain('quick');
    expect(elevate.slack.viewsFor(requester).length).toBe(views);
    const shown = await board(requester);
    expect(text(shown)).toMatch(/active until/);
  });

  test('/elevate activate <role> without a reason: the modal opens pre-filled', async () => {
    const requester = 'URQFASTMISS';
    const views = elevate.slack.viewsFor(requester).length;
    const response = await elevate.command(requester, 'activate quick 1h');
    expect(response.status).toBe(200);
    const modal = await waitForModal(requester, VIEW.activate, views);
    expect(modal.private_metadata).toBe('quick');
    const duration = modal.blocks.find((b) => b.block_id === BLOCK.duration) as {
      element: { initial_option?: { value: string } };
    };
    expect(duration.element.initial_option?.value).toBe('60');
    const seen = elevate.slack.messagesFor(requester).length;
    const answer = await elevate.submit(requester, modal, { [BLOCK.justification]: 'deploy hotfix' });
    expect(answer.status).toBe(200);
    expect(answer.body).toBeUndefined();
    await waitForMessage(requester, 'the role active', (m) => hasButton(m, ACTION.deactivate), seen);
  });
});

// ---- refusals ----

describe('refused', () => {
  test('self-approval: a requester on the approver list gets no card and cannot approve', async () => {
    const requester = 'URQSELF';
    const other = APPROVERS[3] as string;
    await requestThroughModal(requester, 'peer');
    const card = await cardFor(other, requester);
    const id = activationIdOf(card);
    expect(
      elevate.slack.channel(elevate.slack.dm(requester)).filter((m) => hasButton(m, ACTION.approve, id)),
    ).toEqual([]);
    // The requester replays the approver's button as their own click.
    const seen = elevate.slack.messagesFor(requester).length;
    const click = await elevate.click(requester, card, ACTION.approve, id);
    expect(click.status).toBe(200);
    await waitForMessage(
      requester,
      'the refusal',
      (m) => /(own|yourself|not an approver|cannot|can't)/i.test(text(m)),
      seen,
    );
    expect(told(requester, /approved by/i, seen)).toEqual([]);
    expect(hasButton(cardsNow([card])[0] as SlackMessage, ACTION.approve, id)).toBe(true);
    expect(hasButton(await board(requester), ACTION.cancel, id)).toBe(true);
  });

  test('a non-approver clicking Approve changes nothing', async () => {
    const requester = 'URQSTRANGER';
    await requestThroughModal(requester, 'db-prod');
    const card = await cardFor(APPROVERS[0] as string, requester);
    const id = activationIdOf(card);
    const stranger = APPROVERS[9] as string; // an approver of other roles, not of db-prod
    const seen = elevate.slack.messagesFor(stranger).length;
    await elevate.click(stranger, card, ACTION.approve, id);
    await waitForMessage(
      stranger,
      'the refusal',
      (m) => /(not an approver|not allowed|cannot|can't|may not)/i.test(text(m)),
      seen,
    );
    expect(hasButton(cardsNow([card])[0] as SlackMessage, ACTION.approve, id)).toBe(true);
    expect(hasButton(await board(requester), ACTION.cancel, id)).toBe(true);
    expect(webhookEvents.filter((e) => e.activationId === id)).toEqual([]);
  });

  test('an ineligible role: refused on the fast path, and a forged modal submission is refused', async () => {
    const requester = 'URQVAULT';
    const seen = elevate.slack.messagesFor(requester).length;
    const response = await elevate.command(requester, 'activate vault 1h I want in');
    expect(response.status).toBe(200);
    await waitForMessage(requester, 'the refusal', (m) => /(not eligible|eligib)/i.test(text(m)), seen);
    // A hand-made submission of the activation modal for that role.
    const forged = {
      id: 'VFORGED1',
      user: requester,
      type: 'modal',
      callback_id: VIEW.activate,
      private_metadata: 'vault',
      hash: 'x',
      blocks: [],
      versions: [],
      closed: false,
      raw: { type: 'modal' },
    } satisfies SlackView;
    const answer = await elevate.viewSubmission(requester, forged, {
      [BLOCK.duration]: {
        value: {
          type: 'static_select',
          selected_option: { value: '60', text: { type: 'plain_text', text: '1h' } },
        },
      },
      [BLOCK.justification]: { value: { type: 'plain_text_input', value: 'I want in' } },
    });
    expect(answer.status).toBe(200);
    const refusedInline =
      (answer.body as { response_action?: string } | undefined)?.response_action === 'errors';
    if (!refusedInline) {
      await waitForMessage(
        requester,
        'the refusal of the forged submission',
        (m) => /eligib/i.test(text(m)),
        seen + 1,
      );
    }
    const shown = await board(requester);
    expect(text(shown)).not.toContain('vault');
    expect(
      APPROVERS.flatMap((a) => elevate.slack.channel(elevate.slack.dm(a))).filter((m) =>
        names(text(m), requester),
      ),
    ).toEqual([]);
  });

  test('a duration over the maximum comes back inline on the duration field', async () => {
    const requester = 'URQMAXDUR';
    const modal = await openActivationModal(requester, 'db-prod');
    // 8 h is not on the list (max 4 h): a tampered client sends it anyway.
    const answer = await elevate.submit(requester, modal, {
      [BLOCK.duration]: '480',
      [BLOCK.justification]: 'longer please',
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      response_action: 'errors',
      errors: { [BLOCK.duration]: expect.any(String) },
    });
    expect((answer.body as { errors: Record<string, string> }).errors[BLOCK.duration]).toMatch(
      /(4h|maximum|at most)/i,
    );
    expect(elevate.slack.view(modal.id)?.closed).toBe(false);
    expect(hasButton(await board(requester), ACTION.activate, 'db-prod')).toBe(true);
  });

  test('a missing justification comes back inline on the justification field', async () => {
    const requester = 'URQNOREASON';
    const modal = await openActivationModal(requester, 'db-prod');
    const answer = await elevate.submit(requester, modal, { [BLOCK.justification]: null });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      response_action: 'errors',
      errors: { [BLOCK.justification]: expect.any(String) },
    });
    expect(hasButton(await board(requester), ACTION.activate, 'db-prod')).toBe(true);
  });

  test('a ticket number that does not match the pattern comes back inline on the ticket field', async () => {
    const requester = 'URQTICKET';
    const modal = await openActivationModal(requester, 'ticketed');
    expect(modal.blocks.some((b) => b.block_id === BLOCK.ticketNumber)).toBe(true);
    const answer = await elevate.submit(requester, modal, {
      [BLOCK.justification]: 'incident',
      [BLOCK.ticketNumber]: 'INC-42',
    });
    expect(answer.body).toMatchObject({
      response_action: 'errors',
      errors: { [BLOCK.ticketNumber]: expect.any(String) },
    });
    // A matching number goes through.
    const seen = elevate.slack.messagesFor(requester).length;
    const ok = await elevate.submit(requester, modal, {
      [BLOCK.justification]: 'incident',
      [BLOCK.ticketNumber]: 'OPS-42',
    });
    expect(ok.body).toBeUndefined();
    await waitForMessage(requester, 'the role active', (m) => hasButton(m, ACTION.deactivate), seen);
  });

  test('a non-admin is refused politely by the admin dialogs, also with forged clicks and submissions', async () => {
    const user = 'UNONADMIN';
    const views = elevate.slack.viewsFor(user).length;
    const seen = elevate.slack.messagesFor(user).length;
    await elevate.command(user, 'admin');
    await waitForMessage(user, 'the refusal', (m) => /admin/i.test(text(m)), seen);
    // Forged: a click on an admin menu entry and a submitted role form.
    await elevate.action(user, {
      container: {
        type: 'message',
        message_ts: '1.000001',
        channel_id: elevate.slack.dm(user),
        is_ephemeral: true,
      },
      actions: [
        { action_id: ACTION.adminRoleCreate, block_id: 'x', type: 'button', value: 'x', action_ts: '1' },
      ],
    });
    await elevate.slack.waitFor(
      'the refusal of the forged admin click',
      () => told(user, /admin/i, seen).length >= 2,
    );
    const forged = {
      id: 'VFORGED2',
      user,
      type: 'modal',
      callback_id: VIEW.adminRole,
      private_metadata: '',
      hash: 'x',
      blocks: [],
      versions: [],
      closed: false,
      raw: { type: 'modal' },
    } satisfies SlackView;
    const answer = await elevate.viewSubmission(user, forged, {
      [BLOCK.name]: { value: { type: 'plain_text_input', value: 'hacked' } },
      [BLOCK.description]: { value: { type: 'plain_text_input', value: 'mine now' } },
      [BLOCK.scope]: { value: { type: 'plain_text_input', value: 'all' } },
      [BLOCK.provider]: { value: { type: 'plain_text_input', value: 'none' } },
      [BLOCK.settings]: { value: { type: 'plain_text_input', value: '' } },
    });
    expect(answer.status).toBe(200);
    expect(
      elevate.slack
        .viewsFor(user)
        .slice(views)
        .filter((v) => v.callback_id?.startsWith('elevate_admin')),
    ).toEqual([]);
    expect(answer.body).toMatchObject({ response_action: 'errors' });
    // The admin's role list does not have it.
    const roles = await adminPage(ACTION.adminRoles, /db-prod/);
    expect(roles).not.toContain('hacked');
    // Both attempts are in the audit trail as refused.
    const audit = await adminPage(ACTION.adminAudit, /refused\.admin\.elevate_admin_role_create/);
    expect(audit).toContain(email(user));
  });

  test('a button payload forged by another user changes nothing', async () => {
    const victim = 'URQVICTIM';
    const attacker = 'URQATTACK';
    const seenVictim = elevate.slack.messagesFor(victim).length;
    await elevate.command(victim, 'activate quick 1h victim work');
    const active = await waitForMessage(
      victim,
      'the role active',
      (m) => hasButton(m, ACTION.deactivate),
      seenVictim,
    );
    const id = buttonsOf(active).find((b) => b.actionId === ACTION.deactivate)?.value as string;
    const victimAfter = elevate.slack.messagesFor(victim).length;

    // The attacker replays the victim's Deactivate button as their own click.
    const seen = elevate.slack.messagesFor(attacker).length;
    await elevate.click(attacker, active, ACTION.deactivate, id);
    await waitForMessage(
      attacker,
      'the refusal',
      (m) => /(not yours|your own|not allowed|cannot|can't|may not|only)/i.test(text(m)),
      seen,
    );
    // The victim's role is still active and they were told nothing.
    expect(hasButton(await board(victim), ACTION.deactivate, id)).toBe(true);
    expect(told(victim, /(ended|deactivated)/i, victimAfter)).toEqual([]);
    // The refused attempt is in the audit trail, with who tried.
    const audit = await adminPage(ACTION.adminAudit, new RegExp(`refused\\.\\S*deactivate\\S* ${id}`));
    expect(audit).toContain(email(attacker));
  });

  test("a forged Extend click opens no modal about someone else's activation", async () => {
    const victim = 'URQVICTIM';
    const attacker = 'URQATTACK';
    const shown = await board(victim);
    const id = buttonsOf(shown).find((b) => b.actionId === ACTION.extend)?.value as string;
    expect(id).toBeDefined();
    const seen = elevate.slack.messagesFor(attacker).length;
    const views = elevate.slack.viewsFor(attacker).length;
    await elevate.click(attacker, shown, ACTION.extend, id);
    const extendModals = () =>
      elevate.slack
        .viewsFor(attacker)
        .slice(views)
        .filter((v) => v.callback_id === VIEW.extend);
    await elevate.slack.waitFor(
      'an answer to the forged Extend',
      () => newMessages(attacker, seen).length >= 1 || extendModals().length > 0,
    );
    // No modal about someone else's activation (it would show their role and end time).
    expect(extendModals().map((v) => text({ text: '', blocks: v.blocks }))).toEqual([]);
    expect(text(newMessages(attacker, seen)[0] as SlackMessage)).toMatch(
      /(not yours|your own|not allowed|cannot|can't|may not|only)/i,
    );
  });

  test("an extension submitted by another user for someone else's activation is refused", async () => {
    const victim = 'URQVICTIM2';
    const attacker = 'URQATTACK';
    const seenVictim = elevate.slack.messagesFor(victim).length;
    await elevate.command(victim, 'activate quick 30m victim work');
    const active = await waitForMessage(
      victim,
      'the role active',
      (m) => hasButton(m, ACTION.extend),
      seenVictim,
    );
    const id = buttonsOf(active).find((b) => b.actionId === ACTION.extend)?.value as string;
    const until = /active until ([0-9-]+ [0-9:]+ UTC)/.exec(text(await board(victim)))?.[1];
    expect(until).toBeDefined();
    // A hand-made submission of the extend modal with the victim's activation id.
    const forged = {
      id: 'VFORGED3',
      user: attacker,
      type: 'modal',
      callback_id: VIEW.extend,
      private_metadata: id,
      hash: 'x',
      blocks: [],
      versions: [],
      closed: false,
      raw: { type: 'modal' },
    } satisfies SlackView;
    const answer = await elevate.viewSubmission(attacker, forged, {
      [BLOCK.duration]: {
        value: {
          type: 'static_select',
          selected_option: { value: '60', text: { type: 'plain_text', text: '1h' } },
        },
      },
      [BLOCK.justification]: { value: { type: 'plain_text_input', value: 'mine now' } },
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ response_action: 'errors' });
    const after = /active until ([0-9-]+ [0-9:]+ UTC)/.exec(text(await board(victim)))?.[1];
    expect(after).toBe(until);
  });
});

// ---- requests that do not come from Slack ----

describe('signature checks', () => {
  const commandBody = (user: string) =>
    new URLSearchParams({
      team_id: 'T0FAKE',
      channel_id: `D${user}`,
      user_id: user,
      user_name: nameOf(user),
      command: '/elevate',
      text: 'activate quick 1h unsigned',
      response_url: elevate.slack.responseUrl(user),
      trigger_id: elevate.slack.trigger(user),
    }).toString();

  test.each([
    [
      'a bad signature',
      (body: string, now: number) => ({
        'x-slack-request-timestamp': String(now),
        'x-slack-signature': elevate.sign(body, now, 'wrong-secret'),
      }),
    ],
    [
      'a body changed after signing',
      (body: string, now: number) => ({
        'x-slack-request-timestamp': String(now),
        'x-slack-signature': elevate.sign(`${body}x`, now),
      }),
    ],
    ['no signature header', (_body: string, now: number) => ({ 'x-slack-request-timestamp': String(now) })],
    [
      'no timestamp header',
      (body: string, now: number) => ({ 'x-slack-signature': elevate.sign(body, now) }),
    ],
    ['no headers at all', () => ({})],
    [
      'a stale timestamp (6 minutes old)',
      (body: string, now: number) => ({
        'x-slack-request-timestamp': String(now - 360),
        'x-slack-signature': elevate.sign(body, now - 360),
      }),
    ],
    [
      'a future timestamp (6 minutes ahead)',
      (body: string, now: number) => ({
        'x-slack-request-timestamp': String(now + 360),
        'x-slack-signature': elevate.sign(body, now + 360),
      }),
    ],
  ])('%s → 401 and nothing changes', async (_name, headers) => {
    const user = 'URQSIGNED';
    const body = commandBody(user);
    const calls = elevate.slack.calls.length;
    const seen = elevate.slack.messagesFor(user).length;
    const now = Math.floor(Date.now() / 1000);
    const response = await elevate.post(body, { 'content-type': FORM, ...headers(body, now) });
    expect(response.status).toBe(401);
    // The request never reached a handler: no Slack call about it, nothing shown, still only eligible.
    expect(elevate.slack.calls.slice(calls).filter((c) => JSON.stringify(c.args).includes(user))).toEqual([]);
    expect(newMessages(user, seen)).toEqual([]);
    const shown = await board(user);
    expect(hasButton(shown, ACTION.activate, 'quick')).toBe(true);
    expect(hasButton(shown, ACTION.deactivate)).toBe(false);
  });

  test('a correctly signed request with the same body is accepted (the checks are not refusing everything)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const body = new URLSearchParams({
      team_id: 'T0FAKE',
      channel_id: 'DUADMIN',
      user_id: 'UADMIN',
      command: '/elevate',
      text: 'help',
      response_url: elevate.slack.responseUrl('UADMIN'),
      trigger_id: elevate.slack.trigger('UADMIN'),
    }).toString();
    const response = await elevate.post(body, {
      'content-type': FORM,
      'x-slack-request-timestamp': String(now),
      'x-slack-signature': elevate.sign(body, now),
    });
    expect(response.status).toBe(200);
  });
});

// ---- races ----

describe('concurrent decisions', () => {
  test('a double click on Approve: one decision, the other click is told who decided', async () => {
    const requester = 'URQDOUBLE';
    const seenRequester = elevate.slack.messagesFor(requester).length;
    await requestThroughModal(requester, 'db-prod');
    const approver = APPROVERS[0] as string;
    const cards = await Promise.all(APPROVERS.slice(0, 3).map((a) => cardFor(a, requester)));
    const id = activationIdOf(cards[0] as SlackMessage);
    const seen = elevate.slack.messagesFor(approver).length;
    const clicks = await Promise.all([
      elevate.click(approver, cards[0] as SlackMessage, ACTION.approve, id),
      elevate.click(approver, cards[0] as SlackMessage, ACTION.approve, id),
    ]);
    expect(clicks.map((c) => c.status)).toEqual([200, 200]);
    await elevate.slack.waitFor('the grant', () =>
      webhookEvents.find((e) => e.activationId === id && e.type === 'grant'),
    );
    await waitForMessage(
      approver,
      '"already approved by …"',
      (m) => /already approved/i.test(text(m)) && (names(text(m), approver) || /by you/i.test(text(m))),
      seen,
    );
    await elevate.slack.waitFor('every card updated', () =>
      cardsNow(cards).every((c) => /approved by/i.test(text(c)) && !hasButton(c, ACTION.approve)),
    );
    await waitForMessage(
      requester,
      'the role active',
      (m) => hasButton(m, ACTION.deactivate, id),
      seenRequester,
    );
    expect(webhookEvents.filter((e) => e.activationId === id && e.type === 'grant')).toHaveLength(1);
    expect(told(approver, /already approved/i, seen)).toHaveLength(1);
    // The requester heard of one approval only.
    expect(told(requester, /approved by/i, seenRequester).length).toBeLessThanOrEqual(1);
  });

  test('20 approvers clicking Approve at once: one decision, 19 told who decided', async () => {
    const requester = 'URQCROWD';
    const seenRequester = elevate.slack.messagesFor(requester).length;
    await requestThroughModal(requester, 'crowd');
    const cards = await Promise.all(APPROVERS.map((a) => cardFor(a, requester)));
    const id = activationIdOf(cards[0] as SlackMessage);
    const seen = APPROVERS.map((a) => elevate.slack.messagesFor(a).length);
    const clicks = await Promise.all(
      APPROVERS.map((a, i) => elevate.click(a, cards[i] as SlackMessage, ACTION.approve, id)),
    );
    expect(clicks.every((c) => c.status === 200)).toBe(true);

    const updated = await elevate.slack.waitFor('all 20 cards updated', () => {
      const now = cardsNow(cards);
      return now.every((c) => /approved by/i.test(text(c)) && !hasButton(c, ACTION.approve)) && now;
    });
    // Exactly one approver is named as the decider, the same on every card.
    const deciders = APPROVERS.filter((a) => names(text(updated[0] as SlackMessage), a));
    expect(deciders).toHaveLength(1);
    const winner = deciders[0] as string;
    for (const card of updated) expect(names(text(card), winner)).toBe(true);
    // Everyone else is told who decided.
    await Promise.all(
      APPROVERS.filter((a) => a !== winner).map((a) =>
        waitForMessage(
          a,
          `"already approved by ${winner}"`,
          (m) => /already approved/i.test(text(m)) && names(text(m), winner),
          seen[APPROVERS.indexOf(a)],
        ),
      ),
    );
    expect(told(winner, /already approved/i, seen[APPROVERS.indexOf(winner)])).toEqual([]);
    await elevate.slack.waitFor('the grant', () =>
      webhookEvents.find((e) => e.activationId === id && e.type === 'grant'),
    );
    await waitForMessage(
      requester,
      'the role active',
      (m) => hasButton(m, ACTION.deactivate, id),
      seenRequester,
    );
    expect(webhookEvents.filter((e) => e.activationId === id && e.type === 'grant')).toHaveLength(1);
  });
});

// ---- delivery ----

describe('notification delivery', () => {
  test('chat.postMessage answering 429 with Retry-After, then 200: the card is delivered once', async () => {
    const requester = 'URQPAGED';
    const approver = APPROVERS[18] as string;
    const calls = elevate.slack.calls.length;
    elevate.slack.api.failNext({ status: 429, retryAfter: 1 }, 'chat.postMessage');
    await requestThroughModal(requester, 'paged');
    const card = await cardFor(approver, requester);
    expect(card).toBeDefined();
    const posts = elevate.slack.calls.slice(calls).filter((c) => c.method === 'chat.postMessage');
    const limited = posts.filter((c) => c.status === 429);
    expect(limited).toHaveLength(1);
    // Whatever message met the 429 went out exactly once afterwards.
    const [first] = limited as [(typeof posts)[number]];
    await elevate.slack.waitFor('the rate-limited message delivered', () =>
      elevate.slack.calls
        .slice(calls)
        .some(
          (c) =>
            c.method === 'chat.postMessage' &&
            c.status === 200 &&
            c.args.channel === first.args.channel &&
            c.args.text === first.args.text,
        ),
    );
    const delivered = elevate.slack.calls
      .slice(calls)
      .filter(
        (c) =>
          c.method === 'chat.postMessage' &&
          c.status === 200 &&
          c.args.channel === first.args.channel &&
          c.args.text === first.args.text,
      );
    expect(delivered).toHaveLength(1);
    // And the approver has one card for this request, not two.
    expect(
      elevate.slack.channel(elevate.slack.dm(approver)).filter((m) => names(text(m), requester)),
    ).toHaveLength(1);
  });
});
