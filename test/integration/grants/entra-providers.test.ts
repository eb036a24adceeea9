import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { entraGroupProvider } from '../../../src/grants/entra/entra-group-provider.ts';
import { entraRoleProvider } from '../../../src/grants/entra/entra-role-provider.ts';
import { createGraphClient, graphSettings } from '../../../src/grants/entra/graph-client.ts';
import { GrantError, type GrantProvider, type GrantTarget } from '../../../src/grants/grant-provider.ts';
import { createProviderRegistry } from '../../../src/grants/registry.ts';
import { type FakeGraph, type FakeUser, startFakeGraph } from '../../support/fake-graph.ts';
import { grantTarget, providerContract } from '../../support/provider-contract.ts';

let fake: FakeGraph;
beforeAll(async () => {
  // Small pages, so the listings reconciliation reads really follow @odata.nextLink.
  fake = await startFakeGraph({ pageSize: 2 });
});
afterAll(() => fake.close());

function newUser(options: { mail?: string } = {}): FakeUser & { mail: string } {
  const id = crypto.randomUUID();
  const mail = options.mail ?? `u-${id.slice(0, 8)}@example.com`;
  fake.addUser({
    id,
    userPrincipalName: options.mail ? `${id.slice(0, 8)}@contoso.onmicrosoft.com` : mail,
    mail,
  });
  return { id, userPrincipalName: mail, mail };
}

function newGroup(info?: Record<string, unknown>): string {
  const id = crypto.randomUUID();
  fake.addGroup(id, info);
  return id;
}

function newRoleDefinition(): string {
  const id = crypto.randomUUID();
  fake.addRoleDefinition(id, 'Helpdesk Administrator');
  return id;
}

function created(definition: { create(env: NodeJS.ProcessEnv): GrantProvider | string }, env = fake.env()) {
  const provider = definition.create(env);
  if (typeof provider === 'string') throw new Error(provider);
  return provider;
}

/** The user's Teams identity in the fake's tenant: its externalId is the object id. */
const teams = (user: FakeUser): GrantTarget['principal']['identities'] => [
  { platform: 'teams', tenant: fake.tenantId, externalId: user.id },
];

async function failure(promise: Promise<unknown>): Promise<GrantError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GrantError);
  return error as GrantError;
}

const since = (mark: number) => fake.requests.slice(mark);

providerContract('entra-group', async () => {
  const group = newGroup();
  const user = newUser();
  return {
    provider: created(entraGroupProvider),
    target: grantTarget({ email: user.mail, config: { group } }),
    isGranted: async () => fake.members(group).includes(user.id),
    grantCount: async () => fake.members(group).filter((id) => id === user.id).length,
    unknown: {
      target: grantTarget({ email: 'nobody@example.com', config: { group } }),
      named: 'nobody@example.com',
    },
    failNextTransiently: () => fake.failNext(503),
  };
});

providerContract('entra-role', async () => {
  const roleDefinition = newRoleDefinition();
  const user = newUser();
  const assigned = () => fake.schedules({ principalId: user.id, roleDefinitionId: roleDefinition });
  return {
    provider: created(entraRoleProvider),
    target: grantTarget({ email: user.mail, config: { roleDefinition } }),
    isGranted: async () => assigned().length > 0,
    grantCount: async () => assigned().length,
    unknown: {
      target: grantTarget({ email: 'nobody@example.com', config: { roleDefinition } }),
      named: 'nobody@example.com',
    },
    failNextTransiently: () => fake.failNext(503),
  };
});

