import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A user in the fake directory. */
export interface FakeUser {
  id: string;
  userPrincipalName: string;
  mail?: string;
}

/** One Graph request as the fake received it (token requests are only counted). */
export interface RecordedRequest {
  method: string;
  /** Decoded path under the host, e.g. `/v1.0/groups/{id}/members/$ref`. */
  path: string;
  query: Record<string, string>;
  body: unknown;
  /** The status the fake answered (0 while unanswered). */
  status: number;
}

/** An active role assignment schedule, as `roleAssignmentSchedules` lists it. */
export interface FakeSchedule {
  id: string;
  principalId: string;
  roleDefinitionId: string;
  directoryScopeId: string;
  assignmentType: 'Assigned';
  memberType: 'Direct';
  status: 'Provisioned';
  scheduleInfo: {
    startDateTime: string;
    expiration: { type: string; endDateTime: string | null };
  };
}

interface Failure {
  status: number;
  retryAfter?: string;
  code?: string;
  message?: string;
}

/**
 * A local stand-in for the Entra sign-in endpoint and the Microsoft Graph calls the Entra
 * providers make. It issues bearer tokens for one app registration and refuses requests that
 * do not carry one, keeps group members and role assignment schedules the way Graph answers
 * for them (a second add is a 400, removing a non-member a 404, RoleAssignmentExists…), records
 * every Graph request, and can be told to fail, throttle or hang the next ones.
 */
export interface FakeGraph {
  /** Serves both roles: set it as GRAPH_API_URL and ENTRA_LOGIN_URL. */
  readonly url: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The environment that points the providers at this fake. */
  env(overrides?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  addUser(user: FakeUser): FakeUser;
  addGroup(id: string, group?: Record<string, unknown>): void;
  addRoleDefinition(id: string, displayName?: string): void;
  /** The group's direct members (object ids). */
  members(groupId: string): string[];
  /** Makes someone a direct member behind Elevate's back (the portal, another tool). */
  addMember(groupId: string, objectId: string): void;
  /** Assigns a role permanently behind Elevate's back (outside PIM). */
  assignOutside(principalId: string, roleDefinitionId: string, directoryScopeId?: string): void;
  /** The live (not yet ended) role assignment schedules. */
  schedules(filter?: { principalId?: string; roleDefinitionId?: string }): FakeSchedule[];
  readonly requests: RecordedRequest[];
  /** How many tokens were requested. */
  readonly tokenRequests: number;
  /** The next Graph request(s) get this answer instead (e.g. 429 with Retry-After, 503, 403). */
  failNext(
    status: number,
    options?: { retryAfter?: string; code?: string; message?: string; times?: number },
  ): void;
  /** The next Graph request gets no answer at all (for timeouts). */
  hangNext(): void;
  /** Every token issued so far stops working, as after a key rollover. */
  expireTokens(): void;
  close(): Promise<void>;
}

const GRAPH_ERROR_CODES: Record<number, string> = {
  401: 'InvalidAuthenticationToken',
  403: 'Authorization_RequestDenied',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  503: 'ServiceUnavailable',
  504: 'GatewayTimeout',
};

export async function startFakeGraph(
  options: {
    tenantId?: string;
    clientId?: string;
    clientSecret?: string;
    tokenLifetimeSeconds?: number;
    /** Items per page of a listing; more follow through `@odata.nextLink`, as Graph pages them. */
    pageSize?: number;
  } = {},
): Promise<FakeGraph> {
  const tenantId = options.tenantId ?? crypto.randomUUID();
  const clientId = options.clientId ?? crypto.randomUUID();
  const clientSecret = options.clientSecret ?? `secret-${crypto.randomUUID()}`;
  const lifetime = options.tokenLifetimeSeconds ?? 3599;
  const pageSize = options.pageSize ?? 100;

  const users: FakeUser[] = [];
  const groups = new Map<string, { info: Record<string, unknown>; members: Set<string> }>();
  const roleDefinitions = new Map<string, string>();
  let schedules: FakeSchedule[] = [];
  const tokens = new Map<string, number>();
  const requests: RecordedRequest[] = [];
  const failures: Failure[] = [];
  let hangs = 0;
  let tokenRequests = 0;
  let url = '';

  const live = () => schedules.filter((s) => endOf(s) > Date.now());
  const findUser = (idOrName: string) =>
    users.find((u) => u.id === idOrName || u.userPrincipalName.toLowerCase() === idOrName.toLowerCase());

  const server = createServer((req, res) => {
    handle(req)
      .then((reply) => {
        if (reply) send(res, reply);
      })
      .catch((error: unknown) => {
        send(res, { status: 500, body: { error: { code: 'InternalServerError', message: String(error) } } });
      });
  });

  /** The reply to one request; undefined leaves it unanswered. */
  async function handle(req: IncomingMessage): Promise<Reply | undefined> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const parsed = new URL(req.url ?? '/', url);
    const path = decodeURIComponent(parsed.pathname);
    const method = req.method ?? 'GET';

    const tokenPath = path.match(/^\/([^/]+)\/oauth2\/v2\.0\/token$/);
    if (tokenPath && method === 'POST') return issueToken(tokenPath[1] ?? '', new URLSearchParams(text));

    const query = Object.fromEntries(parsed.searchParams);
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const recorded: RecordedRequest = { method, path, query, body, status: 0 };
    requests.push(recorded);
    const reply = answer(req, method, path, query, body);
    if (reply) recorded.status = reply.status;
    return reply;
  }

