import type { RateLimiter } from './rate-limit.ts';

/** A Teams member as the connector describes them (`GET …/members/{id}`). */
export interface TeamsMember {
  id: string;
  name?: string;
  aadObjectId?: string;
  email?: string;
  userPrincipalName?: string;
  tenantId?: string;
}

/** A connector call that failed; `retryAfterMs` when the service said when to come back. */
export class ConnectorError extends Error {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, status: number, retryAfterMs?: number) {
    super(message);
    this.name = 'ConnectorError';
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Answers Teams asks us to back off from (throttled, precondition race, gateway trouble). */
const RETRYABLE = new Set([429, 412, 502, 504]);
/** In-process attempts per call; longer waits go back to the outbox, which reschedules. */
const ATTEMPTS = 3;
const MAX_INLINE_WAIT_MS = 5_000;

/**
 * The Bot Framework connector (`{serviceUrl}/v3/conversations/…`), the bot's one way out to Teams.
 * Every message goes through the per-conversation rate limiter and retries 429/412/502/504 with
 * exponential backoff and full jitter (Retry-After first); inbound activities go through the Teams
 * SDK, outbound through this one small client so that every send shares those rules.
 */
export function createConnector(deps: {
  /** The bearer token for the connector; undefined when running unauthenticated (development). */
  token: () => Promise<string | undefined>;
  limiter: RateLimiter;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}) {
  const random = deps.random ?? Math.random;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  /**
   * One connector request with its retries. `conversation` set: a message send, which waits for the
   * conversation's rate limit before each attempt, and holds the conversation when told to back off.
   */
  async function call<T>(
    method: string,
    serviceUrl: string,
    path: string,
    body?: unknown,
    conversation?: string,
  ): Promise<T> {
    const url = `${serviceUrl.replace(/\/$/, '')}${path}`;
    for (let attempt = 1; ; attempt++) {
      if (conversation) await deps.limiter.acquire(conversation);
      const token = await deps.token();
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: {
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(15_000),
        });
      } catch (error) {
        if (attempt >= ATTEMPTS)
          throw new ConnectorError(`Teams did not answer: ${(error as Error).message}`, 0);
        await sleep(backoff(attempt, undefined));
        continue;
      }
      const text = await response.text();
      if (response.ok) return (text ? JSON.parse(text) : {}) as T;
      const retryAfterMs = retryAfter(response.headers.get('retry-after'));
      const retryable = RETRYABLE.has(response.status);
      const wait = backoff(attempt, retryAfterMs);
      if (retryable && conversation) deps.limiter.pause(conversation, wait);
      if (!retryable || attempt >= ATTEMPTS || wait > MAX_INLINE_WAIT_MS) {
        throw new ConnectorError(
          `Teams answered ${response.status} to ${method} ${path.split('?')[0]}`,
          response.status,
          retryable ? wait : undefined,
        );
      }
      await sleep(wait);
    }
  }

  /** Exponential backoff with full jitter, never shorter than the service's Retry-After. */
  function backoff(attempt: number, retryAfterMs: number | undefined): number {
    const exp = 250 * 2 ** (attempt - 1);
    const jittered = Math.round(exp / 2 + random() * exp);
    return Math.max(jittered, retryAfterMs ?? 0);
  }

  return {
    /** Posts a message to a conversation; the activity id is what later updates need. */
    async send(serviceUrl: string, conversationId: string, activity: object): Promise<string> {
      const posted = await call<{ id?: string }>(
        'POST',
        serviceUrl,
        `/v3/conversations/${conversationId}/activities`,
        activity,
        conversationId,
      );
      return posted.id ?? '';
    },
    /** Replaces a message we posted (a card updated in place). */
    async update(serviceUrl: string, conversationId: string, activityId: string, activity: object) {
      await call(
        'PUT',
        serviceUrl,
        `/v3/conversations/${conversationId}/activities/${activityId}`,
        { ...activity, id: activityId },
        conversationId,
      );
    },
    /** Opens (or finds) the 1:1 chat between the bot and a user; returns its conversation id. */
    async createPersonalConversation(
      serviceUrl: string,
      input: { botId: string; userId: string; tenantId: string },
    ): Promise<string> {
      const created = await call<{ id?: string }>('POST', serviceUrl, '/v3/conversations', {
        isGroup: false,
        bot: { id: input.botId },
        members: [{ id: input.userId }],
        tenantId: input.tenantId,
        channelData: { tenant: { id: input.tenantId } },
      });
      if (!created.id) throw new ConnectorError('Teams created a conversation without an id', 200);
      return created.id;
    },
    /** One member of a conversation, with the email Teams vouches for. */
    member(serviceUrl: string, conversationId: string, userId: string): Promise<TeamsMember> {
      return call(
        'GET',
        serviceUrl,
        `/v3/conversations/${conversationId}/members/${encodeURIComponent(userId)}`,
      );
    },
    /** Every member of a conversation (a team's roster when installed in a team). */
    members(serviceUrl: string, conversationId: string): Promise<TeamsMember[]> {
      return call('GET', serviceUrl, `/v3/conversations/${conversationId}/members`);
    },
  };
}

/** The connector client's interface. */
export type Connector = ReturnType<typeof createConnector>;

/** Retry-After as milliseconds: seconds, or an HTTP date. */
function retryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
