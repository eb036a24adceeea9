import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, onTestFailed, test } from 'vitest';
import { waitUntil } from '../support/replicas.ts';
import { type ElevateServer, startElevate } from '../support/slack-harness.ts';
import { startWebhookTarget, type WebhookTarget } from '../support/webhook-target.ts';

/**
 * Issue 6: one real short activation, in real time. A requester activates a role for one minute
 * with `/elevate activate`; the running server grants it through the webhook provider, and its
 * background loop revokes it when the minute is up and tells the requester — no clock moved.
 * About 70 s; runs on PGlite and on PostgreSQL (one process).
 */

const REQUESTER = 'UMINUTE';
const EMAIL = 'minute@example.com';

let elevate: ElevateServer;
let webhook: WebhookTarget;

beforeAll(async () => {
  const secret = randomBytes(32).toString('hex');
  webhook = await startWebhookTarget(secret);
  elevate = await startElevate({
    policy: `
admins: [ops@example.com]
roles:
  - name: one-minute
    scope: prod/db
    provider: { type: webhook, url: "${webhook.url}", secret: env:ELEVATE_E2E_WEBHOOK_SECRET }
    settings: { minDuration: 1m, defaultDuration: 1m, maxDuration: 1h, requireJustification: false }
eligibility:
  - { principal: ${EMAIL}, role: one-minute }
`,
    env: { ELEVATE_E2E_WEBHOOK_SECRET: secret },
  });
  elevate.slack.addUser(REQUESTER, EMAIL);
}, 120_000);

afterAll(async () => {
  await elevate?.stop();
  await webhook?.close();
});

test('a one-minute activation is granted, then revoked by the running loop once the minute is up, and the requester is told', async () => {
  onTestFailed(() => console.error(elevate.output().split('\n').slice(-40).join('\n')));
  const answer = await elevate.command(REQUESTER, 'activate one-minute 1m');
  expect(answer.status).toBe(200);

  const grant = await waitUntil('the grant at the target', () => webhook.callsOf('grant')[0], 30_000);
  expect(grant).toMatchObject({ email: EMAIL, role: 'one-minute', answered: true });
  const endAt = Date.parse(grant.endAt ?? '');
  // One minute from the grant (the server's clock, give or take the request's own time).
  expect(endAt - grant.receivedAt).toBeGreaterThan(55_000);
  expect(endAt - grant.receivedAt).toBeLessThanOrEqual(60_000);

  const revoke = await waitUntil(
    'the revoke at the target',
    () => webhook.callsOf('revoke')[0],
    120_000,
    250,
  );
  expect(revoke).toMatchObject({ activationId: grant.activationId, email: EMAIL, answered: true });
  expect(revoke.receivedAt).toBeGreaterThanOrEqual(endAt);

  const endedOf = () => elevate.slack.messagesFor(REQUESTER).filter((m) => /has ended/.test(m.text));
  await elevate.slack.waitFor('the requester told it has ended', () => endedOf().length > 0, 30_000);
  const ended = endedOf();
  expect(ended).toHaveLength(1);
  expect(ended[0]?.text).toContain('one-minute');
  expect(webhook.calls.map((c) => c.type)).toEqual(['grant', 'revoke']);
}, 180_000);
