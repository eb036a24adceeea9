import { spawn } from 'node:child_process';
import { openDatabase, rowsOf } from '../../src/db/client.ts';
import { sql } from '../../src/db/drizzle.ts';

/**
 * The `elevate` command line and raw SQL against a harness's database, for e2e tests that mix the
 * running server with what an operator does beside it. `dbEnv` is the server's own database
 * variables (DATABASE_URL, or ELEVATE_DATA_DIR for PGlite). A PGlite directory is one process's:
 * while the server runs, both are refused there (DatabaseInUseError), so tests pause it first.
 */

const BIN = new URL('../../bin/elevate.js', import.meta.url).pathname;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `elevate args…` as a child process with a clean environment: only PATH, HOME, NODE_ENV and `env`
 * (the database variables, and whatever else the test sets).
 */
export function runElevateCli(env: Record<string, string>, home: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: home, NODE_ENV: 'test', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** SQL statements in one transaction on the same database (opened and closed for them); the last one's rows. */
export async function runSql<T>(dbEnv: Record<string, string>, ...queries: string[]): Promise<T[]> {
  const database = await openDatabase({
    databaseUrl: dbEnv.DATABASE_URL,
    dataDir: dbEnv.ELEVATE_DATA_DIR ?? '',
  });
  try {
    return await database.db.transaction(async (tx) => {
      let rows: T[] = [];
      for (const query of queries) rows = rowsOf<T>(await tx.execute(sql.raw(query)));
      return rows;
    });
  } finally {
    await database.close();
  }
}
