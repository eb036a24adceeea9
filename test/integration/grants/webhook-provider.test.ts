import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { GrantError, type GrantProvider, type GrantTarget } from '../../../src/grants/grant-provider.ts';
import { createProviderRegistry } from '../../../src/grants/registry.ts';
import { verifyElevateSignature } from '../../../src/grants/webhook/verify-signature.ts';
import { webhookProvider } from '../../../src/grants/webhook/webhook-provider.ts';
import { grantTarget, providerContract } from '../../support/provider-contract.ts';

const SECRET = 'whsec-test-0123456789abcdef0123456789abcdef';
const KNOWN_USERS = new Set(['dee@example.com']);

/** What the receiver saw of one request. */
interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  accepted: boolean;
}

/** A canned answer for the next request(s), before any verification. */
interface Scripted {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
}

/**
 * A webhook receiver as a customer would write one, with its own signature check (not the
 * provider's function): it dedupes by idempotency key and keeps how often each (principal, role)
 * holds the grant.
 */
function createReceiver() {
  const deliveries: Delivery[] = [];
  const script: Scripted[] = [];
  const processed = new Set<string>();
  const holds = new Map<string, number>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const accepted = signatureIsValid(raw, req.headers['elevate-signature'], SECRET);
      deliveries.push({ path: req.url ?? '', headers: req.headers, raw, accepted });
      const canned = script.shift();
      if (canned) {
        const answer = () => res.writeHead(canned.status, canned.headers).end(canned.body ?? '');
        if (canned.delayMs) setTimeout(answer, canned.delayMs).unref();
        else answer();
        return;
      }
      if (!accepted) return void res.writeHead(401).end('{"error":"bad signature"}');
      const event = JSON.parse(raw.toString('utf8'));
      if (!KNOWN_USERS.has(event.principal.email)) {
        return void res
          .writeHead(422)
          .end(JSON.stringify({ error: `unknown user ${event.principal.email}` }));
      }
      const key = req.headers['idempotency-key'] as string;
      if (!processed.has(key)) {
        processed.add(key);
        const who = `${event.principal.email}|${event.role.name}`;
        if (event.type === 'grant') holds.set(who, (holds.get(who) ?? 0) + 1);
        else holds.delete(who);
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    });
  });

  return {
    server,
    deliveries,
    script,
    holds: (target: GrantTarget) => holds.get(`${target.principal.email}|${target.role.name}`) ?? 0,
    reset() {
      deliveries.length = 0;
      script.length = 0;
      processed.clear();
      holds.clear();
    },
  };
}

/** Independent of verify-signature.ts: the exact header shape, the HMAC, five minutes either way. */
function signatureIsValid(raw: Buffer, header: string | string[] | undefined, secret: string): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(typeof header === 'string' ? header : '');
  if (!match?.[1] || !match[2]) return false;
  if (Math.abs(Date.now() / 1000 - Number(match[1])) > 300) return false;
  const expected = createHmac('sha256', secret)
    .update(Buffer.concat([Buffer.from(`${match[1]}.`), raw]))
    .digest('hex');
  return timingSafeEqual(Buffer.from(expected), Buffer.from(match[2]));
}

/** Our own signer for verify-signature tests: `t=<t>,v1=<hmac>`. */
function sign(body: string, secret: string, timestamp: number): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

const receiver = createReceiver();
let baseUrl = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  receiver.server.closeAllConnections();
  await new Promise((resolve) => receiver.server.close(resolve));
});

function providerFor(env: NodeJS.ProcessEnv = { WEBHOOK_SECRET: SECRET }): GrantProvider {
  const provider = webhookProvider.create(env);
  if (typeof provider === 'string') throw new Error(provider);
  return provider;
}

function target(config: Record<string, unknown> = {}, email?: string): GrantTarget {
  return grantTarget({
    email,
    roleName: 'payments-admin',
    config: { url: `${baseUrl}/hooks/elevate`, secret: 'env:WEBHOOK_SECRET', ...config },
  });
}

async function failure(call: Promise<void>): Promise<GrantError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GrantError);
  return error as GrantError;
}

providerContract('webhook', async () => {
  receiver.reset();
  const t = target();
  return {
    provider: providerFor(),
    target: t,
    isGranted: async () => receiver.holds(t) > 0,
    grantCount: async () => receiver.holds(t),
    unknown: { target: target({}, 'ghost@example.com'), named: 'ghost@example.com' },
    failNextTransiently: () => {
      receiver.script.push({ status: 503, body: 'maintenance' });
    },
  };
});

