import { afterAll, beforeAll, expect, test } from 'vitest';
import { ACTION, BLOCK, VIEW } from '../../src/chat/slack/ids.ts';
import { createBrowser, sentenceOf } from '../support/browser.ts';
import { startLocalIdp } from '../support/local-idp.ts';
import {
  buttonsOf,
  type ElevateServer,
  elementsOf,
  freePort,
  startElevate,
} from '../support/slack-harness.ts';
import { messageText, type SlackMessage } from '../support/slack-workspace.ts';

/**
 * Step-up MFA from Slack, end to end: the real `elevate serve`, a local Slack Web API, and a real
 * OpenID Connect provider (npm `oidc-provider`) on 127.0.0.1. The person's browser is a plain
 * HTTP client following redirects from the *Verify your identity* button's URL.
 */

const CLIENT = { clientId: 'elevate', clientSecret: 'step-up-e2e-secret-0123456789abcdef' };
const email = (user: string) => `${user.slice(1).toLowerCase()}@example.com`;

let elevate: ElevateServer;
let idp: Awaited<ReturnType<typeof startLocalIdp>>;

beforeAll(async () => {
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  idp = await startLocalIdp({ ...CLIENT, redirectUri: `${publicUrl}/auth/callback` });
  elevate = await startElevate({
    port,
    policy: `
admins: [${email('UADMIN')}]
roles:
  - name: mfa-db
    provider: { type: none }
    settings: { requireMfa: true, requireApproval: true, approvers: [${email('UAPPROVER')}] }
  - name: mfa-approve
    provider: { type: none }
    settings: { requireApproval: true, approvers: [${email('UAPPROVER')}], requireMfaToApprove: true }
eligibility:
  - { principal: ${email('URQMFA')}, role: mfa-db }
  - { principal: ${email('URQNOMFA')}, role: mfa-db }
  - { principal: ${email('URQDECIDE')}, role: mfa-approve }
  - { principal: ${email('URQFORM')}, role: mfa-db }
`,
    env: {
      PUBLIC_URL: publicUrl,
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: CLIENT.clientId,
      OIDC_CLIENT_SECRET: CLIENT.clientSecret,
    },
  });
  for (const user of ['UADMIN', 'UAPPROVER', 'URQMFA', 'URQNOMFA', 'URQDECIDE', 'URQFORM'])
    elevate.slack.addUser(user, email(user), user.slice(1).toLowerCase());
}, 120_000);

afterAll(async () => {
  await elevate?.stop();
  await idp?.close();
});

/** The first message `user` sees after `after` messages that `matches`. */
function waitForMessage(user: string, what: string, matches: (m: SlackMessage) => boolean, after = 0) {
  return elevate.slack.waitFor(`${user} to see ${what}`, () =>
    elevate.slack
      .messagesFor(user)
      .slice(after)
      .find((m) => matches(m)),
  );
}

/** The URL of the *Verify your identity* button on a message, if it has one. */
function verifyUrl(message: SlackMessage): string | undefined {
  const button = elementsOf(message.blocks).find(
    ({ element }) => element.action_id === ACTION.verifyIdentity,
  );
  return button ? String(button.element.url) : undefined;
}

/** The approver's card naming the requester. */
const cardFor = (requester: string) => (m: SlackMessage) =>
  messageText(m).includes(email(requester)) && buttonsOf(m).some((b) => b.actionId === ACTION.approve);

test('a role that requires MFA is requested only after a fresh sign-in with MFA, through the Verify button', async () => {
  const seen = elevate.slack.messagesFor('URQMFA').length;
  await elevate.command('URQMFA', 'activate mfa-db 1h rotate the credentials');
  const answer = await waitForMessage('URQMFA', 'the Verify button', (m) => verifyUrl(m) !== undefined, seen);
  expect(messageText(answer)).toMatch(/needs a fresh sign-in with MFA/);
  // Nothing is requested yet: the approver has no card.
  expect(elevate.slack.messagesFor('UAPPROVER').filter(cardFor('URQMFA'))).toEqual([]);

  idp.prepareLogin({ account: email('URQMFA'), amr: ['pwd', 'mfa'] });
  const page = await createBrowser().visit(verifyUrl(answer) ?? '');
  expect(page.status).toBe(200);
  expect(sentenceOf(page.text)).toMatch(/^Identity verified: your request for mfa-db is submitted/);

  // The request went through the core: the approver's card arrives with Approve and Deny.
  const card = await waitForMessage('UAPPROVER', 'the card for URQMFA', cardFor('URQMFA'));
  expect(messageText(card)).toContain('rotate the credentials');
}, 60_000);

