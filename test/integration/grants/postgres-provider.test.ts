import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GrantError, type GrantProvider } from '../../../src/grants/grant-provider.ts';
import { postgresProvider } from '../../../src/grants/postgres/postgres-provider.ts';
import { createProviderRegistry } from '../../../src/grants/registry.ts';
import { grantTarget, providerContract } from '../../support/provider-contract.ts';

// The target is always a real PostgreSQL server, whichever database (PGlite or PostgreSQL)
// Elevate's own tests run on. Every role here carries this run's suffix and is dropped at the end.
const serverUrl = process.env.TARGET_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const run = randomUUID().slice(0, 8);
const admin = postgres(serverUrl, { max: 3, onnotice: () => {} });

const PASSWORD = `pw-${run}`;
const canary = `canary_${run}`;
const roles = {
  /** Elevate's own login on the target: not a superuser, ADMIN OPTION on the groups it grants. */
  agent: `elevate_agent_${run}`,
  /** A login that may not connect at all (CONNECTION LIMIT 0), for 53300. */
  crowded: `elevate_crowded_${run}`,
  group: `db_readers_${run}`,
  /** A group the agent has no ADMIN OPTION on. */
  foreign: `db_owners_${run}`,
  weird: `Weird "Role" ${run}`,
  dotted: `team.db-admins_${run}`,
  splice: `x; DROP ROLE ${canary}`,
  breakout: `x"; DROP ROLE "${canary}"; --`,
  /** {{email_local}} of DEE_EMAIL: lower-cased, with a dot. */
  dee: `dee.ops_${run}`,
  prefixed: `app_dee.ops_${run}`,
  erin: `erin_${run}@example.com`,
  carol: `carol_${run}`,
  /** Exactly 63 bytes: what PostgreSQL would truncate a 64-byte name to. */
  long: `long_${run}_`.padEnd(63, 'a'),
  canary,
};
const GROUPS = [roles.group, roles.foreign, roles.weird, roles.dotted, roles.splice, roles.breakout, canary];
const LOGINS = [roles.agent, roles.crowded, roles.dee, roles.prefixed, roles.erin, roles.carol, roles.long];
const DEE_EMAIL = `Dee.Ops_${run}@Example.com`;

/** The test's own identifier quoting, independent of the provider's. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The server URL as another role, with extra connection parameters. */
function urlAs(role: string, params: Record<string, string> = {}): string {
  const url = new URL(serverUrl);
  url.username = encodeURIComponent(role);
  url.password = PASSWORD;
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url.toString();
}

/** Direct memberships of login in group, read from the catalog (not through the provider). */
async function membershipCount(group: string, login: string): Promise<number> {
  const [row] = await admin<{ n: number }[]>`
    select count(*)::int as n
      from pg_auth_members m
      join pg_roles g on g.oid = m.roleid
      join pg_roles l on l.oid = m.member
     where g.rolname = ${group} and l.rolname = ${login}`;
  return row?.n ?? 0;
}

async function roleExists(name: string): Promise<boolean> {
  const [row] = await admin<
    { found: boolean }[]
  >`select exists (select 1 from pg_roles where rolname = ${name}) as found`;
  return row?.found ?? false;
}

function providerFor(env: NodeJS.ProcessEnv): GrantProvider {
  const provider = postgresProvider.create(env);
  if (typeof provider === 'string') throw new Error(provider);
  return provider;
}

const config = (role: string, extra: Record<string, unknown> = {}) => ({
  connection: 'env:TARGET_PG_URL',
  role,
  ...extra,
});

/** A grant's failure, which must be a GrantError. */
async function failureOf(call: Promise<unknown>): Promise<GrantError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GrantError);
  return error as GrantError;
}

