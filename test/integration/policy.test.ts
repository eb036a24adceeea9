import { afterEach, beforeEach, expect, test } from 'vitest';
import { z } from 'zod';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import type { Db } from '../../src/db/client.ts';
import { asc, eq } from '../../src/db/drizzle.ts';
import { activations } from '../../src/elevation/activation.sql.ts';
import { principalActor } from '../../src/elevation/actor.ts';
import { createAdminService } from '../../src/elevation/admin-service.ts';
import { notifications } from '../../src/elevation/notification.sql.ts';
import { principals } from '../../src/elevation/principal.sql.ts';
import { eligibilities, roles } from '../../src/elevation/role.sql.ts';
import { GrantError } from '../../src/grants/grant-provider.ts';
import { createProviderRegistry, PROVIDERS } from '../../src/grants/registry.ts';
import { type ApplyResult, createPolicyService } from '../../src/policy/policy-service.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

// A fresh database per test: the audit log is append-only, so tests cannot clear it.
let database: TestDatabase;
beforeEach(async () => {
  database = await openTestDatabase();
});
afterEach(() => database?.close());

function setup() {
  const core = createCore(database.db);
  const policy = createPolicyService({
    db: core.db,
    providers: core.providers,
    clock: core.clock,
    admin: core.admin,
  });
  const apply = (text: string, dryRun = false) =>
    policy.apply({ actor: core.cli, text, fileName: 'policy.yaml', dryRun });
  return { core, policy, apply };
}

function changes(result: ApplyResult): string[] {
  if (!result.ok) throw new Error(`unexpected problems:\n${result.problems.join('\n')}`);
  return result.changes;
}

function problems(result: ApplyResult): string[] {
  if (result.ok) throw new Error(`expected problems, got changes:\n${result.changes.join('\n')}`);
  return result.problems;
}

/** Everything apply could touch, to compare before and after. */
async function snapshot(db: Db) {
  return {
    principals: await db.select().from(principals).orderBy(asc(principals.email)),
    roles: await db.select().from(roles).orderBy(asc(roles.name)),
    eligibilities: await db.select().from(eligibilities).orderBy(asc(eligibilities.id)),
    activations: await db.select().from(activations).orderBy(asc(activations.id)),
    notifications: (await db.select().from(notifications)).length,
    audit: (await db.select().from(auditEvents)).length,
  };
}

const POLICY = `
admins: [ana@example.com]
roles:
  - name: prod-db-admin
    description: Admin on the production database
    scope: prod/db
    provider: { type: recording }
    settings:
      maxDuration: 2h
      minDuration: 1m
      defaultDuration: 1h
      requireJustification: true
      requireTicket: false
      ticketPattern: "^INC[0-9]+$"
      requireApproval: true
      approvers: [bo@example.com, cy@example.com]
      approvalsRequired: 1
      approvalTimeout: 24h
      allowCustomStart: true
      allowExtension: true
  - name: staging-admin
    scope: staging
    provider: { type: recording }
    settings: { allowPermanentEligibility: false, maxEligibility: 90d }
eligibility:
  - { principal: dee@example.com, role: prod-db-admin, end: 2027-12-31 }
  - { principal: eve@example.com, role: staging-admin, end: 2026-08-01, justification: on call }
activeAssignments:
  - { principal: fay@example.com, role: staging-admin, end: 2026-06-03T09:00:00Z, justification: migration }
`;

test('apply makes the database match; a second apply changes nothing and writes nothing', async () => {
  const { core, apply } = setup();
  const first = changes(await apply(POLICY));
  expect(first).toEqual([
    '+ admin ana@example.com',
    '+ role prod-db-admin',
    '+ role staging-admin',
    // A bare end date holds through that day: the window ends at the next midnight.
    '+ eligibility dee@example.com → prod-db-admin (until 2028-01-01 00:00Z)',
    '+ eligibility eve@example.com → staging-admin (until 2026-08-02 00:00Z)',
    '+ active assignment fay@example.com → staging-admin (until 2026-06-03 09:00Z)',
  ]);

  const [prod] = await core.db.select().from(roles).where(eq(roles.name, 'prod-db-admin'));
  expect(prod?.settings).toMatchObject({ maxDuration: 120, minDuration: 1, requireApproval: true });
  const [dee] = await core.db
    .select()
    .from(eligibilities)
    .innerJoin(roles, eq(roles.id, eligibilities.roleId));
  // A bare end date holds through that day.
  expect(dee?.eligibilities.endAt).toEqual(new Date('2028-01-01T00:00:00Z'));
  const [applied] = await core.db.select().from(auditEvents).where(eq(auditEvents.action, 'policy.applied'));
  expect(applied).toMatchObject({
    actor: 'cli:test',
    subjectType: 'policy',
    subjectId: 'policy.yaml',
    data: { file: 'policy.yaml', added: 6, changed: 0, removed: 0 },
  });

  const before = await snapshot(core.db);
  const second = await apply(POLICY);
  expect(second).toEqual({ ok: true, changes: [], applied: false });
  expect(await snapshot(core.db)).toEqual(before);
});

