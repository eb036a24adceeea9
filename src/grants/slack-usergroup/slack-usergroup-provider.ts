import {
  LogLevel,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
  WebClient,
} from '@slack/web-api';
import { z } from 'zod';
import {
  GrantError,
  type GrantProvider,
  type GrantTarget,
  type ProviderDefinition,
} from '../grant-provider.ts';
import { DEFAULT_SLACK_API_URL, slackEnv } from './slack-env.ts';

/**
 * Membership of a Slack user group (`@oncall-admins`): grant adds the principal, revoke removes
 * them. Slack has no "add one member" call: `usergroups.users.update` replaces the whole list, so
 * every change reads the current list and sends it back with one user added or removed, and makes
 * no call when there is nothing to change. Changes to one group are serialized in this process;
 * a change made elsewhere between our read and our write (another replica, a person in Slack) can
 * still be lost, and `check` (the real member list) is what tells.
 *
 * Slack cannot empty a user group (`usergroups.users.update` refuses an empty list; its docs send
 * you to `usergroups.disable`). Revoking the last member is a permanent error that says so: we do
 * not disable the group, because that changes more than one person's membership (mentions, default
 * channels, whatever else uses the group), Slack does not say whether a disabled group keeps its
 * members (re-enabling could bring the revoked user back), and undoing it on the next grant would
 * override an admin who disabled the group on purpose. A group used with Elevate keeps one
 * permanent member; `verify` (`apply --dry-run`) reports a group that has none.
 */

const TYPE = 'slack-usergroup';
const NOT_CONFIGURED =
  'the slack-usergroup provider is not configured: set SLACK_BOT_TOKEN (and SLACK_API_URL to use another Slack API base)';
/** The bot token scopes the provider uses (users:read.email only for principals without a Slack id). */
export const SLACK_USERGROUP_SCOPES = ['usergroups:read', 'usergroups:write', 'users:read.email'];
/** One Slack call may take this long; Elevate's loop retries a timeout. */
const TIMEOUT_MS = 15_000;
const USER_ID = /^[UW][A-Z0-9]{2,}$/;

const roleConfig = z.strictObject({
  /** The user group's id (S0123ABC), or its handle with an @ (resolved on every call). */
  usergroup: z
    .string()
    .regex(/^(S[A-Z0-9]{2,}|@[a-z0-9][a-z0-9._-]*)$/, 'expected a user group id (S0123ABC) or @handle'),
});

type RoleConfig = z.output<typeof roleConfig>;

/** The `slack-usergroup` provider: `provider: { type: slack-usergroup, usergroup: S0123ABC }` on a role. */
export const slackUsergroupProvider: ProviderDefinition<typeof roleConfig> = {
  type: TYPE,
  roleConfig,
  create(env) {
    const settings = readSlackEnv(env);
    return typeof settings === 'string' ? settings : createSlackUsergroupProvider(slackClient(settings));
  },
  async verify(config, env) {
    const settings = readSlackEnv(env);
    if (typeof settings === 'string') return [settings];
    return verifySlackUsergroup(slackClient(settings), config);
  },
};

