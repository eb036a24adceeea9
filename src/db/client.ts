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
    const db = drizzlePostgres(client, { schema, casing: 'snake_case' }) as unknown as Db;
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