test('the active assignment in the file is granted through its provider', async () => {
  const { core, apply } = setup();
  changes(await apply(POLICY));
  const [fay] = await core.db
    .select()
    .from(activations)
    .innerJoin(principals, eq(principals.id, activations.principalId))
    .where(eq(principals.email, 'fay@example.com'));
  expect(fay?.activations).toMatchObject({
    kind: 'assignment',
    status: 'active',
    endAt: new Date('2026-06-03T09:00:00Z'),
    justification: 'migration',
  });
  expect(core.recording.held.has('fay@example.com/staging-admin')).toBe(true);
});

test('changing a setting or an end shows old → new and applies only that', async () => {
  const { core, apply } = setup();
  changes(await apply(POLICY));
  const edited = POLICY.replace('maxDuration: 2h', 'maxDuration: 4h')
    .replace('end: 2027-12-31', 'end: 2027-06-30')
    .replace('end: 2026-06-03T09:00:00Z', 'end: 2026-06-04T09:00:00Z');
  expect(changes(await apply(edited))).toEqual([
    '~ role prod-db-admin: maxDuration 2h → 4h',
    '~ eligibility dee@example.com → prod-db-admin: until 2028-01-01 00:00Z → until 2027-07-01 00:00Z',
    '~ active assignment fay@example.com → staging-admin: until 2026-06-03 09:00Z → until 2026-06-04 09:00Z',
  ]);
  expect(core.recording.held.has('fay@example.com/staging-admin')).toBe(true);
  expect(changes(await apply(edited))).toEqual([]);
});

test('a dry run prints the diff and writes nothing', async () => {
  const { core, apply } = setup();
  const before = await snapshot(core.db);
  const result = await apply(POLICY, true);
  expect(result).toMatchObject({ ok: true, applied: false });
  expect(changes(result)).toHaveLength(6);
  expect(await snapshot(core.db)).toEqual(before);
  expect(core.recording.calls).toEqual([]);
});

test('a bad file lists every problem with its path and applies nothing', async () => {
  const { core, apply } = setup();
  changes(await apply(POLICY));
  const before = await snapshot(core.db);
  const bad = `
admins: [ana@example.com, not-an-email]
roles:
  - name: prod-db-admin
    provider: { type: recording }
  - name: staging-admin
    provider: { type: recording }
    settings: { allowPermanentEligibility: false, maxEligibility: 90d }
  - name: new-role
    provider: { type: nowhere }
    settings: { maxDuration: 9x, requireAproval: true }
eligibility:
  - { principal: dee@example.com, role: no-such-role }
  - { principal: eve@example.com, role: staging-admin }
  - { principal: gus@example.com, role: new-role }
activeAssignments:
  - { principal: fay@example.com, role: staging-admin }
`;
  expect(problems(await apply(bad))).toEqual([
    'admins[1]: "not-an-email" is not an email address',
    'roles[2].settings.maxDuration: "9x" is not a duration (use 30m, 8h, 2d or ISO 8601)',
    'roles[2].settings.requireAproval: is not a role setting (did you mean requireApproval?)',
    'eligibility[0]: There is no role named "no-such-role".',
    'eligibility[1].end: staging-admin does not allow a permanent eligibility; set an end at most 90d after the start.',
    'activeAssignments[0].end: staging-admin does not allow a permanent active assignment; set an end at most 15d after the start.',
  ]);
  expect(await snapshot(core.db)).toEqual(before);

  // Once the entries parse, the provider is checked too.
  const fixed = bad
    .replace(', not-an-email', '')
    .replace('maxDuration: 9x, requireAproval: true', 'maxDuration: 2h')
    .replace('role: no-such-role', 'role: prod-db-admin');
  expect(problems(await apply(fixed))).toEqual([
    `roles[2].provider.type: "nowhere" is not a known provider (known: ${core.providers.types().join(', ')})`,
    'eligibility[1].end: staging-admin does not allow a permanent eligibility; set an end at most 90d after the start.',
    'activeAssignments[0].end: staging-admin does not allow a permanent active assignment; set an end at most 15d after the start.',
  ]);
  expect(await snapshot(core.db)).toEqual(before);
});

