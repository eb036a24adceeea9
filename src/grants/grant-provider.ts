/**
 * The port every grant provider implements: really grant and revoke one kind of privilege.
 * Both calls are idempotent (granting twice grants once; revoking what is not granted succeeds),
 * because the loop repeats a call whose outcome a crash left unknown.
 */
export interface GrantProvider {
  readonly type: string;
  grant(target: GrantTarget): Promise<void>;
  revoke(target: GrantTarget): Promise<void>;
  /** The real state in the target system, for providers that can read it. */
  check?(target: GrantTarget): Promise<boolean>;
}

/** Who gets what: everything a provider may need, and nothing chat-specific. */
export interface GrantTarget {
  activationId: string;
  principal: { id: string; email: string };
  role: { name: string; scope: string; config: Record<string, unknown> };
  endAt: Date | null;
}

/**
 * A provider failure. `retryable` failures (network, throttling, 5xx) are tried again with
 * backoff; permanent ones (unknown account, forbidden) stop and are shown to admins.
 */
export class GrantError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'GrantError';
    this.retryable = options.retryable;
  }
}
