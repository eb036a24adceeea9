import postgres from 'postgres';
import { z } from 'zod';
import {
  ENV_REFERENCE,
  GrantError,
  type GrantProvider,
  type GrantTarget,
  type ProviderDefinition,
  resolveEnv,
} from '../grant-provider.ts';

/**
 * PostgreSQL role membership: `GRANT <role> TO <login>` while an activation lasts, `REVOKE` at its
 * end, on a target server whose URL sits in the environment variable the role names. Elevate's
 * login on the target needs ADMIN OPTION on the group role (or CREATEROLE up to PostgreSQL 15).
 */

const TYPE = 'postgres';

/** PostgreSQL silently truncates longer names (NAMEDATALEN - 1), which could match another role. */
const MAX_NAME_BYTES = 63;

/** The values a login template may use, from the principal's email. */
const PLACEHOLDERS = new Map<string, (email: string) => string>([
  ['email', (email) => email.toLowerCase()],
  [
    'email_local',
    (email) => {
      const at = email.lastIndexOf('@');
      return (at < 0 ? email : email.slice(0, at)).toLowerCase();
    },
  ],
]);
/** `{{name}}`, spaces inside the braces allowed; global, so only for matchAll and replace. */
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const DEFAULT_LOGIN = '{{email_local}}';

const roleName = z
  .string()
  .min(1)
  .refine((name) => !name.includes('\0'), 'must not contain a NUL character')
  .refine(
    (name) => Buffer.byteLength(name) <= MAX_NAME_BYTES,
    `is longer than ${MAX_NAME_BYTES} bytes, which PostgreSQL would truncate`,
  );

const loginTemplate = z
  .string()
  .min(1)
  .refine(
    (template) => [...template.matchAll(PLACEHOLDER)].every((m) => PLACEHOLDERS.has(m[1] ?? '')),
    `may only use ${[...PLACEHOLDERS.keys()].map((name) => `{{${name}}}`).join(' and ')}`,
  )
  // A fixed login would be shared by everyone who activates the role: one person's revoke would
  // end the others' access. Map principals explicitly instead (principals[].accounts.postgres).
  .refine((template) => template.match(PLACEHOLDER) !== null, 'must use a placeholder');

const postgresRoleConfig = z.strictObject({
  /** `env:NAME`: the variable holding the target server's URL (credentials never sit in the policy). */
  connection: z.string().regex(ENV_REFERENCE, 'must be env:NAME, the variable holding the server URL'),
  /** The group role on the target whose membership is granted. */
  role: roleName,
  /** How a principal's login is derived when the policy maps none; default `{{email_local}}`. */
  login: loginTemplate.optional(),
});
type PostgresRoleConfig = z.output<typeof postgresRoleConfig>;

/** Connection settings for the target: few, short-lived connections, bounded waits. */
const CONNECTION_OPTIONS = {
  connect_timeout: 5,
  // Seconds: an idle pool holds no socket for long, so it never keeps the process alive.
  idle_timeout: 5,
  prepare: false,
  fetch_types: false,
  onnotice: () => {},
  // Server-side bounds on a GRANT stuck behind a catalog lock; the URL's own query parameters
  // (e.g. `?lock_timeout=2000`) override them.
  connection: { application_name: 'elevate', lock_timeout: 5_000, statement_timeout: 15_000 },
} satisfies postgres.Options<Record<string, never>>;

/** Double-quotes an identifier, doubling embedded quotes (postgres.js's own helper splits at dots). */
function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** SQLSTATE classes and codes that a later attempt can get past. */
const RETRYABLE_CLASSES = ['08', '40', '53', '58'];
const RETRYABLE_CODES = ['55P03', '55006', '57014', '57P01', '57P02', '57P03', '57P05', '25006'];
/** Socket and postgres.js errors: no connection could be opened. */
const UNREACHABLE_CODES = [
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'CONNECT_TIMEOUT',
];
/**
 * An open connection went away, e.g. the server was restarted or ended the session (57P01):
 * postgres.js then reports the query in flight as CONNECTION_CLOSED, not with the server's code.
 */