/** The token and base URL from the environment, or the line that says what to set. */
function readSlackEnv(env: NodeJS.ProcessEnv): { token: string; apiUrl: string } | string {
  // An empty variable means "not set", as in config.ts.
  const present = {
    SLACK_BOT_TOKEN: env.SLACK_BOT_TOKEN || undefined,
    SLACK_API_URL: env.SLACK_API_URL || undefined,
  };
  if (!present.SLACK_BOT_TOKEN) return NOT_CONFIGURED;
  const parsed = slackEnv.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    return `the slack-usergroup provider is not configured: ${problems.join('; ')}`;
  }
  const apiUrl = parsed.data.SLACK_API_URL ?? DEFAULT_SLACK_API_URL;
  return { token: present.SLACK_BOT_TOKEN, apiUrl: apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/` };
}

function slackClient(settings: { token: string; apiUrl: string }): WebClient {
  return new WebClient(settings.token, {
    slackApiUrl: settings.apiUrl,
    // Elevate's loop does the backoff: a 429 or a failure surfaces at once as a retryable GrantError.
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: TIMEOUT_MS,
    allowAbsoluteUrls: false,
    logLevel: LogLevel.ERROR,
  });
}

/** The provider over one Slack client; caches (workspace, email → user id) live as long as it does. */
function createSlackUsergroupProvider(client: WebClient): GrantProvider {
  const userIdByEmail = new Map<string, string>();
  let workspace: Promise<{ teamId?: string; enterpriseId?: string }> | undefined;
  const queues = new Map<string, Promise<unknown>>();

  /** Runs one read-modify-write of a group after the previous one in this process has settled. */
  function serialized<T>(groupId: string, run: () => Promise<T>): Promise<T> {
    const result = (queues.get(groupId) ?? Promise.resolve()).then(run);
    const settled = result.then(
      () => {},
      () => {},
    );
    queues.set(groupId, settled);
    void settled.then(() => {
      if (queues.get(groupId) === settled) queues.delete(groupId);
    });
    return result;
  }

  /** The workspace (and org) the token belongs to, asked once; a failed answer is asked again. */
  function workspaceOfToken() {
    workspace ??= slack('auth.test', () => client.auth.test()).then(
      (auth) => ({ teamId: auth.team_id, enterpriseId: auth.enterprise_id }),
      (error: unknown) => {
        workspace = undefined;
        throw error;
      },
    );
    return workspace;
  }

  /** The principal's Slack user id: mapped in the policy, else their Slack identity here, else by email. */
  async function userIdOf(principal: GrantTarget['principal']): Promise<string> {
    // accounts[type] as the port defines it (reconciliation's holders); `slack` as the policy writes it.
    const mapped = principal.accounts[TYPE] ?? principal.accounts.slack;
    if (mapped !== undefined) {
      if (!USER_ID.test(mapped)) {
        throw permanent(
          `the Slack account of ${principal.email} in the policy ("${mapped}") is not a Slack user id: ` +
            'set principals[].accounts.slack to the member id from their Slack profile (U0123ABC)',
        );
      }
      return mapped;
    }
    const identities = principal.identities.filter((identity) => identity.platform === 'slack');
    if (identities.length > 0) {
      // An identity from another workspace would name a different user; those fall back to the email.
      const { teamId, enterpriseId } = await workspaceOfToken();
      const here = identities.find((i) => i.tenant === teamId || (enterpriseId && i.tenant === enterpriseId));
      if (here) return here.externalId;
    }
    const email = principal.email.toLowerCase();
    const cached = userIdByEmail.get(email);
    if (cached) return cached;
    const found = await slack('users.lookupByEmail', () => client.users.lookupByEmail({ email }), { email });
    if (!found.user?.id) throw permanent(`Slack found no user id for ${email} (users.lookupByEmail)`);
    userIdByEmail.set(email, found.user.id);
    return found.user.id;
  }

  /** The group's id: as configured, or looked up by handle among the enabled groups. */
  async function groupIdOf(config: RoleConfig): Promise<string> {
    if (!config.usergroup.startsWith('@')) return config.usergroup;
    const handle = config.usergroup.slice(1);
    const list = await slack('usergroups.list', () => client.usergroups.list({}), {
      group: config.usergroup,
    });
    const group = list.usergroups?.find((g) => g.handle === handle);
    if (!group?.id) {
      throw permanent(
        `no enabled Slack user group has the handle ${config.usergroup}: fix the role's usergroup ` +
          '(or give the group id, S0123ABC) or enable the group in Slack',
      );
    }
    return group.id;
  }

  async function membersOf(groupId: string): Promise<string[]> {
    const result = await slack(
      'usergroups.users.list',
      () => client.usergroups.users.list({ usergroup: groupId }),
      { group: groupId },
    );
    return result.users ?? [];
  }

  async function setMembers(groupId: string, users: string[], user: string): Promise<void> {
    await slack(
      'usergroups.users.update',
      () => client.usergroups.users.update({ usergroup: groupId, users: users.join(',') }),
      { group: groupId, user },
    );
  }

  /** What grant, revoke and check share: the parameters, the user, the group. */
  async function resolve(target: GrantTarget) {
    const config = roleConfig.safeParse(target.role.config);
    if (!config.success) {
      throw permanent(
        `role ${target.role.name}: invalid slack-usergroup parameters (${z.prettifyError(config.error).replaceAll('\n', '; ')})`,
      );
    }
    const user = await userIdOf(target.principal);
    const groupId = await groupIdOf(config.data);
    return { user, groupId, label: `${target.principal.email} (${user})` };
  }

  return {
    type: TYPE,
    async grant(target) {
      const { user, groupId } = await resolve(target);
      await serialized(groupId, async () => {
        const members = await membersOf(groupId);
        if (members.includes(user)) return;
        await setMembers(groupId, [...members, user], user);
      });
    },
    async revoke(target) {
      const { user, groupId, label } = await resolve(target);
      await serialized(groupId, async () => {
        const members = await membersOf(groupId);
        if (!members.includes(user)) return;
        const rest = members.filter((member) => member !== user);
        if (rest.length === 0) {
          throw permanent(
            `cannot remove ${label} from Slack user group ${groupId}: they are its last member and Slack ` +
              'cannot empty a user group; give the group a permanent member in Slack and revoke again, ' +
              'or disable the group to end the access now',
          );
        }
        await setMembers(groupId, rest, user);
      });
    },
    async check(target) {
      const { user, groupId } = await resolve(target);
      return (await membersOf(groupId)).includes(user);
    },
    async members(role) {
      const config = roleConfig.safeParse(role.config);
      if (!config.success) throw permanent(`role ${role.name}: invalid slack-usergroup parameters`);
      return membersOf(await groupIdOf(config.data));
    },
    accountOf: (_role, principal) => userIdOf(principal),
  };
}