describe('entra providers: switching on', () => {
  test('without the three variables each says what to set', () => {
    expect(entraGroupProvider.create({})).toBe(
      'the entra-group provider is not configured: set ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET',
    );
    expect(
      entraRoleProvider.create({ ENTRA_TENANT_ID: 'contoso.onmicrosoft.com', ENTRA_CLIENT_SECRET: '' }),
    ).toBe(
      'the entra-role provider is not configured: set ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET',
    );
  });

  test('a malformed endpoint keeps it off and says which', () => {
    expect(entraGroupProvider.create(fake.env({ GRAPH_API_URL: 'graph.microsoft.us' }))).toBe(
      'the entra-group provider is not configured: GRAPH_API_URL: expected an http(s) URL',
    );
  });

  test('national clouds: the token scope and the endpoints follow the configured URLs', () => {
    const settings = graphSettings(
      {
        ENTRA_TENANT_ID: 'contoso.onmicrosoft.us',
        ENTRA_CLIENT_ID: crypto.randomUUID(),
        ENTRA_CLIENT_SECRET: 's',
        GRAPH_API_URL: 'https://graph.microsoft.us/v1.0/',
        ENTRA_LOGIN_URL: 'https://login.microsoftonline.us/',
      },
      'entra-group',
    );
    expect(settings).toMatchObject({
      graphUrl: 'https://graph.microsoft.us',
      loginUrl: 'https://login.microsoftonline.us',
    });
    const defaults = graphSettings(
      { ENTRA_TENANT_ID: 't', ENTRA_CLIENT_ID: crypto.randomUUID(), ENTRA_CLIENT_SECRET: 's' },
      'entra-group',
    );
    expect(defaults).toMatchObject({
      graphUrl: 'https://graph.microsoft.com',
      loginUrl: 'https://login.microsoftonline.com',
    });
  });

  test('the role parameters are strict, and the registry reports them per field', () => {
    const registry = createProviderRegistry({
      env: fake.env(),
      definitions: [entraGroupProvider, entraRoleProvider],
    });
    expect(registry.validate('entra-group', { group: 'admins' })).toEqual([
      "group: expected the group's object id (a GUID)",
    ]);
    expect(registry.validate('entra-group', { group: crypto.randomUUID(), role: 'x' })).toEqual([
      'role: not a parameter of the entra-group provider',
    ]);
    expect(registry.validate('entra-role', { roleDefinition: crypto.randomUUID() })).toEqual([]);
    expect(
      entraRoleProvider.roleConfig.parse({ roleDefinition: '62e90394-69f5-4237-9190-012177145e10' }),
    ).toEqual({
      roleDefinition: '62e90394-69f5-4237-9190-012177145e10',
      directoryScope: '/',
    });
    expect(
      registry.validate('entra-role', { roleDefinition: crypto.randomUUID(), directoryScope: 'tenant' }),
    ).toEqual([
      'directoryScope: expected "/" (the whole tenant) or a scope such as "/administrativeUnits/<id>"',
    ]);
  });
});

