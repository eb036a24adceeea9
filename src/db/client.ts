import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import { drizzlePglite, drizzlePostgres, migratePglite, migratePostgres } from './drizzle.ts';
import { startPgliteThread } from './pglite-thread.ts';
import * as schema from './schema.ts';

type Schema = typeof schema;

/** A database handle or an open transaction: every repository function accepts either. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
/** An open transaction, for functions that must run inside one. */
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;

/** The database the process talks to, with its driver's lifecycle. */
export interface Database {
  db: Db;
  /** `postgres` for a server reached through DATABASE_URL, `pglite` for the embedded one. */
  kind: 'postgres' | 'pglite';
  migrate(): Promise<void>;
  close(): Promise<void>;
}

/** Where drizzle-kit writes migrations; the same files serve PostgreSQL and PGlite. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url));

/** Opens PostgreSQL when `databaseUrl` is set, else PGlite persisted in `dataDir` (`memory://` for none). */
export async function openDatabase(options: { databaseUrl?: string; dataDir: string }): Promise<Database> {
  if (options.databaseUrl) {
    // notices (e.g. "relation already exists, skipping" from the migrator) are noise in our logs.
    const client = postgres(options.databaseUrl, { max: 10, onnotice: () => {} });
    const db = drizzlePostgres(preparing(client), { schema, casing: 'snake_case' }) as unknown as Db;
    return {
      db,
      kind: 'postgres',
      migrate: async () => {
        // Replicas starting together take turns: the first migrates, the others then find nothing to do.
        const session = await client.reserve();
        try {
          await session`select pg_advisory_lock(hashtext('elevate.migrate'))`;
          await migratePostgres(drizzlePostgres(client), { migrationsFolder: MIGRATIONS_FOLDER });
        } finally {
          await session`select pg_advisory_unlock(hashtext('elevate.migrate'))`.catch(() => {});
          session.release();
        }
      },
      close: () => client.end({ timeout: 5 }),
    };
  }
  const release = options.dataDir.startsWith('memory://') ? () => {} : lockDataDir(options.dataDir);
  // In a worker thread: PGlite's statements run synchronously, and on this thread they would hold
  // up every request (ack, Slack calls) for as long as they run.
  const client = await startPgliteThread(options.dataDir).catch((error: unknown) => {
    release();
    throw error;
  });
  const asPglite = client as unknown as PGlite;
  const db = drizzlePglite(asPglite, { schema, casing: 'snake_case' }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    migrate: () => migratePglite(drizzlePglite(asPglite), { migrationsFolder: MIGRATIONS_FOLDER }),
    close: async () => {
      await client.close();
      release();
    },
  };
}

/** Queries with at most this many parameters are prepared (see `preparing`). */
const PREPARE_MAX_PARAMETERS = 32;

/**
 * The postgres.js client as drizzle should use it: with short queries prepared.
 *
 * drizzle runs every query through `unsafe(text, params, { prepare: false })` (only the ones named
 * with `.prepare(name)` are prepared). postgres.js then asks the server for the parameter types
 * before it can send the values, so each unprepared query with parameters takes two round trips
 * (Parse/Describe, then Bind/Execute) every time; at 200 Slack requests a second, and on every tick
 * of the loop, those were half of the server's writes to PostgreSQL. Prepared, a query costs the two
 * on its first use on a connection and one afterwards (postgres.js keeps the statement per
 * connection, keyed by its text, until the connection is recycled). Only queries with few
 * parameters are prepared: their texts repeat, while bulk statements (one parameter per row or per
 * id) vary in length and would each leave a statement behind. `?prepare=false` in DATABASE_URL
 * (postgres.js's own switch, for PgBouncer in transaction mode) turns preparing off for all.
 */
function preparing(sql: postgres.Sql): postgres.Sql {
  type Unsafe = postgres.Sql['unsafe'];
  return new Proxy(sql, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (key === 'unsafe') {
        return ((text: string, params?: unknown[], options?: { prepare?: boolean }) =>
          (value as Unsafe)(
            text,
            params as postgres.ParameterOrJSON<never>[],
            params && params.length > 0 && params.length <= PREPARE_MAX_PARAMETERS
              ? { ...options, prepare: true }
              : options,
          )) as Unsafe;
      }
      // Transactions and savepoints hand their callback a client of their own: the same for it.
      if (key === 'begin' || key === 'savepoint') {
        return (...args: unknown[]) =>
          (value as (...a: unknown[]) => unknown).apply(
            target,
            args.map((arg) =>
              typeof arg === 'function'
                ? (tx: postgres.Sql) => (arg as (tx: postgres.Sql) => unknown)(preparing(tx))
                : arg,
            ),
          );
      }
      return value;
    },
  });
}

/**
 * PGlite is one process's database: a second process opening the same directory would work on
 * its own copy and its writes would be lost. A lock file with the owner's pid refuses that with a
 * clear message (a lock left by a process that no longer runs is taken over).
 */
function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'elevate.lock');
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
  } catch {
    const owner = Number(readFileSync(file, 'utf8'));
    if (owner !== process.pid && isRunning(owner)) {
      throw new DatabaseInUseError(
        `it is in use by process ${owner} (stop that first, or set DATABASE_URL to share PostgreSQL between processes)`,
      );
    }
    writeFileSync(file, String(process.pid));
  }
  return () => rmSync(file, { force: true });
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The embedded database's directory is held by another running process. */
export class DatabaseInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseInUseError';
  }
}

/** Rows of a raw `db.execute()` result: postgres.js returns an array, PGlite an object with `rows`. */
export function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}
