import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/client.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PGlite data directory migrated from empty, for tests to copy. */
    pgliteTemplate: string;
  }
}

/**
 * Once per run: a fresh PGlite spends about two seconds in initdb before its first migration, and
 * the suite opens a hundred of them (each integration test's database, each server and CLI home).
 * They copy this one instead, which was migrated from empty exactly as production does. Built on
 * PostgreSQL runs too: a few tests run PGlite whatever the run (teams-unauthenticated, the lock).
 */
export default async function setup(project: TestProject) {
  const root = await mkdtemp(join(tmpdir(), 'elevate-pglite-template-'));
  const dataDir = join(root, 'data');
  const database = await openDatabase({ dataDir });
  await database.migrate();
  await database.close();
  project.provide('pgliteTemplate', dataDir);
  return () => rm(root, { recursive: true, force: true });
}
