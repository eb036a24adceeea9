import { z } from 'zod';
import type { ProviderDefinition } from '../grant-provider.ts';

/**
 * For roles enforced elsewhere: Elevate only records the activation (state and audit trail);
 * nothing outside changes, so grant and revoke always succeed.
 */
export const noneProvider: ProviderDefinition = {
  type: 'none',
  roleConfig: z.object({}).strict(),
  create: () => ({
    type: 'none',
    grant: async () => {},
    revoke: async () => {},
  }),
};
