import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents } from '../../../src/audit/audit.sql.ts';
import { ACTION, BLOCK, INPUT_ACTION, VIEW } from '../../../src/chat/slack/ids.ts';
import { createSlackPlatform, type SlackPlatform } from '../../../src/chat/slack/slack-platform.ts';
import { loadConfig } from '../../../src/config.ts';
import { eq } from '../../../src/db/drizzle.ts';
import { activations } from '../../../src/elevation/activation.sql.ts';
import { notifications } from '../../../src/elevation/notification.sql.ts';
import { createHttpServer } from '../../../src/http/server.ts';
import { createNotificationDelivery } from '../../../src/jobs/deliver-notifications.ts';
import { createLogger } from '../../../src/log.ts';
import { createMetrics } from '../../../src/metrics.ts';
import { createCore } from '../../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../../support/db.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../../support/fake-slack-api.ts';

const SECRET = 'test-signing-secret';
const TEAM = 'T0FAKE';
const ALICE = 'U0ALICE'; // requester
const BOB = 'U0BOB'; // approver
const EVE = 'U0EVE'; // neither

let database: TestDatabase;
let core: ReturnType<typeof createCore>;
let fake: FakeSlackApi;
let slack: SlackPlatform;
let server: ReturnType<typeof createHttpServer>;
let base: string;
let delivery: ReturnType<typeof createNotificationDelivery>;
const responses: { url: string; body: Record<string, unknown> }[] = [];
let responseServer: ReturnType<typeof createServer>;
let responseBase: string;

beforeAll(async () => {
  database = await openTestDatabase();
  core = createCore(database.db);
  fake = await startFakeSlackApi();
  fake.addUser({ id: ALICE, email: 'alice@example.com' });
  fake.addUser({ id: BOB, email: 'bob@example.com' });
  fake.addUser({ id: EVE, email: 'eve@example.com' });
  fake.addUser({ id: 'U0NOMAIL' });
  let ts = 1000;
  fake.method('users.info', ['users:read'], (args, api) => {
    const user = api.users.get(String(args.user));
    if (!user) return { ok: false, error: 'user_not_found' };
    return { user: { id: user.id, team_id: api.team.id, name: user.id, profile: { email: user.email } } };
  });
  fake.method('conversations.open', [], (args) => ({ channel: { id: `D${String(args.users)}` } }));
  fake.method('chat.postMessage', [], (args) => ({ channel: String(args.channel), ts: `${ts++}.000100` }));
  fake.method('chat.update', [], (args) => ({ channel: String(args.channel), ts: String(args.ts) }));
  fake.method('views.open', [], () => ({ view: { id: 'V1' } }));
  fake.method('views.publish', [], () => ({ view: { id: 'V2' } }));

  responseServer = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => {
      text += chunk;
    });
    req.on('end', () => {
      responses.push({ url: req.url ?? '', body: JSON.parse(text) });
      res.writeHead(200).end('ok');
    });
  });
  responseServer.listen(0, '127.0.0.1');
  await once(responseServer, 'listening');
  responseBase = `http://127.0.0.1:${(responseServer.address() as AddressInfo).port}`;

  const log = createLogger('silent');
  const config = loadConfig({
    SLACK_BOT_TOKEN: fake.token,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: fake.url,
  });
  const created = createSlackPlatform({
    config,
    db: database.db,
    clock: core.clock,
    log,
    activations: core.activations,
    admin: core.admin,
    alerts: core.alerts,
    reviews: core.reviews,
    boltOptions: { botId: 'B0ELEVATE', botUserId: fake.botUserId },
  });
  if (!created) throw new Error('Slack should be on');
  slack = created;
  await slack.start();
  delivery = createNotificationDelivery({
    db: database.db,
    clock: core.clock,
    log,
    platforms: [slack.delivery],
  });
  server = createHttpServer({
    log,
    metrics: createMetrics(),
    readiness: async () => ({ ready: true }),
    routes: slack.routes,
  });
  base = `http://127.0.0.1:${await server.listen(0, '127.0.0.1')}`;

  await core.role('db-admin', { requireApproval: true, approvers: ['bob@example.com'] });
  await core.eligible('alice@example.com', 'db-admin');
});

