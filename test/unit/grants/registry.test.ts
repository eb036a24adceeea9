import { expect, test } from 'vitest';
import { z } from 'zod';
import { GrantError, type GrantTarget, type ProviderDefinition } from '../../../src/grants/grant-provider.ts';
import { createProviderRegistry, type ProviderCall } from '../../../src/grants/registry.ts';
import { grantTarget } from '../../support/provider-contract.ts';

/** A provider switched on by SAMPLE_TOKEN, remembering the targets it was given. */
function sample() {
  const seen: GrantTarget[] = [];
  const definition: ProviderDefinition = {
    type: 'sample',
    roleConfig: z.object({ group: z.string(), mode: z.enum(['a', 'b']).default('a') }).strict(),
    create: (env) =>
      env.SAMPLE_TOKEN
        ? {
            type: 'sample',
            grant: async (t) => {
              seen.push(t);
              if (t.role.config.group === 'flaky') throw new Error('socket hang up');
              if (t.role.config.group === 'gone')
                throw new GrantError('group gone does not exist', { retryable: false });
            },
            revoke: async (t) => void seen.push(t),
          }
        : 'the sample provider is not configured: set SAMPLE_TOKEN',
  };
  return { definition, seen };
}

test('a provider whose variables are missing (or empty) is off, and roles naming it hear what to set', () => {
  const { definition } = sample();
  const registry = createProviderRegistry({ env: { SAMPLE_TOKEN: '' }, definitions: [definition] });
  expect(registry.get('sample')).toBeUndefined();
  expect(registry.validate('sample', { group: 'g' })).toEqual([
    'type: the sample provider is not configured: set SAMPLE_TOKEN',
  ]);
  expect(registry.validate('nope', {})).toEqual(['type: "nope" is not a known provider (known: sample)']);
});

test('parameters are checked by the provider schema, and the provider gets them parsed', async () => {
  const { definition, seen } = sample();
  const registry = createProviderRegistry({ env: { SAMPLE_TOKEN: 't' }, definitions: [definition] });
  expect(registry.validate('sample', { group: 'g', extra: 1 })).toEqual([
    'extra: not a parameter of the sample provider',
  ]);
  expect(registry.validate('sample', { mode: 'c' })).toEqual([
    'group: Invalid input: expected string, received undefined',
    'mode: Invalid option: expected one of "a"|"b"',
  ]);
  await registry.get('sample')?.grant(grantTarget({ config: { group: 'g' } }));
  expect(seen[0]?.role.config).toEqual({ group: 'g', mode: 'a' });
  const broken = await registry
    .get('sample')
    ?.grant(grantTarget({ config: { group: 7 } }))
    .catch((e: unknown) => e);
  expect(broken).toBeInstanceOf(GrantError);
  expect((broken as GrantError).retryable).toBe(false);
  expect((broken as GrantError).message).toBe(
    "the role's sample parameters are not valid: group: Invalid input: expected string, received number",
  );
});

test('every call is observed with its outcome, and retries are marked by their attempt', async () => {
  const { definition } = sample();
  const calls: ProviderCall[] = [];
  const registry = createProviderRegistry({
    env: { SAMPLE_TOKEN: 't' },
    definitions: [definition],
    observe: (call) => calls.push(call),
  });
  const provider = registry.get('sample');
  await provider?.grant(grantTarget({ config: { group: 'g' } }));
  await provider?.grant(grantTarget({ config: { group: 'flaky' }, attempt: 2 })).catch(() => {});
  await provider?.grant(grantTarget({ config: { group: 'gone' } })).catch(() => {});
  expect(calls.map(({ op, outcome, attempt, error }) => ({ op, outcome, attempt, error }))).toEqual([
    { op: 'grant', outcome: 'ok', attempt: 1, error: undefined },
    { op: 'grant', outcome: 'retryable', attempt: 2, error: 'socket hang up' },
    { op: 'grant', outcome: 'permanent', attempt: 1, error: 'group gone does not exist' },
  ]);
  for (const call of calls) expect(call.seconds).toBeGreaterThanOrEqual(0);
});
