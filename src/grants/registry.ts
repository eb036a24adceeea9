import { performance } from 'node:perf_hooks';
import type { z } from 'zod';
import { entraGroupProvider } from './entra/entra-group-provider.ts';
import { entraRoleProvider } from './entra/entra-role-provider.ts';
import {
  GrantError,
  type GrantProvider,
  type GrantTarget,
  type ProviderDefinition,
} from './grant-provider.ts';
import { noneProvider } from './none/none-provider.ts';
import { postgresProvider } from './postgres/postgres-provider.ts';
import { slackUsergroupProvider } from './slack-usergroup/slack-usergroup-provider.ts';
import { webhookProvider } from './webhook/webhook-provider.ts';

/** Every provider Elevate ships: a new provider is its folder plus one line here. */
export const PROVIDERS: ProviderDefinition[] = [
  noneProvider,
  postgresProvider,
  webhookProvider,
  entraGroupProvider,
  entraRoleProvider,
  slackUsergroupProvider,
];

/** One provider call as logs and metrics see it. */
export interface ProviderCall {
  provider: string;
  op: 'grant' | 'revoke' | 'extend' | 'check' | 'members';
  /** The activation the call serves; for reconciliation's reads, `role:<name>`. */
  activationId: string;
  attempt: number;
  outcome: 'ok' | 'retryable' | 'permanent';
  seconds: number;
  error?: string;
}

/**
 * The grant providers this process can use, by type, each with the schema of the per-role
 * parameters it takes in the policy file (`provider: { type, ... }`).
 */
export interface ProviderRegistry {
  /** The provider of this type, if it is switched on; every call is observed. */
  get(type: string): GrantProvider | undefined;
  /** Checks a role's provider parameters; returns problems as `field: message` lines. */
  validate(type: string, config: Record<string, unknown>): string[];
  /**
   * The provider's own checks of the environment and the target (dry-run), for parameters that
   * `validate` accepts; parameter problems are `validate`'s to report.
   */
  verify(type: string, config: Record<string, unknown>): Promise<string[]>;
  types(): string[];
  /** Closes every provider's connections (graceful shutdown). */
  close(): Promise<void>;
}

/**
 * Builds the registry from the environment: a provider whose variables are missing stays off,
 * and a role naming it is refused with the line that says what to set.
 */
export function createProviderRegistry(
  options: {
    env?: NodeJS.ProcessEnv;
    definitions?: ProviderDefinition[];
    observe?: (call: ProviderCall) => void;
  } = {},
): ProviderRegistry {
  // An empty variable is unset, as in config.ts, so no provider has to repeat that rule.
  const env = Object.fromEntries(
    Object.entries(options.env ?? process.env).filter(([, value]) => value !== ''),
  );
  const definitions = new Map((options.definitions ?? PROVIDERS).map((d) => [d.type, d]));
  const providers = new Map<string, GrantProvider | string>();
  for (const [type, definition] of definitions) {
    const created = definition.create(env);
    providers.set(
      type,
      typeof created === 'string'
        ? created
        : observed(parsed(created, definition.roleConfig), options.observe),
    );
  }

  function validate(type: string, config: Record<string, unknown>): string[] {
    const definition = definitions.get(type);
    if (!definition)
      return [`type: "${type}" is not a known provider (known: ${[...definitions.keys()].join(', ')})`];
    const switchedOff = providers.get(type);
    const problems = typeof switchedOff === 'string' ? [`type: ${switchedOff}`] : [];
    const result = definition.roleConfig.safeParse(config);
    if (!result.success) {
      problems.push(
        ...result.error.issues.map((issue) =>
          issue.code === 'unrecognized_keys'
            ? `${issue.keys.join(', ')}: not a parameter of the ${type} provider`
            : `${issue.path.join('.')}: ${issue.message}`,
        ),
      );
    }
    return problems;
  }

  return {
    get(type) {
      const provider = providers.get(type);
      return typeof provider === 'string' ? undefined : provider;
    },
    types: () => [...definitions.keys()],
    async close() {
      await Promise.all(
        [...providers.values()].map((p) => (typeof p === 'string' ? undefined : p.close?.())),
      );
    },
    validate,
    async verify(type, config) {
      const definition = definitions.get(type);
      if (!definition?.verify || validate(type, config).length > 0) return [];
      return definition.verify((definition.roleConfig as z.ZodType).parse(config), env);
    },
  };
}

