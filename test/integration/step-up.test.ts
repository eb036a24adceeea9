import { createServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { createStepUpRoutes } from '../../src/auth/step-up-routes.ts';
import { and, desc, eq } from '../../src/db/drizzle.ts';
import { activations, decisions } from '../../src/elevation/activation.sql.ts';
import type { Actor } from '../../src/elevation/actor.ts';
import { linkChatIdentity } from '../../src/elevation/identity-service.ts';
import { notifications } from '../../src/elevation/notification.sql.ts';
import { isStepUpNeeded, type StepUpLink } from '../../src/elevation/step-up-service.ts';
import { ElevateError } from '../../src/errors.ts';
import { createHttpServer, type HttpServer, type RouteHandler } from '../../src/http/server.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createBrowser, sentenceOf } from '../support/browser.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';
import { startLocalIdp } from '../support/local-idp.ts';

// Elevate's HTTP server and a real OpenID provider, both on 127.0.0.1; the test drives the
// browser part with a real HTTP client that follows redirects and keeps cookies.
const CLIENT = { clientId: 'elevate', clientSecret: 'local-idp-client-secret-0123456789' };

let database: TestDatabase;
let idp: Awaited<ReturnType<typeof startLocalIdp>>;
let server: HttpServer;
let publicUrl: string;
/** The routes of the current test's core; the one server hands requests to them. */
let current: { start: RouteHandler; callback: RouteHandler };
let core: ReturnType<typeof createCore>;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A fresh core (clock at the real now: the provider stamps real times) and its step-up routes. */
function useCore(rememberMinutes = 0, acrValues: string[] = []) {
  core = createCore(database.db, new Date(), { stepUp: { publicUrl, rememberMinutes } });
  const routes = createStepUpRoutes({
    db: database.db,
    clock: core.clock,
    log: createLogger('silent'),
    settings: { publicUrl, issuer: idp.issuer, ...CLIENT, acrValues, rememberMinutes },
    stepUps: core.stepUps,
    activations: core.activations,
  });
  const [start, callback] = routes;
  if (!start || !callback) throw new Error('expected two routes');
  current = { start: start.handler, callback: callback.handler };
}

beforeAll(async () => {
  database = await openTestDatabase();
  const port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  idp = await startLocalIdp({
    ...CLIENT,
    redirectUri: `${publicUrl}/auth/callback`,
    // Accounts named `entra:<oid>` sign in as Entra does without an email claim: object and tenant ids.
    claimsOf: (account) =>
      account.startsWith('entra:')
        ? { oid: account.slice('entra:'.length), tid: 'tenant-1' }
        : { email: account, email_verified: true },
  });
  server = createHttpServer({
    log: createLogger('silent'),
    metrics: createMetrics(),
    readiness: async () => ({ ready: true }),
    routes: [
      { method: 'GET', path: '/auth/step-up/*', handler: (req, res) => current.start(req, res) },
      { method: 'GET', path: '/auth/callback', handler: (req, res) => current.callback(req, res) },
    ],
  });
  await server.listen(port, '127.0.0.1');
}, 30_000);
afterAll(async () => {
  await server?.close(100);
  await idp?.close();
  await database?.close();
});

let run = 0;
let n = '';
const email = (who: string) => `${who}${n}@example.com`;
const role = (name: string) => `${name}-${n}`;
beforeEach(async () => {
  run += 1;
  n = String(run);
  useCore();
  await core.admin.setAdmins(core.cli, [email('ana')]);
});

/** The StepUpNeeded link `action` ends with (fails if it does anything else). */
async function stepUpOf(action: Promise<unknown>): Promise<StepUpLink> {
  const error = await action.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isStepUpNeeded(error)) throw new Error(`expected StepUpNeeded, got ${String(error)}`);
  expect(error.code).toBe('step_up_needed');
  expect(error.message).toContain(error.link.url);
  return error.link;
}

/** Signs in at the provider as `account` (MFA unless told otherwise) and follows the link. */
async function verify(
  link: StepUpLink,
  account: string,
  login: { amr?: string[]; acr?: string; ts?: number } = {},
) {
  idp.prepareLogin({ account, amr: login.amr ?? ['pwd', 'mfa'], acr: login.acr, ts: login.ts });
  const visit = await createBrowser().visit(link.url);
  return { ...visit, sentence: sentenceOf(visit.text) };
}

const activationsOf = (principalEmail: string, roleName: string) =>
  core.activations
    .list({})
    .then((views) => views.filter((v) => v.principal.email === principalEmail && v.role.name === roleName));