/** Polls until the condition holds or the deadline passes; says which. */
async function until(condition: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

/** A statement of a backend named `elevate` waiting for a lock on pg_auth_members: a GRANT or REVOKE stuck. */
interface Waiter {
  pid: number;
  /** Tells one statement of a backend from the next (a pooled connection runs the retry too). */
  started: string;
}

async function waitingGrants(): Promise<Waiter[]> {
  return admin<Waiter[]>`
    select l.pid, a.query_start::text as started
      from pg_locks l
      join pg_stat_activity a on a.pid = l.pid
     where l.relation = 'pg_catalog.pg_auth_members'::regclass
       and not l.granted
       and a.application_name = 'elevate'`;
}

/**
 * Holds pg_auth_members against writers, as a concurrent role change on a busy server would. The
 * lock is released once `onWaiter` (given the first waiting statements) returns, or after the deadline.
 */
async function holdRoleChanges(
  onWaiter: (waiters: Waiter[]) => Promise<void>,
): Promise<{ released: Promise<void> }> {
  const holder = await admin.reserve();
  await holder`begin`;
  await holder`lock table pg_catalog.pg_auth_members in share row exclusive mode`;
  // Wrapped: an async function returning the bare promise would wait for it.
  const released = (async () => {
    try {
      let waiters: Waiter[] = [];
      const seen = await until(async () => {
        waiters = await waitingGrants();
        return waiters.length > 0;
      });
      if (seen) await onWaiter(waiters);
    } finally {
      await holder`commit`;
      holder.release();
    }
  })();
  return { released };
}

/** Until none of these statements is still waiting (the same backends may wait again for a new one). */
async function givenUp(waiters: Waiter[]): Promise<boolean> {
  const same = (a: Waiter) => (b: Waiter) => a.pid === b.pid && a.started === b.started;
  return until(async () => {
    const now = await waitingGrants();
    return !waiters.some((w) => now.some(same(w)));
  });
}

let lockReleased: Promise<void> = Promise.resolve();

beforeAll(async () => {
  await admin.unsafe(`create role ${ident(roles.agent)} login password '${PASSWORD}'`);
  await admin.unsafe(`create role ${ident(roles.crowded)} login connection limit 0 password '${PASSWORD}'`);
  for (const login of LOGINS.slice(2))
    await admin.unsafe(`create role ${ident(login)} login password '${PASSWORD}'`);
  for (const group of GROUPS) await admin.unsafe(`create role ${ident(group)} nologin`);
  for (const group of GROUPS.filter((g) => g !== roles.foreign && g !== canary)) {
    await admin.unsafe(`grant ${ident(group)} to ${ident(roles.agent)} with admin option`);
  }
  await admin.unsafe(`grant ${ident(roles.group)} to ${ident(roles.crowded)} with admin option`);
});

afterAll(async () => {
  await lockReleased;
  const all = [...LOGINS, ...GROUPS];
  // Pools idle out on their own; end their sessions now so the roles can go.
  await admin`select pg_terminate_backend(pid) from pg_stat_activity where usename in ${admin(all)}`;
  for (const name of all) await admin.unsafe(`drop role if exists ${ident(name)}`);
  await admin.end();
});

// lock_timeout=300 (a URL parameter, as an admin would set it) keeps the transient-failure test short.
const provider = providerFor({ TARGET_PG_URL: urlAs(roles.agent, { lock_timeout: '300' }) });
const deeTarget = grantTarget({ email: DEE_EMAIL, config: config(roles.group) });

providerContract('postgres', async () => ({
  provider,
  target: deeTarget,
  isGranted: async () => (await membershipCount(roles.group, roles.dee)) > 0,
  grantCount: () => membershipCount(roles.group, roles.dee),
  unknown: {
    target: grantTarget({ email: `ghost_${run}@example.com`, config: config(roles.group) }),
    named: `ghost_${run}`,
  },
  // A real transient failure of the target: another session holds the role catalog, so the next
  // GRANT waits past its lock_timeout (55P03). The lock goes as soon as that GRANT has given up.
  failNextTransiently: async () => {
    ({ released: lockReleased } = await holdRoleChanges(async (waiters) => {
      await givenUp(waiters);
    }));
  },
}));

describe('postgres provider', () => {
  test('switches on without any environment: each role names its connection variable', () => {
    expect(typeof postgresProvider.create({})).toBe('object');
  });

  test('the login really holds the group: has_role and SET ROLE after grant, neither after revoke', async () => {
    const asLogin = postgres(urlAs(roles.dee), { max: 1, onnotice: () => {} });
    const hasRole = async () =>
      (
        await admin<
          { member: boolean }[]
        >`select pg_has_role(${roles.dee}, ${roles.group}, 'MEMBER') as member`
      )[0]?.member;
    try {
      await provider.grant(deeTarget);
      expect(await hasRole()).toBe(true);
      const [row] = await asLogin.begin(async (tx) => {
        await tx.unsafe(`set local role ${ident(roles.group)}`);
        return tx<{ me: string }[]>`select current_user as me`;
      });
      expect(row?.me).toBe(roles.group);

      await provider.revoke(deeTarget);
      expect(await hasRole()).toBe(false);
      const denied = await asLogin.unsafe(`set role ${ident(roles.group)}`).catch((e: unknown) => e);
      expect((denied as postgres.PostgresError).code).toBe('42501');
    } finally {
      await asLogin.end();
    }
  });

  test('names with quotes, spaces, dots, uppercase or SQL in them are quoted, never spliced', async () => {
    for (const group of [roles.weird, roles.dotted, roles.splice, roles.breakout]) {
      const target = grantTarget({ email: DEE_EMAIL, config: config(group) });
      await provider.grant(target);
      expect(await membershipCount(group, roles.dee)).toBe(1);
      expect(await provider.check?.(target)).toBe(true);
      await provider.revoke(target);
      expect(await membershipCount(group, roles.dee)).toBe(0);
    }
    // A hostile login name is a name too: it does not exist, and says so.
    const hostile = `y"; DROP ROLE "${canary}"; --`;
    const error = await failureOf(
      provider.grant(
        grantTarget({ email: DEE_EMAIL, accounts: { postgres: hostile }, config: config(roles.group) }),
      ),
    );
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(hostile);
    expect(await roleExists(canary)).toBe(true);
    expect(await roleExists('postgres')).toBe(true);
  });

  test("the policy's account mapping beats the login template", async () => {
    // ghost_… does not exist: only the mapping can make this grant work.
    const target = grantTarget({
      email: `ghost_${run}@example.com`,
      accounts: { slack: 'U123', postgres: roles.carol },
      config: config(roles.group, { login: '{{email_local}}' }),
    });
    await provider.grant(target);
    expect(await membershipCount(roles.group, roles.carol)).toBe(1);
    await provider.revoke(target);
    expect(await membershipCount(roles.group, roles.carol)).toBe(0);
  });

  test('login templates: text around {{email_local}}, and {{email}}', async () => {
    const prefixed = grantTarget({
      email: DEE_EMAIL,
      config: config(roles.group, { login: 'app_{{ email_local }}' }),
    });
    await provider.grant(prefixed);
    expect(await membershipCount(roles.group, roles.prefixed)).toBe(1);
    await provider.revoke(prefixed);

    const byEmail = grantTarget({
      email: `Erin_${run}@Example.com`,
      config: config(roles.group, { login: '{{email}}' }),
    });
    await provider.grant(byEmail);
    expect(await membershipCount(roles.group, roles.erin)).toBe(1);
    await provider.revoke(byEmail);
    expect(await membershipCount(roles.group, roles.erin)).toBe(0);
  });

  test('a login longer than 63 bytes fails permanently instead of matching its truncation', async () => {
    const error = await failureOf(
      provider.grant(grantTarget({ email: `${roles.long}a@example.com`, config: config(roles.group) })),
    );
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('63 bytes');
    expect(await membershipCount(roles.group, roles.long)).toBe(0);
  });

  test('a group role that does not exist fails permanently, naming it; revoking it is fine', async () => {
    const missing = `Missing Group ${run}`;
    const target = grantTarget({ email: DEE_EMAIL, config: config(missing) });
    const error = await failureOf(provider.grant(target));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`group role "${missing}" does not exist`);
    expect(error.message).not.toContain(`login "${roles.dee}"`);
    await provider.revoke(target);
    expect(await provider.check?.(target)).toBe(false);
  });

  test('without ADMIN OPTION on the group, grant and revoke fail permanently (permission denied)', async () => {
    const target = grantTarget({ email: DEE_EMAIL, config: config(roles.foreign) });
    for (const call of [provider.grant(target), provider.revoke(target)]) {
      const error = await failureOf(call);
      expect(error.retryable).toBe(false);
      expect(error.message).toContain('42501');
      expect(error.message).toContain(roles.foreign);
      expect(error.message).toContain('ADMIN OPTION');
    }
    expect(await membershipCount(roles.foreign, roles.dee)).toBe(0);
  });

  test('an unreachable server is retryable; the message names the variable, never the URL', async () => {
    const port = await closedPort();
    const offline = providerFor({ TARGET_PG_URL: `postgres://elevate:s3cret@127.0.0.1:${port}/postgres` });
    const error = await failureOf(offline.grant(deeTarget));
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('TARGET_PG_URL');
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).not.toContain('s3cret');
    expect(error.message).not.toContain(String(port));
  });

  test('too many connections (53300) is retryable', async () => {
    const crowded = providerFor({ TARGET_PG_URL: urlAs(roles.crowded) });
    const error = await failureOf(crowded.grant(deeTarget));
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('53300');
  });

  // The server sends 57P01 and closes the socket; postgres.js reports the in-flight query as
  // CONNECTION_CLOSED. Either way a later attempt on a new connection gets through.
  test('a session the server terminates mid-grant is retryable, and the retry succeeds', async () => {
    const patient = providerFor({ TARGET_PG_URL: urlAs(roles.agent, { lock_timeout: '20000' }) });
    ({ released: lockReleased } = await holdRoleChanges(async (waiters) => {
      const pids = waiters.map((w) => w.pid);
      await admin`select pg_terminate_backend(pid) from unnest(${pids}::int[]) as pid`;
    }));
    const error = await failureOf(patient.grant(deeTarget));
    await lockReleased;
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/57P01|CONNECTION_CLOSED/);
    await patient.grant(deeTarget);
    expect(await membershipCount(roles.group, roles.dee)).toBe(1);
    await patient.revoke(deeTarget);
  });

  test('an unset connection variable or bad stored parameters fail permanently, naming them', async () => {
    const unset = await failureOf(providerFor({}).grant(deeTarget));
    expect(unset.retryable).toBe(false);
    expect(unset.message).toContain('TARGET_PG_URL');
    const bad = await failureOf(
      provider.grant(grantTarget({ email: DEE_EMAIL, config: { role: roles.group } })),
    );
    expect(bad.retryable).toBe(false);
    expect(bad.message).toContain('connection:');
  });

  test('role parameters are strict and checked before any call', () => {
    const registry = createProviderRegistry({ definitions: [postgresProvider], env: {} });
    expect(registry.validate('postgres', config('readers'))).toEqual([]);
    expect(registry.validate('postgres', config('readers', { login: 'pg_{{email_local}}' }))).toEqual([]);
    const problems = (params: Record<string, unknown>) => registry.validate('postgres', params).join('\n');
    expect(problems({ role: 'readers' })).toMatch(/^connection: /);
    expect(problems({ connection: 'postgres://u:p@db/x', role: 'readers' })).toContain('env:NAME');
    expect(problems(config('readers', { host: 'db' }))).toContain(
      'host: not a parameter of the postgres provider',
    );
    expect(problems(config('readers', { login: '{{name}}' }))).toContain('{{email_local}}');
    expect(problems(config('readers', { login: 'shared' }))).toContain('must use a placeholder');
    expect(problems(config('r'.repeat(64)))).toContain('63 bytes');
    expect(problems(config(''))).toMatch(/^role: /);
  });

  describe('verify (apply --dry-run)', () => {
    const verify = (params: ReturnType<typeof config>, env: NodeJS.ProcessEnv) =>
      postgresProvider.verify?.(params, env) ?? Promise.resolve(['no verify']);
    const agentEnv = { TARGET_PG_URL: urlAs(roles.agent) };

    test('a reachable server with the group role and ADMIN OPTION on it has no problems', async () => {
      expect(await verify(config(roles.weird), agentEnv)).toEqual([]);
      // Through the registry, as `apply --dry-run` calls it.
      const registry = createProviderRegistry({ definitions: [postgresProvider], env: agentEnv });
      expect(await registry.verify('postgres', config(roles.group))).toEqual([]);
    });

    test('an unset variable', async () => {
      expect(await verify(config(roles.group), {})).toEqual([
        'connection: environment variable TARGET_PG_URL is not set',
      ]);
    });

    test('a group role missing on the server, named, with no URL in the line', async () => {
      const problems = await verify(config(`absent_${run}`), agentEnv);
      expect(problems).toEqual([
        `role: group role "absent_${run}" does not exist on the PostgreSQL server in TARGET_PG_URL`,
      ]);
    });

    test('an unreachable server', async () => {
      const port = await closedPort();
      const problems = await verify(config(roles.group), {
        TARGET_PG_URL: `postgres://elevate:s3cret@127.0.0.1:${port}/postgres`,
      });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('cannot reach the PostgreSQL server in TARGET_PG_URL');
      expect(problems[0]).not.toContain('s3cret');
    });

    test('a login without ADMIN OPTION on the group', async () => {
      const problems = await verify(config(roles.foreign), agentEnv);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(`cannot grant "${roles.foreign}"`);
      expect(problems[0]).toContain('ADMIN OPTION');
    });
  });
});

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

test('close() lets go of the pool, so shutdown leaves no session on the target', async () => {
  const name = `elevate-close-${run}`;
  const provider = providerFor({ TARGET_PG_URL: urlAs(roles.agent, { application_name: name }) });
  await provider.grant(grantTarget({ email: DEE_EMAIL, config: config(roles.group) }));
  const sessions = async () =>
    (
      await admin<
        { n: number }[]
      >`select count(*)::int as n from pg_stat_activity where application_name = ${name}`
    )[0]?.n;
  expect(await sessions()).toBeGreaterThan(0);
  await provider.close?.();
  for (let i = 0; i < 50 && (await sessions()) !== 0; i++) await new Promise((r) => setTimeout(r, 20));
  expect(await sessions()).toBe(0);
  await provider.revoke(grantTarget({ email: DEE_EMAIL, config: config(roles.group) }));
});