describe('entra-group', () => {
  test('adds a direct member by reference on this cloud, and counts a second add ("already exist") as granted', async () => {
    const group = newGroup();
    const user = newUser();
    const provider = created(entraGroupProvider);
    const target = grantTarget({ email: user.mail, identities: teams(user), config: { group } });
    const mark = fake.requests.length;
    await provider.grant(target);
    await provider.grant(target);
    const adds = since(mark).filter((r) => r.method === 'POST');
    expect(adds.map((r) => [r.path, r.status])).toEqual([
      [`/v1.0/groups/${group}/members/$ref`, 204],
      [`/v1.0/groups/${group}/members/$ref`, 400],
    ]);
    expect(adds[0]?.body).toEqual({ '@odata.id': `${fake.url}/v1.0/directoryObjects/${user.id}` });
    expect(fake.members(group)).toEqual([user.id]);
  });

  test('removing a non-member (404) is success', async () => {
    const group = newGroup();
    const user = newUser();
    const mark = fake.requests.length;
    await created(entraGroupProvider).revoke(
      grantTarget({ email: user.mail, identities: teams(user), config: { group } }),
    );
    expect(since(mark).map((r) => [r.method, r.path, r.status])).toEqual([
      ['DELETE', `/v1.0/groups/${group}/members/${user.id}/$ref`, 404],
    ]);
  });

  test('the token is requested once and reused', async () => {
    const group = newGroup();
    const user = newUser();
    const before = fake.tokenRequests;
    const provider = created(entraGroupProvider);
    const target = grantTarget({ email: user.mail, config: { group } });
    await Promise.all([provider.grant(target), provider.check?.(target)]);
    await provider.check?.(target);
    await provider.revoke(target);
    expect(fake.tokenRequests - before).toBe(1);
  });

  test('a token Entra dropped early is renewed once and the call goes through', async () => {
    const group = newGroup();
    const user = newUser();
    const provider = created(entraGroupProvider);
    const target = grantTarget({ email: user.mail, identities: teams(user), config: { group } });
    await provider.check?.(target);
    const before = fake.tokenRequests;
    fake.expireTokens();
    await provider.grant(target);
    expect(fake.tokenRequests - before).toBe(1);
    expect(fake.members(group)).toEqual([user.id]);
  });

  test("the user id comes from the Teams identity without a lookup, not from another tenant's", async () => {
    const group = newGroup();
    const user = newUser();
    const provider = created(entraGroupProvider);
    let mark = fake.requests.length;
    // The email is unknown to the directory: only the identity can name the user.
    await provider.grant(
      grantTarget({ email: 'teams-only@example.com', identities: teams(user), config: { group } }),
    );
    expect(fake.members(group)).toEqual([user.id]);
    expect(since(mark).filter((r) => r.path.startsWith('/v1.0/users'))).toEqual([]);

    mark = fake.requests.length;
    const guest = [
      { platform: 'teams' as const, tenant: crypto.randomUUID(), externalId: crypto.randomUUID() },
    ];
    await provider.revoke(grantTarget({ email: user.mail, identities: guest, config: { group } }));
    expect(since(mark)[0]?.path).toBe(`/v1.0/users/${user.mail}`);
    expect(fake.members(group)).toEqual([]);
  });

  test('accounts.entra names the user by object id, or by user principal name to look up', async () => {
    const group = newGroup();
    const user = newUser();
    const provider = created(entraGroupProvider);
    let mark = fake.requests.length;
    await provider.grant(
      grantTarget({ email: 'alias@example.com', accounts: { entra: user.id }, config: { group } }),
    );
    expect(since(mark).map((r) => r.method)).toEqual(['POST']);
    mark = fake.requests.length;
    await provider.revoke(
      grantTarget({
        email: 'alias@example.com',
        accounts: { entra: user.userPrincipalName },
        config: { group },
      }),
    );
    expect(since(mark).map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /v1.0/users/${user.userPrincipalName}`,
      `DELETE /v1.0/groups/${group}/members/${user.id}/$ref`,
    ]);
    expect(fake.members(group)).toEqual([]);
  });

  test('an email that is no user principal name is found by mail, once per process', async () => {
    const group = newGroup();
    const user = newUser({ mail: `Carol.O'Neil-${crypto.randomUUID().slice(0, 6)}@example.com` });
    const provider = created(entraGroupProvider);
    const target = grantTarget({ email: user.mail, config: { group } });
    const mark = fake.requests.length;
    await provider.grant(target);
    await provider.revoke(target);
    const lookups = since(mark).filter((r) => r.path.startsWith('/v1.0/users'));
    expect(lookups.map((r) => [r.path, r.query.$filter, r.status])).toEqual([
      [`/v1.0/users/${user.mail}`, undefined, 404],
      ['/v1.0/users', `mail eq '${user.mail.replace("'", "''")}'`, 200],
    ]);
  });

  test('an unknown email fails permanently, naming it and the fix', async () => {
    const error = await failure(
      created(entraGroupProvider).grant(
        grantTarget({ email: 'ghost@example.com', config: { group: newGroup() } }),
      ),
    );
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      `no user in Entra tenant ${fake.tenantId} has the user principal name or mail ghost@example.com: map ghost@example.com to their object id with accounts.entra in the policy`,
    );
  });

  test('429 with Retry-After is retryable after that long, and a later call succeeds', async () => {
    const group = newGroup();
    const user = newUser();
    const provider = created(entraGroupProvider);
    const target = grantTarget({ email: user.mail, identities: teams(user), config: { group } });
    fake.failNext(429, { retryAfter: '7' });
    const throttled = await failure(provider.grant(target));
    expect(throttled.retryable).toBe(true);
    expect(throttled.retryAfterMs).toBe(7000);
    expect(throttled.message).toContain('429');

    fake.failNext(429, { retryAfter: new Date(Date.now() + 5000).toUTCString() });
    const byDate = await failure(provider.grant(target));
    expect(byDate.retryAfterMs).toBeGreaterThan(2000);
    expect(byDate.retryAfterMs).toBeLessThanOrEqual(5000);

    fake.failNext(504);
    const timedOut = await failure(provider.grant(target));
    expect([timedOut.retryable, timedOut.retryAfterMs]).toEqual([true, undefined]);

    await provider.grant(target);
    expect(fake.members(group)).toEqual([user.id]);
  });

  test('403 is permanent and names the Graph permission the call needs', async () => {
    const group = newGroup();
    const user = newUser();
    const provider = created(entraGroupProvider);
    fake.failNext(403, { message: 'Insufficient privileges to complete the operation.' });
    const add = await failure(
      provider.grant(grantTarget({ email: user.mail, identities: teams(user), config: { group } })),
    );
    expect(add.retryable).toBe(false);
    expect(add.message).toBe(
      `Microsoft Graph refused adding ${user.mail} (${user.id}) to group ${group} (403 Authorization_RequestDenied: Insufficient privileges to complete the operation.): the app registration needs the GroupMember.ReadWrite.All application permission, with admin consent`,
    );
    fake.failNext(403);
    const lookup = await failure(provider.grant(grantTarget({ email: user.mail, config: { group } })));
    expect([lookup.retryable, lookup.message.includes('User.Read.All')]).toEqual([false, true]);
  });

  test('an unreachable or silent Graph is retryable', async () => {
    const closed = await startFakeGraph();
    await closed.close();
    const offline = created(
      entraGroupProvider,
      fake.env({ GRAPH_API_URL: closed.url, ENTRA_LOGIN_URL: closed.url }),
    );
    const error = await failure(
      offline.grant(grantTarget({ email: 'a@example.com', config: { group: newGroup() } })),
    );
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('signing in to Entra');

    const settings = graphSettings(fake.env(), 'entra-group');
    if (typeof settings === 'string') throw new Error(settings);
    const graph = createGraphClient(settings, { timeoutMs: 200 });
    fake.hangNext();
    const silent = await failure(
      graph.send({
        method: 'GET',
        path: '/groups/x',
        what: 'reading group x',
        permission: 'GroupMember.ReadWrite.All',
      }),
    );
    expect([silent.retryable, silent.message]).toEqual([
      true,
      'reading group x failed: no answer within 0.2s',
    ]);
  });

  test('a rejected secret is permanent and says which variables to check, without the secret', async () => {
    const provider = created(entraGroupProvider, fake.env({ ENTRA_CLIENT_SECRET: 'wrong-secret' }));
    const error = await failure(
      provider.grant(grantTarget({ email: 'a@example.com', config: { group: newGroup() } })),
    );
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      `signing in to Entra (${fake.url}, tenant ${fake.tenantId}) failed (invalid_client: AADSTS7000215: Invalid client secret provided.): check ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET`,
    );
    expect(error.message).not.toContain('wrong-secret');
  });
});