/** `apply --dry-run`: the token works and has the scopes, the group exists, is enabled and not empty. */
async function verifySlackUsergroup(client: WebClient, config: RoleConfig): Promise<string[]> {
  let auth: Awaited<ReturnType<WebClient['auth']['test']>>;
  try {
    auth = await slack('auth.test', () => client.auth.test());
  } catch (error) {
    return [`SLACK_BOT_TOKEN: ${messageOf(error)}`];
  }
  const problems: string[] = [];
  // Slack names the token's scopes in a header on every answer; a stand-in may not.
  const scopes = auth.response_metadata?.scopes;
  const missing = scopes ? SLACK_USERGROUP_SCOPES.filter((scope) => !scopes.includes(scope)) : [];
  for (const scope of missing) {
    problems.push(
      `SLACK_BOT_TOKEN: the Slack app lacks the ${scope} scope: add it under OAuth & Permissions and reinstall the app`,
    );
  }
  if (missing.includes('usergroups:read')) return problems;
  try {
    const list = await slack('usergroups.list', () =>
      client.usergroups.list({ include_disabled: true, include_count: true }),
    );
    const matches = (list.usergroups ?? []).filter((g) =>
      config.usergroup.startsWith('@') ? `@${g.handle}` === config.usergroup : g.id === config.usergroup,
    );
    const group = matches.find((g) => !g.date_delete) ?? matches[0];
    const label = group ? `@${group.handle} (${group.id})` : config.usergroup;
    if (!group) {
      problems.push(`usergroup: the Slack workspace ${auth.team ?? auth.team_id} has no user group ${label}`);
    } else if (group.date_delete) {
      problems.push(`usergroup: the Slack user group ${label} is disabled: enable it in Slack`);
    } else if (Number(group.user_count ?? 0) === 0) {
      problems.push(
        `usergroup: the Slack user group ${label} has no members: give it a permanent member, because ` +
          'Slack cannot empty a user group and Elevate could not revoke the last elevated user',
      );
    }
  } catch (error) {
    problems.push(`usergroup: ${messageOf(error)}`);
  }
  return problems;
}

/** What a failed Slack call was about, to name it in the message. */
interface CallContext {
  group?: string;
  user?: string;
  email?: string;
}

/** Runs one Slack call and turns any failure into a GrantError typed retryable or permanent. */
async function slack<T>(method: string, call: () => Promise<T>, context: CallContext = {}): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toGrantError(error, method, context);
  }
}

