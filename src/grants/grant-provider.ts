import type { z } from 'zod';

/**
 * The port every grant provider implements: really grant and revoke one kind of privilege.
 * Both calls are idempotent (granting twice grants once; revoking what is not granted succeeds),
 * because the loop repeats a call whose outcome a crash left unknown.
 */
export interface GrantProvider {
  readonly type: string;
  grant(target: GrantTarget): Promise<void>;
  revoke(target: GrantTarget): Promise<void>;
  /**
   * Moves the end of an active grant to `target.activation.endAt` (an extension). Providers whose
   * grants end by themselves in the target (time-bound assignments) must implement it.
   */
  extend?(target: GrantTarget): Promise<void>;
  /** Lets go of connections at shutdown, for providers that hold any. */
  close?(): Promise<void>;
  /** The real state in the target system, for providers that can read it. */
  check?(target: GrantTarget): Promise<boolean>;
  /**
   * Reconciliation, for providers that can list the target (both or neither): `members` lists
   * every account that holds the role's grant now (direct holders, as the target names them: a
   * login, an object id, a Slack user id); `accountOf` names the account a principal holds it as.
   */
  members?(role: GrantTarget['role']): Promise<string[]>;
  accountOf?(role: GrantTarget['role'], principal: GrantTarget['principal']): Promise<string>;
}

/** Who gets what: everything a provider may need, and nothing chat-specific. */
export interface GrantTarget {
  activationId: string;
  /** 1 for the first call of this grant or revoke, more for retries. */
  attempt: number;
  principal: {
    id: string;
    email: string;
    /**
     * Account names per provider type from the policy (`principals[].accounts`), e.g. `{ postgres: 'carol' }`.
     * Every provider takes `accounts[<its type>]` as the account itself, with no lookup: that is how
     * reconciliation revokes a holder it only knows by account.
     */
    accounts: Record<string, string>;
    /** Chat identities: a Teams identity's externalId is the Entra (AAD) object id. */
    identities: { platform: 'slack' | 'teams'; tenant: string; externalId: string }[];
  };
  role: { name: string; scope: string; config: Record<string, unknown> };
  activation: {
    kind: 'activation' | 'assignment' | 'extension';
    startAt: Date;
    /** When access ends; null for a permanent assignment. */
    endAt: Date | null;
    justification: string;
    ticketSystem: string | null;
    ticketNumber: string | null;
  };
}

/**
 * A provider failure. `retryable` failures (network, throttling, 5xx) are tried again with
 * backoff; permanent ones (unknown account, forbidden) stop and are shown to admins, so the
 * message must say what an admin can fix.
 */
export class GrantError extends Error {
  readonly retryable: boolean;
  /** The target's own word on when to try again (HTTP `Retry-After`), if it gave one. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { retryable: boolean; retryAfterMs?: number; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'GrantError';
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** What a provider folder exports: its type, its per-role parameters and how it starts. */
export interface ProviderDefinition<C extends z.ZodType = z.ZodType> {
  type: string;
  /** The role's `provider: { type, … }` parameters (without `type`), as a strict schema. */
  roleConfig: C;
  /**
   * Builds the provider from the environment, or returns the one line saying which variables
   * switch it on when they are missing.
   */
  create(env: NodeJS.ProcessEnv): GrantProvider | string;
  /**
   * Checks one role's parameters against the environment and, where it can, the target itself
   * (for `apply --dry-run`); returns problems, one line each.
   */
  verify?(config: z.output<C>, env: NodeJS.ProcessEnv): Promise<string[]>;
}

/** Reads an `env:NAME` reference from a role's parameters; secrets never sit in the policy file. */
export function resolveEnv(reference: string, env: NodeJS.ProcessEnv): string {
  if (!ENV_REFERENCE.test(reference)) {
    throw new GrantError(`"${reference}" must be env:NAME (secrets never sit in the policy file)`, {
      retryable: false,
    });
  }
  const name = reference.slice('env:'.length);
  const value = env[name];
  if (!value) throw new GrantError(`environment variable ${name} is not set`, { retryable: false });
  return value;
}

/** The schema of an `env:NAME` reference. */
export const ENV_REFERENCE = /^env:[A-Za-z_][A-Za-z0-9_]*$/;
