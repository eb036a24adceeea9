import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { inject } from 'vitest';
import { type Database, openDatabase } from '../../src/db/client.ts';

/** A migrated database of its own for one test file, and how to throw it away. */
export interface TestDatabase extends Database {
  /** A URL for another process (the CLI, the server) to reach the same database; undefined on PGlite. */
  url: string | undefined;
  /** Superuser SQL on the same database, for what the app itself may not do (tamper tests). */
  superuser<T>(query: string): Promise<T[]>;
}

/**
 * With DATABASE_URL set (CI's second run), a fresh PostgreSQL database per test file, dropped
 * at the end; otherwise a PGlite copied from the run's template (global-setup.ts). Both are
 * migrated from empty, as in production.
 */
export async function openTestDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const dir = mkdtempSync(join(tmpdir(), 'elevate-test-db-'));
    const dataDir = join(dir, 'data');
    seedPgliteDir(dataDir);
    const database = await openDatabase({ dataDir });
    // Nothing to do on the template's copy; outside vitest (the benches) it migrates from empty.
    await database.migrate();
    const client = (database.db as unknown as { $client: { query<T>(q: string): Promise<{ rows: T[] }> } })
      .$client;
    return {
      ...database,
      url: undefined,
      superuser: async <T>(query: string) => (await client.query<T>(query)).rows,
      close: async () => {
        await database.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const name = `elevate_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const database = await openDatabase({ databaseUrl: url.href, dataDir: '' });
  await database.migrate();
  const own = postgres(url.href, { max: 1, onnotice: () => {} });
  return {
    ...database,
    url: url.href,
    superuser: async <T>(query: string) => (await own.unsafe(query)) as unknown as T[],
    close: async () => {
      await own.end();
      await database.close();
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/**
 * Fills `dataDir` (a PGlite directory a test's server or CLI will open) with the run's migrated
 * template, so that it starts in half a second rather than running initdb.
 */
export function seedPgliteDir(dataDir: string): void {
  // The benches use the harnesses outside vitest: no template, the process creates the directory.
  if (!process.env.VITEST) return;
  cpSync(inject('pgliteTemplate'), dataDir, { recursive: true });
}

/**
 * The database variables for a server or CLI process working in `dir`: this test's PostgreSQL
 * database when there is one, else a PGlite directory under `dir`, seeded on first use.
 */
export function databaseEnv(database: TestDatabase | undefined, dir: string): Record<string, string> {
  if (database?.url) return { DATABASE_URL: database.url };
  const dataDir = join(dir, 'data');
  if (!existsSync(dataDir)) seedPgliteDir(dataDir);
  return { ELEVATE_DATA_DIR: dataDir };
}