const LOST_CODES = ['ECONNRESET', 'EPIPE', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED'];

function sqlState(error: unknown): string | undefined {
  return error instanceof postgres.PostgresError ? error.code : undefined;
}

/**
 * Turns a failure into a GrantError that says what was being done and why it failed, in terms an
 * admin can act on; never the URL or its credentials, only the variable's name.
 */
function failure(error: unknown, doing: string, variable: string): GrantError {
  if (error instanceof GrantError) return error;
  const server = `the PostgreSQL server in ${variable}`;
  const state = sqlState(error);
  if (state) {
    const message = (error as postgres.PostgresError).message;
    const retryable = RETRYABLE_CLASSES.includes(state.slice(0, 2)) || RETRYABLE_CODES.includes(state);
    const hint =
      state === '42501'
        ? ' (Elevate’s login on it needs ADMIN OPTION on the group role)'
        : state.startsWith('28')
          ? ` (check the credentials in ${variable})`
          : '';
    return new GrantError(`${doing}: ${server} answered ${state} ${message}${hint}`, {
      retryable,
      cause: error,
    });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNREACHABLE_CODES.includes(code)) {
    return new GrantError(`${doing}: cannot reach ${server} (${code})`, { retryable: true, cause: error });
  }
  if (typeof code === 'string' && LOST_CODES.includes(code)) {
    return new GrantError(`${doing}: lost the connection to ${server} (${code})`, {
      retryable: true,
      cause: error,
    });
  }
  // Unknown: most likely the network or TLS; a later attempt may get through.
  const message = error instanceof Error ? error.message : String(error);
  return new GrantError(`${doing}: ${server} failed: ${message}`, { retryable: true, cause: error });
}

/** Opens a client for a URL; a URL postgres.js cannot parse is an admin's mistake, named by its variable. */
function connect(url: string, variable: string, max: number): postgres.Sql {
  try {
    return postgres(url, { ...CONNECTION_OPTIONS, max });
  } catch {
    // No cause: the parser's error carries the URL, credentials and all.
    throw new GrantError(`${variable} is not a valid PostgreSQL URL`, { retryable: false });
  }
}

/**
 * The login a principal uses on the target: the policy's explicit mapping
 * (`principals[].accounts.postgres`) wins over the role's template.
 */
function loginOf(principal: GrantTarget['principal'], template: string | undefined): string {
  const mapped = principal.accounts[TYPE];
  const login =
    mapped ??
    (template ?? DEFAULT_LOGIN).replace(PLACEHOLDER, (_, name: string) => {
      const value = PLACEHOLDERS.get(name);
      if (!value) throw new GrantError(`login template uses unknown {{${name}}}`, { retryable: false });
      return value(principal.email);
    });
  const source = mapped === undefined ? `derived from ${principal.email}` : `mapped for ${principal.email}`;
  const problem = roleName.safeParse(login).error?.issues[0]?.message;
  if (problem) throw new GrantError(`login "${login}" ${source} ${problem}`, { retryable: false });
  return login;
}

/** `check`'s query: the direct memberships of login in group, with who granted each. */
async function memberships(sql: postgres.Sql, group: string, login: string): Promise<string[]> {
  const rows = await sql<{ grantor: string }[]>`
    select pg_get_userbyid(m.grantor) as grantor
      from pg_auth_members m
      join pg_roles g on g.oid = m.roleid
      join pg_roles l on l.oid = m.member
     where g.rolname = ${group} and l.rolname = ${login}`;
  return rows.map((row) => row.grantor);
}

/** After `42704 undefined_object` on a GRANT: which of the two roles is missing. */
async function missingRole(
  sql: postgres.Sql,
  { group, login, variable, email }: { group: string; login: string; variable: string; email: string },
): Promise<GrantError | undefined> {
  const [row] = await sql<{ group: boolean; login: boolean }[]>`
    select exists (select 1 from pg_roles where rolname = ${group}) as "group",
           exists (select 1 from pg_roles where rolname = ${login}) as "login"`;
  const missing: string[] = [];
  if (row && !row.group) missing.push(`group role "${group}" does not exist`);
  if (row && !row.login) {
    missing.push(
      `login "${login}" does not exist; create it or map ${email} to an existing login (principals[].accounts.postgres)`,
    );
  }
  if (missing.length === 0) return undefined;
  return new GrantError(`on the PostgreSQL server in ${variable}, ${missing.join(', and ')}`, {
    retryable: false,
  });
}

/**
 * Builds the provider; each role names its own connection variable, so nothing in the
 * environment switches it on or off. One small pool per target URL, created on first use.
 */
function createPostgresProvider(env: NodeJS.ProcessEnv): GrantProvider {
  const pools = new Map<string, postgres.Sql>();

  /** The parsed parameters of a role and a client for its server. */
  function resolveRole(role: GrantTarget['role']) {
    const parsed = postgresRoleConfig.safeParse(role.config);
    if (!parsed.success) {
      const problems = parsed.error.issues
        .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
        .join('; ');
      const message = `role "${role.name}" has invalid postgres parameters: ${problems}`;
      throw new GrantError(message, { retryable: false });
    }
    const config: PostgresRoleConfig = parsed.data;
    const variable = config.connection.slice('env:'.length);
    const url = resolveEnv(config.connection, env);
    let sql = pools.get(url);
    if (!sql) {
      sql = connect(url, variable, 2);
      pools.set(url, sql);
    }
    return { sql, variable, config, group: config.role };
  }

  /** Everything one call needs: the parsed parameters, the login and a client. */
  function resolve(target: GrantTarget) {
    const { sql, variable, config, group } = resolveRole(target.role);
    const login = loginOf(target.principal, config.login);
    return { sql, variable, group, login, email: target.principal.email };
  }

  return {
    type: TYPE,

    async close() {
      const open = [...pools.values()];
      pools.clear();
      await Promise.all(open.map((sql) => sql.end({ timeout: 2 })));
    },

    async grant(target) {
      const call = resolve(target);
      const { sql, group, login, variable } = call;
      const doing = `granting "${group}" to "${login}"`;
      try {
        // Granting an existing membership is a notice, not an error: idempotent as the port asks.
        await sql.unsafe(`GRANT ${quoteIdentifier(group)} TO ${quoteIdentifier(login)}`);
      } catch (error) {
        if (sqlState(error) === '42704') {
          const missing = await missingRole(sql, call).catch(() => undefined);
          if (missing) throw missing;
        }
        throw failure(error, doing, variable);
      }
    },

    async revoke(target) {
      const { sql, group, login, variable } = resolve(target);
      const doing = `revoking "${group}" from "${login}"`;
      try {
        // Revoking a membership that does not exist is a warning, not an error.
        await sql.unsafe(`REVOKE ${quoteIdentifier(group)} FROM ${quoteIdentifier(login)}`);
      } catch (error) {
        // A role that does not exist holds no membership: the access is gone either way.
        if (sqlState(error) === '42704') return;
        throw failure(error, doing, variable);
      }
      // From PostgreSQL 16 a REVOKE removes only the memberships its own login granted; one
      // granted by another role would survive it, so confirm before reporting the access gone.
      const remaining = await memberships(sql, group, login).catch((error: unknown) => {
        throw failure(error, doing, variable);
      });
      if (remaining.length > 0) {
        throw new GrantError(
          `${doing}: "${login}" is still a member through a grant by ${remaining.map((r) => `"${r}"`).join(', ')}, which Elevate’s login cannot revoke; revoke it on the PostgreSQL server in ${variable}`,
          { retryable: false },
        );
      }
    },

    async check(target) {
      const { sql, group, login, variable } = resolve(target);
      try {
        return (await memberships(sql, group, login)).length > 0;
      } catch (error) {
        throw failure(error, `reading the members of "${group}"`, variable);
      }
    },

    async members(role) {
      const { sql, group, variable } = resolveRole(role);
      try {
        // Direct members only: the membership grant and revoke manage.
        const rows = await sql<{ login: string }[]>`
          select l.rolname as login
            from pg_auth_members m
            join pg_roles g on g.oid = m.roleid
            join pg_roles l on l.oid = m.member
           where g.rolname = ${group}`;
        return [...new Set(rows.map((row) => row.login))];
      } catch (error) {
        throw failure(error, `reading the members of "${group}"`, variable);
      }
    },

    async accountOf(role, principal) {
      return loginOf(principal, resolveRole(role).config.login);
    },
  };
}

/**
 * For `apply --dry-run`: the variable is set, the server answers, the group role exists and
 * Elevate's login may grant it. Lines name the variable, never the URL.
 */
async function verifyPostgresRole(config: PostgresRoleConfig, env: NodeJS.ProcessEnv): Promise<string[]> {
  const variable = config.connection.slice('env:'.length);
  let sql: postgres.Sql;
  try {
    sql = connect(resolveEnv(config.connection, env), variable, 1);
  } catch (error) {
    return [`connection: ${(error as Error).message}`];
  }
  try {
    const [row] = await sql<
      {
        exists: boolean;
        groupSuperuser: boolean | null;
        superuser: boolean;
        createrole: boolean;
        admin: boolean | null;
        version: number;
        me: string;
      }[]
    >`
      select g.oid is not null as "exists",
             g.rolsuper as "groupSuperuser",
             me.rolsuper as "superuser",
             me.rolcreaterole as "createrole",
             pg_has_role(me.oid, g.oid, 'MEMBER WITH ADMIN OPTION') as "admin",
             current_setting('server_version_num')::int as "version",
             me.rolname as "me"
        from pg_roles me
        left join pg_roles g on g.rolname = ${config.role}
       where me.rolname = current_user`;
    if (!row) return [`connection: the login in ${variable} is not a role on its server`];
    if (!row.exists)
      return [`role: group role "${config.role}" does not exist on the PostgreSQL server in ${variable}`];
    if (row.superuser) return [];
    if (row.groupSuperuser) {
      return [
        `role: "${config.role}" is a superuser role; only a superuser login in ${variable} can grant it`,
      ];
    }
    // Up to PostgreSQL 15, CREATEROLE may grant any role that is not a superuser.
    if (row.admin || (row.createrole && row.version < 160000)) return [];
    return [
      `role: the login "${row.me}" in ${variable} cannot grant "${config.role}"; give it ADMIN OPTION on that role (GRANT ${quoteIdentifier(config.role)} TO ${quoteIdentifier(row.me)} WITH ADMIN OPTION)`,
    ];
  } catch (error) {
    const reason = failure(error, 'connection', variable).message;
    return [reason];
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The `postgres` provider: group role membership on a PostgreSQL server. */
export const postgresProvider: ProviderDefinition<typeof postgresRoleConfig> = {
  type: TYPE,
  roleConfig: postgresRoleConfig,
  create: (env) => createPostgresProvider(env),
  verify: verifyPostgresRole,
};
