import { GrantError, type GrantTarget } from '../grant-provider.ts';
import { entraEnv } from './entra-env.ts';

export const DEFAULT_GRAPH_URL = 'https://graph.microsoft.com';
export const DEFAULT_LOGIN_URL = 'https://login.microsoftonline.com';
/** How long one call may take before it counts as a (retryable) failure. */
const TIMEOUT_MS = 15_000;
/** A token is renewed this long before Entra says it expires (they live about an hour). */
const RENEW_BEFORE_MS = 5 * 60_000;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The application permission the email lookup needs. */
export const USER_LOOKUP_PERMISSION = 'User.Read.All';

/** Where and as whom the Entra providers call Microsoft Graph. */
export interface GraphSettings {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** Graph's root without the version, e.g. https://graph.microsoft.com. */
  graphUrl: string;
  /** The sign-in endpoint of the same cloud, e.g. https://login.microsoftonline.com. */
  loginUrl: string;
}

/** Reads the settings from the environment, or returns the one line saying what to set for `type`. */
export function graphSettings(env: NodeJS.ProcessEnv, type: string): GraphSettings | string {
  // An empty variable means "not set", as in config.ts.
  const present = Object.fromEntries(
    Object.keys(entraEnv.shape).flatMap((name) => (env[name] ? [[name, env[name]]] : [])),
  );
  if (!present.ENTRA_TENANT_ID || !present.ENTRA_CLIENT_ID || !present.ENTRA_CLIENT_SECRET) {
    return `the ${type} provider is not configured: set ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET`;
  }
  const parsed = entraEnv.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${String(issue.path[0])}: ${issue.message}`);
    return `the ${type} provider is not configured: ${problems.join('; ')}`;
  }
  const e = parsed.data;
  return {
    tenantId: e.ENTRA_TENANT_ID ?? '',
    clientId: e.ENTRA_CLIENT_ID ?? '',
    clientSecret: e.ENTRA_CLIENT_SECRET ?? '',
    // Tolerate a version on the root: paths below always add /v1.0.
    graphUrl: (e.GRAPH_API_URL ?? DEFAULT_GRAPH_URL).replace(/\/+$/, '').replace(/\/(v1\.0|beta)$/, ''),
    loginUrl: (e.ENTRA_LOGIN_URL ?? DEFAULT_LOGIN_URL).replace(/\/+$/, ''),
  };
}

/** One call to Graph, described so that a failure can say what was tried and what would fix it. */
export interface GraphRequest {
  method: 'GET' | 'POST' | 'DELETE';
  /**
   * Under the version root, e.g. `/groups/{id}/members/$ref`; ids already encoded (`segment`). Or
   * an absolute URL Graph handed out (`@odata.nextLink`), used as it is, without `query`.
   */
  path: string;
  /** OData query options, e.g. `{ $select: 'id' }`. */
  query?: Record<string, string>;
  body?: unknown;
  /** What the call does, in an admin's words: "adding dee@example.com to group …". */
  what: string;
  /** The application permission the call needs, named when Graph refuses it. */
  permission: string;
}

/** An answer the caller judges: 2xx and the 4xx that carry meaning (400, 404, 409…). */
export interface GraphResponse {
  status: number;
  body: unknown;
}

/**
 * A Microsoft Graph client for one app registration: signs in with client credentials (the
 * token is reused until shortly before it expires) and turns transport failures, throttling
 * (429, 503, 504, honouring Retry-After) and refusals (401, 403) into GrantErrors.
 */
export interface GraphClient {
  readonly settings: GraphSettings;
  /** The `@odata.id` of a directory object on this cloud's Graph. */
  directoryObjectUrl(id: string): string;
  send(request: GraphRequest): Promise<GraphResponse>;
  /** A valid access token, requested only when the cached one is about to expire. */
  token(): Promise<string>;
}

export function createGraphClient(
  settings: GraphSettings,
  options: { timeoutMs?: number } = {},
): GraphClient {
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
  const scope = `${new URL(settings.graphUrl).origin}/.default`;
  let cached: { value: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;

  /** One HTTP exchange, body included: no answer in time or no connection is a retryable failure. */
  async function call(
    url: string,
    init: RequestInit,
    what: string,
  ): Promise<{ response: Response; body: unknown }> {
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      return { response, body: await readBody(response) };
    } catch (error) {
      const reason =
        error instanceof Error && error.name === 'TimeoutError'
          ? `no answer within ${timeoutMs / 1000}s`
          : describeNetworkError(error);
      throw new GrantError(`${what} failed: ${reason}`, { retryable: true, cause: error });
    }
  }

  async function requestToken(): Promise<string> {
    const url = `${settings.loginUrl}/${encodeURIComponent(settings.tenantId)}/oauth2/v2.0/token`;
    const what = `signing in to Entra (${settings.loginUrl}, tenant ${settings.tenantId})`;
    const { response, body } = await call(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({
          client_id: settings.clientId,
          client_secret: settings.clientSecret,
          scope,
          grant_type: 'client_credentials',
        }),
      },
      what,
    );
    const token = record(body);
    const lifetimeMs = Number(token.expires_in) * 1000;
    if (response.ok && typeof token.access_token === 'string' && lifetimeMs > 0) {
      cached = {
        value: token.access_token,
        renewAt: Date.now() + lifetimeMs - Math.min(RENEW_BEFORE_MS, lifetimeMs / 2),
      };
      return token.access_token;
    }
    if (isTransient(response.status)) {
      throw new GrantError(`${what} failed: the sign-in endpoint answered ${response.status}`, {
        retryable: true,
        retryAfterMs: retryAfterMs(response),
      });
    }
    // Entra's error_description names the tenant and app, never the secret; its first line is the reason.
    const code = typeof token.error === 'string' ? token.error : `HTTP ${response.status}`;
    const description =
      typeof token.error_description === 'string' ? token.error_description.split(/\r?\n/)[0]?.trim() : '';
    throw new GrantError(
      `${what} failed (${code}${description ? `: ${description}` : ''}): check ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET`,
      { retryable: false },
    );
  }

  const client: GraphClient = {
    settings,
    directoryObjectUrl: (id) => `${settings.graphUrl}/v1.0/directoryObjects/${segment(id)}`,

    token() {
      if (cached && Date.now() < cached.renewAt) return Promise.resolve(cached.value);
      // Concurrent calls share one sign-in.
      pending ??= requestToken().finally(() => {
        pending = undefined;
      });
      return pending;
    },

    async send(request) {
      const query = Object.entries(request.query ?? {})
        .map(([name, value]) => `${name}=${encodeURIComponent(value)}`)
        .join('&');
      const url = request.path.startsWith(`${settings.graphUrl}/`)
        ? request.path
        : `${settings.graphUrl}/v1.0${request.path}${query ? `?${query}` : ''}`;
      for (let attempt = 1; ; attempt++) {
        const token = await client.token();
        const { response, body } = await call(
          url,
          {
            method: request.method,
            headers: {
              authorization: `Bearer ${token}`,
              accept: 'application/json',
              ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
            },
            body: request.body === undefined ? undefined : JSON.stringify(request.body),
          },
          request.what,
        );
        // A token Entra dropped before its time (keys rolled, consent withdrawn) is renewed once.
        if (response.status === 401 && attempt === 1) {
          if (cached?.value === token) cached = undefined;
          continue;
        }
        const { code, message } = graphError(body);
        if (response.status === 401 || response.status === 403) {
          throw new GrantError(
            `Microsoft Graph refused ${request.what} (${response.status} ${code}: ${message}): the app registration needs the ${request.permission} application permission, with admin consent`,
            { retryable: false },
          );
        }
        if (isTransient(response.status)) {
          throw new GrantError(`Microsoft Graph answered ${response.status} ${code} to ${request.what}`, {
            retryable: true,
            retryAfterMs: retryAfterMs(response),
          });
        }
        return { status: response.status, body };
      }
    },
  };
  return client;
}

/**
 * Every item of a Graph collection, following `@odata.nextLink` page by page. A next link that
 * leaves this cloud's Graph is refused rather than sent our token.
 */
export async function listAll(graph: GraphClient, request: GraphRequest): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let next: GraphRequest | undefined = request;
  while (next) {
    const response = await graph.send(next);
    if (response.status !== 200) throw unexpectedAnswer(response, request.what);
    const page = record(response.body);
    if (Array.isArray(page.value)) items.push(...page.value.map(record));
    const link = stringField(page, '@odata.nextLink');
    if (link && !link.startsWith(`${graph.settings.graphUrl}/`)) {
      throw new GrantError(
        `Microsoft Graph sent a next page outside ${graph.settings.graphUrl} while ${request.what}`,
        {
          retryable: false,
        },
      );
    }
    next = link ? { ...request, path: link, query: undefined } : undefined;
  }
  return items;
}

/** Graph's `{ error: { code, message } }`, or what there is of it. */
export function graphError(body: unknown): { code: string; message: string } {
  const error = record(record(body).error);
  return {
    code: typeof error.code === 'string' ? error.code : 'no error code',
    // A body that is no Graph error (a proxy's HTML page) is cut short.
    message:
      typeof error.message === 'string' ? error.message : typeof body === 'string' ? body.slice(0, 200) : '',
  };
}

/** A permanent failure for an answer the caller has no meaning for, with Graph's own words. */
export function unexpectedAnswer(response: GraphResponse, what: string): GrantError {
  const { code, message } = graphError(response.body);
  return new GrantError(`Microsoft Graph refused ${what} (${response.status} ${code}: ${message})`, {
    retryable: false,
  });
}

/** An id or name as one path segment (`@` kept, as Graph's own examples write user principal names). */
export function segment(value: string): string {
  return encodeURIComponent(value).replace(/%40/g, '@');
}

export const isGuid = (value: string): boolean => GUID.test(value);

/** Finds a principal's Entra object id. */
export interface UserDirectory {
  objectId(principal: GrantTarget['principal']): Promise<string>;
}

/**
 * Resolves principals to Entra object ids, in this order: the policy's `accounts.entra` (an
 * object id, or a user principal name to look up), the principal's Teams identity in this
 * tenant (its externalId is the object id), then the email as user principal name or mail.
 * Lookups are remembered for the life of the process: object ids never change.
 */
export function createUserDirectory(graph: GraphClient, providerType: string): UserDirectory {
  const known = new Map<string, string>();
  const tenant = graph.settings.tenantId;

  async function lookUp(name: string, email: string): Promise<string> {
    const key = name.toLowerCase();
    const remembered = known.get(key);
    if (remembered) return remembered;
    const byName = await graph.send({
      method: 'GET',
      path: `/users/${segment(name)}`,
      query: { $select: 'id' },
      what: `looking up the Entra user ${name}`,
      permission: USER_LOOKUP_PERMISSION,
    });
    let id: string | undefined;
    if (byName.status === 200) {
      id = stringField(byName.body, 'id');
    } else if (byName.status !== 404 && byName.status !== 400) {
      throw unexpectedAnswer(byName, `looking up the Entra user ${name}`);
    } else if (name.includes('@')) {
      // The user principal name often differs from the mail address (aliases, guests).
      const byMail = await graph.send({
        method: 'GET',
        path: '/users',
        query: { $filter: `mail eq '${name.replaceAll("'", "''")}'`, $select: 'id' },
        what: `looking up the Entra user with mail ${name}`,
        permission: USER_LOOKUP_PERMISSION,
      });
      if (byMail.status !== 200)
        throw unexpectedAnswer(byMail, `looking up the Entra user with mail ${name}`);
      const users = Array.isArray(record(byMail.body).value) ? (record(byMail.body).value as unknown[]) : [];
      if (users.length > 1) {
        throw new GrantError(
          `${users.length} Entra users have the mail ${name}: map ${email} to their object id with accounts.entra in the policy`,
          { retryable: false },
        );
      }
      id = stringField(users[0], 'id');
    }
    if (!id) {
      throw new GrantError(
        `no user in Entra tenant ${tenant} has the user principal name or mail ${name}: map ${email} to their object id with accounts.entra in the policy`,
        { retryable: false },
      );
    }
    known.set(key, id);
    return id;
  }

  return {
    async objectId(principal) {
      const mapped = principal.accounts.entra ?? principal.accounts[providerType];
      if (mapped) return isGuid(mapped) ? mapped : lookUp(mapped, principal.email);
      // A Teams identity from another tenant (a guest's home tenant) names a different directory.
      const teams = principal.identities.find(
        (i) =>
          i.platform === 'teams' &&
          isGuid(i.externalId) &&
          (!isGuid(i.tenant) || !isGuid(tenant) || i.tenant.toLowerCase() === tenant.toLowerCase()),
      );
      if (teams) return teams.externalId;
      return lookUp(principal.email, principal.email);
    },
  };
}

