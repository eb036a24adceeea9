import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

test('migrations create every table from empty', async () => {
  const tables = await database.superuser<{ table_name: string }>(
    "select table_name from information_schema.tables where table_schema = 'public' order by table_name",
  );
  expect(tables.map((t) => t.table_name)).toEqual([
    'access_review_items',
    'access_reviews',
    'activations',
    'alert_settings',
    'alerts',
    'audit_events',
    'chat_identities',
    'chat_messages',
    'decisions',
    'eligibilities',
    'notifications',
    'principals',
    'reconcile_findings',
    'reconcile_leases',
    'roles',
    'step_ups',
    'teams_conversations',
  ]);
});

test('applying the migrations again changes nothing', async () => {
  await database.migrate();
  const applied = await database.superuser<{ n: number }>(
    'select count(*)::int as n from drizzle.__drizzle_migrations',
  );
  expect(applied[0]?.n).toBeGreaterThanOrEqual(2);
});

test('a role stored with requireMfaOnActivation keeps requiring MFA, as requireMfa', async () => {
  await database.superuser(
    `insert into roles (name, settings) values
       ('old-mfa', '{"requireMfaOnActivation": true, "maxDuration": 60}'),
       ('old-plain', '{"requireMfaOnActivation": false}')`,
  );
  const rename = await readFile(
    new URL('../../migrations/0004_rename_require_mfa.sql', import.meta.url),
    'utf8',
  );
  await database.superuser(rename);
  const rows = await database.superuser<{ name: string; settings: Record<string, unknown> }>(
    "select name, settings from roles where name like 'old-%' order by name",
  );
  expect(rows).toEqual([
    { name: 'old-mfa', settings: { requireMfa: true, maxDuration: 60 } },
    { name: 'old-plain', settings: { requireMfa: false } },
  ]);
});