  function answer(
    req: IncomingMessage,
    method: string,
    path: string,
    query: Record<string, string>,
    body: unknown,
  ): Reply | undefined {
    if (hangs > 0) {
      hangs--;
      return undefined; // never answered; close() drops the connection
    }
    const failure = failures.shift();
    if (failure) {
      return {
        status: failure.status,
        body: {
          error: {
            code: failure.code ?? GRAPH_ERROR_CODES[failure.status] ?? 'UnknownError',
            message: failure.message ?? 'Injected by the fake.',
          },
        },
        headers: failure.retryAfter ? { 'retry-after': failure.retryAfter } : {},
      };
    }
    const bearer = req.headers.authorization?.match(/^Bearer (.+)$/)?.[1];
    const expiresAt = bearer ? tokens.get(bearer) : undefined;
    if (!expiresAt || expiresAt < Date.now()) {
      return graphFailure(401, 'InvalidAuthenticationToken', 'Access token is empty or invalid.');
    }
    return route(method, path.replace(/^\/v1\.0/, ''), query, body);
  }

  function issueToken(tenant: string, form: URLSearchParams): Reply {
    tokenRequests++;
    const refuse = (status: number, error: string, description: string) => ({
      status,
      body: { error, error_description: `${description}\r\nTrace ID: 0\r\nTimestamp: now` },
    });
    if (tenant !== tenantId)
      return refuse(400, 'invalid_request', `AADSTS90002: Tenant '${tenant}' not found.`);
    if (form.get('grant_type') !== 'client_credentials' || form.get('scope') !== `${url}/.default`) {
      return refuse(
        400,
        'invalid_scope',
        `AADSTS1002012: The provided value for scope ${form.get('scope')} is not valid.`,
      );
    }
    if (form.get('client_id') !== clientId) {
      return refuse(
        400,
        'unauthorized_client',
        `AADSTS700016: Application with identifier '${form.get('client_id')}' was not found in the directory.`,
      );
    }
    if (form.get('client_secret') !== clientSecret) {
      return refuse(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
    }
    const token = `fake-${crypto.randomUUID()}`;
    tokens.set(token, Date.now() + lifetime * 1000);
    return {
      status: 200,
      body: { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token },
    };
  }

  function route(method: string, path: string, query: Record<string, string>, body: unknown): Reply {
    const notFound = (id = '') =>
      graphFailure(
        404,
        'Request_ResourceNotFound',
        `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`,
      );
    const user = path.match(/^\/users\/([^/]+)$/);
    const group = path.match(/^\/groups\/([^/]+)$/);
    const addMember = path.match(/^\/groups\/([^/]+)\/members\/\$ref$/);
    const member = path.match(/^\/groups\/([^/]+)\/members\/([^/]+)(\/microsoft\.graph\.user)?$/);
    const removeMember = path.match(/^\/groups\/([^/]+)\/members\/([^/]+)\/\$ref$/);
    const roleDefinition = path.match(/^\/roleManagement\/directory\/roleDefinitions\/([^/]+)$/);
    const memberList = path.match(/^\/groups\/([^/]+)\/members$/);

    /** One page of a listing, with the next link Graph would give (an opaque skip token). */
    const paged = (items: unknown[]): Reply => {
      const skip = Number(query.$skiptoken ?? 0);
      const rest = { ...query, $skiptoken: String(skip + pageSize) };
      const next = `${url}/v1.0${path}?${new URLSearchParams(rest).toString()}`;
      return {
        status: 200,
        body: {
          value: items.slice(skip, skip + pageSize),
          ...(skip + pageSize < items.length ? { '@odata.nextLink': next } : {}),
        },
      };
    };

    if (method === 'GET' && path === '/users') {
      const mail = query.$filter?.match(/^mail eq '(.*)'$/)?.[1]?.replaceAll("''", "'");
      if (mail === undefined) return graphFailure(400, 'BadRequest', 'Unsupported query.');
      const found = users.filter((u) => u.mail?.toLowerCase() === mail.toLowerCase());
      return { status: 200, body: { value: found.map((u) => ({ id: u.id })) } };
    }
    if (method === 'GET' && user) {
      const found = findUser(user[1] ?? '');
      return found ? { status: 200, body: { id: found.id } } : notFound(user[1]);
    }
    if (method === 'GET' && group) {
      const found = groups.get(group[1] ?? '');
      return found ? { status: 200, body: { id: group[1], ...found.info } } : notFound(group[1]);
    }
    if (method === 'POST' && addMember) {
      const found = groups.get(addMember[1] ?? '');
      if (!found) return notFound(addMember[1]);
      const reference = String((body as Record<string, unknown> | undefined)?.['@odata.id'] ?? '');
      const userId = reference.startsWith(`${url}/v1.0/directoryObjects/`)
        ? reference.split('/').pop()
        : undefined;
      if (!userId || !findUser(userId)) return notFound(userId ?? reference);
      if (found.members.has(userId)) {
        return graphFailure(
          400,
          'Request_BadRequest',
          "One or more added object references already exist for the following modified properties: 'members'.",
        );
      }
      found.members.add(userId);
      return { status: 204 };
    }
    if (method === 'DELETE' && removeMember) {
      const found = groups.get(removeMember[1] ?? '');
      if (!found) return notFound(removeMember[1]);
      return found.members.delete(removeMember[2] ?? '') ? { status: 204 } : notFound(removeMember[2]);
    }
    if (method === 'GET' && member) {
      const found = groups.get(member[1] ?? '');
      if (!found) return notFound(member[1]);
      return found.members.has(member[2] ?? '')
        ? { status: 200, body: { id: member[2] } }
        : notFound(member[2]);
    }
    if (method === 'GET' && memberList) {
      const found = groups.get(memberList[1] ?? '');
      if (!found) return notFound(memberList[1]);
      return paged([...found.members].map((id) => ({ '@odata.type': '#microsoft.graph.user', id })));
    }
    if (method === 'GET' && path === '/roleManagement/directory/roleAssignments') {
      const filter = query.$filter?.match(/^roleDefinitionId eq '([^']*)'$/);
      if (!filter) return graphFailure(400, 'BadRequest', 'Unsupported query.');
      // Every live schedule is an assignment in force (the fake starts them at once).
      const value = live()
        .filter((s) => s.roleDefinitionId === filter[1])
        .map((s) => ({
          id: s.id,
          principalId: s.principalId,
          roleDefinitionId: s.roleDefinitionId,
          directoryScopeId: s.directoryScopeId,
        }));
      return paged(value);
    }
    if (method === 'GET' && roleDefinition) {
      const name = roleDefinitions.get(roleDefinition[1] ?? '');
      return name === undefined
        ? notFound(roleDefinition[1])
        : { status: 200, body: { id: roleDefinition[1], displayName: name } };
    }
    if (method === 'GET' && path === '/roleManagement/directory/roleAssignmentSchedules') {
      const filter = query.$filter?.match(/^principalId eq '([^']*)' and roleDefinitionId eq '([^']*)'$/);
      if (!filter) return graphFailure(400, 'BadRequest', 'Unsupported query.');
      const value = live().filter((s) => s.principalId === filter[1] && s.roleDefinitionId === filter[2]);
      return { status: 200, body: { value } };
    }
    if (method === 'POST' && path === '/roleManagement/directory/roleAssignmentScheduleRequests') {
      return scheduleRequest(body as Record<string, unknown>);
    }
    return graphFailure(400, 'BadRequest', `Resource not found for the segment '${path}'.`);
  }

