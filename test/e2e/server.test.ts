import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createDatabaseReadiness,
  createHttpServer,
  type HttpServer,
  sendJson,
} from '../../src/http/server.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { databaseEnv, openTestDatabase, type TestDatabase } from '../support/db.ts';

const BIN = new URL('../../bin/elevate.js', import.meta.url).pathname;

/** A port nobody listens on right now (the child cannot tell us the one PORT=0 would pick). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitFor(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`elevate serve exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`);
}

describe('elevate serve', () => {
  let dir: string;
  let database: TestDatabase | undefined;
  let child: ChildProcess;
  let base: string;
  let stdout = '';
  let stderr = '';
  let childEnv: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'elevate-serve-'));
    // PostgreSQL: a database of this file's own; PGlite: a data directory only the child opens.
    if (process.env.DATABASE_URL) database = await openTestDatabase();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    childEnv = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      ...databaseEnv(database, dir),
    };
    child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...childEnv, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    // The server migrates before it listens.
    await waitFor(`${base}/healthz`, child, 100_000);
  }, 120_000);

  afterAll(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await database?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('GET /healthz answers ok', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  test('GET /readyz: the database answers and is migrated', async () => {
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
  });

  test('GET /metrics is Prometheus text with our metrics and the process defaults', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('elevate_http_requests_total{method="GET",route="/healthz",status="200"}');
    expect(text).toContain('elevate_http_request_duration_seconds_bucket');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  test('unknown routes are 404 and wrong methods 405, as JSON', async () => {
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: 'not_found' });
    const wrong = await fetch(`${base}/healthz`, { method: 'POST' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET');
    expect(await wrong.json()).toMatchObject({ error: 'method_not_allowed' });
  });

  test('logs JSON lines, saying that no chat platform is configured', () => {
    const lines = stdout.split('\n').filter((line) => line !== '');
    const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(
      messages.filter((msg) => msg.startsWith('no chat platform configured: set SLACK_BOT_TOKEN')),
    ).toHaveLength(1);
    expect(stderr).toBe('');
  });

  test('SIGTERM stops it cleanly: exit code 0 within 10 s', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const started = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(stdout).toContain('"msg":"stopped"');
  });

  test('a bad ELEVATE_POLICY_FILE stops the start: each problem logged, exit 1', async () => {
    const file = join(dir, 'bad-policy.yaml');
    await writeFile(file, 'roles:\n  - name: Bad Name\n    settings: { maxDuration: forever }\n');
    const run = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...childEnv, PORT: '0', ELEVATE_POLICY_FILE: file },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    run.stdout?.on('data', (chunk) => {
      out += chunk;
    });
    const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
    expect(code).toBe(1);
    const fatal = out
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { level: string; msg: string })
      .filter((entry) => entry.level === 'fatal')
      .map((entry) => entry.msg);
    expect(fatal).toHaveLength(2);
    expect(fatal[0]).toContain(`${file}: roles[0].name`);
    expect(fatal[1]).toContain(`${file}: roles[0].settings.maxDuration`);
  }, 60_000);
});

describe('the HTTP server in process', () => {
  let database: TestDatabase;
  let server: HttpServer;
  let base: string;
  const log = createLogger('silent');

  beforeAll(async () => {
    database = await openTestDatabase();
    server = createHttpServer({
      log,
      metrics: createMetrics(),
      readiness: createDatabaseReadiness(database.db, log),
      routes: [
        {
          method: 'POST',
          path: '/slack/events',
          handler: (_req, res) => sendJson(res, 200, { mounted: true }),
        },
        {
          method: 'POST',
          path: '/api/messages',
          handler: () => {
            throw new Error('secret internals at /srv/app.ts:12');
          },
        },
      ],
    });
    base = `http://127.0.0.1:${await server.listen(0, '127.0.0.1')}`;
  });

  afterAll(async () => {
    await server.close();
    await database.close().catch(() => {});
  });

  test('mounted routes answer; a failing handler is a 500 without internals', async () => {
    const slack = await fetch(`${base}/slack/events`, { method: 'POST', body: '{}' });
    expect(await slack.json()).toEqual({ mounted: true });
    const failing = await fetch(`${base}/api/messages`, { method: 'POST', body: '{}' });
    expect(failing.status).toBe(500);
    const body = await failing.text();
    expect(body).not.toContain('secret');
    expect(JSON.parse(body)).toEqual({ error: 'internal', message: 'internal error' });
  });

  test('the query string does not change the route', async () => {
    expect((await fetch(`${base}/healthz?probe=1`)).status).toBe(200);
  });

  test('/readyz is 503 naming the pending migration when one is not recorded', async () => {
    await database.superuser(
      'delete from drizzle.__drizzle_migrations where id = (select max(id) from drizzle.__drizzle_migrations)',
    );
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; reason: string };
    expect(body.status).toBe('unavailable');
    expect(body.reason).toMatch(/^database not migrated: 1 of \d+ migrations pending \(\d{4}_[a-z_]+\)$/);
  });

  test('/readyz is 503 with a short reason, never a stack, when the database is gone', async () => {
    await database.close();
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; reason: string };
    expect(body.status).toBe('unavailable');
    expect(body.reason).toMatch(/^database (unreachable|did not answer)/);
    expect(body.reason).not.toContain('\n');
  });
});
