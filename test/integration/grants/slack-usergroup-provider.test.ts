import { afterEach, describe, expect, test } from 'vitest';
import { GrantError, type GrantProvider } from '../../../src/grants/grant-provider.ts';
import { createProviderRegistry } from '../../../src/grants/registry.ts';
import { slackUsergroupProvider } from '../../../src/grants/slack-usergroup/slack-usergroup-provider.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../../support/fake-slack-api.ts';
import { grantTarget, providerContract } from '../../support/provider-contract.ts';

const TOKEN = 'xoxb-test-0123456789-secret';
const GROUP = 'S0ADMINS';
const NOT_CONFIGURED =
  'the slack-usergroup provider is not configured: set SLACK_BOT_TOKEN (and SLACK_API_URL to use another Slack API base)';

const open: FakeSlackApi[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((fake) => fake.close()));
});

/** A fake workspace: dee (to elevate), ana and bo (permanent members of S0ADMINS), a provider on it. */
async function slackWorkspace(options: { scopes?: string[] } = {}) {
  const fake = await startFakeSlackApi({ token: TOKEN, scopes: options.scopes });
  open.push(fake);
  fake.addUser({ id: 'U0DEE', email: 'dee@example.com' });
  fake.addUser({ id: 'U0CY', email: 'cy@example.com' });
  fake.addUser({ id: 'U0ANA', email: 'ana@example.com' });
  fake.addUser({ id: 'U0BO', email: 'bo@example.com' });
  fake.addUsergroup({ id: GROUP, handle: 'prod-admins', users: ['U0ANA', 'U0BO'] });
  const env = { SLACK_BOT_TOKEN: TOKEN, SLACK_API_URL: fake.url };
  const provider = slackUsergroupProvider.create(env);
  if (typeof provider === 'string') throw new Error(provider);
  const target = (overrides: Parameters<typeof grantTarget>[0] = {}) =>
    grantTarget({ email: 'dee@example.com', config: { usergroup: GROUP }, ...overrides });
  const members = (group = GROUP) => fake.usergroups.get(group)?.users ?? [];
  return { fake, env, provider, target, members };
}

async function failure(call: Promise<unknown>): Promise<GrantError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GrantError);
  return error as GrantError;
}

providerContract('slack-usergroup', async () => {
  const { fake, provider, target, members } = await slackWorkspace();
  return {
    provider,
    target: target(),
    isGranted: async () => members().includes('U0DEE'),
    grantCount: async () => members().filter((id) => id === 'U0DEE').length,
    unknown: { target: target({ email: 'nobody@example.com' }), named: 'nobody@example.com' },
    failNextTransiently: () => fake.failNext({ status: 503 }),
  };
});

