import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { and, eq } from '../../src/db/drizzle.ts';
import type { RoleInput } from '../../src/elevation/admin-service.ts';
import { notifications } from '../../src/elevation/notification.sql.ts';
import { reconcileFindings } from '../../src/elevation/reconcile.sql.ts';
import { createReconcileService } from '../../src/elevation/reconcile-service.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';
import { type FakeGraph, startFakeGraph } from '../support/fake-graph.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../support/fake-slack-api.ts';

// Elevate's own database is PGlite or PostgreSQL (DATABASE_URL); the postgres provider's target is
// always the real PostgreSQL server, as in its provider test. Target roles carry this run's suffix.
const serverUrl = process.env.TARGET_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const run = randomUUID().slice(0, 8);
const target = postgres(serverUrl, { max: 2, onnotice: () => {} });
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const TOKEN = 'xoxb-reconcile-test';

let database: TestDatabase;
let graph: FakeGraph;
let slack: FakeSlackApi;
const targetRoles: string[] = [];

beforeAll(async () => {
  database = await openTestDatabase();
  graph = await startFakeGraph({ pageSize: 2 });
  slack = await startFakeSlackApi({ token: TOKEN });
});
afterAll(async () => {
  for (const role of targetRoles.reverse()) await target.unsafe(`drop role if exists ${ident(role)}`);
  await target.end();
  await slack?.close();
  await graph?.close();
  await database?.close();
});

/** A role (group or login) on the target server, dropped at the end. */
async function targetRole(name: string, login = false): Promise<string> {
  const full = `${name}_${run}`;
  await target.unsafe(`create role ${ident(full)}${login ? ' login' : ''}`);
  targetRoles.push(full);
  return full;
}

async function isMember(group: string, login: string): Promise<boolean> {
  const [row] = await target<{ member: boolean }[]>`
    select exists (select 1 from pg_auth_members m
      join pg_roles g on g.oid = m.roleid join pg_roles l on l.oid = m.member
      where g.rolname = ${group} and l.rolname = ${login}) as member`;
  return row?.member ?? false;
}

let n = 0;
/** A core on the shared database with real providers, its admin, a role and an eligible requester. */
async function scene(provider: RoleInput['provider'], settings: RoleInput['settings'] = {}) {
  n += 1;
  const core = createCore(database.db, new Date('2026-06-01T09:00:00Z'), {
    env: { TARGET_PG_URL: serverUrl, ...graph.env(), SLACK_BOT_TOKEN: TOKEN, SLACK_API_URL: slack.url },
  });
  const reconcile = createReconcileService({ db: database.db, providers: core.providers, clock: core.clock });
  const admin = `ana${n}@example.com`;
  await core.admin.setAdmins(core.cli, [admin]);
  const role = `reconciled-${n}`;
  await core.admin.saveRole(core.cli, {
    name: role,
    provider,
    settings: { requireJustification: false, ...settings },
  });
  /** Makes `email` eligible and activates the role for them. */
  const activate = async (email: string) => {
    await core.eligible(email, role);
    return core.activations.requestActivation({ actor: await core.person(email), roleName: role });
  };
  /** The reconciliation audit events of the role, oldest first. */
  const events = async () =>
    (
      await database.db
        .select({ action: auditEvents.action, data: auditEvents.data })
        .from(auditEvents)
        .where(eq(auditEvents.subjectId, role))
        .orderBy(auditEvents.seq)
    ).filter((e) => e.action.startsWith('role.unmanaged'));
  /** The admin notices about unmanaged grants of this role: `unmanaged_grant` alerts raised, or the `kind` given. */
  const alerts = async (kind?: string) =>
    (
      await database.db
        .select()
        .from(notifications)
        .where(eq(notifications.kind, kind ?? 'alert_raised'))
    ).filter((row) => row.data.role === role && (kind !== undefined || row.data.kind === 'unmanaged_grant'));
  /** The next tick of the 5-minute schedule. */
  const nextRun = () => {
    core.advance(5);
    return reconcile.reconcileAll();
  };
  return { core, reconcile, role, admin, activate, events, alerts, nextRun };
}