/**
 * Hands the provider its role parameters as its schema parsed them (defaults, transforms), never
 * the raw stored object; parameters that no longer parse are a permanent failure naming why.
 */
function parsed(provider: GrantProvider, schema: z.ZodType): GrantProvider {
  const roleWithConfig = (role: GrantTarget['role']): GrantTarget['role'] => {
    const result = schema.safeParse(role.config);
    if (!result.success) {
      const why = result.error.issues
        .map((i) => `${i.path.join('.') || 'parameters'}: ${i.message}`)
        .join('; ');
      throw new GrantError(`the role's ${provider.type} parameters are not valid: ${why}`, {
        retryable: false,
      });
    }
    return { ...role, config: result.data as Record<string, unknown> };
  };
  const withConfig = (target: GrantTarget): GrantTarget => ({ ...target, role: roleWithConfig(target.role) });
  const { members, accountOf } = provider;
  return {
    type: provider.type,
    grant: async (t) => provider.grant(withConfig(t)),
    revoke: async (t) => provider.revoke(withConfig(t)),
    ...(provider.extend ? { extend: async (t: GrantTarget) => provider.extend?.(withConfig(t)) } : {}),
    ...(provider.close ? { close: () => provider.close?.() ?? Promise.resolve() } : {}),
    ...(provider.check
      ? { check: async (t: GrantTarget) => (await provider.check?.(withConfig(t))) ?? false }
      : {}),
    ...(members && accountOf
      ? {
          members: async (role: GrantTarget['role']) => members(roleWithConfig(role)),
          accountOf: async (role: GrantTarget['role'], principal: GrantTarget['principal']) =>
            accountOf(roleWithConfig(role), principal),
        }
      : {}),
  };
}

/** Wraps a provider so every call reports its outcome and duration. */
function observed(
  provider: GrantProvider,
  observe: ((call: ProviderCall) => void) | undefined,
): GrantProvider {
  if (!observe) return provider;
  const measure = async <T>(
    op: ProviderCall['op'],
    about: Pick<ProviderCall, 'activationId' | 'attempt'>,
    call: () => Promise<T>,
  ): Promise<T> => {
    const started = performance.now();
    const report = (outcome: ProviderCall['outcome'], error?: string) =>
      observe({
        provider: provider.type,
        op,
        ...about,
        outcome,
        seconds: (performance.now() - started) / 1000,
        error,
      });
    try {
      const result = await call();
      report('ok');
      return result;
    } catch (error) {
      const retryable = !(error instanceof GrantError) || error.retryable;
      report(retryable ? 'retryable' : 'permanent', error instanceof Error ? error.message : String(error));
      throw error;
    }
  };
  const wrap =
    <T>(op: ProviderCall['op'], call: (target: GrantTarget) => Promise<T>) =>
    (target: GrantTarget): Promise<T> =>
      measure(op, target, () => call(target));
  const { extend, check, members, accountOf } = provider;
  return {
    type: provider.type,
    grant: wrap('grant', (t) => provider.grant(t)),
    revoke: wrap('revoke', (t) => provider.revoke(t)),
    ...(extend ? { extend: wrap('extend', (t) => extend(t)) } : {}),
    ...(provider.close ? { close: () => provider.close?.() ?? Promise.resolve() } : {}),
    ...(check ? { check: wrap('check', (t) => check(t)) } : {}),
    ...(members && accountOf
      ? {
          // A listing serves a role, not an activation; accountOf is a lookup, not observed.
          members: (role: GrantTarget['role']) =>
            measure('members', { activationId: `role:${role.name}`, attempt: 1 }, () => members(role)),
          accountOf,
        }
      : {}),
  };
}
