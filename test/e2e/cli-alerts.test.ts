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

/** Writes a policy with a sensitive role (`payroll`, MFA as given) and a guarded one, and applies it. */
async function applyPolicy(payrollMfa: boolean, alerts = '') {
  const file = join(dir, 'policy.yaml');
  await writeFile(
    file,
    `admins: [ana@example.com]
roles:
  - { name: payroll, provider: { type: none }, settings: { sensitive: true, requireMfa: ${payrollMfa} } }
  - { name: vault, provider: { type: none }, settings: { sensitive: true, requireApproval: true } }
${alerts}`,
  );
  return elevate(['apply', '-f', file]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'elevate-cli-alerts-'));
  if (process.env.DATABASE_URL) database = await openTestDatabase();
  dbEnv = databaseEnv(database, dir);
  const migrated = await elevate(['migrate']);
  expect(migrated.code).toBe(0);
}, 300_000);

afterAll(async () => {
  await database?.close();
  await rm(dir, { recursive: true, force: true });
});

test('alerts are raised, listed, de-duplicated and resolved from the command line', async () => {
  expect((await elevate(['alerts', 'list'])).stdout).toBe('no open alerts\n');

  const applied = await applyPolicy(false, 'alerts:\n  tooManyActive: { holders: 5 }\n');
  expect(applied.stderr).toBe('');
  expect(applied.stdout).toContain('~ alerts: tooManyActive.holders 3 → 5');

  expect((await elevate(['alerts', 'evaluate'])).stdout).toBe('1 alert(s) raised, 0 resolved\n');
  expect((await elevate(['alerts', 'evaluate'])).stdout).toBe('0 alert(s) raised, 0 resolved\n');
  const listed = await elevate(['alerts', 'list']);
  expect(listed.code).toBe(0);
  const [header, row, ...more] = listed.stdout.trimEnd().split('\n');
  expect(header).toMatch(/^ID +ALERT +ROLE +RAISED +WHAT$/);
  expect(more).toEqual([]);
  expect(row).toContain('Sensitive role without approval or MFA');
  expect(row).toContain('payroll is sensitive but activates without approval and without MFA');
  const id = row?.split(' ')[0] ?? '';

  // The role now requires MFA: the next pass resolves the alert.
  expect((await applyPolicy(true)).code).toBe(0);
  expect((await elevate(['alerts', 'evaluate'])).stdout).toBe('0 alert(s) raised, 1 resolved\n');
  expect((await elevate(['alerts', 'list'])).stdout).toBe('no open alerts\n');
  const all = await elevate(['alerts', 'list', '--all']);
  expect(all.stdout).toMatch(/RESOLVED/);
  expect(all.stdout).toMatch(new RegExp(`^${id} .* by system`, 'm'));

  // Actions on it: one clear line each, never a stack trace.
  const resolved = await elevate(['alerts', 'revoke', id]);
  expect(resolved.code).toBe(1);
  expect(resolved.stderr).toMatch(/^elevate: This alert was already resolved by system at \S+\.\n$/);
  const unknown = await elevate(['alerts', 'remove-eligibility', 'nope']);
  expect([unknown.code, unknown.stderr]).toEqual([1, 'elevate: There is no alert with id nope.\n']);
  const missing = await elevate(['alerts', 'revoke']);
  expect([missing.code, missing.stderr]).toEqual([
    2,
    'elevate alerts revoke: missing the alert id (see elevate alerts revoke --help)\n',
  ]);
}, 300_000);

test('a bad threshold in the policy file is one line naming it, and nothing is applied', async () => {
  const run = await applyPolicy(false, 'alerts:\n  staleEligibility: { after: soon }\n');
  expect(run.code).toBe(1);
  expect(run.stderr).toContain('alerts.staleEligibility.after: "soon" is not a duration');
}, 180_000);

test('the alerts channel is set, shown in the diff, exported and taken away by the policy file; a bad one is refused', async () => {
  const channel = "alerts:\n  channel: { slack: C0123ABCD, teams: '19:abc@thread.tacv2' }\n";
  const applied = await applyPolicy(false, channel);
  expect(applied.stderr).toBe('');
  expect(applied.stdout).toContain('~ alerts: channel.slack (none) → C0123ABCD');
  expect(applied.stdout).toContain('~ alerts: channel.teams (none) → 19:abc@thread.tacv2');
  expect((await applyPolicy(false, channel)).stdout).not.toContain('channel.');
  const exported = await elevate(['export']);
  expect(exported.stdout).toMatch(
    /alerts:\n {2}channel:\n {4}slack: C0123ABCD\n {4}teams: 19:abc@thread\.tacv2\n/,
  );

  const bad = await applyPolicy(false, 'alerts:\n  channel: { slack: "#security" }\n');
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('alerts.channel.slack: "#security" is not a Slack channel id');
  expect((await elevate(['export'])).stdout).toContain('slack: C0123ABCD');

  const removed = await applyPolicy(false, 'alerts:\n  channel: { teams: "19:abc@thread.tacv2" }\n');
  expect(removed.stdout).toContain('~ alerts: channel.slack C0123ABCD → (none)');
}, 300_000);

test('alerts scan compares the targets and looks for alerts now, audited in the operator’s name', async () => {
  const scanned = await elevate(['alerts', 'scan']);
  expect(scanned.stderr).toBe('');
  // No role has a listable target; payroll needs neither approval nor MFA (applied above).
  expect(scanned.stdout).toMatch(
    /^0 role\(s\) compared with their target, 0 new holder\(s\) found outside Elevate; [01] alert\(s\) raised, 0 resolved\n$/,
  );
  expect((await elevate(['alerts', 'list'])).stdout).toContain('payroll is sensitive but activates');
  const audit = await elevate(['audit', 'export', '--format', 'jsonl']);
  const events = audit.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { action: string; actor: string });
  expect(events.filter((e) => e.action === 'alerts.scan_requested').map((e) => e.actor)).toEqual([
    expect.stringMatching(/^cli:/),
  ]);
}, 300_000);
