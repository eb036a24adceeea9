import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the Slack Web API (`POST /api/<method>`), for `SLACK_API_URL`. It takes
 * form-encoded or JSON bodies (and query strings) as Slack does, checks the token (Bearer header
 * or `token` field), enforces each method's scopes (`missing_scope` with `needed`/`provided`),
 * sends `x-oauth-scopes` like Slack, records every call, and keeps users and user groups.
 * Methods are a table: `method(name, scopes, handler)` adds one (chat.postMessage, views.open…)
 * without touching the rest. `failNext` scripts a 429 with Retry-After, an HTTP status or a
 * Slack error for the next matching call.
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

/** A method's answer: the JSON body (`ok` is added when missing) or an error code from `slackError`. */
export type FakeSlackHandler = (args: Record<string, unknown>, api: FakeSlackApi) => Record<string, unknown>;

export interface FakeSlackApi {
  /** The base URL to give as SLACK_API_URL, ending with `/api/`. */
  url: string;
  token: string;
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

/** Every scope the built-in methods need. */
export const FAKE_SLACK_SCOPES = ['usergroups:read', 'usergroups:write', 'users:read', 'users:read.email'];

export async function startFakeSlackApi(
  options: {
    token?: string;
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

  const api: FakeSlackApi = {
    url: `http://127.0.0.1:${port}/api/`,
    token: options.token ?? 'xoxb-fake-token',
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
    if (token !== api.token) return send(200, slackError('invalid_auth'));
    const entry = methods.get(method);
    if (!entry) return send(200, slackError('unknown_method'));
    const needed = entry.scopes.find((scope) => !api.scopes.has(scope));
    if (needed)
      return send(200, slackError('missing_scope', { needed, provided: [...api.scopes].join(',') }));
    const body = entry.handler(args, api);
    return send(200, { ok: true, ...body });
  }

  for (const [name, scopes, handler] of builtInMethods) api.method(name, scopes, handler);
  return api;
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