/** Slack errors that pass: throttling, Slack's own trouble, an enterprise migration in progress. */
const TRANSIENT = new Set([
  'ratelimited',
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
  'team_added_to_org',
  'org_login_required',
]);
/** Slack errors that mean the token itself is refused. */
const TOKEN_REFUSED = new Set([
  'not_authed',
  'invalid_auth',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'not_allowed_token_type',
  'team_access_not_granted',
]);
/** Slack errors that mean a member of the list may not be in a user group. */
const MEMBER_REFUSED = new Set([
  'invalid_users',
  'invalid_user',
  'failed_for_some_users',
  'single_channel_guests_cannot_be_added',
]);

function toGrantError(error: unknown, method: string, context: CallContext): GrantError {
  if (error instanceof GrantError) return error;
  if (error instanceof WebAPIRateLimitedError) {
    return new GrantError(`Slack rate-limited ${method}; retry after ${error.retryAfter}s`, {
      retryable: true,
      retryAfterMs: error.retryAfter * 1000,
      cause: error,
    });
  }
  if (error instanceof WebAPIPlatformError) {
    const code = error.data.error;
    if (TRANSIENT.has(code)) {
      const retryAfter = error.data.response_metadata?.retryAfter;
      return new GrantError(`Slack answered ${code} to ${method}`, {
        retryable: true,
        retryAfterMs: retryAfter === undefined ? undefined : retryAfter * 1000,
        cause: error,
      });
    }
    // missing_scope names the scope in `needed`; the accepted-scopes header says it too.
    const needed = (error.data as { needed?: unknown }).needed;
    const scope =
      typeof needed === 'string' ? needed : error.data.response_metadata?.acceptedScopes?.join(' or ');
    return new GrantError(platformMessage(code, scope, method, context), {
      retryable: false,
      cause: error,
    });
  }
  if (error instanceof WebAPIHTTPError) {
    const retryable = error.statusCode >= 500 || error.statusCode === 408;
    const hint = retryable ? '' : ': check SLACK_API_URL';
    return new GrantError(`the Slack API answered HTTP ${error.statusCode} to ${method}${hint}`, {
      retryable,
      cause: error,
    });
  }
  if (error instanceof WebAPIRequestError) {
    return new GrantError(`cannot reach the Slack API for ${method}: ${error.original.message}`, {
      retryable: true,
      cause: error,
    });
  }
  // Anything else (a 429 without Retry-After, a bug in a proxy) may pass.
  return new GrantError(`${method} failed: ${error instanceof Error ? error.message : String(error)}`, {
    retryable: true,
    cause: error,
  });
}

/** A permanent Slack error in words an admin can act on. */
function platformMessage(code: string, needed: string | undefined, method: string, context: CallContext) {
  const group = context.group ? `user group ${context.group}` : 'the user group';
  if (code === 'missing_scope') {
    return `the Slack app lacks the ${needed ?? 'required'} scope for ${method}: add it under OAuth & Permissions and reinstall the app`;
  }
  if (TOKEN_REFUSED.has(code)) {
    return `Slack refused SLACK_BOT_TOKEN (${code}): set the token of an installed Slack app`;
  }
  if (code === 'users_not_found') {
    return (
      `no Slack user has the email ${context.email ?? '(unknown)'} (users_not_found): fix the email, or map ` +
      "the principal's Slack member id in the policy (principals[].accounts.slack)"
    );
  }
  if (code === 'no_such_subteam') {
    return `Slack has no enabled ${group} (no_such_subteam): fix the role's usergroup or enable the group in Slack`;
  }
  if (code === 'permission_denied' || code === 'no_permission') {
    return (
      `Slack does not let the app change ${group} (${code}): in Slack's workspace settings, Permissions > ` +
      'User Groups, let everyone modify user groups (a bot token needs that), or use a user token of someone who may'
    );
  }
  if (code === 'plan_upgrade_required') {
    return 'this Slack workspace has no user groups (plan_upgrade_required): they need a paid Slack plan';
  }
  if (MEMBER_REFUSED.has(code)) {
    return `Slack refused ${context.user ?? 'a member'} in ${group} (${code}): guests, bots and deactivated users cannot be in a user group`;
  }
  if (code === 'subteam_max_users_exceeded') {
    return `Slack ${group} is full (subteam_max_users_exceeded)`;
  }
  return `Slack answered ${code} to ${method}`;
}

function permanent(message: string): GrantError {
  return new GrantError(message, { retryable: false });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
