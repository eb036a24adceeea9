import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cardProblems } from '../support/adaptive-cards.ts';
import { createBrowser, sentenceOf } from '../support/browser.ts';
import type { PostedMessage, TeamsUser } from '../support/fake-teams.ts';
import { startLocalIdp } from '../support/local-idp.ts';
import { freePort } from '../support/slack-harness.ts';
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
} from '../support/teams-harness.ts';

/**
 * Step-up MFA from Teams, end to end: the real `elevate serve` with a local Microsoft cloud and a
 * real OpenID Connect provider (`oidc-provider`). The bot's *Verify your identity* button is an
 * `Action.OpenUrl`; the test's browser follows it, the provider signs the person in (with MFA or
 * without), and the request or decision then goes through, or does not.
 */

const email = (key: string) => `${key}@example.com`;
const PEOPLE = ['mia', 'noa', 'bo'];

let elevate: TeamsElevate;
let idp: Awaited<ReturnType<typeof startLocalIdp>>;
let publicUrl: string;

const user = (key: string): TeamsUser => {
  const found = elevate.teams.users.get(key);
  if (!found) throw new Error(`no user ${key}`);
  return found;
};
const chat = (key: string) => elevate.teams.messagesIn(elevate.personal(user(key)));
const latest = (key: string, pattern: RegExp): PostedMessage | undefined =>
  chat(key)
    .filter((m) => pattern.test(textOf(cardOf(m))))
    .at(-1);
const waitFor = (key: string, pattern: RegExp) => eventually(() => latest(key, pattern));

/** The card's Verify your identity button: a link to this server's one-time step-up URL. */
function verifyLink(card: CardJson): string {
  expect(cardProblems(card)).toEqual([]);
  const verify = button(card, 'Verify your identity');
  expect(verify.type).toBe('Action.OpenUrl');
  const url = String(verify.url);
  expect(url).toMatch(new RegExp(`^${publicUrl}/auth/step-up/[A-Za-z0-9_-]{43}$`));
  return url;
}

/** Opens a link in `key`'s browser, signing in at the provider as them with these methods. */
async function signIn(key: string, url: string, amr: string[]) {
  idp.prepareLogin({ account: email(key), amr });
  const visit = await createBrowser().visit(url);
  return { status: visit.status, sentence: sentenceOf(visit.text) };
}

