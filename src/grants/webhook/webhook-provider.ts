import { z } from 'zod';
import {
  ENV_REFERENCE,
  GrantError,
  type GrantProvider,
  type GrantTarget,
  type ProviderDefinition,
  resolveEnv,
} from '../grant-provider.ts';
import { SIGNATURE_HEADER, signatureHeader } from './verify-signature.ts';

/**
 * The `webhook` provider: every grant and revoke is a signed JSON event POSTed to the role's URL;
 * the receiver does the real work. Wire format (README "Webhook provider"):
 *   Elevate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
 *   Idempotency-Key:   <activationId>:<grant|revoke>, the same on every retry of one event
 * 2xx is done; 408, 429 and 5xx (and timeouts, network errors) are retried; other answers are
 * permanent. A webhook cannot read the receiver's state, so there is no `check`.
 */

type EventType = 'grant' | 'revoke';

const TIMEOUT = /^(\d+)(ms|s)$/;
const DEFAULT_TIMEOUT_MS = 10_000;
const MIN_TIMEOUT_MS = 1_000;
/** Under the loop's in-flight lease (60 s), so a call never outlives the claim on its activation. */
const MAX_TIMEOUT_MS = 30_000;
/** A receiver's `Retry-After` is honoured up to this; beyond it the loop's own backoff decides. */
const MAX_RETRY_AFTER_MS = 3_600_000;
/** Shorter secrets are reported by `verify`: an HMAC key should be at least 256 random bits. */
const MIN_SECRET_LENGTH = 32;
const SNIPPET_BYTES = 2_048;
const SNIPPET_CHARS = 200;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

const roleConfig = z
  .object({
    /** `https://…`, or `env:NAME` when the URL itself carries a token. */
    url: z.string().superRefine((url, ctx) => {
      if (ENV_REFERENCE.test(url)) return;
      const problem = urlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: `"${url}" ${problem}` });
    }),
    /** The shared HMAC secret, always `env:NAME`. */
    secret: z.string().regex(ENV_REFERENCE, {
      message:
        'must be env:NAME (the variable holding the signing secret); secrets never sit in the policy file',
    }),
    /** How long one delivery may take, e.g. `10s` or `2500ms`; 1s to 30s, default 10s. */
    timeout: z
      .string()
      .refine((text) => timeoutMs(text) !== undefined, {
        message: 'use 1s to 30s, e.g. 10s or 2500ms',
      })
      .optional(),
  })
  .strict();

type WebhookConfig = z.output<typeof roleConfig>;

export const webhookProvider: ProviderDefinition<typeof roleConfig> = {
  type: 'webhook',
  roleConfig,
  // Everything the provider needs is named per role (`env:` references), so nothing global
  // switches it on: it is always available.
  create: (env) => createWebhookProvider(env),
  async verify(config, env) {
    const problems: string[] = [];
    const secretName = config.secret.slice('env:'.length);
    const secret = env[secretName];
    if (!secret) problems.push(`secret: environment variable ${secretName} is not set`);
    else if (secret.length < MIN_SECRET_LENGTH) {
      problems.push(
        `secret: the secret in ${secretName} is shorter than ${MIN_SECRET_LENGTH} characters; use e.g. \`openssl rand -hex 32\``,
      );
    }
    if (ENV_REFERENCE.test(config.url)) {
      const urlName = config.url.slice('env:'.length);
      const url = env[urlName];
      // The URL from the environment may carry a token: name the variable, never echo the value.
      if (!url) problems.push(`url: environment variable ${urlName} is not set`);
      else {
        const problem = urlProblem(url);
        if (problem) problems.push(`url: the URL in ${urlName} ${problem}`);
      }
    } else {
      const problem = urlProblem(config.url);
      if (problem) problems.push(`url: "${config.url}" ${problem}`);
    }
    // No probe event: a receiver would have to tell a probe from a real grant.
    return problems;
  },
};

function createWebhookProvider(env: NodeJS.ProcessEnv): GrantProvider {
  return {
    type: 'webhook',
    grant: (target) => deliver('grant', target, env),
    revoke: (target) => deliver('revoke', target, env),
  };
}

/** POSTs one signed event and maps the answer to success, a retryable or a permanent GrantError. */
async function deliver(type: EventType, target: GrantTarget, env: NodeJS.ProcessEnv): Promise<void> {
  const config = roleParams(target);
  const url = resolveUrl(config.url, env);
  const secretName = config.secret.slice('env:'.length);
  const secret = resolve(config.secret, 'secret', env);
  const limitMs = config.timeout === undefined ? DEFAULT_TIMEOUT_MS : (timeoutMs(config.timeout) ?? 0);
  // Only the host goes into messages: the path or query may carry a token.
  const where = `the webhook at ${url.host}`;

  const id = `${target.activationId}:${type}`;
  const sentAt = new Date();
  const body = JSON.stringify(eventBody(type, id, target, sentAt));
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': 'Elevate-Webhook/1',
        'Idempotency-Key': id,
        [SIGNATURE_HEADER]: signatureHeader(body, secret, Math.floor(sentAt.getTime() / 1000)),
      },
      body,
      // A signed event is not re-sent to wherever a redirect points (possibly plain http).
      redirect: 'manual',
      signal: AbortSignal.timeout(limitMs),
    });
  } catch (error) {
    throw failedToSend(error, where, limitMs);
  }
  if (response.ok) {
    await response.body?.cancel().catch(() => {});
    return;
  }
  const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  const snippet = await bodySnippet(response, secret);
  const said = `${where} answered ${status} to the ${type} event${snippet ? `: ${snippet}` : ''}`;
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
  if (response.status === 408 || response.status === 429 || response.status >= 500) {
    throw new GrantError(said, { retryable: true, retryAfterMs });
  }
  throw new GrantError(`${said}${hint(response.status, secretName)}`, { retryable: false });
}