  function scheduleRequest(body: Record<string, unknown>): Reply {
    const fail = (code: string, message: string) => graphFailure(400, code, message);
    const { action, principalId, roleDefinitionId, directoryScopeId } = body;
    if (
      typeof principalId !== 'string' ||
      typeof roleDefinitionId !== 'string' ||
      typeof directoryScopeId !== 'string'
    ) {
      return fail('InvalidRequest', 'principalId, roleDefinitionId and directoryScopeId are required.');
    }
    if (!roleDefinitions.has(roleDefinitionId))
      return fail('RoleNotFound', 'The role definition was not found.');
    if (!findUser(principalId)) return fail('SubjectNotFound', 'The principal was not found.');
    const same = (s: FakeSchedule) =>
      s.principalId === principalId &&
      s.roleDefinitionId === roleDefinitionId &&
      s.directoryScopeId === directoryScopeId;
    const existing = live().find(same);
    const info = body.scheduleInfo as FakeSchedule['scheduleInfo'] | undefined;
    const created = (status: string, schedule?: FakeSchedule): Reply => ({
      status: 201,
      body: {
        id: crypto.randomUUID(),
        status,
        action,
        principalId,
        roleDefinitionId,
        directoryScopeId,
        targetScheduleId: schedule?.id,
      },
    });

    if (action === 'adminAssign' || action === 'adminUpdate') {
      if (!info?.startDateTime || !info.expiration?.type)
        return fail('InvalidRequest', 'scheduleInfo is required.');
      const scheduleInfo = {
        startDateTime: info.startDateTime,
        expiration: { type: info.expiration.type, endDateTime: info.expiration.endDateTime ?? null },
      };
      if (action === 'adminAssign') {
        if (existing) return fail('RoleAssignmentExists', 'The Role assignment already exists.');
        const schedule: FakeSchedule = {
          id: crypto.randomUUID(),
          principalId,
          roleDefinitionId,
          directoryScopeId,
          assignmentType: 'Assigned',
          memberType: 'Direct',
          status: 'Provisioned',
          scheduleInfo,
        };
        schedules.push(schedule);
        return created('Provisioned', schedule);
      }
      if (!existing) return fail('RoleAssignmentDoesNotExist', 'The Role assignment does not exist.');
      existing.scheduleInfo = scheduleInfo;
      return created('Provisioned', existing);
    }
    if (action === 'adminRemove') {
      if (!existing) return fail('RoleAssignmentDoesNotExist', 'The Role assignment does not exist.');
      schedules = schedules.filter((s) => !same(s));
      return created('Revoked');
    }
    return fail('InvalidRequest', `The fake does not play the action ${String(action)}.`);
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    tenantId,
    clientId,
    clientSecret,
    env: (overrides = {}) => ({
      ENTRA_TENANT_ID: tenantId,
      ENTRA_CLIENT_ID: clientId,
      ENTRA_CLIENT_SECRET: clientSecret,
      GRAPH_API_URL: url,
      ENTRA_LOGIN_URL: url,
      ...overrides,
    }),
    addUser(user) {
      users.push(user);
      return user;
    },
    addGroup(id, info = {}) {
      groups.set(id, { info: { displayName: `group ${id}`, groupTypes: [], ...info }, members: new Set() });
    },
    addRoleDefinition(id, displayName = `role ${id}`) {
      roleDefinitions.set(id, displayName);
    },
    members: (groupId) => [...(groups.get(groupId)?.members ?? [])],
    addMember(groupId, objectId) {
      groups.get(groupId)?.members.add(objectId);
    },
    assignOutside(principalId, roleDefinitionId, directoryScopeId = '/') {
      schedules.push({
        id: crypto.randomUUID(),
        principalId,
        roleDefinitionId,
        directoryScopeId,
        assignmentType: 'Assigned',
        memberType: 'Direct',
        status: 'Provisioned',
        scheduleInfo: {
          startDateTime: new Date().toISOString(),
          expiration: { type: 'noExpiration', endDateTime: null },
        },
      });
    },
    schedules: (filter = {}) =>
      live().filter(
        (s) =>
          (!filter.principalId || s.principalId === filter.principalId) &&
          (!filter.roleDefinitionId || s.roleDefinitionId === filter.roleDefinitionId),
      ),
    requests,
    get tokenRequests() {
      return tokenRequests;
    },
    failNext(status, { times = 1, ...failure } = {}) {
      for (let i = 0; i < times; i++) failures.push({ status, ...failure });
    },
    hangNext() {
      hangs++;
    },
    expireTokens() {
      tokens.clear();
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

function endOf(schedule: FakeSchedule): number {
  const end = schedule.scheduleInfo.expiration.endDateTime;
  return end ? Date.parse(end) : Number.POSITIVE_INFINITY;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const graphFailure = (status: number, code: string, message: string): Reply => ({
  status,
  body: { error: { code, message } },
});

function send(res: ServerResponse, reply: Reply): void {
  const headers = {
    ...(reply.body === undefined ? {} : { 'content-type': 'application/json' }),
    ...reply.headers,
  };
  res.writeHead(reply.status, headers).end(reply.body === undefined ? undefined : JSON.stringify(reply.body));
}