describe('webhook: wire format', () => {
  beforeEach(() => receiver.reset());

  test('a grant is a signed JSON event with an idempotency key and ISO dates', async () => {
    const t = target();
    await providerFor().grant(t);
    const [delivery] = receiver.deliveries;
    expect(delivery?.accepted).toBe(true);
    expect(delivery?.path).toBe('/hooks/elevate');
    expect(delivery?.headers['content-type']).toBe('application/json');
    expect(delivery?.headers['user-agent']).toBe('Elevate-Webhook/1');
    expect(delivery?.headers['idempotency-key']).toBe(`${t.activationId}:grant`);
    const event = JSON.parse(delivery?.raw.toString('utf8') ?? '');
    expect(event).toEqual({
      type: 'grant',
      id: `${t.activationId}:grant`,
      activationId: t.activationId,
      kind: 'activation',
      principal: { email: 'dee@example.com', accounts: {} },
      role: { name: 'payments-admin', scope: 'test/scope' },
      startAt: t.activation.startAt.toISOString(),
      endAt: t.activation.endAt?.toISOString(),
      justification: 'contract test',
      ticket: { system: 'ServiceNow', number: 'INC42' },
      sentAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
  });

  test('a revoke has its own key; a permanent assignment has no end and no ticket is null', async () => {
    const t = grantTarget({
      endAt: null,
      accounts: { webhook: 'dee-ops' },
      config: { url: baseUrl, secret: 'env:WEBHOOK_SECRET' },
    });
    t.activation.ticketNumber = null;
    await providerFor().revoke(t);
    const [delivery] = receiver.deliveries;
    expect(delivery?.headers['idempotency-key']).toBe(`${t.activationId}:revoke`);
    const event = JSON.parse(delivery?.raw.toString('utf8') ?? '');
    expect(event).toMatchObject({
      type: 'revoke',
      id: `${t.activationId}:revoke`,
      endAt: null,
      ticket: null,
      principal: { accounts: { webhook: 'dee-ops' } },
    });
  });

  test('the signature is real: a tampered body or a wrong secret is refused by the receiver', async () => {
    await providerFor().grant(target());
    const [sent] = receiver.deliveries;
    if (!sent) throw new Error('nothing was delivered');
    const tampered = sent.raw.toString('utf8').replace('dee@example.com', 'eve@example.com');
    const replay = await fetch(`${baseUrl}/hooks/elevate`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'Elevate-Signature': String(sent.headers['elevate-signature']),
        'Idempotency-Key': 'tampered:grant',
      },
      body: tampered,
    });
    expect(replay.status).toBe(401);
    expect(receiver.deliveries.at(-1)?.accepted).toBe(false);

    const wrongSecret = 'not-the-shared-secret-0123456789abcdef';
    const error = await failure(providerFor({ WEBHOOK_SECRET: wrongSecret }).grant(target()));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('401');
    expect(error.message).toContain('WEBHOOK_SECRET');
    expect(error.message).not.toContain(wrongSecret);
    expect(receiver.deliveries.at(-1)?.accepted).toBe(false);
  });

  test('a retry of the same event carries the same idempotency key, freshly signed', async () => {
    const t = target();
    receiver.script.push({ status: 500, body: 'oops' });
    const provider = providerFor();
    expect((await failure(provider.grant(t))).retryable).toBe(true);
    await provider.grant({ ...t, attempt: 2 });
    const keys = receiver.deliveries.map((d) => d.headers['idempotency-key']);
    expect(keys).toEqual([`${t.activationId}:grant`, `${t.activationId}:grant`]);
    const ids = receiver.deliveries.map((d) => JSON.parse(d.raw.toString('utf8')).id);
    expect(ids).toEqual(keys);
    expect(receiver.deliveries.every((d) => d.accepted)).toBe(true);
    expect(receiver.holds(t)).toBe(1);
  });

  test('a URL from the environment works, and its token never shows in a message', async () => {
    const env = { WEBHOOK_SECRET: SECRET, WEBHOOK_URL: `${baseUrl}/hooks/t0ken-5ecret?key=abc123` };
    const t = target({ url: 'env:WEBHOOK_URL' });
    await providerFor(env).grant(t);
    expect(receiver.deliveries[0]?.path).toBe('/hooks/t0ken-5ecret?key=abc123');
    receiver.script.push({ status: 404, body: 'no such hook' });
    const error = await failure(providerFor(env).grant(t));
    expect(error.message).toContain('404');
    expect(error.message).not.toContain('t0ken-5ecret');
    expect(error.message).not.toContain('abc123');
  });
});

