import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { start } from '../../src/main.ts';
import { databaseEnv, openTestDatabase, type TestDatabase } from '../support/db.ts';

// What `serve` does about step-up at start: mount the two routes when configured, and warn about
// roles that require MFA when it is not.
let dir: string;
let database: TestDatabase | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'elevate-step-up-'));
  if (process.env.DATABASE_URL) database = await openTestDatabase();
  await writeFile(
    join(dir, 'policy.yaml'),
    `roles:
  - name: prod-db
    provider: { type: none }
    settings: { requireMfa: true }
  - name: prod-net
    provider: { type: none }
    settings: { requireApproval: true, requireMfaToApprove: true }
`,
  );
});
afterAll(async () => {
  await database?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Starts what `serve` starts with these variables; returns its log lines and base URL. */
async function serve(env: Record<string, string>) {
  const lines: string[] = [];
  const log = createLogger('info', { write: (line: string) => lines.push(line) });
  const config = loadConfig({
    PORT: '0',
    ELEVATE_POLICY_FILE: join(dir, 'policy.yaml'),
    ...databaseEnv(database, dir),
    ...env,
  });
  const app = await start(config, log);
  return {
    app,
    base: `http://127.0.0.1:${app.port}`,
    messages: () => lines.map((l) => JSON.parse(l).msg as string),
  };
}

test('without step-up configured: a warning names the roles, and the routes are not mounted', async () => {
  const { app, base, messages } = await serve({});
  try {
    expect(messages()).toContain(
      'roles prod-db, prod-net require MFA, but step-up MFA is not configured (PUBLIC_URL, OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET): their requests and decisions are refused',
    );
    expect((await fetch(`${base}/auth/callback`)).status).toBe(404);
  } finally {
    await app.stop();
  }
}, 60_000);

test('with step-up configured: the routes answer with plain pages, even while the provider is down', async () => {
  const { app, base, messages } = await serve({
    PUBLIC_URL: 'http://127.0.0.1:1',
    OIDC_ISSUER: 'http://127.0.0.1:9/unreachable', // discovery happens on first use, not at start
    OIDC_CLIENT_ID: 'elevate',
    OIDC_CLIENT_SECRET: 'secret',
  });
  try {
    expect(messages()).toContain(
      'step-up MFA on (http://127.0.0.1:9/unreachable; redirect URI http://127.0.0.1:1/auth/callback)',
    );
    const callback = await fetch(`${base}/auth/callback?code=x&state=forged`);
    expect(callback.status).toBe(400);
    expect(callback.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await callback.text()).toContain('This sign-in was not started by Elevate');
    const link = await fetch(`${base}/auth/step-up/${'a'.repeat(43)}`);
    expect(link.status).toBe(503);
    expect(await link.text()).toContain('The identity provider cannot be reached right now');
  } finally {
    await app.stop();
  }
}, 60_000);
