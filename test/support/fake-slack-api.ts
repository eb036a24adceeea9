import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

/**
 * A local stand-in for the Slack Web API (`POST /api/<method>`), for `SLACK_API_URL`. It takes
 * form-encoded or JSON bodies (and query strings) as Slack does, checks the token (Bearer header
 * or `token` field), enforces each method's scopes (`missing_scope` with `needed`/`provided`),
 * sends `x-oauth-scopes` like Slack, records every call, and keeps users and user groups.
 * Methods are a table: `method(name, scopes, handler)` adds one (chat.postMessage, views.open…)
 * without touching the rest. `failNext` scripts a 429 with Retry-After, an HTTP status or a
 * Slack error for the next matching call.
 *
 * Socket Mode: `apps.connections.open`, called with the app-level token (`appToken`, and only
 * with it, as Slack does), answers a `ws://` URL on the same port, where a WebSocket server plays
 * Slack's side: `hello` on connect, then envelopes sent with `socket.send()`, whose acks (the
 * client's `{envelope_id, payload}` messages) it hands back.
 */

export interface FakeSlackUser {
  id: string;
  email?: string;
  name?: string;
  isBot?: boolean;
  deleted?: boolean;
}

export interface FakeSlackUsergroup {
  id: string;
  handle: string;
  name: string;
  /** Kept as the last update sent it (Slack would de-duplicate), so a test sees a doubled member. */
  users: string[];
  disabled: boolean;
}

export interface FakeSlackCall {
  method: string;
  /** The arguments without the token, as strings (form) or JSON values (JSON body). */
  args: Record<string, unknown>;
  status: number;
  /** Slack's `error` when the answer was `ok: false`. */
  error?: string;
}

/** What the next matching call answers instead of its handler. */
export type FakeSlackFailure =
  | { status: 429; retryAfter?: number }
  | { status: number; body?: string }
  | { error: string; [field: string]: unknown };

/**
 * A method's answer: the JSON body (`ok` is added when missing) or an error code from `slackError`;
 * a promise of one answers when it settles (a slow Slack, or a test holding a call back).
 */
export type FakeSlackHandler = (
  args: Record<string, unknown>,
  api: FakeSlackApi,
) => Record<string, unknown> | Promise<Record<string, unknown>>;

/** An envelope's ack from the app: the envelope id, and the payload (a view's response_action…). */
export interface SocketAck {
  envelope_id: string;
  payload?: Record<string, unknown>;
}

/** Slack's side of Socket Mode connections. */
export interface FakeSocketMode {
  /** Every `apps.connections.open` URL handed out, and how many clients are connected now. */
  connections(): number;
  /** Resolves once a client is connected and was sent `hello`. */
  connected(timeoutMs?: number): Promise<void>;
  /**
   * Sends an envelope (`slash_commands`, `interactive`, `events_api`) to the connected client and
   * resolves with its ack; rejects when no ack comes within `timeoutMs` (Slack's 3 s).
   */
  send(
    type: string,
    payload: Record<string, unknown>,
    options?: { acceptsResponsePayload?: boolean; timeoutMs?: number },
  ): Promise<SocketAck>;
  /** Every message the client sent, parsed. */
  received: unknown[];
}

export interface FakeSlackApi {
  /** The base URL to give as SLACK_API_URL, ending with `/api/`. */
  url: string;
  token: string;
  /** The app-level token (`xapp-…`) that `apps.connections.open` takes, for SLACK_APP_TOKEN. */
  appToken: string;
  socket: FakeSocketMode;
  /** The token's scopes; remove one to see `missing_scope`. */
  scopes: Set<string>;
  team: { id: string; name: string };
  /** The bot's own user id, as `auth.test` tells it. */
  botUserId: string;
  users: Map<string, FakeSlackUser>;
  usergroups: Map<string, FakeSlackUsergroup>;
  calls: FakeSlackCall[];
  addUser(user: FakeSlackUser): FakeSlackUser;
  addUsergroup(group: {
    id: string;
    handle: string;
    name?: string;
    users?: string[];
    disabled?: boolean;
  }): FakeSlackUsergroup;
  /** The next call (of `method`, if given) answers this; failures queue in order. */
  failNext(failure: FakeSlackFailure, method?: string): void;
  /** Adds or replaces a method. */
  method(name: string, scopes: string[], handler: FakeSlackHandler): void;
  callsTo(method: string): FakeSlackCall[];
  close(): Promise<void>;
}

