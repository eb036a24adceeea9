import { describe, expect, test } from 'vitest';
import { GrantError, type GrantProvider, type GrantTarget } from '../../src/grants/grant-provider.ts';

/** A grant target with sensible defaults; tests override what their provider reads. */
export function grantTarget(overrides: {
  email?: string;
  accounts?: Record<string, string>;
  identities?: GrantTarget['principal']['identities'];
  roleName?: string;
  config?: Record<string, unknown>;
  endAt?: Date | null;
  attempt?: number;
}): GrantTarget {
  const now = Date.now();
  return {
    activationId: crypto.randomUUID(),
    attempt: overrides.attempt ?? 1,
    principal: {
      id: crypto.randomUUID(),
      email: overrides.email ?? 'dee@example.com',
      accounts: overrides.accounts ?? {},
      identities: overrides.identities ?? [],
    },
    role: {
      name: overrides.roleName ?? 'contract-role',
      scope: 'test/scope',
      config: overrides.config ?? {},
    },
    activation: {
      kind: 'activation',
      startAt: new Date(now),
      endAt: overrides.endAt === undefined ? new Date(now + 3_600_000) : overrides.endAt,
      justification: 'contract test',
      ticketSystem: 'ServiceNow',
      ticketNumber: 'INC42',
    },
  };
}

/** What a provider's test gives the shared contract. */
export interface ContractSetup {
  provider: GrantProvider;
  /** A target the provider can really grant (an account that exists in the target system). */
  target: GrantTarget;
  /**
   * Reads the real state in the target system, independently of `provider.check` (e.g. a query
   * on the target database, the fake service's own record). Omit only for `none`.
   */
  isGranted?: () => Promise<boolean>;
  /** How many times the target system holds the grant (for "grant twice = granted once"). */
  grantCount?: () => Promise<number>;
  /** A target that must fail permanently (an account that does not exist), and the text the message must name. */
  unknown?: { target: GrantTarget; named: string };
  /** Makes the target system fail the next call transiently (5xx, 429, timeout). */
  failNextTransiently?: () => void | Promise<void>;
}

/**
 * The contract every grant provider passes (STYLE.md): idempotent grant and revoke, revoke of
 * nothing is fine, `check` tells the real state, and failures are typed retryable or permanent.
 */
export function providerContract(name: string, setup: () => Promise<ContractSetup>): void {
  describe(`${name}: grant provider contract`, () => {
    test('grant twice = granted once', async () => {
      const s = await setup();
      await s.provider.grant(s.target);
      await s.provider.grant(s.target);
      if (s.isGranted) expect(await s.isGranted()).toBe(true);
      if (s.grantCount) expect(await s.grantCount()).toBe(1);
      await s.provider.revoke(s.target);
    });

    test('revoke twice is fine, and the grant is gone', async () => {
      const s = await setup();
      await s.provider.grant(s.target);
      await s.provider.revoke(s.target);
      await s.provider.revoke(s.target);
      if (s.isGranted) expect(await s.isGranted()).toBe(false);
    });

    test('revoking what was never granted is fine', async () => {
      const s = await setup();
      await s.provider.revoke(s.target);
      if (s.isGranted) expect(await s.isGranted()).toBe(false);
    });

    test('check reports the real state', async () => {
      const s = await setup();
      if (!s.provider.check) return; // a provider that cannot read its target has no check
      expect(await s.provider.check(s.target)).toBe(false);
      await s.provider.grant(s.target);
      expect(await s.provider.check(s.target)).toBe(true);
      await s.provider.revoke(s.target);
      expect(await s.provider.check(s.target)).toBe(false);
    });

    test('members lists a holder by the account accountOf names; accounts[type] alone revokes it', async () => {
      const s = await setup();
      if (!s.provider.members || !s.provider.accountOf) return; // a provider that cannot list its target
      const { role, principal } = s.target;
      const account = await s.provider.accountOf(role, principal);
      expect(await s.provider.members(role)).not.toContain(account);
      await s.provider.grant(s.target);
      expect(await s.provider.members(role)).toContain(account);
      // Reconciliation knows an unmanaged holder only by account: a stand-in principal names it.
      const standIn = {
        id: crypto.randomUUID(),
        email: account,
        accounts: { [s.provider.type]: account },
        identities: [],
      };
      await s.provider.revoke({ ...s.target, principal: standIn });
      expect(await s.provider.members(role)).not.toContain(account);
      if (s.isGranted) expect(await s.isGranted()).toBe(false);
    });

    test('an unknown account fails permanently with a message naming it', async () => {
      const s = await setup();
      if (!s.unknown) return;
      const error = await s.provider.grant(s.unknown.target).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GrantError);
      expect((error as GrantError).retryable).toBe(false);
      expect((error as GrantError).message).toContain(s.unknown.named);
    });

    test('a transient failure is retryable, and the retry succeeds', async () => {
      const s = await setup();
      if (!s.failNextTransiently) return;
      await s.failNextTransiently();
      const error = await s.provider.grant(s.target).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GrantError);
      expect((error as GrantError).retryable).toBe(true);
      await s.provider.grant(s.target);
      if (s.isGranted) expect(await s.isGranted()).toBe(true);
      await s.provider.revoke(s.target);
    });
  });
}