afterAll(async () => {
  await server?.close(100);
  await slack?.stop();
  responseServer?.close();
  await fake?.close();
  await database?.close();
});

function signed(body: string, contentType: string, ts = Math.floor(Date.now() / 1000), secret = SECRET) {
  const signature = `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
  return fetch(`${base}/slack/events`, {
    method: 'POST',
    headers: {
      'content-type': contentType,
      'x-slack-request-timestamp': String(ts),
      'x-slack-signature': signature,
    },
    body,
  });
}

let seq = 0;
const FORM = 'application/x-www-form-urlencoded';

async function command(user: string, text: string) {
  const responseUrl = `${responseBase}/r/${++seq}`;
  const body = new URLSearchParams({
    command: '/elevate',
    text,
    user_id: user,
    team_id: TEAM,
    channel_id: 'C0GENERAL',
    trigger_id: `trigger-${seq}`,
    response_url: responseUrl,
    token: 'legacy',
  }).toString();
  const res = await signed(body, FORM);
  expect(res.status).toBe(200);
  return responseUrl;
}

async function click(user: string, actionId: string, value: string) {
  const responseUrl = `${responseBase}/r/${++seq}`;
  const payload = {
    type: 'block_actions',
    user: { id: user, team_id: TEAM },
    team: { id: TEAM },
    api_app_id: 'A0ELEVATE',
    token: 'legacy',
    trigger_id: `trigger-${seq}`,
    response_url: responseUrl,
    container: { type: 'message', channel_id: 'D0', message_ts: '1.0' },
    actions: [{ type: 'button', action_id: actionId, block_id: 'b', value, action_ts: '1' }],
  };
  const res = await signed(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), FORM);
  expect(res.status).toBe(200);
  return responseUrl;
}

async function submit(
  user: string,
  callbackId: string,
  metadata: string,
  values: Record<string, Record<string, unknown>>,
) {
  const state = Object.fromEntries(
    Object.entries(values).map(([block, value]) => [block, { [INPUT_ACTION]: value }]),
  );
  const payload = {
    type: 'view_submission',
    user: { id: user, team_id: TEAM },
    team: { id: TEAM },
    api_app_id: 'A0ELEVATE',
    token: 'legacy',
    trigger_id: `trigger-${++seq}`,
    view: {
      id: 'V1',
      type: 'modal',
      callback_id: callbackId,
      private_metadata: metadata,
      blocks: Object.keys(values).map((block_id) => ({ type: 'input', block_id })),
      state: { values: state },
    },
  };
  const res = await signed(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), FORM);
  expect(res.status).toBe(200);
  const text = await res.text();
  return text ? JSON.parse(text) : {};
}

async function answerAt(url: string) {
  await expect
    .poll(() => responses.some((r) => `${responseBase}${r.url}` === url), { timeout: 3000 })
    .toBe(true);
  return responses.filter((r) => `${responseBase}${r.url}` === url).map((r) => r.body);
}

const textOf = (value: unknown) => JSON.stringify(value);

describe('Slack: request, approve, deliver', () => {
  it('shows the board with Activate for an eligible role', async () => {
    const [answer] = await answerAt(await command(ALICE, ''));
    expect(answer?.response_type).toBe('ephemeral');
    expect(textOf(answer)).toContain('db-admin');
    expect(textOf(answer)).toContain(ACTION.activate);
  });

  it('answers unknown input with help and a suggestion', async () => {
    const [answer] = await answerAt(await command(ALICE, 'aprovals'));
    expect(textOf(answer)).toContain('Did you mean `/elevate approvals`');
  });

  it('tells a user without an email what is wrong', async () => {
    const [answer] = await answerAt(await command('U0NOMAIL', ''));
    expect(textOf(answer)).toContain('did not share');
  });

  it('opens the activation modal, refuses a missing justification inline, then requests', async () => {
    await click(ALICE, ACTION.activate, 'db-admin');
    await expect.poll(() => fake.callsTo('views.open').length, { timeout: 3000 }).toBe(1);
    const view = JSON.parse(String(fake.callsTo('views.open')[0]?.args.view));
    expect(view.callback_id).toBe(VIEW.activate);
    expect(view.blocks.map((b: { block_id?: string }) => b.block_id)).toContain(BLOCK.justification);

    const refused = await submit(ALICE, VIEW.activate, 'db-admin', {
      [BLOCK.duration]: { type: 'static_select', selected_option: { value: '60' } },
      [BLOCK.justification]: { type: 'plain_text_input', value: '' },
    });
    expect(refused.response_action).toBe('errors');
    expect(refused.errors[BLOCK.justification]).toContain('requires a justification');

    const tooLong = await submit(ALICE, VIEW.activate, 'db-admin', {
      [BLOCK.duration]: { type: 'static_select', selected_option: { value: '6000' } },
      [BLOCK.justification]: { type: 'plain_text_input', value: 'fix the index' },
    });
    expect(tooLong.errors[BLOCK.duration]).toContain('longer than the maximum');

    const accepted = await submit(ALICE, VIEW.activate, 'db-admin', {
      [BLOCK.duration]: { type: 'static_select', selected_option: { value: '60' } },
      [BLOCK.justification]: { type: 'plain_text_input', value: 'fix the index' },
    });
    expect(accepted).toEqual({});
    const [row] = await database.db.select().from(activations);
    expect(row?.status).toBe('pending_approval');
  });

  it('delivers the approver card to the approver and the submitted message to the requester', async () => {
    await delivery.run();
    const posts = fake.callsTo('chat.postMessage');
    const card = posts.find((c) => c.args.channel === `D${BOB}`);
    expect(textOf(card?.args.blocks)).toContain(ACTION.approve);
    expect(textOf(card?.args.blocks)).toContain('fix the index');
    const toAlice = posts.filter((c) => c.args.channel === `D${ALICE}`).map((c) => String(c.args.text));
    expect(toAlice.some((text) => text.includes('waiting for approval'))).toBe(true);
    const rows = await database.db.select().from(notifications);
    expect(rows.every((n) => n.status === 'sent')).toBe(true);
  });

  it('refuses and audits an approval clicked by someone else', async () => {
    const [row] = await database.db.select().from(activations);
    const [answer] = await answerAt(await click(EVE, ACTION.approve, row?.id ?? ''));
    expect(textOf(answer)).toContain('not an approver');
    const refused = await database.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.action, 'refused.approve'));
    expect(refused).toHaveLength(1);
    const [still] = await database.db.select().from(activations);
    expect(still?.status).toBe('pending_approval');
  });

  it('opens no Deny form for someone who may not decide, and audits the attempt', async () => {
    const [row] = await database.db.select().from(activations);
    const opened = fake.callsTo('views.open').length;
    const [answer] = await answerAt(await click(EVE, ACTION.deny, row?.id ?? ''));
    expect(textOf(answer)).toContain('not an approver');
    expect(fake.callsTo('views.open')).toHaveLength(opened);
    const refused = await database.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.action, 'refused.deny'));
    expect(refused).toHaveLength(1);
  });

  it('approves, grants, and tells a late click who decided', async () => {
    const [row] = await database.db.select().from(activations);
    const [answer] = await answerAt(await click(BOB, ACTION.approve, row?.id ?? ''));
    expect(answer?.replace_original).toBe(true);
    expect(textOf(answer)).toContain('Approved');
    expect(core.recording.held.has('alice@example.com/db-admin')).toBe(true);

    const [late] = await answerAt(await click(BOB, ACTION.approve, row?.id ?? ''));
    expect(textOf(late)).toContain('already approved by bob@example.com');

    await delivery.run();
    const update = fake.callsTo('chat.update').find((c) => c.args.channel === `D${BOB}`);
    expect(textOf(update?.args.blocks)).toContain('Approved* by bob@example.com');
    const active = fake
      .callsTo('chat.postMessage')
      .find((c) => String(c.args.text).includes('is active until'));
    expect(textOf(active?.args.blocks)).toContain(ACTION.deactivate);
    expect(fake.callsTo('views.publish').length).toBeGreaterThan(0);
  });

  it('retries a 429 after Retry-After and delivers once', async () => {
    await core.eligible('bob@example.com', 'db-admin');
    const before = fake.callsTo('chat.postMessage').length;
    fake.failNext({ status: 429, retryAfter: 30 }, 'chat.postMessage');
    await delivery.run();
    const [pending] = await database.db
      .select()
      .from(notifications)
      .where(eq(notifications.status, 'pending'));
    expect(pending?.lastError).toContain('rate limit');
    expect(pending?.nextAttemptAt.getTime()).toBeGreaterThanOrEqual(core.clock().getTime() + 30_000);
    await delivery.run(); // not due yet
    core.advance(1);
    await delivery.run();
    const ok = fake
      .callsTo('chat.postMessage')
      .slice(before)
      .filter((c) => c.status === 200);
    expect(ok.filter((c) => String(c.args.text).includes('now eligible'))).toHaveLength(1);
  });
});

describe('Slack: request verification', () => {
  const body = new URLSearchParams({
    command: '/elevate',
    text: '',
    user_id: ALICE,
    team_id: TEAM,
  }).toString();

  it('refuses a bad signature, a stale and a future timestamp with 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await signed(body, FORM, now, 'wrong-secret')).status).toBe(401);
    expect((await signed(body, FORM, now - 600)).status).toBe(401);
    expect((await signed(body, FORM, now + 600)).status).toBe(401);
    const missing = await fetch(`${base}/slack/events`, {
      method: 'POST',
      headers: { 'content-type': FORM },
      body,
    });
    expect(missing.status).toBe(401);
  });
});

describe('Slack: admin dialogs', () => {
  it('refuses a non-admin politely and audits it', async () => {
    const [answer] = await answerAt(await command(EVE, 'admin'));
    expect(textOf(answer)).toContain('for Elevate admins');
    const refused = await database.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.action, 'refused.admin.open'));
    expect(refused).toHaveLength(1);
  });

  it('opens the menu for an admin and assigns eligibility through the admin service', async () => {
    await core.admin.setAdmins(core.cli, ['bob@example.com']);
    const opened = fake.callsTo('views.open').length;
    await command(BOB, 'admin');
    await expect.poll(() => fake.callsTo('views.open').length, { timeout: 3000 }).toBe(opened + 1);
    expect(JSON.parse(String(fake.callsTo('views.open').at(-1)?.args.view)).callback_id).toBe(VIEW.admin);

    const answer = await submit(BOB, VIEW.adminEligibility, '', {
      [BLOCK.users]: { type: 'users_select', selected_user: EVE },
      [BLOCK.role]: { type: 'static_select', selected_option: { value: 'db-admin' } },
    });
    expect(answer).toEqual({});
    const access = await core.activations.listAccess(
      (await core.person('eve@example.com')).principalId ?? '',
    );
    expect(access.eligible.map((e) => e.role.name)).toEqual(['db-admin']);

    const refused = await submit(EVE, VIEW.adminEligibility, '', {
      [BLOCK.users]: { type: 'users_select', selected_user: EVE },
      [BLOCK.role]: { type: 'static_select', selected_option: { value: 'db-admin' } },
    });
    expect(refused.response_action).toBe('errors');
  });
});