describe('webhook: answers and failures', () => {
  beforeEach(() => receiver.reset());

  test('a 4xx is permanent, with the status and a snippet of the body, never the secret', async () => {
    receiver.script.push({
      status: 403,
      body: `{"error":"role payments-admin is not mapped", "echo": "${SECRET}"}\n${'x'.repeat(5_000)}`,
    });
    const error = await failure(providerFor().grant(target()));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('403');
    expect(error.message).toContain('role payments-admin is not mapped');
    expect(error.message).toContain(`127.0.0.1:`);
    expect(error.message).not.toContain(SECRET);
    expect(error.message.length).toBeLessThan(500);
  });

  test('a 500 is retryable', async () => {
    receiver.script.push({ status: 500, body: 'internal error' });
    const error = await failure(providerFor().grant(target()));
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('500');
    expect(error.message).toContain('internal error');
  });

  test('a 429 is retryable and honours Retry-After', async () => {
    receiver.script.push({ status: 429, headers: { 'Retry-After': '7' }, body: 'slow down' });
    const error = await failure(providerFor().grant(target()));
    expect(error.retryable).toBe(true);
    expect(error.retryAfterMs).toBe(7_000);
  });

  test('a 408 is retryable', async () => {
    receiver.script.push({ status: 408 });
    expect((await failure(providerFor().revoke(target()))).retryable).toBe(true);
  });

  test('a redirect is not followed and is permanent', async () => {
    receiver.script.push({ status: 301, headers: { Location: 'http://example.com/elsewhere' } });
    const error = await failure(providerFor().grant(target()));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('301');
    expect(receiver.deliveries).toHaveLength(1);
  });

  test('a receiver slower than the timeout is retryable', async () => {
    receiver.script.push({ status: 200, delayMs: 3_000 });
    const started = Date.now();
    const error = await failure(providerFor().grant(target({ timeout: '1s' })));
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('did not answer within 1s');
  });

  test('an unreachable receiver is retryable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await failure(providerFor().grant(target({ url: `http://127.0.0.1:${port}/` })));
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('ECONNREFUSED');
  });

  test('an unset secret variable is permanent and named', async () => {
    const error = await failure(providerFor({}).grant(target()));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('WEBHOOK_SECRET is not set');
    expect(receiver.deliveries).toHaveLength(0);
  });
});

describe('webhook: verifyElevateSignature', () => {
  const body = '{"type":"grant","id":"a:grant"}';
  const now = Math.floor(Date.now() / 1000);

  test('accepts a good signature, in a Headers object or a plain (any-case) record', () => {
    const header = sign(body, SECRET, now);
    expect(verifyElevateSignature(body, { 'elevate-signature': header }, SECRET)).toBe(true);
    expect(verifyElevateSignature(Buffer.from(body), { 'Elevate-Signature': header }, SECRET)).toBe(true);
    expect(verifyElevateSignature(body, new Headers({ 'Elevate-Signature': header }), SECRET)).toBe(true);
  });

  test('rejects a timestamp older or newer than the tolerance, accepts one within it', () => {
    const clock = new Date(now * 1000);
    const at = (t: number, tolerance?: number) =>
      verifyElevateSignature(body, { 'elevate-signature': sign(body, SECRET, t) }, SECRET, tolerance, clock);
    expect(at(now - 301)).toBe(false);
    expect(at(now + 301)).toBe(false);
    expect(at(now - 300)).toBe(true);
    expect(at(now + 300)).toBe(true);
    expect(at(now - 61, 60)).toBe(false);
    // Against the real clock, with the default tolerance.
    const real = (t: number) =>
      verifyElevateSignature(body, { 'elevate-signature': sign(body, SECRET, t) }, SECRET);
    expect(real(now - 600)).toBe(false);
    expect(real(now + 600)).toBe(false);
  });

  test('rejects a wrong secret, a tampered body, a missing or malformed header', () => {
    const header = sign(body, SECRET, now);
    expect(verifyElevateSignature(body, { 'elevate-signature': header }, 'other-secret')).toBe(false);
    expect(verifyElevateSignature(`${body} `, { 'elevate-signature': header }, SECRET)).toBe(false);
    expect(verifyElevateSignature(body, {}, SECRET)).toBe(false);
    expect(verifyElevateSignature(body, { 'elevate-signature': 'v1=abc' }, SECRET)).toBe(false);
    expect(verifyElevateSignature(body, { 'elevate-signature': `t=${now}` }, SECRET)).toBe(false);
    const twoTimes = `t=${now},${header}`;
    expect(verifyElevateSignature(body, { 'elevate-signature': twoTimes }, SECRET)).toBe(false);
  });

  test('accepts any one of several v1 entries (secret rotation)', () => {
    const good = sign(body, SECRET, now).split(',')[1];
    const other = sign(body, 'old-secret', now).split(',')[1];
    const header = `t=${now},${other},${good}`;
    expect(verifyElevateSignature(body, { 'elevate-signature': header }, SECRET)).toBe(true);
  });
});