describe('slack-usergroup: membership', () => {
  test('other members are never dropped: the update sends the whole list with one user added or removed', async () => {
    const { fake, provider, target, members } = await slackWorkspace();
    await provider.grant(target());
    expect(members()).toEqual(['U0ANA', 'U0BO', 'U0DEE']);
    await provider.revoke(target());
    expect(members()).toEqual(['U0ANA', 'U0BO']);
    expect(fake.callsTo('usergroups.users.update').map((call) => call.args)).toEqual([
      { usergroup: GROUP, users: 'U0ANA,U0BO,U0DEE' },
      { usergroup: GROUP, users: 'U0ANA,U0BO' },
    ]);
  });

  test('granting a member or revoking a non-member makes no update call', async () => {
    const { fake, provider, target, members } = await slackWorkspace();
    fake.usergroups.get(GROUP)?.users.push('U0DEE');
    await provider.grant(target());
    await provider.revoke(target({ email: 'cy@example.com' }));
    expect(fake.callsTo('usergroups.users.update')).toEqual([]);
    expect(members()).toEqual(['U0ANA', 'U0BO', 'U0DEE']);
  });

  test('concurrent grants to one group in one process both land', async () => {
    const { provider, target, members } = await slackWorkspace();
    await Promise.all([provider.grant(target()), provider.grant(target({ email: 'cy@example.com' }))]);
    expect([...members()].sort()).toEqual(['U0ANA', 'U0BO', 'U0CY', 'U0DEE']);
  });

  test('revoking the last member is a permanent error that says why, and nothing changes', async () => {
    const { fake, provider, target, members } = await slackWorkspace();
    fake.addUsergroup({ id: 'S0SOLO', handle: 'solo', users: ['U0DEE'] });
    const error = await failure(provider.revoke(target({ config: { usergroup: 'S0SOLO' } })));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('last member');
    expect(error.message).toContain('dee@example.com');
    expect(error.message).toContain('permanent member');
    expect(members('S0SOLO')).toEqual(['U0DEE']);
    expect(fake.callsTo('usergroups.users.update')).toEqual([]);
  });

  test('a group named by @handle is found among the enabled groups', async () => {
    const { provider, target, members } = await slackWorkspace();
    await provider.grant(target({ config: { usergroup: '@prod-admins' } }));
    expect(members()).toContain('U0DEE');
    const error = await failure(provider.grant(target({ config: { usergroup: '@nope' } })));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('@nope');
  });

  test('check reads the member list', async () => {
    const { fake, provider, target } = await slackWorkspace();
    expect(await provider.check?.(target())).toBe(false);
    fake.usergroups.get(GROUP)?.users.push('U0DEE');
    expect(await provider.check?.(target())).toBe(true);
  });
});

describe('slack-usergroup: who the user is', () => {
  test('the Slack identity of this workspace gives the user id, without users.lookupByEmail', async () => {
    const { fake, provider, target, members } = await slackWorkspace();
    const identities = [{ platform: 'slack' as const, tenant: fake.team.id, externalId: 'U0DEE' }];
    // An email Slack does not know: only the identity can find the user.
    await provider.grant(target({ email: 'dee.personal@example.org', identities }));
    expect(members()).toContain('U0DEE');
    expect(fake.callsTo('users.lookupByEmail')).toEqual([]);
  });

  test('an identity from another workspace is not used: the email is', async () => {
    const { fake, provider, target, members } = await slackWorkspace();
    const identities = [{ platform: 'slack' as const, tenant: 'T0OTHER', externalId: 'U0ELSEWHERE' }];
    await provider.grant(target({ identities }));
    expect(members()).toContain('U0DEE');
    expect(members()).not.toContain('U0ELSEWHERE');
    expect(fake.callsTo('users.lookupByEmail')).toHaveLength(1);
  });

  test('the policy mapping (accounts.slack) wins; a mapping that is not a user id is refused', async () => {
    const { fake, provider, target, members } = await slackWorkspace();
    await provider.grant(target({ email: 'someone@example.org', accounts: { slack: 'U0CY' } }));
    expect(members()).toContain('U0CY');
    expect(fake.callsTo('users.lookupByEmail')).toEqual([]);
    expect(fake.callsTo('auth.test')).toEqual([]);
    const error = await failure(provider.grant(target({ accounts: { slack: 'cy' } })));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('"cy"');
  });

  test('users.lookupByEmail is asked once per email per process', async () => {
    const { fake, provider, target } = await slackWorkspace();
    await provider.grant(target());
    await provider.check?.(target());
    await provider.revoke(target());
    expect(fake.callsTo('users.lookupByEmail')).toHaveLength(1);
  });

  test('users_not_found is permanent and names the email', async () => {
    const { provider, target } = await slackWorkspace();
    const error = await failure(provider.grant(target({ email: 'ghost@example.com' })));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('ghost@example.com');
    expect(error.message).toContain('accounts.slack');
  });
});

