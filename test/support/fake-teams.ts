import { createSign, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local Microsoft cloud for the Teams end-to-end tests, on one HTTP server:
 * - the Bot Framework OpenID metadata and its JWKS (a fresh RSA key), and `sign()` to make the
 *   JWTs Teams puts on each activity it sends the bot;
 * - the sign-in service's client-credentials endpoint, issuing the bot's outbound token;
 * - the connector (`/v3/conversations…`): records every message and update, creates 1:1
 *   conversations, answers member lookups with emails; every call must carry the issued token.
 * Elevate reaches it only through configuration (TEAMS_OPENID_METADATA_URL, TEAMS_LOGIN_URL, the
 * activities' serviceUrl, TEAMS_SERVICE_URL).
 */

export const BOT_ISSUER = 'https://api.botframework.com';

/** A Teams user of the fake tenant. */
export interface TeamsUser {
  /** Bot Framework user id (`29:…`). */
  id: string;
  aadObjectId: string;
  name: string;
  email?: string;
}

/** One call the connector received. */
export interface ConnectorCall {
  method: 'POST' | 'PUT' | 'GET';
  path: string;
  conversationId?: string;
  activityId?: string;
  body: Record<string, unknown>;
  at: number;
}

/** A message as the user sees it now in a conversation (updates applied). */
export interface PostedMessage {
  conversationId: string;
  id: string;
  activity: Record<string, unknown>;
  /** How many times it was replaced (PUT). */
  updates: number;
}

export interface FakeTeams {
  url: string;
  clientId: string;
  clientSecret: string;
  tenantId: string;
  /** The connector's base, as the activities' serviceUrl. */
  serviceUrl: string;
  openIdMetadataUrl: string;
  users: Map<string, TeamsUser>;
  calls: ConnectorCall[];
  messages: Map<string, PostedMessage>;
  tokensIssued(): number;
  addUser(key: string, email?: string): TeamsUser;
  /** A JWT as Teams signs them; `claims` override the defaults (and `key: 'other'` signs with a stranger's key). */
  sign(claims?: Record<string, unknown>, options?: { key?: 'ours' | 'other' }): string;
  /** The next `times` message posts or updates in `conversationId` answer `status` (with Retry-After seconds). */
  failNext(conversationId: string, status: number, times: number, retryAfterSeconds?: number): void;
  /** Team rosters by conversation id, for `GET …/members`. */
  rosters: Map<string, string[]>;
  /** Messages posted to a conversation, oldest first. */
  messagesIn(conversationId: string): PostedMessage[];
  close(): Promise<void>;
}

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex') };
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export async function startFakeTeams(): Promise<FakeTeams> {
  const ours = keyPair();
  const other = keyPair();
  const clientId = randomUUID();
  const clientSecret = randomBytes(16).toString('hex');
  const tenantId = randomUUID();
  const issued = new Set<string>();
  const users = new Map<string, TeamsUser>();
  const calls: ConnectorCall[] = [];
  const messages = new Map<string, PostedMessage>();
  const rosters = new Map<string, string[]>();
  const failures: { conversationId: string; status: number; retryAfter?: number }[] = [];
  let url = '';

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  const byId = (id: string) => [...users.values()].find((u) => u.id === id || u.aadObjectId === id);

  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const text = await readBody(req);
    if (req.method === 'GET' && path === '/v1/.well-known/openidconfiguration') {
      return json(res, 200, {
        issuer: BOT_ISSUER,
        jwks_uri: `${url}/v1/.well-known/keys`,
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if (req.method === 'GET' && path === '/v1/.well-known/keys') {
      return json(res, 200, { keys: [{ ...ours.jwk, kid: ours.kid, use: 'sig', alg: 'RS256' }] });
    }
    if (req.method === 'POST' && path === `/${tenantId}/oauth2/v2.0/token`) {
      const form = new URLSearchParams(text);
      if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret)
        return json(res, 401, { error: 'invalid_client' });
      const token = `bot-${randomBytes(12).toString('hex')}`;
      issued.add(token);
      return json(res, 200, { token_type: 'Bearer', expires_in: 3599, access_token: token });
    }
    if (!path.startsWith('/v3/conversations')) return json(res, 404, { error: 'not found' });
    const auth = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!issued.has(auth)) return json(res, 401, { error: { code: 'Unauthorized', message: 'bad token' } });
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    // Conversation ids are not URL-encoded by Teams clients; ids here have no slashes.
    const match = /^\/v3\/conversations(?:\/([^/]+))?(?:\/(activities|members)(?:\/([^/]+))?)?$/.exec(path);
    if (!match) return json(res, 404, { error: 'not found' });
    const [, conversationId, kind, sub] = match;
    const call: ConnectorCall = {
      method: req.method as ConnectorCall['method'],
      path,
      conversationId,
      activityId: kind === 'activities' ? sub : undefined,
      body,
      at: Date.now(),
    };
    if (req.method === 'POST' && !conversationId) {
      calls.push(call);
      const member = (body.members as { id: string }[] | undefined)?.[0];
      const user = member && byId(member.id);
      if (!user) return json(res, 404, { error: { code: 'NotFound', message: 'no such user' } });
      return json(res, 201, { id: `a:personal-${user.aadObjectId}` });
    }
    if (kind === 'members' && req.method === 'GET') {
      calls.push(call);
      if (sub) {
        const user = byId(decodeURIComponent(sub));
        if (!user) return json(res, 404, { error: { code: 'MemberNotFoundInConversation' } });
        return json(res, 200, {
          id: user.id,
          name: user.name,
          aadObjectId: user.aadObjectId,
          ...(user.email ? { email: user.email, userPrincipalName: user.email } : {}),
          tenantId,
        });
      }
      const roster = (rosters.get(conversationId ?? '') ?? []).map((key) => users.get(key));
      return json(
        res,
        200,
        roster
          .filter(Boolean)
          .map((u) => ({ id: u?.id, name: u?.name, aadObjectId: u?.aadObjectId, email: u?.email })),
      );
    }
    if (kind === 'activities' && conversationId) {
      const index = failures.findIndex((f) => f.conversationId === conversationId);
      const failure = req.method === 'POST' || req.method === 'PUT' ? failures[index] : undefined;
      if (failure) {
        failures.splice(index, 1);
        calls.push({ ...call, body: { ...body, failedWith: failure.status } });
        return json(
          res,
          failure.status,
          { error: { code: 'Throttled', message: 'slow down' } },
          failure.retryAfter === undefined ? {} : { 'retry-after': String(failure.retryAfter) },
        );
      }
      calls.push(call);
      if (req.method === 'POST' && !sub) {
        const id = `1${Date.now()}${randomBytes(3).toString('hex')}`;
        messages.set(id, { conversationId, id, activity: body, updates: 0 });
        return json(res, 201, { id });
      }
      if (req.method === 'PUT' && sub) {
        const known = messages.get(sub);
        if (!known || known.conversationId !== conversationId)
          return json(res, 404, { error: { code: 'NotFound', message: 'no such activity' } });
        messages.set(sub, { ...known, activity: body, updates: known.updates + 1 });
        return json(res, 200, { id: sub });
      }
    }
    return json(res, 405, { error: 'unsupported' });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    clientId,
    clientSecret,
    tenantId,
    serviceUrl: `${url}/`,
    openIdMetadataUrl: `${url}/v1/.well-known/openidconfiguration`,
    users,
    calls,
    messages,
    rosters,
    tokensIssued: () => issued.size,
    addUser(key, email) {
      const user: TeamsUser = {
        id: `29:${key}-${randomBytes(4).toString('hex')}`,
        aadObjectId: randomUUID(),
        name: key,
        email,
      };
      users.set(key, user);
      return user;
    },
    sign(claims = {}, options = {}) {
      const key = options.key === 'other' ? other : ours;
      const now = Math.floor(Date.now() / 1000);
      const header = { alg: 'RS256', typ: 'JWT', kid: key.kid };
      const payload = {
        iss: BOT_ISSUER,
        aud: clientId,
        serviceurl: `${url}/`,
        nbf: now - 60,
        iat: now - 60,
        exp: now + 3600,
        ...claims,
      };
      const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
      const signature = createSign('RSA-SHA256').update(input).sign(key.privateKey);
      return `${input}.${b64url(signature)}`;
    },
    failNext(conversationId, status, times, retryAfterSeconds) {
      for (let i = 0; i < times; i++)
        failures.push({ conversationId, status, retryAfter: retryAfterSeconds });
    },
    messagesIn(conversationId) {
      return [...messages.values()].filter((m) => m.conversationId === conversationId);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