describe('webhook: parameters and verify', () => {
  const registry = createProviderRegistry({
    env: { WEBHOOK_SECRET: SECRET },
    definitions: [webhookProvider],
  });
  const verify = (config: Record<string, unknown>, env: NodeJS.ProcessEnv = { WEBHOOK_SECRET: SECRET }) =>
    webhookProvider.verify?.(webhookProvider.roleConfig.parse(config), env);

  test('the parameters are strict: an env: secret, a URL, a bounded timeout', () => {
    expect(registry.validate('webhook', { url: 'https://hooks.example.com/e', secret: 'env:S' })).toEqual([]);
    expect(registry.validate('webhook', { url: 'env:HOOK_URL', secret: 'env:S', timeout: '2500ms' })).toEqual(
      [],
    );
    expect(registry.validate('webhook', { url: 'https://h.example.com', secret: 'hunter2' })).toEqual([
      expect.stringMatching(/^secret: must be env:NAME/),
    ]);
    expect(
      registry.validate('webhook', { url: 'https://h.example.com', secret: 'env:S', timeout: '5m' }),
    ).toEqual([expect.stringMatching(/^timeout: use 1s to 30s/)]);
    expect(registry.validate('webhook', { url: 'https://h.example.com', secret: 'env:S', x: 1 })).toEqual([
      'x: not a parameter of the webhook provider',
    ]);
    expect(registry.validate('webhook', { url: 'http://hooks.example.com', secret: 'env:S' })).toEqual([
      expect.stringMatching(/^url: .* must use https/),
    ]);
    expect(registry.validate('webhook', { secret: 'env:S' })).toHaveLength(1);
  });

  test('create always returns the provider: nothing global switches it on', () => {
    expect(typeof webhookProvider.create({})).not.toBe('string');
    expect(registry.get('webhook')).toBeDefined();
  });

  test('verify is clean for a good role, and never sends a probe', async () => {
    receiver.reset();
    expect(await verify({ url: `${baseUrl}/hooks`, secret: 'env:WEBHOOK_SECRET' })).toEqual([]);
    expect(receiver.deliveries).toHaveLength(0);
  });

  test('verify names an unset secret variable, a short secret and an unset URL variable', async () => {
    expect(await verify({ url: 'env:HOOK_URL', secret: 'env:WEBHOOK_SECRET' }, {})).toEqual([
      'secret: environment variable WEBHOOK_SECRET is not set',
      'url: environment variable HOOK_URL is not set',
    ]);
    expect(await verify({ url: 'https://h.example.com', secret: 'env:S' }, { S: 'short' })).toEqual([
      expect.stringMatching(/^secret: the secret in S is shorter than 32 characters/),
    ]);
  });

  test('verify refuses plain http except on localhost, without echoing a URL from the environment', async () => {
    const env = { WEBHOOK_SECRET: SECRET, HOOK_URL: 'http://hooks.example.com/t0ken' };
    const fromEnv = await verify({ url: 'env:HOOK_URL', secret: 'env:WEBHOOK_SECRET' }, env);
    expect(fromEnv).toEqual([
      'url: the URL in HOOK_URL must use https (plain http is allowed only for localhost and 127.0.0.1, for development)',
    ]);
    // A literal http URL is refused by the schema already; verify says so too when called directly.
    const literal = await webhookProvider.verify?.(
      { url: 'http://hooks.example.com/e', secret: 'env:WEBHOOK_SECRET' },
      env,
    );
    expect(literal).toEqual([expect.stringMatching(/^url: "http:\/\/hooks.example.com\/e" must use https/)]);
    expect(await verify({ url: 'http://localhost:8080/e', secret: 'env:WEBHOOK_SECRET' })).toEqual([]);
    expect(await verify({ url: 'http://127.0.0.1:8080/e', secret: 'env:WEBHOOK_SECRET' })).toEqual([]);
  });
});