const refusalsAbout = (principalId: string) =>
  database.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.subjectId, principalId), eq(auditEvents.action, 'refused.step_up')))
    .orderBy(desc(auditEvents.seq));

async function requesterOf(roleName: string, settings = {}): Promise<Actor> {
  await core.role(roleName, settings);
  await core.eligible(email('dee'), roleName);
  return core.person(email('dee'));
}

describe('activation with requireMfa', () => {
  test('completes only after a valid step-up, through the core, with notifications queued', async () => {
    const dee = await requesterOf(role('db'), { requireMfa: true });
    const ask = { actor: dee, roleName: role('db'), justification: 'fix the index', durationMinutes: 60 };
    const link = await stepUpOf(core.activations.requestActivation(ask));
    expect(link.url).toMatch(new RegExp(`^${publicUrl}/auth/step-up/[A-Za-z0-9_-]{43}$`));
    expect(link.purpose).toMatchObject({ kind: 'activation', roleName: role('db') });
    expect(await activationsOf(email('dee'), role('db'))).toEqual([]);

    const page = await verify(link, email('dee'));
    // The browser went through the provider (PKCE, state, nonce, a forced fresh login).
    const authorize = new URL(page.hops.find((h) => h.startsWith(`${idp.issuer}/auth?`)) ?? '');
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({
      prompt: 'login',
      max_age: '0',
      code_challenge_method: 'S256',
      redirect_uri: `${publicUrl}/auth/callback`,
      login_hint: email('dee'),
    });
    for (const p of ['state', 'nonce', 'code_challenge']) expect(authorize.searchParams.get(p)).toBeTruthy();
    expect(page.status).toBe(200);
    expect(page.sentence).toBe(
      `Identity verified: your request for ${role('db')} is submitted and it is active. You can close this page.`,
    );
    const [view] = await activationsOf(email('dee'), role('db'));
    expect(view?.activation).toMatchObject({
      status: 'active',
      justification: 'fix the index',
      durationMinutes: 60,
    });
    expect(core.recording.held.has(`${email('dee')}/${role('db')}`)).toBe(true);
    const told = await database.db
      .select({ kind: notifications.kind })
      .from(notifications)
      .where(eq(notifications.activationId, view?.activation.id ?? ''));
    expect(told.map((t) => t.kind)).toContain('activation_active');
    const verified = await database.db
      .select()
      .from(auditEvents)
      .where(
        and(eq(auditEvents.subjectId, dee.principalId ?? ''), eq(auditEvents.action, 'step_up.verified')),
      );
    expect(verified).toHaveLength(1);
    expect(verified[0]?.data).toMatchObject({ purpose: 'activation', role: role('db'), amr: ['pwd', 'mfa'] });

    // The same link again: refused, nothing more happens, and the attempt is audited.
    const again = await createBrowser().visit(link.url);
    expect(again.status).toBe(410);
    expect(sentenceOf(again.text)).toBe(
      'This verification link was already used; each link works once. Start again from chat.',
    );
    expect(await activationsOf(email('dee'), role('db'))).toHaveLength(1);
    expect((await refusalsAbout(dee.principalId ?? ''))[0]?.data).toMatchObject({
      reason: 'This verification link was already used; each link works once. Start again from chat.',
    });
  });

  test('a replayed callback (the same provider answer twice) is refused and changes nothing', async () => {
    const dee = await requesterOf(role('db'), {
      requireMfa: true,
      requireApproval: true,
      approvers: [email('bo')],
    });
    await core.person(email('bo'));
    const link = await stepUpOf(
      core.activations.requestActivation({ actor: dee, roleName: role('db'), justification: 'x' }),
    );
    const page = await verify(link, email('dee'));
    expect(page.sentence).toContain('is submitted and it is waiting for approval');
    const callback = page.hops.at(-1) ?? '';
    expect(callback.startsWith(`${publicUrl}/auth/callback?`)).toBe(true);
    const replay = await createBrowser().visit(callback);
    expect(replay.status).toBe(409);
    expect(sentenceOf(replay.text)).toBe(
      'This sign-in was already used; each verification works once. Start again from chat.',
    );
    expect(await activationsOf(email('dee'), role('db'))).toHaveLength(1);
  });

  const refusedCases = [
    {
      name: 'another user’s sign-in',
      login: () => ({ account: email('eve'), amr: ['pwd', 'mfa'] }),
      status: 403,
      sentence: () =>
        `You signed in as ${email('eve')}, but this verification is for ${email('dee')}. Nothing was changed.`,
    },
    {
      name: 'a stale auth_time',
      login: () => ({ account: email('dee'), amr: ['pwd', 'mfa'], ts: Math.floor(Date.now() / 1000) - 600 }),
      status: 400,
      sentence: () => /^Your sign-in at \d\d:\d\d UTC is older than 5 minutes;/,
    },
    {
      name: 'a sign-in without MFA',
      login: () => ({ account: email('dee'), amr: ['pwd'] }),
      status: 403,
      sentence: () =>
        'Your sign-in did not use multi-factor authentication, so it cannot count. Nothing was changed.',
    },
  ];
  for (const c of refusedCases) {
    test(`${c.name} is refused with a clear page, nothing changed, audited`, async () => {
      const dee = await requesterOf(role('db'), { requireMfa: true });
      await core.person(email('eve')); // a known principal, so the refusal is about the mismatch
      const link = await stepUpOf(
        core.activations.requestActivation({ actor: dee, roleName: role('db'), justification: 'x' }),
      );
      const { account, ...login } = c.login();
      const page = await verify(link, account, login);
      expect(page.status).toBe(c.status);
      const sentence = c.sentence();
      if (typeof sentence === 'string') expect(page.sentence).toBe(sentence);
      else expect(page.sentence).toMatch(sentence);
      expect(await activationsOf(email('dee'), role('db'))).toEqual([]);
      expect(core.recording.calls).toEqual([]);
      const [audited] = await refusalsAbout(dee.principalId ?? '');
      expect(audited?.data).toMatchObject({ purpose: 'activation', reason: page.sentence });
      // The link is spent: a second try needs a new one from chat.
      expect((await createBrowser().visit(link.url)).status).toBe(410);
    });
  }

  test('the provider’s answer opened in another browser is refused (login CSRF), nothing changed, audited', async () => {
    const dee = await requesterOf(role('db'), { requireMfa: true });
    const link = await stepUpOf(
      core.activations.requestActivation({ actor: dee, roleName: role('db'), justification: 'x' }),
    );
    idp.prepareLogin({ account: email('dee'), amr: ['pwd', 'mfa'] });
    const mine = await createBrowser().visit(link.url, (url) => url.pathname === '/auth/callback');
    const elsewhere = await createBrowser().visit(mine.url);
    expect(elsewhere.status).toBe(400);
    expect(sentenceOf(elsewhere.text)).toMatch(/^This sign-in came back to a different browser/);
    expect(await activationsOf(email('dee'), role('db'))).toEqual([]);
    expect((await refusalsAbout(dee.principalId ?? ''))[0]?.data).toMatchObject({
      reason: sentenceOf(elsewhere.text),
    });
  });

  test('a sign-in the provider did not complete (an error answer) is refused, nothing changed', async () => {
    const dee = await requesterOf(role('db'), { requireMfa: true });
    const link = await stepUpOf(
      core.activations.requestActivation({ actor: dee, roleName: role('db'), justification: 'x' }),
    );
    const browser = createBrowser();
    const atProvider = await browser.visit(link.url, (url) => url.origin === idp.issuer);
    const state = new URL(atProvider.url).searchParams.get('state') ?? '';
    const answer = await browser.visit(
      `${publicUrl}/auth/callback?error=access_denied&error_description=${encodeURIComponent('<b>cancelled</b>')}&state=${state}`,
    );
    expect(answer.status).toBe(400);
    expect(answer.text).not.toContain('<b>');
    expect(sentenceOf(answer.text)).toBe(
      'The identity provider did not complete the sign-in (<b>cancelled</b>). Nothing was changed.',
    );
    expect(await activationsOf(email('dee'), role('db'))).toEqual([]);
  });

  test('an expired link is refused with a clear page, nothing changed, audited', async () => {
    const dee = await requesterOf(role('db'), { requireMfa: true });
    const link = await stepUpOf(
      core.activations.requestActivation({ actor: dee, roleName: role('db'), justification: 'x' }),
    );
    core.advance(11);
    const page = await verify(link, email('dee'));
    expect(page.status).toBe(410);
    expect(page.sentence).toBe(
      'This verification link expired (links work for 10 minutes). Start again from chat.',
    );
    expect(page.hops).toHaveLength(1); // never sent to the provider
    expect(await activationsOf(email('dee'), role('db'))).toEqual([]);
    expect((await refusalsAbout(dee.principalId ?? ''))[0]?.data).toMatchObject({ reason: page.sentence });
  });

  test('an unknown or malformed link is a clear page', async () => {
    for (const id of ['x'.repeat(43), 'short', '<script>alert(1)</script>']) {
      const visit = await createBrowser().visit(`${publicUrl}/auth/step-up/${encodeURIComponent(id)}`);
      expect([404, 410]).toContain(visit.status);
      expect(visit.text).not.toContain('<script>');
      expect(sentenceOf(visit.text)).toMatch(/^This verification link is not valid/);
    }
  });

  test('an Entra object id (oid) names the principal: an account mapping or a linked Teams identity', async () => {
    const dee = await requesterOf(role('db'), { requireMfa: true });
    await core.admin.setAccounts(core.cli, [{ email: email('dee'), accounts: { entra: `oid-dee-${n}` } }]);
    let link = await stepUpOf(
      core.activations.requestActivation({ actor: dee, roleName: role('db'), justification: 'x' }),
    );
    expect((await verify(link, `entra:oid-dee-${n}`)).status).toBe(200);

    const fay = await core.person(email('fay'));
    await core.role(role('fay'), { requireMfa: true });
    await core.eligible(email('fay'), role('fay'));
    await linkChatIdentity(database.db, {
      platform: 'teams',
      tenant: 'tenant-1',
      externalId: `oid-fay-${n}`,
      email: email('fay'),
    });
    link = await stepUpOf(
      core.activations.requestActivation({ actor: fay, roleName: role('fay'), justification: 'x' }),
    );
    const someoneElse = await verify(link, `entra:oid-dee-${n}`);
    expect(someoneElse.status).toBe(403);
    link = await stepUpOf(
      core.activations.requestActivation({ actor: fay, roleName: role('fay'), justification: 'x' }),
    );
    expect((await verify(link, `entra:oid-fay-${n}`)).status).toBe(200);
    expect((await activationsOf(email('fay'), role('fay')))[0]?.activation.status).toBe('active');
  });

  test('an acr equal to a configured value counts as MFA, without amr', async () => {
    useCore(0, ['urn:example:mfa']);
    const dee = await requesterOf(role('db'), { requireMfa: true });
    const link = await stepUpOf(
      core.activations.requestActivation({ actor: dee, roleName: role('db'), justification: 'x' }),
    );
    const page = await verify(link, email('dee'), { amr: ['pwd'], acr: 'urn:example:mfa' });
    expect(new URL(page.hops[1] ?? '').searchParams.get('acr_values')).toBe('urn:example:mfa');
    expect(page.status).toBe(200);
    expect((await activationsOf(email('dee'), role('db')))[0]?.activation.status).toBe('active');
  });

  test('remember window: a fresh step-up covers the next request, until the window passes', async () => {
    useCore(5);
    const dee = await requesterOf(role('a'), { requireMfa: true });
    await core.role(role('b'), { requireMfa: true });
    await core.eligible(email('dee'), role('b'));
    await core.role(role('c'), { requireMfa: true });
    await core.eligible(email('dee'), role('c'));
    const link = await stepUpOf(
      core.activations.requestActivation({ actor: dee, roleName: role('a'), justification: 'x' }),
    );
    expect((await verify(link, email('dee'))).status).toBe(200);
    core.advance(4);
    const b = await core.activations.requestActivation({
      actor: dee,
      roleName: role('b'),
      justification: 'x',
    });
    expect(b.activation.status).toBe('active');
    core.advance(2);
    await stepUpOf(
      core.activations.requestActivation({ actor: dee, roleName: role('c'), justification: 'x' }),
    );
    expect(await activationsOf(email('dee'), role('c'))).toEqual([]);
  });

  test('with the default window (0), every request needs its own step-up', async () => {
    const dee = await requesterOf(role('a'), { requireMfa: true });
    await core.role(role('b'), { requireMfa: true });
    await core.eligible(email('dee'), role('b'));
    const link = await stepUpOf(
      core.activations.requestActivation({ actor: dee, roleName: role('a'), justification: 'x' }),
    );
    expect((await verify(link, email('dee'))).status).toBe(200);
    await stepUpOf(
      core.activations.requestActivation({ actor: dee, roleName: role('b'), justification: 'x' }),
    );
  });

  test('a request the role would refuse is refused before any step-up', async () => {
    const dee = await requesterOf(role('db'), { requireMfa: true });
    const error = await core.activations
      .requestActivation({ actor: dee, roleName: role('db'), justification: ' ' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ElevateError);
    expect(isStepUpNeeded(error)).toBe(false);
  });

  test('without step-up configured, a role requiring MFA is a clear refusal, never a bypass', async () => {
    core = createCore(database.db, new Date());
    const dee = await requesterOf(role('db'), { requireMfa: true });
    const error = await core.activations
      .requestActivation({ actor: dee, roleName: role('db'), justification: 'x' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ElevateError);
    expect((error as ElevateError).code).toBe('forbidden');
    expect((error as ElevateError).message).toBe(
      `Your request for ${role('db')} needs a fresh sign-in with MFA, but Elevate has no identity provider configured for it; ask an admin to set up step-up MFA (OIDC_ISSUER).`,
    );
    expect(await activationsOf(email('dee'), role('db'))).toEqual([]);
  });
});

describe('decisions with requireMfaToApprove', () => {
  async function pendingRequest(settings = {}) {
    const dee = await requesterOf(role('db'), {
      requireApproval: true,
      approvers: [email('bo')],
      requireMfaToApprove: true,
      ...settings,
    });
    const bo = await core.person(email('bo'));
    const view = await core.activations.requestActivation({
      actor: dee,
      roleName: role('db'),
      justification: 'x',
    });
    expect(view.activation.status).toBe('pending_approval');
    return { dee, bo, id: view.activation.id };
  }
  const decisionsOn = (id: string) =>
    database.db.select().from(decisions).where(eq(decisions.activationId, id));
  const statusOf = async (id: string) =>
    (await database.db.select().from(activations).where(eq(activations.id, id)))[0]?.status;

  test('an approval counts only after a valid step-up; the cards and the requester are told', async () => {
    const { bo, id } = await pendingRequest();
    const link = await stepUpOf(core.activations.approve({ actor: bo, activationId: id, comment: 'ok' }));
    expect(link.purpose).toEqual({ kind: 'decision', activationId: id, verdict: 'approve', comment: 'ok' });
    expect(await decisionsOn(id)).toEqual([]);
    expect(await statusOf(id)).toBe('pending_approval');

    const page = await verify(link, email('bo'));
    expect(page.status).toBe(200);
    expect(page.sentence).toBe(
      `Identity verified: you approved ${email('dee')}'s request for ${role('db')}. You can close this page.`,
    );
    expect(await statusOf(id)).toBe('active');
    expect((await decisionsOn(id)).map((d) => [d.verdict, d.comment])).toEqual([['approve', 'ok']]);
    const told = await database.db
      .select({ kind: notifications.kind, recipientId: notifications.recipientId })
      .from(notifications)
      .where(eq(notifications.activationId, id));
    expect(told).toContainEqual({ kind: 'request_decided', recipientId: bo.principalId });
    expect(told.map((t) => t.kind)).toContain('activation_approved');
  });

  test('a denial counts only after a valid step-up', async () => {
    const { bo, id } = await pendingRequest();
    const link = await stepUpOf(core.activations.deny({ actor: bo, activationId: id, comment: 'not now' }));
    expect(await statusOf(id)).toBe('pending_approval');
    const page = await verify(link, email('bo'));
    expect(page.sentence).toBe(
      `Identity verified: you denied ${email('dee')}'s request for ${role('db')}. You can close this page.`,
    );
    expect(await statusOf(id)).toBe('denied');
  });

  test('the requester signing in on the approver’s link is refused; nothing counts', async () => {
    const { bo, id } = await pendingRequest();
    const link = await stepUpOf(core.activations.approve({ actor: bo, activationId: id }));
    const page = await verify(link, email('dee'));
    expect(page.status).toBe(403);
    expect(await decisionsOn(id)).toEqual([]);
    expect(await statusOf(id)).toBe('pending_approval');
    expect((await refusalsAbout(bo.principalId ?? ''))[0]?.data).toMatchObject({ purpose: 'decision' });
  });

  test('a request decided meanwhile: verified, but the page says nothing was done', async () => {
    const { bo, id } = await pendingRequest({
      approvers: [email('bo'), email('cy')],
      requireMfaToApprove: true,
    });
    const cy = await core.person(email('cy'));
    const link = await stepUpOf(core.activations.approve({ actor: bo, activationId: id }));
    const cyLink = await stepUpOf(core.activations.deny({ actor: cy, activationId: id, comment: 'no' }));
    expect((await verify(cyLink, email('cy'))).status).toBe(200);
    const page = await verify(link, email('bo'));
    expect(page.status).toBe(409);
    expect(page.sentence).toMatch(
      /^Your identity is verified, but nothing was done: This request was already denied by /,
    );
    expect(await statusOf(id)).toBe('denied');
  });

  test('a role without requireMfaToApprove decides at once', async () => {
    const { bo, id } = await pendingRequest({ requireMfaToApprove: false });
    const outcome = await core.activations.approve({ actor: bo, activationId: id });
    expect(outcome.outcome).toBe('approved');
  });
});
