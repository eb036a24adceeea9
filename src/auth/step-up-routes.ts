import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as oidc from 'openid-client';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import type { ActivationService } from '../elevation/activation-service.ts';
import { principalActor } from '../elevation/actor.ts';
import { MINUTE_MS } from '../elevation/duration.ts';
import { recordRefusal } from '../elevation/identity-service.ts';
import {
  findPrincipalByEmail,
  findPrincipalByObjectId,
  type Principal,
  principalsByIds,
} from '../elevation/principal-repository.ts';
import { STEP_UP_FRESH_MINUTES, type StepUp, type StepUpService } from '../elevation/step-up-service.ts';
import { ElevateError } from '../errors.ts';
import type { Route } from '../http/server.ts';
import type { Logger } from '../log.ts';
import type { StepUpSettings } from './step-up-env.ts';

/** The cookie that ties a sign-in's return to the browser that started it (login CSRF). */
const COOKIE = 'elevate_step_up';
/** Scopes asked for: the subject, and the email that names the principal. */
const SCOPE = 'openid email profile';

/** What the callback concluded: the page's sentence and status. */
type Page = { status: number; sentence: string };

/**
 * The browser side of step-up MFA: `GET /auth/step-up/<id>` starts an OpenID Connect
 * authorization-code flow (PKCE, state, nonce, prompt=login, max_age=0) for a one-time link;
 * `GET /auth/callback` checks the answer and lets the waiting action through the core.
 */