/** A Slack `ok: false` answer from a handler. */
export function slackError(error: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { ok: false, error, ...fields };
}

/** The app-level token the fake takes for `apps.connections.open` unless told another. */
export const FAKE_SLACK_APP_TOKEN = 'xapp-1-A0ELEVATE-fake-app-token';

/** Every scope the built-in methods need. */
export const FAKE_SLACK_SCOPES = ['usergroups:read', 'usergroups:write', 'users:read', 'users:read.email'];

export async function startFakeSlackApi(
  options: {
    token?: string;
    appToken?: string;
    scopes?: string[];
    team?: { id: string; name: string };
    botUserId?: string;
  } = {},
): Promise<FakeSlackApi> {
  const methods = new Map<string, { scopes: string[]; handler: FakeSlackHandler }>();
  const failures: { failure: FakeSlackFailure; method?: string }[] = [];

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const socketMode = startSocketMode(server, port);

  const api: FakeSlackApi = {
    url: `http://127.0.0.1:${port}/api/`,
    token: options.token ?? 'xoxb-fake-token',
    appToken: options.appToken ?? FAKE_SLACK_APP_TOKEN,
    socket: socketMode.socket,
    scopes: new Set(options.scopes ?? FAKE_SLACK_SCOPES),
    team: options.team ?? { id: 'T0FAKE', name: 'Fake Workspace' },
    botUserId: options.botUserId ?? 'U0ELEVATE',
    users: new Map(),
    usergroups: new Map(),
    calls: [],
    addUser(user) {
      api.users.set(user.id, user);
      return user;
    },
    addUsergroup(group) {
      const created = {
        id: group.id,
        handle: group.handle,
        name: group.name ?? group.handle,
        users: [...(group.users ?? [])],
        disabled: group.disabled ?? false,
      };
      api.usergroups.set(group.id, created);
      return created;
    },
    failNext(failure, method) {
      failures.push({ failure, method });
    },
    method(name, scopes, handler) {
      methods.set(name, { scopes, handler });
    },
    callsTo: (method) => api.calls.filter((call) => call.method === method),
    async close() {
      socketMode.close();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const url = new URL(request.url ?? '/', api.url);
    const match = /^\/api\/([A-Za-z0-9_.]+)$/.exec(url.pathname);
    if (!match?.[1]) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const method = match[1];
    const { token: bodyToken, ...args } = {
      ...Object.fromEntries(url.searchParams),
      ...(await readArgs(request)),
    } as Record<string, unknown>;
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const token = bearer ?? (typeof bodyToken === 'string' ? bodyToken : undefined);

    const send = (
      status: number,
      body: Record<string, unknown> | string,
      headers: Record<string, string> = {},
    ) => {
      const error = typeof body === 'object' && body.ok === false ? String(body.error) : undefined;
      api.calls.push({ method, args, status, ...(error ? { error } : {}) });
      const json = typeof body === 'object';
      response
        .writeHead(status, {
          'content-type': json ? 'application/json; charset=utf-8' : 'text/plain',
          'x-oauth-scopes': [...api.scopes].join(','),
          'x-accepted-oauth-scopes': (methods.get(method)?.scopes ?? []).join(','),
          ...headers,
        })
        .end(json ? JSON.stringify(body) : body);
    };

    const scripted = failures.findIndex((f) => f.method === undefined || f.method === method);
    if (scripted >= 0) {
      const [{ failure }] = failures.splice(scripted, 1) as [{ failure: FakeSlackFailure }];
      if ('error' in failure) return send(200, { ok: false, ...failure });
      if (failure.status === 429) {
        const retryAfter = 'retryAfter' in failure ? failure.retryAfter : undefined;
        return send(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(retryAfter ?? 1) });
      }
      return send(failure.status, 'body' in failure && failure.body ? failure.body : 'upstream trouble');
    }

    if (!token) return send(200, slackError('not_authed'));
    // Slack takes the app-level token for apps.connections.open only, and the bot token for the rest.
    if (method === 'apps.connections.open') {
      if (token !== api.appToken)
        return send(200, slackError(token === api.token ? 'not_allowed_token_type' : 'invalid_auth'));
      return send(200, { ok: true, url: socketMode.url() });
    }
    if (token === api.appToken) return send(200, slackError('not_allowed_token_type'));
    if (token !== api.token) return send(200, slackError('invalid_auth'));
    const entry = methods.get(method);
    if (!entry) return send(200, slackError('unknown_method'));
    const needed = entry.scopes.find((scope) => !api.scopes.has(scope));
    if (needed)
      return send(200, slackError('missing_scope', { needed, provided: [...api.scopes].join(',') }));
    const body = await entry.handler(args, api);
    return send(200, { ok: true, ...body });
  }

  for (const [name, scopes, handler] of builtInMethods) api.method(name, scopes, handler);
  return api;
}

