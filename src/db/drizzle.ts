import { createRequire } from 'node:module';

/*
 * drizzle-orm, loaded through its CommonJS build. Every run-time import of drizzle goes through
 * this module (types may still be imported from 'drizzle-orm' with `import type`).
 *
 * Why: for each module it loads, Node's ESM loader reads the enclosing package.json for its
 * "type" (getPackageScopeConfig), and on Node 24 that copies the whole "exports" field out and
 * JSON-parses it every time. drizzle-orm's package.json is 179 KB with 447 export entries, and its
 * ESM build is about 450 files, so `import('drizzle-orm/pg-core')` allocated ~150 MB of short-lived
 * garbage at start-up: the heap grew to ~230 MB and kept it. The same files with a two-entry
 * package.json, or `require()` (which reads the "type" only), cost 7–9 MB. An idle `elevate serve`
 * on PostgreSQL went from 285 to 180–190 MB RSS. Import no drizzle-orm value anywhere else: the ESM
 * copy would be loaded beside this one, with its cost (test/unit/architecture.test.ts checks).
 */
const requireCjs = createRequire(import.meta.url);

import type { SQL } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';

export type { SQL } from 'drizzle-orm';

export const {
  and,
  asc,
  desc,
  eq,
  gt,
  gte,
  inArray,
  isNotNull,
  isNull,
  like,
  lt,
  lte,
  max,
  ne,
  notInArray,
  or,
  sql,
} = requireCjs('drizzle-orm') as typeof import('drizzle-orm');

export const {
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} = requireCjs('drizzle-orm/pg-core') as typeof import('drizzle-orm/pg-core');

export const { drizzle: drizzlePglite } = requireCjs(
  'drizzle-orm/pglite',
) as typeof import('drizzle-orm/pglite');
export const { migrate: migratePglite } = requireCjs(
  'drizzle-orm/pglite/migrator',
) as typeof import('drizzle-orm/pglite/migrator');
export const { drizzle: drizzlePostgres } = requireCjs(
  'drizzle-orm/postgres-js',
) as typeof import('drizzle-orm/postgres-js');
export const { migrate: migratePostgres } = requireCjs(
  'drizzle-orm/postgres-js/migrator',
) as typeof import('drizzle-orm/postgres-js/migrator');

/**
 * `column = any($1::uuid[])`: a list of ids as one parameter (an array literal), where `inArray`
 * binds one parameter per id — a thousand of them to build, send and plan for each of the loop's
 * batches.
 */
export function idIn(column: AnyPgColumn, ids: readonly string[]): SQL {
  // Hex digits and dashes only, so no id can change the literal's shape (a comma, a brace).
  for (const id of ids) if (!UUID_CHARS.test(id)) throw new Error(`not a uuid: ${JSON.stringify(id)}`);
  return sql`${column} = any(${`{${ids.join(',')}}`}::uuid[])`;
}

const UUID_CHARS = /^[0-9a-fA-F-]+$/;