describe('reconcile: postgres role membership on the real server', () => {
  test('a member with no activation is reported once, audited, left in place; an active one is not', async () => {
    const group = await targetRole('readers', false);
    const dee = await targetRole('dee', true);
    const mallory = await targetRole('mallory', true);
    const s = await scene({ type: 'postgres', connection: 'env:TARGET_PG_URL', role: group });
    await s.activate(`${dee}@example.com`);
    expect(await isMember(group, dee)).toBe(true);
    await target.unsafe(`grant ${ident(group)} to ${ident(mallory)}`);

    await s.nextRun();
    expect(await s.events()).toEqual([
      { action: 'role.unmanaged_grant_found', data: { role: s.role, account: mallory, revoking: false } },
    ]);
    expect(await s.alerts()).toHaveLength(1);
    // Another run, as after a restart or on another replica: nothing new.
    await s.nextRun();
    await s.nextRun();
    expect(await s.alerts()).toHaveLength(1);
    expect((await s.events()).map((e) => e.action)).toEqual(['role.unmanaged_grant_found']);
    // Not revoked: the role does not say so.
    expect(await isMember(group, mallory)).toBe(true);
    expect(await isMember(group, dee)).toBe(true);

    // Gone: the finding closes, and a later grant outside Elevate is news again.
    await target.unsafe(`revoke ${ident(group)} from ${ident(mallory)}`);
    await s.nextRun();
    expect((await s.events()).map((e) => e.action)).toEqual([
      'role.unmanaged_grant_found',
      'role.unmanaged_grant_resolved',
    ]);
    await target.unsafe(`grant ${ident(group)} to ${ident(mallory)}`);
    await s.nextRun();
    expect(await s.alerts()).toHaveLength(2);
  });

  test('with revokeUnmanagedGrants the member is revoked through the provider and audited', async () => {
    const group = await targetRole('writers', false);
    const dee = await targetRole('dee_w', true);
    const mallory = await targetRole('mallory_w', true);
    const s = await scene(
      { type: 'postgres', connection: 'env:TARGET_PG_URL', role: group },
      { revokeUnmanagedGrants: true },
    );
    await s.activate(`${dee}@example.com`);
    await target.unsafe(`grant ${ident(group)} to ${ident(mallory)}`);

    expect(await s.nextRun()).toMatchObject({ found: 1, revoked: 1 });
    expect(await isMember(group, mallory)).toBe(false);
    expect(await isMember(group, dee)).toBe(true); // the running activation keeps its grant
    expect(await s.alerts()).toMatchObject([{ data: { subject: mallory, details: { revoking: true } } }]);
    await s.nextRun();
    expect((await s.events()).map((e) => e.action)).toEqual([
      'role.unmanaged_grant_found',
      'role.unmanaged_grant_revoked',
      'role.unmanaged_grant_resolved',
    ]);
  });

  test('two replicas at the same tick report an unmanaged member once', async () => {
    const group = await targetRole('auditors', false);
    const mallory = await targetRole('mallory_r', true);
    const s = await scene({ type: 'postgres', connection: 'env:TARGET_PG_URL', role: group });
    await target.unsafe(`grant ${ident(group)} to ${ident(mallory)}`);
    const other = createReconcileService({
      db: database.db,
      providers: s.core.providers,
      clock: s.core.clock,
    });
    s.core.advance(5);
    const outcomes = await Promise.all([s.reconcile.reconcileAll(), other.reconcileAll()]);
    expect(outcomes.reduce((sum, o) => sum + o.found, 0)).toBeGreaterThanOrEqual(1);
    expect(await s.alerts()).toHaveLength(1);
    // The leases they took hold until the next tick: a third replica now finds every role taken.
    const third = createReconcileService({
      db: database.db,
      providers: s.core.providers,
      clock: s.core.clock,
    });
    expect(await third.reconcileAll()).toEqual({ roles: 0, found: 0, revoked: 0 });
    expect((await s.nextRun()).roles).toBeGreaterThan(0);
  });
});

