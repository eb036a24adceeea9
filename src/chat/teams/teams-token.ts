/**
 * The bot's outbound token: the OAuth 2.0 client-credentials grant against the configured sign-in
 * endpoint (TEAMS_LOGIN_URL/<tenant>/oauth2/v2.0/token), cached until shortly before it expires.
 * We fetch it ourselves, handed to the Teams SDK as its `token` option, because the SDK's MSAL
 * client accepts only its known https authorities, and a sovereign cloud or a local stand-in is
 * neither.
 */
export function createTokenSource(deps: {
  loginUrl: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  scope: string;
}) {
  let cached: { token: string; until: number } | undefined;
  let inFlight: Promise<string> | undefined;

  async function fetchToken(): Promise<string> {
    const url = `${deps.loginUrl.replace(/\/$/, '')}/${encodeURIComponent(deps.tenantId)}/oauth2/v2.0/token`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: deps.clientId,
        client_secret: deps.clientSecret,
        scope: deps.scope,
      }).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json().catch(() => ({}))) as {
      access_token?: string;
      expires_in?: number;
      error?: string;
    };
    // Never the secret or the body in the error: only what the sign-in service called the problem.
    if (!response.ok || !body.access_token)
      throw new Error(
        `Teams sign-in refused the bot's credentials (${response.status} ${body.error ?? ''})`.trim(),
      );
    // Renew five minutes early, so a token never expires on its way to the connector.
    cached = { token: body.access_token, until: Date.now() + ((body.expires_in ?? 3600) - 300) * 1000 };
    return body.access_token;
  }

  /** The current token, fetched once for concurrent callers. */
  return async function token(): Promise<string> {
    if (cached && cached.until > Date.now()) return cached.token;
    inFlight ??= fetchToken().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}