beforeAll(async () => {
  // PUBLIC_URL is the server's own base URL, so the port is chosen before it starts.
  const port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  idp = await startLocalIdp({
    clientId: 'elevate',
    clientSecret: 'idp-client-secret',
    redirectUri: `${publicUrl}/auth/callback`,
  });
  elevate = await startTeamsElevate({
    port,
    policy: `
roles:
  - name: vault
    provider: { type: none }
    settings:
      requireApproval: true
      approvers: [${email('bo')}]
      requireMfa: true
      requireMfaToApprove: true
eligibility:
  - { principal: ${email('mia')}, role: vault }
  - { principal: ${email('noa')}, role: vault }
`,
    env: {
      PUBLIC_URL: publicUrl,
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: 'elevate',
      OIDC_CLIENT_SECRET: 'idp-client-secret',
    },
    users: Object.fromEntries(PEOPLE.map((k) => [k, email(k)])),
  });
  for (const key of PEOPLE) expect((await elevate.install(user(key))).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await elevate?.stop();
  await idp?.close();
});

describe('step-up MFA in Teams', () => {
  test('activate → Verify your identity → sign-in with MFA → approver card → Approve → step-up → requester told', async () => {
    await elevate.say(user('mia'), 'activate vault 1h rotate the root key');
    const asked = await waitFor('mia', /fresh sign-in with MFA/);
    expect(textOf(cardOf(asked))).toMatch(/Your request for \*\*vault\*\* needs a fresh sign-in with MFA/);
    // Nothing is requested before the step-up.
    expect(latest('bo', /mia@example.com/)).toBeUndefined();

    const page = await signIn('mia', verifyLink(cardOf(asked)), ['pwd', 'mfa']);
    expect(page).toEqual({
      status: 200,
      sentence:
        'Identity verified: your request for vault is submitted and it is waiting for approval. You can close this page.',
    });

    // The request really went through: the approver gets the card proactively.
    const boCard = await waitFor('bo', /Access request/);
    expect(textOf(cardOf(boCard))).toContain('Requester: mia@example.com');
    expect(textOf(cardOf(boCard))).toContain('rotate the root key');

    // Approve needs the approver's own step-up: the answer shows the link over the request.
    const clicked = await elevate.execute(user('bo'), button(cardOf(boCard), 'Approve'));
    expect(clicked.status).toBe(200);
    const stepUpCard = cardOf(clicked.body);
    expect(textOf(stepUpCard)).toMatch(/^Approving this request needs a fresh sign-in with MFA/);
    expect(textOf(stepUpCard)).toContain('Requester: mia@example.com');
    const approved = await signIn('bo', verifyLink(stepUpCard), ['pwd', 'mfa']);
    expect(approved.sentence).toBe(
      "Identity verified: you approved mia@example.com's request for vault. You can close this page.",
    );

    // The decision counted: the requester is told, and bo's copy is updated in place.
    await waitFor('mia', /vault\*\* is active until/);
    await eventually(() => {
      const now = elevate.teams.messages.get(boCard.id);
      return now && now.updates > 0 && /Approved\*\* by bo@example.com/.test(textOf(cardOf(now)));
    });
  });

  test('the activation dialog answers with the button; a sign-in without MFA is refused and requests nothing', async () => {
    const form = cardOf((await elevate.fetchTask(user('noa'), { dialog: 'activate', value: 'vault' })).body);
    const submitted = await elevate.submitTask(
      user('noa'),
      submission(form, { duration: '60', justification: 'look at the audit' }),
    );
    // A card dialog with a clickable button, not the URL as text.
    expect((submitted.body as { task: { type: string } }).task.type).toBe('continue');
    const dialog = cardOf(submitted.body);
    expect(buttons(dialog).map((b) => b.title)).toEqual(['Verify your identity']);

    const page = await signIn('noa', verifyLink(dialog), ['pwd']);
    expect(page).toEqual({
      status: 403,
      sentence:
        'Your sign-in did not use multi-factor authentication, so it cannot count. Nothing was changed.',
    });

    // No activation: noa's board still offers Activate, and the approver heard nothing.
    await elevate.say(user('noa'), 'status');
    const board = cardOf(await waitFor('noa', /Your roles/));
    expect(button(board, 'Activate', 'vault').type).toBe('Action.Submit');
    await new Promise((r) => setTimeout(r, 2_500)); // one outbox run
    expect(latest('bo', /noa@example.com/)).toBeUndefined();
  });

  test('the deny dialog answers with the button; after the approver’s step-up the denial counts', async () => {
    await elevate.say(user('noa'), 'activate vault 1h look at the audit');
    const asked = await waitFor('noa', /Your request for \*\*vault\*\* needs a fresh sign-in/);
    expect((await signIn('noa', verifyLink(cardOf(asked)), ['pwd', 'mfa'])).status).toBe(200);
    const boCard = await waitFor('bo', /Requester: noa@example.com/);

    const deny = button(cardOf(boCard), 'Deny');
    const form = cardOf((await elevate.fetchTask(user('bo'), deny.data as Record<string, unknown>)).body);
    const submitted = await elevate.submitTask(user('bo'), submission(form, { comment: 'not this week' }));
    const dialog = cardOf(submitted.body);
    expect(textOf(dialog)).toMatch(/^Denying this request needs a fresh sign-in with MFA/);
    const page = await signIn('bo', verifyLink(dialog), ['pwd', 'mfa']);
    expect(page.sentence).toBe(
      "Identity verified: you denied noa@example.com's request for vault. You can close this page.",
    );
    await waitFor('noa', /was denied: not this week/);
  });
});
