import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { databaseEnv, openTestDatabase, type TestDatabase } from '../support/db.ts';
import { runElevateCli } from '../support/elevate-process.ts';

// The child gets only the database it should use: on PostgreSQL a database of this file's own
// (the test process keeps a connection to it), on PGlite a fresh data directory that the test
// process never opens (PGlite allows one process per directory).
let database: TestDatabase | undefined;
let dir: string;
let dbEnv: Record<string, string>;

/** Runs `elevate args…` as a child process with a clean environment plus `env`. */
const elevate = (args: string[], env: Record<string, string> = {}) =>
  runElevateCli({ ...dbEnv, ...env }, dir, args);

const lines = (text: string) => text.split('\n').filter((line) => line !== '');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'elevate-cli-'));
  if (process.env.DATABASE_URL) database = await openTestDatabase();
  dbEnv = databaseEnv(database, dir);
  // `migrate` on a database that is already migrated changes nothing and exits 0.
  const migrated = await elevate(['migrate']);
  expect(migrated.stderr).toBe('');
  expect(migrated.code).toBe(0);
}, 120_000);

afterAll(async () => {
  await database?.close();
  await rm(dir, { recursive: true, force: true });
});

describe.concurrent('usage', () => {
  test('--help prints the commands and exits 0', async () => {
    const run = await elevate(['--help']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('Usage: elevate');
    for (const command of ['serve', 'migrate', 'apply', 'export', 'audit verify', 'roles list', 'revoke']) {
      expect(run.stdout).toContain(command);
    }
  });

  test('each command has its own --help', async () => {
    const run = await elevate(['apply', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: elevate apply -f FILE');
    const group = await elevate(['audit', '-h']);
    expect(group.code).toBe(0);
    expect(group.stdout).toContain('audit verify');
  });

  test.each([
    [['frobnicate'], 'elevate: unknown command "frobnicate"'],
    [['roles', 'list', '--frob'], 'elevate roles list: unknown option --frob'],
    [['apply'], 'elevate apply: missing -f FILE'],
    [['apply', '-f'], 'elevate apply: option --file needs a value'],
    [['revoke'], 'elevate revoke: missing the activation id'],
    [['audit'], 'elevate audit: missing a command'],
    [['audit', 'export', '--format', 'xml'], 'elevate audit export: --format must be jsonl or csv'],
    [['activations', 'list', '--status', 'sleeping'], 'elevate activations list: --status "sleeping"'],
  ])('elevate %j is a usage error: exit 2, one line', async (args, start) => {
    const run = await elevate(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(lines(run.stderr)).toHaveLength(1);
    expect(run.stderr.startsWith(start)).toBe(true);
  });
});

describe.concurrent('configuration', () => {
  test('a bad variable stops the command with one line naming it, exit 1', async () => {
    const run = await elevate(['roles', 'list'], { PORT: 'abc' });
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual(['config: PORT="abc": expected a port number']);
  });

  test('every bad variable is listed, and a secret-bearing one is not echoed', async () => {
    const run = await elevate(['migrate'], { PORT: 'abc', DATABASE_URL: 'mysql://root:hunter2@db/x' });
    expect(run.code).toBe(1);
    const stderr = lines(run.stderr);
    expect(stderr).toHaveLength(2);
    expect(stderr.some((line) => line.startsWith('config: DATABASE_URL:'))).toBe(true);
    expect(run.stderr).not.toContain('hunter2');
  });
});

// Several CLI processes per test, each opening the database: on a busy machine that is more than
// the suite's default 30 s.
describe('policy, roles, activations and audit', { timeout: 180_000 }, () => {
  const endIn7Days = new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);
  const policy = `
admins: [ana@example.com]
roles:
  - name: db-admin
    description: Production database admin
    scope: prod
    provider: { type: none }
    settings: { maxDuration: 4h }
eligibility:
  - { principal: dee@example.com, role: db-admin }
activeAssignments:
  - { principal: bo@example.com, role: db-admin, end: ${endIn7Days}, justification: on call }
`;

  test('apply --dry-run shows the diff and changes nothing', async () => {
    const file = join(dir, 'policy.yaml');
    await writeFile(file, policy);
    const run = await elevate(['apply', '-f', file, '--dry-run']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('+ role db-admin');
    expect(run.stdout).toContain('dry run');
  });

  test('apply (after the dry run, so still every change) then roles list shows the role', async () => {
    const file = join(dir, 'policy.yaml');
    const run = await elevate(['apply', '-f', file]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('+ role db-admin');
    expect(run.stdout).toContain('+ eligibility dee@example.com → db-admin');
    const roles = await elevate(['roles', 'list']);
    expect(roles.code).toBe(0);
    expect(lines(roles.stdout)[0]).toMatch(/^NAME\s+PROVIDER/);
    expect(roles.stdout).toMatch(/db-admin\s+none\s+prod\s+4h/);
  });

  test('a bad policy file: exit 1, one line per problem, nothing applied', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'roles:\n  - name: Bad Name\n    settings: { maxDuration: forever }\n');
    const run = await elevate(['apply', '-f', file]);
    expect(run.code).toBe(1);
    const stderr = lines(run.stderr);
    expect(stderr).toHaveLength(2);
    expect(stderr[0]).toContain('roles[0].name');
    expect(stderr[1]).toContain('roles[0].settings.maxDuration');
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  test('export writes a policy that applies back unchanged (apply is idempotent)', async () => {
    const file = join(dir, 'exported.yaml');
    const run = await elevate(['export', '-o', file]);
    expect(run.code).toBe(0);
    expect(await readFile(file, 'utf8')).toContain('name: db-admin');
    const back = await elevate(['apply', '-f', file]);
    expect(back.code).toBe(0);
    expect(back.stdout).toContain('No changes');
  });

  test('activations list shows the active assignment; revoke ends it', async () => {
    const list = await elevate(['activations', 'list', '--status', 'open']);
    expect(list.code).toBe(0);
    const row = lines(list.stdout).find((line) => line.includes('bo@example.com'));
    expect(row).toMatch(/db-admin\s+assignment\s+active/);
    const id = row?.split(/\s+/)[0] ?? '';
    const revoked = await elevate(['revoke', id, '--reason', 'rotation over']);
    expect(revoked.stderr).toBe('');
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe(`assignment ${id} of db-admin for bo@example.com: revoked\n`);
  });

  test('revoke of an unknown activation: exit 1 with one clear line', async () => {
    const run = await elevate(['revoke', '00000000-0000-4000-8000-000000000000']);
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([
      'elevate: There is no activation "00000000-0000-4000-8000-000000000000".',
    ]);
  });

  test('audit verify reports an intact chain and its length; export has the same events', async () => {
    const run = await elevate(['audit', 'verify']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const count = Number(/intact: (\d+) events/.exec(run.stdout)?.[1]);
    expect(count).toBeGreaterThanOrEqual(5);
    const exported = await elevate(['audit', 'export', '--format', 'jsonl']);
    expect(exported.code).toBe(0);
    const events = lines(exported.stdout).map((line) => JSON.parse(line) as { action: string });
    expect(events).toHaveLength(count);
    expect(events.map((e) => e.action)).toContain('policy.applied');
  });
});
