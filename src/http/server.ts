import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type Db, MIGRATIONS_FOLDER, rowsOf } from '../db/client.ts';
import { sql } from '../db/drizzle.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

/** Answers one request; the request body is the handler's to read. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/**
 * One entry of the route table. Chat platforms mount theirs here (`POST /slack/events`,
 * `POST /api/messages`); paths match exactly, without the query string. A path ending in `/*`
 * matches one more segment (`/auth/step-up/*` → `/auth/step-up/<id>`), and metrics name the pattern.
 */
export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  handler: RouteHandler;
}

/** Whether the process can do its work; `reason` is shown to whoever asks, so no internals. */
export type Readiness = { ready: true } | { ready: false; reason: string };

/** Writes `body` as a JSON response. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

const READINESS_TIMEOUT_MS = 2_000;

/**
 * Ready means: the database answers, and every migration in the journal is recorded as applied
 * (drizzle's `__drizzle_migrations` keeps each one's journal timestamp in `created_at`).
 */
export function createDatabaseReadiness(db: Db, log: Logger): () => Promise<Readiness> {
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as {
    entries: { tag: string; when: number }[];
  };
  async function check(): Promise<Readiness> {
    try {
      await db.execute(sql`select 1`);
    } catch (error) {
      log.warn({ err: error }, 'readiness: the database does not answer');
      return { ready: false, reason: 'database unreachable' };
    }
    let applied: Set<string>;
    try {
      const rows = rowsOf<{ created_at: string }>(
        await db.execute(sql`select created_at::text as created_at from drizzle.__drizzle_migrations`),
      );
      applied = new Set(rows.map((row) => row.created_at));
    } catch {
      applied = new Set(); // no migrations table yet: nothing applied
    }
    const pending = journal.entries.filter((entry) => !applied.has(String(entry.when)));
    if (pending.length === 0) return { ready: true };
    return {
      ready: false,
      reason: `database not migrated: ${pending.length} of ${journal.entries.length} migrations pending (${pending.map((e) => e.tag).join(', ')})`,
    };
  }
  return () =>
    new Promise<Readiness>((resolve) => {
      const timer = setTimeout(
        () =>
          resolve({
            ready: false,
            reason: `database did not answer within ${READINESS_TIMEOUT_MS / 1000} s`,
          }),
        READINESS_TIMEOUT_MS,
      );
      check().then((result) => {
        clearTimeout(timer);
        resolve(result);
      });
    });
}

/**
 * The one HTTP server: health, readiness and metrics, plus the routes chat platforms mount.
 * Every answer is JSON (or Prometheus text); a failing handler gives a 500 without internals.
 */
export function createHttpServer(deps: {
  log: Logger;
  metrics: Metrics;
  readiness: () => Promise<Readiness>;
  routes?: Route[];
}) {
  const { log, metrics } = deps;
  const table = new Map<string, Map<string, RouteHandler>>();
  const mount = (route: Route) => {
    const byMethod = table.get(route.path) ?? new Map<string, RouteHandler>();
    if (byMethod.has(route.method)) throw new Error(`route ${route.method} ${route.path} is mounted twice`);
    table.set(route.path, byMethod.set(route.method, route.handler));
  };
  mount({ method: 'GET', path: '/healthz', handler: (_req, res) => sendJson(res, 200, { status: 'ok' }) });
  mount({
    method: 'GET',
    path: '/readyz',
    handler: async (_req, res) => {
      const readiness = await deps.readiness();
      if (readiness.ready) sendJson(res, 200, { status: 'ready' });
      else sendJson(res, 503, { status: 'unavailable', reason: readiness.reason });
    },
  });
  mount({
    method: 'GET',
    path: '/metrics',
    handler: async (_req, res) => {
      const text = await metrics.render();
      res.writeHead(200, { 'content-type': metrics.contentType });
      res.end(text);
    },
  });
  for (const route of deps.routes ?? []) mount(route);

  const server = createServer(async (req, res) => {
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const pattern = table.has(path) ? path : path.replace(/\/[^/]+$/, '/*');
    const byMethod = table.get(pattern);
    const handler = byMethod?.get(method);
    res.on('finish', () => {
      metrics.observeRequest({
        method,
        route: byMethod ? pattern : 'unmatched',
        status: res.statusCode,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
      });
    });
    if (!byMethod) return sendJson(res, 404, { error: 'not_found', message: `no route ${path}` });
    if (!handler) {
      const allowed = [...byMethod.keys()].join(', ');
      return sendJson(
        res,
        405,
        { error: 'method_not_allowed', message: `${path} accepts ${allowed}` },
        { allow: allowed },
      );
    }
    try {
      await handler(req, res);
    } catch (error) {
      log.error({ err: error, method, path }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: 'internal error' });
      else res.destroy();
    }
  });

  return {
    /** Starts listening; resolves with the bound port (useful with port 0). */
    listen(port: number, host?: string): Promise<number> {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    /**
     * Stops accepting connections, lets in-flight requests finish for up to `graceMs`, then
     * cuts whatever is left.
     */
    close(graceMs = 5_000): Promise<void> {
      return new Promise((resolve) => {
        if (!server.listening) return resolve();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/** The running HTTP server's interface. */
export type HttpServer = ReturnType<typeof createHttpServer>;
