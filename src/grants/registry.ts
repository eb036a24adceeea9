import { z } from 'zod';
import type { GrantProvider } from './grant-provider.ts';
import { createNoneProvider } from './none/none-provider.ts';

/**
 * The grant providers this process can use, by type, each with the schema of the per-role
 * parameters it takes in the policy file (`provider: { type, ... }`).
 */
export interface ProviderRegistry {
  get(type: string): GrantProvider | undefined;
  /** Checks a role's provider parameters; returns problems as `field: message` lines. */
  validate(type: string, config: Record<string, unknown>): string[];
  types(): string[];
}

interface Entry {
  provider: GrantProvider;
  config: z.ZodType;
}

/** Builds the registry; a new provider is one line here plus its folder. */
export function createProviderRegistry(extra: Entry[] = []): ProviderRegistry {
  const entries = new Map<string, Entry>();
  for (const entry of [{ provider: createNoneProvider(), config: z.object({}).strict() }, ...extra]) {
    entries.set(entry.provider.type, entry);
  }
  return {
    get: (type) => entries.get(type)?.provider,
    types: () => [...entries.keys()],
    validate(type, config) {
      const entry = entries.get(type);
      if (!entry)
        return [`type: "${type}" is not a known provider (known: ${[...entries.keys()].join(', ')})`];
      const result = entry.config.safeParse(config);
      return result.success
        ? []
        : result.error.issues.map((issue) =>
            issue.code === 'unrecognized_keys'
              ? `${issue.keys.join(', ')}: not a parameter of the ${type} provider`
              : `${issue.path.join('.')}: ${issue.message}`,
          );
    },
  };
}