describe('slack-usergroup: failures', () => {
  test('a 429 is retryable with Retry-After as retryAfterMs, and the retry succeeds', async () => {
    const { fake, provider, target, members } = await slackWorkspace();
    fake.failNext({ status: 429, retryAfter: 7 }, 'usergroups.users.update');
    const error = await failure(provider.grant(target()));
    expect(error.retryable).toBe(true);
    expect(error.retryAfterMs).toBe(7000);
    expect(members()).not.toContain('U0DEE');
    await provider.grant(target());
    expect(members()).toContain('U0DEE');
    // One 429 answer, no retry by the client itself: Elevate's loop does the backoff.
    expect(fake.callsTo('usergroups.users.update').map((call) => call.status)).toEqual([429, 200]);
  });

  test('missing_scope is permanent and names the scope', async () => {
    const { provider, target, members } = await slackWorkspace({
      scopes: ['usergroups:read', 'users:read.email'],
    });
    const error = await failure(provider.grant(target()));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('usergroups:write');
    expect(error.message).not.toContain(TOKEN);
    expect(members()).not.toContain('U0DEE');
  });

  test.each([
    ['ratelimited', true, 'ratelimited'],
    ['internal_error', true, 'internal_error'],
    ['fatal_error', true, 'fatal_error'],
    ['service_unavailable', true, 'service_unavailable'],
    ['not_authed', false, 'SLACK_BOT_TOKEN'],
    ['invalid_auth', false, 'SLACK_BOT_TOKEN'],
    ['token_revoked', false, 'SLACK_BOT_TOKEN'],
    ['no_such_subteam', false, GROUP],
    ['permission_denied', false, 'User Groups'],
    ['invalid_users', false, 'U0DEE'],
    ['plan_upgrade_required', false, 'paid Slack plan'],
    ['something_new', false, 'something_new'],
  ])('Slack error %s → retryable %s, message names %s', async (code, retryable, named) => {
    const { fake, provider, target } = await slackWorkspace();
    fake.failNext({ error: code }, 'usergroups.users.update');
    const error = await failure(provider.grant(target()));
    expect(error.retryable).toBe(retryable);
    expect(error.message).toContain(named);
    expect(error.message).not.toContain(TOKEN);
  });

  test('HTTP 5xx and an unreachable API are retryable; HTTP 404 is permanent', async () => {
    const { fake, provider, target } = await slackWorkspace();
    fake.failNext({ status: 500 });
    expect((await failure(provider.grant(target()))).retryable).toBe(true);
    fake.failNext({ status: 404 });
    const notFound = await failure(provider.grant(target()));
    expect(notFound.retryable).toBe(false);
    expect(notFound.message).toContain('SLACK_API_URL');

    const unreachable = slackUsergroupProvider.create({
      SLACK_BOT_TOKEN: TOKEN,
      SLACK_API_URL: 'http://127.0.0.1:9/api/',
    }) as GrantProvider;
    const error = await failure(unreachable.grant(target()));
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('cannot reach the Slack API');
  });

  test('a real token that Slack does not know is refused permanently, without showing it', async () => {
    const { fake, target } = await slackWorkspace();
    const other = slackUsergroupProvider.create({
      SLACK_BOT_TOKEN: 'xoxb-someone-elses',
      SLACK_API_URL: fake.url,
    }) as GrantProvider;
    const error = await failure(other.grant(target()));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('invalid_auth');
    expect(error.message).not.toContain('xoxb-someone-elses');
  });
});