/**
 * The checks every Entra provider's `verify` shares: the variables are set and the app can sign
 * in; then `check` looks at the target and returns what is wrong with it, if anything. Problems
 * are `field: message` lines (`type:` for the environment), never with a secret in them.
 */
export async function verifyGraphAccess(
  env: NodeJS.ProcessEnv,
  type: string,
  field: string,
  check: (graph: GraphClient) => Promise<string | undefined>,
): Promise<string[]> {
  const settings = graphSettings(env, type);
  if (typeof settings === 'string') return [`type: ${settings}`];
  const graph = createGraphClient(settings);
  try {
    await graph.token();
  } catch (error) {
    return [`type: ${error instanceof Error ? error.message : String(error)}`];
  }
  try {
    const problem = await check(graph);
    return problem ? [`${field}: ${problem}`] : [];
  } catch (error) {
    return [`${field}: ${error instanceof Error ? error.message : String(error)}`];
  }
}

const isTransient = (status: number) => status === 408 || status === 429 || status >= 500;

/** Retry-After in seconds or as an HTTP date, as milliseconds; undefined when absent or unreadable. */
function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  if (cause && typeof cause.code === 'string') return cause.code;
  return cause && typeof cause.message === 'string' ? cause.message : error.message;
}

/** A Graph object's fields, or none when it is not an object. */
export function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

/** A non-empty string field of a Graph object. */
export function stringField(value: unknown, name: string): string | undefined {
  const field = record(value)[name];
  return typeof field === 'string' && field ? field : undefined;
}