/**
 * Slack's end of Socket Mode on `server`'s port: a WebSocket server behind each
 * `apps.connections.open` URL (`/link/?ticket=…`, one ticket per URL, as Slack's are single use).
 * On connect it sends `hello` (Bolt's client counts as connected only then); envelopes go to the
 * newest open connection.
 */
function startSocketMode(server: ReturnType<typeof createServer>, port: number) {
  const wss = new WebSocketServer({ noServer: true });
  const tickets = new Set<string>();
  const clients: WebSocket[] = [];
  const waiting = new Map<string, (ack: SocketAck) => void>();
  const received: unknown[] = [];
  const hello = new Set<() => void>();

  server.on('upgrade', (request, socket, head) => {
    const url = new URL(request.url ?? '/', `http://127.0.0.1:${port}`);
    const ticket = url.searchParams.get('ticket') ?? '';
    if (url.pathname !== '/link/' || !tickets.delete(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      clients.push(ws);
      ws.on('close', () => clients.splice(clients.indexOf(ws), 1));
      ws.on('message', (data) => {
        const message = JSON.parse(String(data)) as SocketAck;
        received.push(message);
        waiting.get(message.envelope_id)?.(message);
      });
      ws.send(
        JSON.stringify({
          type: 'hello',
          num_connections: clients.length,
          debug_info: { host: 'fake-applink', build_number: 1, approximate_connection_time: 18060 },
          connection_info: { app_id: 'A0ELEVATE' },
        }),
      );
      for (const resolve of hello) resolve();
      hello.clear();
    });
  });

  const socket: FakeSocketMode = {
    connections: () => clients.length,
    received,
    async connected(timeoutMs = 10_000) {
      if (clients.length > 0) return;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no Socket Mode client connected')), timeoutMs);
        hello.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    send(type, payload, options = {}) {
      const ws = clients.at(-1);
      if (!ws) return Promise.reject(new Error('no Socket Mode client is connected'));
      const envelopeId = randomUUID();
      return new Promise<SocketAck>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(envelopeId);
          reject(new Error(`no ack for the ${type} envelope ${envelopeId}`));
        }, options.timeoutMs ?? 3_000);
        waiting.set(envelopeId, (ack) => {
          clearTimeout(timer);
          waiting.delete(envelopeId);
          resolve(ack);
        });
        ws.send(
          JSON.stringify({
            envelope_id: envelopeId,
            type,
            payload,
            accepts_response_payload: options.acceptsResponsePayload ?? type !== 'events_api',
            ...(type === 'events_api' ? { retry_attempt: 0, retry_reason: '' } : {}),
          }),
        );
      });
    },
  };

  return {
    socket,
    /** A fresh single-use URL, as `apps.connections.open` returns. */
    url() {
      const ticket = randomUUID();
      tickets.add(ticket);
      return `ws://127.0.0.1:${port}/link/?ticket=${ticket}&app_id=A0ELEVATE`;
    },
    close() {
      for (const ws of clients) ws.terminate();
      wss.close();
    },
  };
}