describe('slack-usergroup: definition', () => {
  test('switches on with SLACK_BOT_TOKEN; without it, says what to set', () => {
    expect(slackUsergroupProvider.create({})).toBe(NOT_CONFIGURED);
    expect(slackUsergroupProvider.create({ SLACK_BOT_TOKEN: '' })).toBe(NOT_CONFIGURED);
    const bad = slackUsergroupProvider.create({ SLACK_BOT_TOKEN: TOKEN, SLACK_API_URL: 'slack.com' });
    expect(bad).toContain('SLACK_API_URL');
    expect(bad).not.toContain(TOKEN);
    expect(typeof slackUsergroupProvider.create({ SLACK_BOT_TOKEN: TOKEN })).toBe('object');
  });

  test('role parameters: a user group id or @handle, nothing else', () => {
    const registry = createProviderRegistry({
      env: { SLACK_BOT_TOKEN: TOKEN },
      definitions: [slackUsergroupProvider],
    });
    expect(registry.validate('slack-usergroup', { usergroup: 'S0123ABC' })).toEqual([]);
    expect(registry.validate('slack-usergroup', { usergroup: '@oncall-admins' })).toEqual([]);
    expect(registry.validate('slack-usergroup', { usergroup: 'oncall' })).toEqual([
      'usergroup: expected a user group id (S0123ABC) or @handle',
    ]);
    expect(registry.validate('slack-usergroup', { usergroup: 'S0123ABC', team: 'T1' })).toEqual([
      'team: not a parameter of the slack-usergroup provider',
    ]);
    expect(registry.validate('slack-usergroup', {})).toHaveLength(1);
    const off = createProviderRegistry({ env: {}, definitions: [slackUsergroupProvider] });
    expect(off.validate('slack-usergroup', { usergroup: 'S0123ABC' })).toEqual([`type: ${NOT_CONFIGURED}`]);
  });
});

describe('slack-usergroup: verify', () => {
  const verify = slackUsergroupProvider.verify as NonNullable<typeof slackUsergroupProvider.verify>;

  test('a working token and an enabled group with members: no problems, by id or handle', async () => {
    const { env } = await slackWorkspace();
    expect(await verify({ usergroup: GROUP }, env)).toEqual([]);
    expect(await verify({ usergroup: '@prod-admins' }, env)).toEqual([]);
  });

  test('no token: the line that says what to set', async () => {
    expect(await verify({ usergroup: GROUP }, {})).toEqual([NOT_CONFIGURED]);
  });

  test('a refused token: one line, without the token', async () => {
    const { fake } = await slackWorkspace();
    const problems = await verify(
      { usergroup: GROUP },
      { SLACK_BOT_TOKEN: 'xoxb-wrong', SLACK_API_URL: fake.url },
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('invalid_auth');
    expect(problems.join('\n')).not.toContain('xoxb-wrong');
  });

  test('missing scopes: one line each', async () => {
    const { env } = await slackWorkspace({ scopes: ['usergroups:read'] });
    const problems = await verify({ usergroup: GROUP }, env);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain('usergroups:write');
    expect(problems[1]).toContain('users:read.email');
  });

  test('an unknown, a disabled and an empty group are problems', async () => {
    const { fake, env } = await slackWorkspace();
    fake.addUsergroup({ id: 'S0OFF', handle: 'off', users: ['U0ANA'], disabled: true });
    fake.addUsergroup({ id: 'S0EMPTY', handle: 'empty', users: [] });
    const [unknown] = await verify({ usergroup: 'S0NOPE' }, env);
    expect(unknown).toMatch(/^usergroup: .*S0NOPE/);
    const [disabled] = await verify({ usergroup: '@off' }, env);
    expect(disabled).toMatch(/^usergroup: .*@off \(S0OFF\) is disabled/);
    const [empty] = await verify({ usergroup: 'S0EMPTY' }, env);
    expect(empty).toMatch(/^usergroup: .*@empty \(S0EMPTY\) has no members/);
  });

  test('an unreachable Slack API is one line', async () => {
    const problems = await verify(
      { usergroup: GROUP },
      { SLACK_BOT_TOKEN: TOKEN, SLACK_API_URL: 'http://127.0.0.1:9/api/' },
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('cannot reach the Slack API');
  });
});

describe('fake Slack API', () => {
  test('takes JSON bodies as Slack does', async () => {
    const { fake, members } = await slackWorkspace();
    const response = await fetch(`${fake.url}usergroups.users.update`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ usergroup: GROUP, users: ['U0ANA', 'U0CY'] }),
    });
    expect(await response.json()).toMatchObject({ ok: true });
    expect(members()).toEqual(['U0ANA', 'U0CY']);
  });
});
