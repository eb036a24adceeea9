import type { GrantProvider } from '../grant-provider.ts';

/**
 * For roles enforced elsewhere: Elevate only records the activation (state and audit trail);
 * nothing outside changes, so grant and revoke always succeed.
 */
export function createNoneProvider(): GrantProvider {
  return {
    type: 'none',
    grant: async () => {},
    revoke: async () => {},
  };
}