describe('entra-role', () => {
  test('grant sends adminAssign ending at activation.endAt; revoke sends adminRemove', async () => {
    const roleDefinition = newRoleDefinition();
    const user = newUser();
    const provider = created(entraRoleProvider);
    const target = grantTarget({ email: user.mail, identities: teams(user), config: { roleDefinition } });
    const mark = fake.requests.length;
    await provider.grant(target);
    await provider.revoke(target);
    const posted = since(mark).filter((r) => r.method === 'POST');
    expect(posted.map((r) => [r.path, r.status])).toEqual([
      ['/v1.0/roleManagement/directory/roleAssignmentScheduleRequests', 201],
      ['/v1.0/roleManagement/directory/roleAssignmentScheduleRequests', 201],
    ]);
    expect(posted[0]?.body).toEqual({
      action: 'adminAssign',
      principalId: user.id,
      roleDefinitionId: roleDefinition,
      directoryScopeId: '/',
      justification: 'contract test',
      scheduleInfo: {
        startDateTime: target.activation.startAt.toISOString(),
        expiration: { type: 'afterDateTime', endDateTime: target.activation.endAt?.toISOString() },
      },
      ticketInfo: { ticketNumber: 'INC42', ticketSystem: 'ServiceNow' },
    });
    expect(posted[1]?.body).toEqual({
      action: 'adminRemove',
      principalId: user.id,
      roleDefinitionId: roleDefinition,
      directoryScopeId: '/',
      justification: `Elevate: access ended (activation ${target.activationId})`,
    });
    expect(fake.schedules({ principalId: user.id })).toEqual([]);
  });

  test('a permanent assignment has noExpiration; the scope is the role parameter', async () => {
    const roleDefinition = newRoleDefinition();
    const user = newUser();
    const directoryScope = `/administrativeUnits/${crypto.randomUUID()}`;
    const provider = created(entraRoleProvider);
    const target = grantTarget({
      email: user.mail,
      identities: teams(user),
      endAt: null,
      config: { roleDefinition, directoryScope },
    });
    await provider.grant(target);
    expect(fake.schedules({ principalId: user.id })).toMatchObject([
      {
        roleDefinitionId: roleDefinition,
        directoryScopeId: directoryScope,
        scheduleInfo: { expiration: { type: 'noExpiration', endDateTime: null } },
      },
    ]);
    expect(await provider.check?.(target)).toBe(true);
    expect(await provider.check?.({ ...target, role: { ...target.role, config: { roleDefinition } } })).toBe(
      false,
    );
  });

  test('RoleAssignmentExists on a repeated grant is success; an extension moves the end later, never earlier', async () => {
    const roleDefinition = newRoleDefinition();
    const user = newUser();
    const provider = created(entraRoleProvider);
    const target = grantTarget({ email: user.mail, identities: teams(user), config: { roleDefinition } });
    const end = () => fake.schedules({ principalId: user.id })[0]?.scheduleInfo.expiration.endDateTime;
    await provider.grant(target);

    let mark = fake.requests.length;
    await provider.grant(target);
    expect(
      since(mark).map((r) => `${r.method} ${r.status} ${String((r.body as { action?: string })?.action)}`),
    ).toEqual(['POST 400 adminAssign', 'GET 200 undefined']);

    const later = new Date(Date.now() + 7_200_000);
    mark = fake.requests.length;
    await provider.grant({
      ...target,
      activation: { ...target.activation, kind: 'extension', endAt: later },
    });
    expect(since(mark).at(-1)?.body).toMatchObject({
      action: 'adminUpdate',
      scheduleInfo: { expiration: { type: 'afterDateTime', endDateTime: later.toISOString() } },
    });
    expect(end()).toBe(later.toISOString());

    await provider.grant(target); // the original, earlier end: left as it is
    expect(end()).toBe(later.toISOString());
    expect(fake.schedules({ principalId: user.id })).toHaveLength(1);
  });

  test('extend moves the end to the new activation.endAt with adminUpdate, and re-assigns one already ended', async () => {
    const roleDefinition = newRoleDefinition();
    const user = newUser();
    const provider = created(entraRoleProvider);
    const target = grantTarget({ email: user.mail, identities: teams(user), config: { roleDefinition } });
    const end = () => fake.schedules({ principalId: user.id }).map((s) => s.scheduleInfo.expiration);
    await provider.grant(target);

    const later = new Date(Date.now() + 5_400_000);
    const mark = fake.requests.length;
    await provider.extend?.({ ...target, activation: { ...target.activation, endAt: later } });
    expect(since(mark).map((r) => [(r.body as { action?: string }).action, r.status])).toEqual([
      ['adminUpdate', 201],
    ]);
    expect(end()).toEqual([{ type: 'afterDateTime', endDateTime: later.toISOString() }]);

    await provider.extend?.({ ...target, activation: { ...target.activation, endAt: null } });
    expect(end()).toEqual([{ type: 'noExpiration', endDateTime: null }]);

    await provider.revoke(target); // as if the directory had ended it at the old end
    await provider.extend?.({ ...target, activation: { ...target.activation, endAt: later } });
    expect(end()).toEqual([{ type: 'afterDateTime', endDateTime: later.toISOString() }]);
  });

  test('through the registry: parsed parameters (default scope) and observed calls, extend included', async () => {
    const calls: string[] = [];
    const registry = createProviderRegistry({
      env: fake.env(),
      definitions: [entraRoleProvider],
      observe: (call) => calls.push(`${call.op} ${call.outcome}`),
    });
    const provider = registry.get('entra-role');
    const user = newUser();
    const roleDefinition = newRoleDefinition();
    const target = grantTarget({ email: user.mail, config: { roleDefinition } });
    await provider?.grant(target);
    await provider?.extend?.({ ...target, activation: { ...target.activation, endAt: null } });
    expect(fake.schedules({ principalId: user.id })).toMatchObject([
      { directoryScopeId: '/', scheduleInfo: { expiration: { type: 'noExpiration' } } },
    ]);
    expect(calls).toEqual(['grant ok', 'extend ok']);
  });

  test('revoking what is not assigned (RoleAssignmentDoesNotExist) is success', async () => {
    const user = newUser();
    const mark = fake.requests.length;
    await created(entraRoleProvider).revoke(
      grantTarget({
        email: user.mail,
        identities: teams(user),
        config: { roleDefinition: newRoleDefinition() },
      }),
    );
    expect(since(mark).map((r) => r.status)).toEqual([400]);
  });

  test('403 names RoleManagement.ReadWrite.Directory; a PIM policy refusal is permanent in its own words', async () => {
    const roleDefinition = newRoleDefinition();
    const user = newUser();
    const provider = created(entraRoleProvider);
    const target = grantTarget({ email: user.mail, identities: teams(user), config: { roleDefinition } });
    fake.failNext(403);
    const forbidden = await failure(provider.grant(target));
    expect(forbidden.retryable).toBe(false);
    expect(forbidden.message).toContain(
      'the app registration needs the RoleManagement.ReadWrite.Directory application permission',
    );

    fake.failNext(400, {
      code: 'RoleAssignmentRequestPolicyValidationFailed',
      message: 'The following policy rules failed: ["ExpirationRule"]',
    });
    const policy = await failure(provider.grant(target));
    expect(policy.retryable).toBe(false);
    expect(policy.message).toBe(
      `Microsoft Graph refused assigning role ${roleDefinition} at / to ${user.mail} (${user.id}) (400 RoleAssignmentRequestPolicyValidationFailed: The following policy rules failed: ["ExpirationRule"])`,
    );
  });
});