export function createStepUpRoutes(deps: {
  db: Db;
  clock: Clock;
  log: Logger;
  settings: StepUpSettings;
  stepUps: StepUpService;
  activations: ActivationService;
}): Route[] {
  const { db, clock, log, settings, stepUps, activations } = deps;
  const redirectUri = `${settings.publicUrl}/auth/callback`;
  const secure = settings.publicUrl.startsWith('https:');

  // Discovery on first use, so a provider that is down at start does not stop the bot; a failed
  // discovery is tried again by the next person.
  let discovered: Promise<oidc.Configuration> | undefined;
  const configuration = () => {
    discovered ??= oidc
      .discovery(
        new URL(settings.issuer),
        settings.clientId,
        undefined,
        oidc.ClientSecretBasic(settings.clientSecret),
        // Plain http is only accepted for an issuer on this machine (config checks that).
        settings.issuer.startsWith('http:') ? { execute: [oidc.allowInsecureRequests] } : undefined,
      )
      .catch((error: unknown) => {
        discovered = undefined;
        throw error;
      });
    return discovered;
  };

  /** Audits a refused attempt on a known step-up; nothing else changes. */
  const refuse = (stepUp: StepUp, actorLabel: string, reason: string) =>
    recordRefusal(db, {
      actor: { principalId: null, label: actorLabel, isAdmin: false },
      action: 'step_up',
      subjectType: 'principal',
      subjectId: stepUp.principalId,
      reason,
      at: clock(),
    });

  async function ownerOf(stepUp: StepUp): Promise<Principal> {
    const [owner] = await principalsByIds(db, [stepUp.principalId]);
    if (!owner) throw new Error(`step-up ${stepUp.id} has no principal`);
    return owner;
  }

  async function start(req: IncomingMessage, res: ServerResponse) {
    const token = pathOf(req).slice('/auth/step-up/'.length);
    if (!/^[A-Za-z0-9_-]{32,64}$/.test(token)) {
      return sendPage(res, 404, 'This verification link is not valid. Start again from chat.');
    }
    let config: oidc.Configuration;
    try {
      config = await configuration();
    } catch (error) {
      log.error({ err: error, issuer: settings.issuer }, 'step-up: OpenID discovery failed');
      // Before the link is opened, so it still works once the provider answers.
      return sendPage(
        res,
        503,
        'The identity provider cannot be reached right now; try this link again in a moment.',
      );
    }
    const flow = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
    };
    const opened = await stepUps.open(token, flow);
    if ('refused' in opened) {
      if (opened.stepUp) await refuse(opened.stepUp, (await ownerOf(opened.stepUp)).email, opened.refused);
      return sendPage(res, 410, opened.refused);
    }
    const owner = await ownerOf(opened);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.codeVerifier),
      code_challenge_method: 'S256',
      state: flow.state,
      nonce: flow.nonce,
      // A fresh sign-in, whatever session the browser has with the provider.
      prompt: 'login',
      max_age: '0',
      login_hint: owner.email,
      ...(settings.acrValues.length > 0 ? { acr_values: settings.acrValues.join(' ') } : {}),
    });
    res.writeHead(302, {
      location: url.href,
      'set-cookie': `${COOKIE}=${flow.state}; Path=/auth; HttpOnly; SameSite=Lax; Max-Age=900${secure ? '; Secure' : ''}`,
      'cache-control': 'no-store',
    });
    res.end();
  }

  async function callback(req: IncomingMessage, res: ServerResponse) {
    // The URL the provider redirected to, as registered (PUBLIC_URL), with the answer's query.
    const current = new URL(`${redirectUri}${new URL(req.url ?? '/', 'http://localhost').search}`);
    const state = current.searchParams.get('state');
    const stepUp = state ? await stepUps.byState(state) : undefined;
    if (!state || !stepUp) {
      return sendPage(
        res,
        400,
        'This sign-in was not started by Elevate, or it is no longer known. Start again from chat.',
      );
    }
    const owner = await ownerOf(stepUp);
    if (stepUp.finishedAt) {
      const sentence = 'This sign-in was already used; each verification works once. Start again from chat.';
      await refuse(stepUp, owner.email, sentence);
      return sendPage(res, 409, sentence);
    }
    const page = await check(stepUp, owner, current, cookieOf(req, COOKIE) ?? '');
    sendPage(res, page.status, page.sentence);
  }

  /** Every check of the sign-in, then the waiting action; refusals are recorded with their reason. */
  async function check(stepUp: StepUp, owner: Principal, current: URL, cookie: string): Promise<Page> {
    const refused = async (status: number, sentence: string, actor = owner.email): Promise<Page> => {
      const first = await stepUps.finish(stepUp, actor, { refused: sentence });
      if (!first) return { status: 409, sentence: 'This sign-in was already used. Start again from chat.' };
      return { status, sentence };
    };
    if (!sameText(cookie, stepUp.state ?? '')) {
      return refused(
        400,
        'This sign-in came back to a different browser than the one that opened the link. Open the link again from chat.',
      );
    }
    if (stepUp.expiresAt <= clock()) {
      return refused(
        410,
        'This verification took too long (links work for 10 minutes). Start again from chat.',
      );
    }
    const idpError = current.searchParams.get('error');
    if (idpError) {
      const said = current.searchParams.get('error_description') ?? idpError;
      return refused(
        400,
        `The identity provider did not complete the sign-in (${said.slice(0, 200)}). Nothing was changed.`,
      );
    }
    let claims: oidc.IDToken | undefined;
    let accessToken: string | undefined;
    try {
      const config = await configuration();
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: stepUp.codeVerifier ?? '',
        expectedState: stepUp.state ?? '',
        expectedNonce: stepUp.nonce ?? '',
      });
      claims = tokens.claims();
      accessToken = tokens.access_token;
      if (claims && !claims.email && !claims.oid && accessToken) {
        // Some providers put the email only in userinfo (OIDC's rule when an access token is issued).
        const info = await oidc.fetchUserInfo(config, accessToken, claims.sub);
        claims = { ...claims, email: info.email, email_verified: info.email_verified };
      }
    } catch (error) {
      log.warn({ err: error }, 'step-up: the sign-in response did not pass validation');
      return refused(
        400,
        'The identity provider’s answer could not be verified. Nothing was changed; start again from chat.',
      );
    }
    if (!claims) return refused(400, 'The identity provider sent no ID token. Nothing was changed.');

    // The token must be about the person acting in chat.
    const signedIn = await principalsOf(claims);
    const who = typeof claims.email === 'string' ? claims.email : `subject ${claims.sub}`;
    if (signedIn.length === 0 || signedIn.some((p) => p.id !== owner.id)) {
      return refused(
        403,
        `You signed in as ${who}, but this verification is for ${owner.email}. Nothing was changed.`,
        `${who} (signed in for ${owner.email})`,
      );
    }
    // Fresh: the provider says the person authenticated within the last 5 minutes.
    const authTime = typeof claims.auth_time === 'number' ? new Date(claims.auth_time * 1000) : undefined;
    if (!authTime)
      return refused(
        400,
        'The identity provider did not say when you signed in, so the sign-in cannot count as fresh. Nothing was changed.',
      );
    if (clock().getTime() - authTime.getTime() > STEP_UP_FRESH_MINUTES * MINUTE_MS) {
      return refused(
        400,
        `Your sign-in at ${authTime.toISOString().slice(11, 16)} UTC is older than ${STEP_UP_FRESH_MINUTES} minutes; the identity provider did not ask you again. Nothing was changed.`,
      );
    }
    // With MFA: `amr` names it, or the provider reports the configured authentication class.
    const amr = Array.isArray(claims.amr) ? claims.amr.filter((m): m is string => typeof m === 'string') : [];
    const acr = typeof claims.acr === 'string' ? claims.acr : undefined;
    if (!amr.includes('mfa') && !(acr !== undefined && settings.acrValues.includes(acr))) {
      return refused(
        403,
        'Your sign-in did not use multi-factor authentication, so it cannot count. Nothing was changed.',
      );
    }
    if (!(await stepUps.finish(stepUp, owner.email, { verified: { authTime, amr, acr } }))) {
      return { status: 409, sentence: 'This sign-in was already used. Start again from chat.' };
    }
    return proceed(stepUp, owner);
  }

  /** The principals the token's identifiers name (object id and verified email), without repeats. */
  async function principalsOf(claims: oidc.IDToken): Promise<Principal[]> {
    const found: Principal[] = [];
    if (typeof claims.oid === 'string') {
      const tenant = typeof claims.tid === 'string' ? claims.tid : undefined;
      const byOid = await findPrincipalByObjectId(db, claims.oid, tenant);
      if (byOid) found.push(byOid);
    }
    if (typeof claims.email === 'string' && claims.email_verified !== false) {
      const byEmail = await findPrincipalByEmail(db, claims.email);
      if (byEmail && !found.some((p) => p.id === byEmail.id)) found.push(byEmail);
    }
    return found;
  }

  /** The waiting action, through the core, which consumes the step-up in the same transaction. */
  async function proceed(stepUp: StepUp, owner: Principal): Promise<Page> {
    const actor = principalActor(owner);
    const purpose = stepUp.purpose;
    try {
      if (purpose.kind === 'activation') {
        const { startAt, ...ask } = purpose.ask;
        const view = await activations.requestActivation({
          actor,
          roleName: purpose.roleName,
          ...ask,
          startAt: startAt ? new Date(startAt) : undefined,
          stepUp: stepUp.id,
        });
        const status = view.activation.status;
        const next =
          status === 'pending_approval'
            ? 'it is waiting for approval'
            : status === 'active'
              ? 'it is active'
              : status === 'approved'
                ? 'it is scheduled'
                : `it is ${status.replace('_', ' ')}`;
        return {
          status: 200,
          sentence: `Identity verified: your request for ${purpose.roleName} is submitted and ${next}. You can close this page.`,
        };
      }
      if (purpose.verdict === 'approve') {
        const outcome = await activations.approve({
          actor,
          activationId: purpose.activationId,
          comment: purpose.comment,
          stepUp: stepUp.id,
        });
        const { role, principal } = outcome.view;
        return {
          status: 200,
          sentence:
            outcome.outcome === 'approved'
              ? `Identity verified: you approved ${principal.email}'s request for ${role.name}. You can close this page.`
              : `Identity verified: your approval of ${principal.email}'s request for ${role.name} is recorded; ${outcome.approvalsMissing} more needed. You can close this page.`,
        };
      }
      const view = await activations.deny({
        actor,
        activationId: purpose.activationId,
        comment: purpose.comment ?? '',
        stepUp: stepUp.id,
      });
      return {
        status: 200,
        sentence: `Identity verified: you denied ${view.principal.email}'s request for ${view.role.name}. You can close this page.`,
      };
    } catch (error) {
      if (error instanceof ElevateError) {
        return { status: 409, sentence: `Your identity is verified, but nothing was done: ${error.message}` };
      }
      log.error({ err: error, stepUp: stepUp.id }, 'step-up: the waiting action failed');
      return {
        status: 500,
        sentence: 'Your identity is verified, but something went wrong on our side; try again from chat.',
      };
    }
  }

  const guard =
    (handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>) =>
    async (req: IncomingMessage, res: ServerResponse) => {
      try {
        await handler(req, res);
      } catch (error) {
        log.error({ err: error }, 'step-up request failed');
        if (!res.headersSent)
          sendPage(res, 500, 'Something went wrong on our side; nothing was changed. Try again from chat.');
      }
    };

  return [
    { method: 'GET', path: '/auth/step-up/*', handler: guard(start) },
    { method: 'GET', path: '/auth/callback', handler: guard(callback) },
  ];
}

const pathOf = (req: IncomingMessage) => (req.url ?? '/').split('?')[0] ?? '/';

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

/** Constant-time comparison of two strings. */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A plain page with one sentence: what happened. Escaped; no script, nothing cached. */
export function sendPage(res: ServerResponse, status: number, sentence: string): void {
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Elevate</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem">
<p>${escapeHtml(sentence)}</p>
</body></html>
`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}
