import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';

/** How the next sign-in at the local provider goes: who, with which methods, and when. */
export interface Login {
  /** The account (its email, which is also its subject). */
  account: string;
  amr: string[];
  acr?: string;
  /** When the person authenticated, in Unix seconds (default: now). */
  ts?: number;
}

/**
 * A real OpenID Connect provider (npm `oidc-provider`) on 127.0.0.1 for one confidential client.
 * Its login step signs in whoever `nextLogin` names, without a form: the test plays the person
 * and decides whether they used MFA and when they authenticated.
 */
export async function startLocalIdp(client: {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** An account's claims besides `sub`; by default the account is an email the provider verified. */
  claimsOf?: (account: string) => Record<string, unknown>;
}) {
  const claimsOf = client.claimsOf ?? ((account: string) => ({ email: account, email_verified: true }));
  let nextLogin: Login | undefined;
  let provider: Provider | undefined;
  const server: Server = createServer((req, res) => {
    if (!provider) {
      res.writeHead(503).end();
      return;
    }
    const p = provider;
    if ((req.url ?? '').startsWith('/interaction/')) {
      // The provider's login step, finished at once with the test's chosen sign-in.
      const login = nextLogin;
      nextLogin = undefined;
      if (!login) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('no sign-in prepared');
        return;
      }
      p.interactionFinished(req, res, {
        login: { accountId: login.account, amr: login.amr, acr: login.acr, ts: login.ts, remember: false },
      }).catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
      });
      return;
    }
    p.callback()(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        redirect_uris: [client.redirectUri],
        response_types: ['code'],
        grant_types: ['authorization_code'],
      },
    ],
    findAccount: async (_ctx: KoaContextWithOIDC, sub: string) => ({
      accountId: sub,
      claims: async () => ({ ...claimsOf(sub), sub }),
    }),
    // amr (and Entra's oid, tid) with the openid scope, so every ID token carries them.
    claims: { openid: ['sub', 'amr', 'oid', 'tid'], email: ['email', 'email_verified'], profile: ['name'] },
    interactions: { url: (_ctx: KoaContextWithOIDC, interaction) => `/interaction/${interaction.uid}` },
    features: { devInteractions: { enabled: false } },
    acrValues: ['urn:example:mfa', 'urn:example:pwd'],
    cookies: { keys: ['local-idp-test-cookie-key'] },
    // A first-party client: consent is implied, as for an app registration an admin approved.
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const accountId = ctx.oidc.session?.accountId;
      const clientId = ctx.oidc.client?.clientId;
      if (!accountId || !clientId) return undefined;
      const grant = new ctx.oidc.provider.Grant({ accountId, clientId });
      grant.addOIDCScope('openid email profile');
      await grant.save();
      return grant;
    },
  });
  return {
    issuer,
    /** The next sign-in (the one after that needs another call). */
    prepareLogin(login: Login) {
      nextLogin = login;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