describe('reconcile: entra-group through the fake Graph', () => {
  test('a member added in the portal is reported, then revoked when the role says so', async () => {
    const group = randomUUID();
    graph.addGroup(group);
    const dee = graph.addUser({ id: randomUUID(), userPrincipalName: `dee-${run}@example.com` });
    const eve = graph.addUser({ id: randomUUID(), userPrincipalName: `eve-${run}@example.com` });
    const s = await scene({ type: 'entra-group', group }, { revokeUnmanagedGrants: false });
    await s.activate(dee.userPrincipalName);
    graph.addMember(group, eve.id);

    await s.nextRun();
    expect(await s.alerts()).toMatchObject([{ data: { subject: eve.id, details: { revoking: false } } }]);
    expect(graph.members(group).sort()).toEqual([dee.id, eve.id].sort());

    await s.core.admin.saveRole(s.core.cli, {
      name: s.role,
      provider: { type: 'entra-group', group },
      settings: { requireJustification: false, revokeUnmanagedGrants: true },
    });
    await s.nextRun();
    expect(graph.members(group)).toEqual([dee.id]);
    expect(await s.alerts()).toHaveLength(1); // revoking an open finding does not alert again
  });
});

describe('reconcile: slack-usergroup through the fake Slack API', () => {
  test('standing holders are left be; a revoke in flight is not reported; an outsider is revoked', async () => {
    slack.addUser({ id: 'U0ANA', email: 'ana-standing@example.com' });
    slack.addUser({ id: 'U0DEE', email: `dee-${run}@example.com` });
    slack.addUser({ id: 'U0EVE', email: `eve-${run}@example.com` });
    slack.addUsergroup({ id: 'S0ONCALL', handle: 'oncall', users: ['U0ANA'] });
    const s = await scene(
      { type: 'slack-usergroup', usergroup: 'S0ONCALL' },
      { standingHolders: ['U0ANA'], revokeUnmanagedGrants: true, minActiveBeforeDeactivation: 0 },
    );
    const view = await s.activate(`dee-${run}@example.com`);
    // Dee's revoke fails for now: the activation stays `revoking` and dee stays in the group.
    slack.failNext({ status: 503 });
    const deactivated = await s.core.activations.deactivate({
      actor: await s.core.person(`dee-${run}@example.com`),
      activationId: view.activation.id,
    });
    expect(deactivated.activation.status).toBe('revoking');
    slack.usergroups.get('S0ONCALL')?.users.push('U0EVE');

    expect(await s.nextRun()).toMatchObject({ found: 1, revoked: 1 });
    expect(await s.alerts()).toMatchObject([{ data: { subject: 'U0EVE' } }]);
    expect(slack.usergroups.get('S0ONCALL')?.users).toEqual(['U0ANA', 'U0DEE']);
  });

  test('a revoke the target refuses alerts the admins once, and is tried again on later runs', async () => {
    slack.addUser({ id: 'U0SOLO', email: `solo-${run}@example.com` });
    slack.addUsergroup({ id: 'S0SOLO', handle: 'solo', users: ['U0SOLO'] });
    const s = await scene({ type: 'slack-usergroup', usergroup: 'S0SOLO' }, { revokeUnmanagedGrants: true });
    // Slack cannot empty a user group: removing its last member fails permanently.
    await s.nextRun();
    await s.nextRun();
    expect(await s.alerts('unmanaged_grant_revoke_failed')).toHaveLength(1);
    const [finding] = await database.db
      .select()
      .from(reconcileFindings)
      .where(and(eq(reconcileFindings.account, 'U0SOLO')));
    expect(finding).toMatchObject({ revokeAttempts: 2, lastError: expect.stringContaining('last member') });
  });
});
