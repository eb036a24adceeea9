import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { databaseEnv, openTestDatabase, type TestDatabase } from '../support/db.ts';
import { runElevateCli } from '../support/elevate-process.ts';

// As in cli.test.ts: on PostgreSQL a database of this file's own, on PGlite a data directory
// that only the child processes open.
let database: TestDatabase | undefined;
let dir: string;
let dbEnv: Record<string, string>;

/** Runs `elevate args…` as a child process with a clean environment. */
const elevate = (args: string[]) => runElevateCli(dbEnv, dir, args);

const POLICY = `admins: [ana@example.com]
roles:
  - { name: db-admin, provider: { type: none }, settings: { approvers: [judge@example.com] } }
  - { name: payroll, provider: { type: none } }
eligibility:
  - { principal: kim@example.com, role: db-admin }
  - { principal: lou@example.com, role: db-admin }
  - { principal: max@example.com, role: payroll }
`;

async function apply(text: string) {
  const file = join(dir, 'policy.yaml');
  await writeFile(file, text);
  return elevate(['apply', '-f', file]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'elevate-cli-reviews-'));
  if (process.env.DATABASE_URL) database = await openTestDatabase();
  dbEnv = databaseEnv(database, dir);
  expect((await elevate(['migrate'])).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await database?.close();
  await rm(dir, { recursive: true, force: true });
});

test('the policy file declares recurring reviews: checked in file order, applied once, exported', async () => {
  const bad = await apply(`${POLICY}reviews:
  quarterly-db:
    roles: [db-admin]
    reviewers: everyone
    recur: yearly
    duraton: 7d
`);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain(
    'reviews.quarterly-db.reviewers: "everyone" must be approvers, self or a list of emails',
  );
  expect(bad.stderr).toContain('reviews.quarterly-db.recur: "yearly" must be weekly, monthly, quarterly');
  expect(bad.stderr).toMatch(
    /reviews\.quarterly-db\.duraton: is not a known key \(did you mean duration\?\)/,
  );
  // One line per problem, in the order of the file, as for every section.
  expect(
    bad.stderr
      .trimEnd()
      .split('\n')
      .map((l) => l.split(': ')[1]),
  ).toEqual(['reviews.quarterly-db.reviewers', 'reviews.quarterly-db.recur', 'reviews.quarterly-db.duraton']);

  const file = `${POLICY}reviews:
  quarterly-db:
    roles: [db-admin]
    reviewers: approvers
    recur: quarterly
    unreviewed: remove
`;
  const applied = await apply(file);
  expect(applied.stderr).toBe('');
  expect(applied.stdout).toContain(
    '+ review quarterly-db (roles db-admin, reviewers approvers, 7d, quarterly, unreviewed remove)',
  );
  // Idempotent: the running campaign is the schedule; applying again starts nothing.
  expect((await apply(file)).stdout).toContain('No changes');
  const changed = await apply(file.replace('reviewers: approvers', 'reviewers: [rev@example.com]'));
  expect(changed.stdout).toContain('~ review quarterly-db: roles db-admin, reviewers approvers');
  expect(changed.stdout).toContain('reviewers rev@example.com');

  const exported = await elevate(['export']);
  expect(exported.stdout).toContain(
    'reviews:\n  quarterly-db:\n    roles:\n      - db-admin\n    reviewers:\n      - rev@example.com',
  );

  const listed = await elevate(['reviews', 'list']);
  const rows = listed.stdout.trimEnd().split('\n');
  expect(rows[0]).toMatch(/^ID +STATUS +ROLES +REVIEWERS +START +END +RECURS +UNREVIEWED$/);
  expect(rows).toHaveLength(2);
  expect(rows[1]).toMatch(/ running +db-admin +rev@example\.com .* quarterly +remove$/);

  // Dropping the section's entry stops the recurrence; the running campaign runs to its end.
  const stopped = await apply(`${POLICY}reviews: {}\n`);
  expect(stopped.stdout).toContain('- review quarterly-db (no longer recurs)');
}, 120_000);

test('reviews start, list and export from the command line', async () => {
  const started = await elevate([
    'reviews',
    'start',
    '--role',
    'db-admin',
    '--role',
    'payroll',
    '--reviewers',
    'self',
    '--duration',
    '3d',
    '--unreviewed',
    'keep',
  ]);
  expect(started.stderr).toBe('');
  const id = /^review (\S+) started: 3 member\(s\) of db-admin, payroll to review until /.exec(
    started.stdout,
  )?.[1];
  expect(id).toBeDefined();

  const items = await elevate(['reviews', 'list', id ?? '']);
  const lines = items.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^ITEM +MEMBER +ROLE +REVIEWERS +DECISION +OUTCOME$/);
  expect(lines.slice(1).map((l) => l.split(/ +/).slice(1, 4))).toEqual([
    ['kim@example.com', 'db-admin', 'kim@example.com'],
    ['lou@example.com', 'db-admin', 'lou@example.com'],
    ['max@example.com', 'payroll', 'max@example.com'],
  ]);

  const csv = await elevate(['reviews', 'export', id ?? '', '--format', 'csv']);
  const csvLines = csv.stdout.split('\r\n');
  expect(csvLines[0]).toBe(
    'reviewId,itemId,principal,role,reviewers,lastActivatedAt,activations90d,decision,justification,decidedBy,decidedAt,outcome',
  );
  expect(csvLines[1]).toMatch(
    new RegExp(`^${id},[0-9a-f-]{36},kim@example.com,db-admin,kim@example.com,,0,,,,,$`),
  );
  const jsonl = await elevate(['reviews', 'export', id ?? '', '--format', 'jsonl']);
  const first = JSON.parse(jsonl.stdout.split('\n')[0] ?? '{}');
  expect(first).toMatchObject({ reviewId: id, principal: 'kim@example.com', decision: null, outcome: null });
  expect(jsonl.stdout.trimEnd().split('\n')).toHaveLength(3);

  const wrong = await elevate(['reviews', 'export', id ?? '', '--format', 'xml']);
  expect(wrong.code).toBe(2);
  expect(wrong.stderr).toContain('--format must be csv or jsonl, not "xml"');
  const unknown = await elevate(['reviews', 'start', '--role', 'nope']);
  expect(unknown.code).not.toBe(0);
  expect(unknown.stderr).toContain('nope');
  expect((await elevate(['reviews', 'start', '--role', 'payroll', '--recur', 'daily'])).stderr).toContain(
    '--recur must be weekly or monthly or quarterly, not "daily"',
  );
}, 120_000);