test('an open activation the assignment would clash with is reported with its path', async () => {
  const { core, apply } = setup();
  changes(await apply(POLICY));
  // dee activates prod-db-admin herself; the file then wants an admin's assignment of it.
  await core.activations.requestActivation({
    actor: principalActor({
      id: await principalId(core.db, 'dee@example.com'),
      email: 'dee@example.com',
      isAdmin: false,
    }),
    roleName: 'prod-db-admin',
    justification: 'INC1 fix',
  });
  const before = await snapshot(core.db);
  const result = await apply(
    `${POLICY.replace('admins: [ana@example.com]', 'admins: [ana@example.com, hal@example.com]')}  - { principal: dee@example.com, role: prod-db-admin, end: 2026-06-01T10:00:00Z, justification: x }\n`,
  );
  expect(problems(result)).toEqual([
    'activeAssignments[1]: dee@example.com already has an open activation of prod-db-admin (pending_approval); it must end first.',
  ]);
  expect(await snapshot(core.db)).toEqual(before);
});

test('problems only the database reveals are listed with the shape problems, each with its path', async () => {
  const { core, apply } = setup();
  changes(await apply(POLICY));
  await core.activations.requestActivation({
    actor: await core.person('dee@example.com'),
    roleName: 'prod-db-admin',
    justification: 'INC1 fix',
  });
  const before = await snapshot(core.db);
  const bad = `${POLICY.replace('admins: [ana@example.com]', 'admins: [ana@example.com, nobody]')
    // staging-admin forbids a permanent eligibility: only the stored role can tell.
    .replace('end: 2026-08-01, justification: on call', 'justification: on call')
    .replace(
      'activeAssignments:',
      '  - { principal: gus@example.com, role: prod-db-admin, end: 2027-02-30 }\nactiveAssignments:',
    )}  - { principal: dee@example.com, role: prod-db-admin, end: 2026-06-01T10:00:00Z, justification: x }\n`;
  expect(problems(await apply(bad))).toEqual([
    'admins[1]: "nobody" is not an email address',
    'eligibility[1].end: staging-admin does not allow a permanent eligibility; set an end at most 90d after the start.',
    'eligibility[2].end: "2027-02-30" is not a date (use 2027-12-31 or 2027-12-31T17:00:00Z)',
    'activeAssignments[1]: dee@example.com already has an open activation of prod-db-admin (pending_approval); it must end first.',
  ]);
  expect(await snapshot(core.db)).toEqual(before);
  expect(problems(await apply(bad, true))).toHaveLength(4);
  expect(await snapshot(core.db)).toEqual(before);
});

test('an entry for a role the file no longer lists is a problem, not left on an archived role', async () => {
  const { core, apply } = setup();
  changes(await apply(POLICY));
  const before = await snapshot(core.db);
  const withoutStaging = POLICY.replace(/ {2}- name: staging-admin\n(?: {4}.*\n)+/, '');
  expect(withoutStaging).not.toContain('name: staging-admin');
  expect(problems(await apply(withoutStaging))).toEqual([
    'eligibility[1].role: "staging-admin" is not among this file\'s roles, so this apply archives it',
    'activeAssignments[0].role: "staging-admin" is not among this file\'s roles, so this apply archives it',
  ]);
  expect(await snapshot(core.db)).toEqual(before);
});