describe('entra providers: verify', () => {
  test('all is well: no problems', async () => {
    expect(await entraGroupProvider.verify?.({ group: newGroup() }, fake.env())).toEqual([]);
    expect(
      await entraRoleProvider.verify?.(
        { roleDefinition: newRoleDefinition(), directoryScope: '/' },
        fake.env(),
      ),
    ).toEqual([]);
  });

  test('one line per problem: variables, sign-in, the group or role definition', async () => {
    const group = crypto.randomUUID();
    expect(await entraGroupProvider.verify?.({ group }, {})).toEqual([
      'type: the entra-group provider is not configured: set ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET',
    ]);
    const badSecret = await entraGroupProvider.verify?.(
      { group },
      fake.env({ ENTRA_CLIENT_SECRET: 'nope-secret' }),
    );
    expect(badSecret).toHaveLength(1);
    expect(badSecret?.[0]).toMatch(/^type: signing in to Entra .* failed \(invalid_client: AADSTS7000215/);
    expect(badSecret?.[0]).not.toContain('nope-secret');
    const badClient = await entraGroupProvider.verify?.(
      { group },
      fake.env({ ENTRA_CLIENT_ID: crypto.randomUUID() }),
    );
    expect(badClient?.[0]).toContain('unauthorized_client: AADSTS700016');

    expect(await entraGroupProvider.verify?.({ group }, fake.env())).toEqual([
      `group: no group has the id ${group} in tenant ${fake.tenantId}`,
    ]);
    const dynamic = newGroup({ displayName: 'All engineers', groupTypes: ['DynamicMembership'] });
    expect(await entraGroupProvider.verify?.({ group: dynamic }, fake.env())).toEqual([
      'group: group "All engineers" has dynamic membership: its rule sets the members, so Elevate cannot add any',
    ]);
    const roleDefinition = crypto.randomUUID();
    expect(await entraRoleProvider.verify?.({ roleDefinition, directoryScope: '/' }, fake.env())).toEqual([
      `roleDefinition: no directory role definition has the id ${roleDefinition} in tenant ${fake.tenantId}`,
    ]);
    fake.failNext(403);
    expect(
      (await entraRoleProvider.verify?.({ roleDefinition, directoryScope: '/' }, fake.env()))?.[0],
    ).toContain('RoleManagement.ReadWrite.Directory');
  });

  test('through the registry: validate reports the parameters, verify the target', async () => {
    const registry = createProviderRegistry({ env: fake.env(), definitions: [entraGroupProvider] });
    expect(registry.validate('entra-group', { group: 'x' })).toEqual([
      "group: expected the group's object id (a GUID)",
    ]);
    expect(await registry.verify('entra-group', { group: 'x' })).toEqual([]);
    const group = crypto.randomUUID();
    expect(await registry.verify('entra-group', { group })).toEqual([
      `group: no group has the id ${group} in tenant ${fake.tenantId}`,
    ]);
  });
});

describe('entra providers: members (reconciliation)', () => {
  test('entra-group lists every direct member across pages, also those added outside Elevate', async () => {
    const provider = created(entraGroupProvider);
    const group = newGroup();
    const users = [newUser(), newUser(), newUser(), newUser(), newUser()];
    for (const user of users.slice(0, 3)) {
      await provider.grant(grantTarget({ email: user.mail, config: { group } }));
    }
    for (const user of users.slice(3)) fake.addMember(group, user.id);
    const mark = fake.requests.length;
    expect((await provider.members?.({ name: 'r', scope: 's', config: { group } }))?.sort()).toEqual(
      users.map((u) => u.id).sort(),
    );
    // Five members at two a page: three pages, the later ones through the next link.
    const pages = since(mark).filter((r) => r.path.endsWith('/members'));
    expect(pages.map((r) => r.query.$skiptoken)).toEqual([undefined, '2', '4']);
  });

  test('an object id mapped in capitals names the same holder as Graph lists it', async () => {
    const provider = created(entraGroupProvider);
    const group = newGroup();
    const user = newUser();
    const target = grantTarget({ accounts: { entra: user.id.toUpperCase() }, config: { group } });
    fake.addMember(group, user.id); // Graph itself matches ids in any case; the fake does not
    const account = await provider.accountOf?.(target.role, target.principal);
    expect(account).toBe(user.id);
    expect(await provider.members?.(target.role)).toEqual([account]);
  });

  test("entra-role lists the assignments at the role's scope only, those made outside PIM too", async () => {
    const provider = created(entraRoleProvider);
    const roleDefinition = newRoleDefinition();
    const [viaElevate, outside, elsewhere] = [newUser(), newUser(), newUser()];
    await provider.grant(grantTarget({ email: viaElevate.mail, config: { roleDefinition } }));
    fake.assignOutside(outside.id, roleDefinition);
    fake.assignOutside(elsewhere.id, roleDefinition, '/administrativeUnits/au-1');
    const role = { name: 'r', scope: 's', config: { roleDefinition, directoryScope: '/' } };
    expect((await provider.members?.(role))?.sort()).toEqual([viaElevate.id, outside.id].sort());
  });
});
