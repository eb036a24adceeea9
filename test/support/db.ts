import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
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
 * at the end; otherwise an in-memory PGlite. Both are migrated from empty, as in production.
 */
export async function openTestDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    const client = (database.db as unknown as { $client: { query<T>(q: string): Promise<{ rows: T[] }> } })
      .$client;
    return {
      ...database,
      url: undefined,
      superuser: async <T>(query: string) => (await client.query<T>(query)).rows,
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