test('removing a role, an eligibility or an assignment from the file archives or removes it', async () => {
  const { core, apply } = setup();
  changes(await apply(POLICY));
  const smaller = `
admins: [ana@example.com]
roles:
  - name: prod-db-admin
    description: Admin on the production database
    scope: prod/db
    provider: { type: recording }
    settings:
      maxDuration: 2h
      minDuration: 1m
      ticketPattern: "^INC[0-9]+$"
      requireApproval: true
      approvers: [bo@example.com, cy@example.com]
eligibility:
  - { principal: dee@example.com, role: prod-db-admin, end: 2027-12-31 }
activeAssignments: []
`;
  expect(changes(await apply(smaller))).toEqual([
    '- role staging-admin (archived)',
    '- eligibility eve@example.com → staging-admin',
    '- active assignment fay@example.com → staging-admin (revoked)',
  ]);
  const [staging] = await core.db.select().from(roles).where(eq(roles.name, 'staging-admin'));
  expect(staging?.archivedAt).not.toBeNull();
  expect(
    await core.db
      .select()
      .from(eligibilities)
      .where(eq(eligibilities.roleId, staging?.id ?? '')),
  ).toEqual([]);
  const [fay] = await core.db
    .select()
    .from(activations)
    .where(eq(activations.roleId, staging?.id ?? ''));
  expect(fay?.status).toBe('ended');
  expect(core.recording.held.has('fay@example.com/staging-admin')).toBe(false);
  expect(changes(await apply(smaller))).toEqual([]);

  // Listing the role again brings it back.
  expect(changes(await apply(POLICY))).toEqual([
    '+ role staging-admin (restored from archive)',
    '+ eligibility eve@example.com → staging-admin (until 2026-08-02 00:00Z)',
    '+ active assignment fay@example.com → staging-admin (until 2026-06-03 09:00Z)',
  ]);
  expect(changes(await apply(POLICY))).toEqual([]);
});

test('a file manages only the sections it has', async () => {
  const { core, apply } = setup();
  changes(await apply(POLICY));
  expect(changes(await apply('admins: [ana@example.com, bo@example.com]'))).toEqual([
    '+ admin bo@example.com',
  ]);
  expect(changes(await apply('eligibility: []'))).toEqual([
    '- eligibility dee@example.com → prod-db-admin',
    '- eligibility eve@example.com → staging-admin',
  ]);
  const live = await core.db.select().from(roles);
  expect(live.every((r) => r.archivedAt === null)).toBe(true);
});

test('export → apply is a no-op, and the export is the documented format', async () => {
  const { core, policy, apply } = setup();
  changes(await apply(POLICY));
  // Some state made outside the file: a chat-made eligibility with an exact end, a scheduled assignment.
  await core.admin.assignEligibility(core.cli, {
    email: 'ivy@example.com',
    roleName: 'prod-db-admin',
    endAt: new Date('2026-09-15T12:34:56.789Z'),
  });
  await core.admin.assignActive(core.cli, {
    email: 'jo@example.com',
    roleName: 'staging-admin',
    startAt: new Date('2026-06-05T08:00:00Z'),
    endAt: new Date('2026-06-06T08:00:00Z'),
    justification: 'release night',
  });
  const exported = await policy.exportPolicy();
  expect(exported).toContain('admins: [ ana@example.com ]');
  expect(exported).toContain('- { principal: dee@example.com, role: prod-db-admin, end: 2027-12-31 }');
  expect(exported).toContain('maxDuration: 2h');
  const before = await snapshot(core.db);
  expect(await policy.apply({ actor: core.cli, text: exported, fileName: 'export.yaml' })).toEqual({
    ok: true,
    changes: [],
    applied: false,
  });
  expect(await snapshot(core.db)).toEqual(before);
});

test('concurrent applies of one file: one makes the changes, the other finds none', async () => {
  const { core, apply } = setup();
  const results = await Promise.all([apply(POLICY), apply(POLICY), apply(POLICY)]);
  const sizes = results.map((r) => changes(r).length).sort();
  expect(sizes).toEqual([0, 0, 6]);
  const applied = await core.db.select().from(auditEvents).where(eq(auditEvents.action, 'policy.applied'));
  expect(applied).toHaveLength(1);
});

test('only an admin may apply', async () => {
  const { core, policy } = setup();
  const dee = await core.person('dee@example.com');
  await expect(policy.apply({ actor: dee, text: POLICY, fileName: 'policy.yaml' })).rejects.toThrow(
    'Only an Elevate admin',
  );
});