test('a sign-in without MFA is refused with a clear page, and nothing is requested', async () => {
  const seen = elevate.slack.messagesFor('URQNOMFA').length;
  await elevate.command('URQNOMFA', 'activate mfa-db 1h look at the logs');
  const answer = await waitForMessage(
    'URQNOMFA',
    'the Verify button',
    (m) => verifyUrl(m) !== undefined,
    seen,
  );

  idp.prepareLogin({ account: email('URQNOMFA'), amr: ['pwd'] });
  const page = await createBrowser().visit(verifyUrl(answer) ?? '');
  expect(page.status).toBeGreaterThanOrEqual(400);
  expect(sentenceOf(page.text)).toBe(
    'Your sign-in did not use multi-factor authentication, so it cannot count. Nothing was changed.',
  );

  // The board still offers Activate and holds no request to cancel.
  const before = elevate.slack.messagesFor('URQNOMFA').length;
  await elevate.command('URQNOMFA', 'status');
  const board = await waitForMessage(
    'URQNOMFA',
    'the board',
    (m) => /your roles/i.test(messageText(m)),
    before,
  );
  expect(buttonsOf(board).map((b) => b.actionId)).toContain(ACTION.activate);
  expect(buttonsOf(board).map((b) => b.actionId)).not.toContain(ACTION.cancel);
  expect(elevate.slack.messagesFor('UAPPROVER').filter(cardFor('URQNOMFA'))).toEqual([]);
}, 60_000);

test('an approval on a role that requires MFA to approve counts only after the approver signs in again', async () => {
  const told = elevate.slack.messagesFor('URQDECIDE').length;
  await elevate.command('URQDECIDE', 'activate mfa-approve 1h deploy the fix');
  const card = await waitForMessage('UAPPROVER', 'the card for URQDECIDE', cardFor('URQDECIDE'));

  const seen = elevate.slack.messagesFor('UAPPROVER').length;
  const approveValue = buttonsOf(card).find((b) => b.actionId === ACTION.approve)?.value;
  await elevate.click('UAPPROVER', card, ACTION.approve, approveValue);
  const answer = await waitForMessage(
    'UAPPROVER',
    'the Verify button',
    (m) => verifyUrl(m) !== undefined,
    seen,
  );
  expect(messageText(answer)).toMatch(/Approving this request needs a fresh sign-in with MFA/);

  idp.prepareLogin({ account: email('UAPPROVER'), amr: ['pwd', 'mfa'] });
  const page = await createBrowser().visit(verifyUrl(answer) ?? '');
  expect(page.status).toBe(200);
  expect(sentenceOf(page.text)).toBe(
    `Identity verified: you approved ${email('URQDECIDE')}'s request for mfa-approve. You can close this page.`,
  );
  // The decision counted: the requester hears the role is active.
  await waitForMessage('URQDECIDE', 'the role active', (m) => /is active/i.test(messageText(m)), told);
}, 60_000);

test('the activation modal closes on submit and the Verify button arrives as a direct message', async () => {
  const before = elevate.slack.messagesFor('URQFORM').length;
  await elevate.command('URQFORM', '');
  const board = await waitForMessage(
    'URQFORM',
    'the board',
    (m) => /your roles/i.test(messageText(m)),
    before,
  );
  const views = elevate.slack.viewsFor('URQFORM').length;
  await elevate.click('URQFORM', board, ACTION.activate, 'mfa-db');
  const modal = await elevate.slack.waitFor('the activation modal', () =>
    elevate.slack
      .viewsFor('URQFORM')
      .slice(views)
      .find((v) => v.callback_id === VIEW.activate),
  );
  const seen = elevate.slack.messagesFor('URQFORM').length;
  const submitted = await elevate.submit('URQFORM', modal, {
    [BLOCK.justification]: 'renew the certificate',
  });
  expect(submitted.status).toBe(200);
  const answer = await waitForMessage(
    'URQFORM',
    'the Verify button',
    (m) => verifyUrl(m) !== undefined,
    seen,
  );
  expect(answer.source).toBe('dm');

  idp.prepareLogin({ account: email('URQFORM'), amr: ['pwd', 'mfa'] });
  const page = await createBrowser().visit(verifyUrl(answer) ?? '');
  expect(sentenceOf(page.text)).toMatch(/^Identity verified: your request for mfa-db is submitted/);
  const card = await waitForMessage('UAPPROVER', 'the card for URQFORM', cardFor('URQFORM'));
  expect(messageText(card)).toContain('renew the certificate');
}, 60_000);