/** The event's JSON: everything a receiver needs to grant or revoke, nothing chat-specific. */
function eventBody(type: EventType, id: string, target: GrantTarget, sentAt: Date) {
  const { activation } = target;
  return {
    type,
    id,
    activationId: target.activationId,
    kind: activation.kind,
    principal: { email: target.principal.email, accounts: target.principal.accounts },
    role: { name: target.role.name, scope: target.role.scope },
    startAt: activation.startAt.toISOString(),
    endAt: activation.endAt?.toISOString() ?? null,
    justification: activation.justification,
    ticket: activation.ticketNumber
      ? { system: activation.ticketSystem, number: activation.ticketNumber }
      : null,
    sentAt: sentAt.toISOString(),
  };
}

/** The role's parameters as stored (the target carries them unparsed). */
function roleParams(target: GrantTarget): WebhookConfig {
  const { type: _type, ...params } = target.role.config;
  const parsed = roleConfig.safeParse(params);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(
    (issue) => `${issue.path.join('.') || 'provider'}: ${issue.message}`,
  );
  throw new GrantError(`role ${target.role.name} has invalid webhook parameters (${problems.join('; ')})`, {
    retryable: false,
  });
}

function resolve(reference: string, field: string, env: NodeJS.ProcessEnv): string {
  try {
    return resolveEnv(reference, env);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new GrantError(`webhook ${field}: ${message}`, { retryable: false });
  }
}

function resolveUrl(reference: string, env: NodeJS.ProcessEnv): URL {
  const fromEnv = ENV_REFERENCE.test(reference);
  const text = fromEnv ? resolve(reference, 'url', env) : reference;
  const problem = urlProblem(text);
  if (problem) {
    const what = fromEnv ? `the URL in ${reference.slice('env:'.length)}` : `"${text}"`;
    throw new GrantError(`webhook url: ${what} ${problem}`, { retryable: false });
  }
  return new URL(text);
}

/** What is wrong with a webhook URL, as the end of a sentence; undefined when it is fine. */
function urlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'is not a URL';
  }
  if (url.username || url.password) {
    return 'carries a user name or password, which fetch refuses; put a token in the path or query of a URL in an env: variable';
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && LOOPBACK.has(url.hostname)) return undefined; // development receivers
  if (url.protocol === 'http:') {
    return 'must use https (plain http is allowed only for localhost and 127.0.0.1, for development)';
  }
  return 'must be an https URL';
}

/** Milliseconds in `10s` / `2500ms` when within the allowed range. */
function timeoutMs(text: string): number | undefined {
  const match = TIMEOUT.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * (match[2] === 's' ? 1_000 : 1);
  return ms >= MIN_TIMEOUT_MS && ms <= MAX_TIMEOUT_MS ? ms : undefined;
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds from now. */
function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) * 1_000 : Date.parse(trimmed) - Date.now();
  return Number.isFinite(ms) && ms >= 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : undefined;
}

/** The start of the receiver's answer on one line, for admins; the secret never appears. */
async function bodySnippet(response: Response, secret: string): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < SNIPPET_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // A body cut short (timeout, reset): the status says enough.
  } finally {
    reader.cancel().catch(() => {});
  }
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .split(secret)
    .join('***')
    .replace(/[\s\p{Cc}]+/gu, ' ')
    .trim();
  return text.length > SNIPPET_CHARS ? `${text.slice(0, SNIPPET_CHARS)}…` : text;
}

/** What an admin can do about a permanent answer. */
function hint(status: number, secretName: string): string {
  if (status === 401 || status === 403) {
    return ` (check that the receiver verifies Elevate-Signature with the secret in ${secretName})`;
  }
  if (status === 404 || status === 405 || status === 410) return ' (check the role’s webhook url)';
  if (status >= 300 && status < 400) return ' (redirects are not followed: set url to the final address)';
  return '';
}

/** A delivery that got no answer: timeouts and network errors are retryable, certificate problems are not. */
function failedToSend(error: unknown, where: string, limitMs: number): GrantError {
  if (error instanceof Error && error.name === 'TimeoutError') {
    return new GrantError(`${where} did not answer within ${limitMs / 1000}s`, {
      retryable: true,
      cause: error,
    });
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = (cause as { code?: unknown } | null)?.code;
  const detail = typeof code === 'string' ? code : cause instanceof Error ? cause.message : String(cause);
  if (typeof code === 'string' && /CERT|SELF_SIGNED|ALTNAME/.test(code)) {
    return new GrantError(`${where} presented a TLS certificate that was refused (${detail})`, {
      retryable: false,
      cause: error,
    });
  }
  return new GrantError(`could not reach ${where} (${detail})`, { retryable: true, cause: error });
}