test('an operation refusing during apply rolls the whole file back', async () => {
  const { core, apply } = setup();
  // fay's grant fails with a retryable error, so her assignment stays `activating`.
  core.recording.failWith(new GrantError('target system is down', { retryable: true }));
  changes(await apply(POLICY));
  const before = await snapshot(core.db);
  const fay = before.activations.find((a) => a.kind === 'assignment');
  expect(fay?.status).toBe('activating');
  // Unchanged while the grant is retried is still unchanged.
  expect(await apply(POLICY)).toEqual({ ok: true, changes: [], applied: false });
  expect(await snapshot(core.db)).toEqual(before);
  // The admins change comes first and succeeds; moving the end of an assignment that is being
  // granted is refused by assignActive, so the admins change must be rolled back with it.
  const edited = POLICY.replace(
    'admins: [ana@example.com]',
    'admins: [ana@example.com, hal@example.com]',
  ).replace('end: 2026-06-03T09:00:00Z', 'end: 2026-06-04T09:00:00Z');
  expect(problems(await apply(edited))).toEqual([
    'activeAssignments[0]: The active assignment fay@example.com → staging-admin is activating right now; try again in a moment.',
  ]);
  expect(await snapshot(core.db)).toEqual(before);
});

async function principalId(db: Db, email: string): Promise<string> {
  const [row] = await db.select().from(principals).where(eq(principals.email, email));
  if (!row) throw new Error(`no principal ${email}`);
  return row.id;
}

test('principals map account names per provider; the file manages every mapping', async () => {
  const { apply: write, policy } = setup();
  const first = await write(`principals:
  - { email: Carol@Example.com, accounts: { postgres: carol_dba, slack: U0CAROL } }
  - { email: dan@example.com, accounts: { postgres: dan } }
`);
  expect(first).toEqual({
    ok: true,
    applied: true,
    changes: [
      '~ accounts of carol@example.com: none → postgres=carol_dba, slack=U0CAROL',
      '~ accounts of dan@example.com: none → postgres=dan',
    ],
  });
  expect(
    await write(
      'principals:\n  - { email: carol@example.com, accounts: { postgres: carol_dba, slack: U0CAROL } }\n',
    ),
  ).toEqual({
    ok: true,
    applied: true,
    changes: ['~ accounts of dan@example.com: postgres=dan → none'],
  });
  const exported = await policy.exportPolicy();
  expect(exported).toContain('principals:');
  expect(await write(exported)).toEqual({ ok: true, applied: false, changes: [] });
  const bad = await write('principals:\n  - { email: not-an-email, accounts: { Postgres: x } }\n');
  expect(bad).toEqual({
    ok: false,
    problems: [
      'principals[0].email: "not-an-email" is not an email address',
      'principals[0].accounts.Postgres: is not a provider type (e.g. postgres, slack, entra)',
    ],
  });
});

test('a dry run asks each provider whether its target is usable and says what is wrong', async () => {
  const { core } = setup();
  const probe = {
    type: 'probe',
    roleConfig: z.object({ target: z.string() }).strict(),
    create: () => ({ type: 'probe', grant: async () => {}, revoke: async () => {} }),
    verify: async (config: { target: string }) =>
      config.target === 'down' ? [`${config.target} does not answer`] : [],
  };
  const providers = createProviderRegistry({ env: {}, definitions: [...PROVIDERS, probe] });
  const admin = createAdminService({
    db: core.db,
    providers,
    clock: core.clock,
    settle: core.activations.settle,
  });
  const policy = createPolicyService({ db: core.db, providers, clock: core.clock, admin });
  const text = `roles:
  - { name: up, provider: { type: probe, target: up } }
  - { name: down, provider: { type: probe, target: down } }
`;
  const before = await snapshot(core.db);
  expect(await policy.apply({ actor: core.cli, text, fileName: 'p.yaml', dryRun: true })).toEqual({
    ok: false,
    problems: ['roles[1].provider: down does not answer'],
  });
  expect(await snapshot(core.db)).toEqual(before);
  // A real apply does not probe the network: it writes the roles as the file says.
  expect(await policy.apply({ actor: core.cli, text, fileName: 'p.yaml' })).toMatchObject({
    ok: true,
    applied: true,
  });
});