/** The arguments of a form-encoded or JSON body, as Slack takes them. */
async function readArgs(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return {};
  const type = request.headers['content-type'] ?? '';
  if (type.startsWith('application/json')) {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/** A Slack boolean argument: true, "true" or "1". */
function flag(value: unknown): boolean {
  return value === true || value === 'true' || value === '1' || value === 1;
}

/** A Slack list argument: an array, a JSON array string or a comma-separated string. */
function list(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== 'string' || value.trim() === '') return [];
  if (value.trim().startsWith('[')) return (JSON.parse(value) as unknown[]).map(String);
  return value.split(',').map((item) => item.trim());
}

function usergroupObject(api: FakeSlackApi, group: FakeSlackUsergroup, args: Record<string, unknown>) {
  return {
    id: group.id,
    team_id: api.team.id,
    is_usergroup: true,
    name: group.name,
    description: '',
    handle: group.handle,
    is_external: false,
    date_create: 1_700_000_000,
    date_update: 1_700_000_000,
    date_delete: group.disabled ? 1_700_000_001 : 0,
    auto_type: null,
    created_by: api.botUserId,
    updated_by: api.botUserId,
    deleted_by: group.disabled ? api.botUserId : null,
    prefs: { channels: [], groups: [] },
    ...(flag(args.include_count) ? { user_count: group.users.length } : {}),
    ...(flag(args.include_users) ? { users: group.users } : {}),
  };
}

/**
 * The group an argument names. Assumption (Slack does not document it): without
 * `include_disabled`, a disabled group answers as if it did not exist.
 */
function usergroupOf(api: FakeSlackApi, args: Record<string, unknown>) {
  const group = api.usergroups.get(String(args.usergroup ?? ''));
  return group && (!group.disabled || flag(args.include_disabled)) ? group : undefined;
}

function userObject(api: FakeSlackApi, user: FakeSlackUser) {
  return {
    id: user.id,
    team_id: api.team.id,
    name: user.name ?? user.email?.split('@')[0] ?? user.id,
    deleted: user.deleted ?? false,
    is_bot: user.isBot ?? false,
    profile: { email: user.email },
  };
}

const builtInMethods: [string, string[], FakeSlackHandler][] = [
  [
    'auth.test',
    [],
    (_args, api) => ({
      url: 'https://fake.slack.com/',
      team: api.team.name,
      user: 'elevate',
      team_id: api.team.id,
      user_id: api.botUserId,
      bot_id: 'B0ELEVATE',
      is_enterprise_install: false,
    }),
  ],
  [
    'users.lookupByEmail',
    ['users:read.email'],
    (args, api) => {
      const email = String(args.email ?? '').toLowerCase();
      const user = [...api.users.values()].find((u) => u.email?.toLowerCase() === email);
      return user ? { user: userObject(api, user) } : slackError('users_not_found');
    },
  ],
  [
    'usergroups.list',
    ['usergroups:read'],
    (args, api) => ({
      usergroups: [...api.usergroups.values()]
        .filter((group) => !group.disabled || flag(args.include_disabled))
        .map((group) => usergroupObject(api, group, args)),
    }),
  ],
  [
    'usergroups.users.list',
    ['usergroups:read'],
    (args, api) => {
      if (!args.usergroup) return slackError('missing_argument');
      const group = usergroupOf(api, args);
      return group ? { users: [...group.users] } : slackError('no_such_subteam');
    },
  ],
  [
    'usergroups.users.update',
    ['usergroups:write'],
    (args, api) => {
      if (!args.usergroup) return slackError('missing_argument');
      const group = usergroupOf(api, args);
      if (!group) return slackError('no_such_subteam');
      const users = list(args.users);
      // Slack cannot empty a user group: usergroups.disable is the way.
      if (users.length === 0) return slackError('no_users_provided');
      const refused = users.some((id) => {
        const user = api.users.get(id);
        return !user || user.isBot || user.deleted;
      });
      if (refused) return slackError('invalid_users');
      group.users = users;
      return { usergroup: usergroupObject(api, group, { ...args, include_users: true }) };
    },
  ],
  [
    'usergroups.disable',
    ['usergroups:write'],
    (args, api) => {
      const group = api.usergroups.get(String(args.usergroup ?? ''));
      if (!group) return slackError('no_such_subteam');
      group.disabled = true;
      return { usergroup: usergroupObject(api, group, args) };
    },
  ],
  [
    'usergroups.enable',
    ['usergroups:write'],
    (args, api) => {
      const group = api.usergroups.get(String(args.usergroup ?? ''));
      if (!group) return slackError('no_such_subteam');
      group.disabled = false;
      return { usergroup: usergroupObject(api, group, args) };
    },
  ],
];
