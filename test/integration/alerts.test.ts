import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { and, eq } from '../../src/db/drizzle.ts';
import { createActivationService } from '../../src/elevation/activation-service.ts';
import { type Actor, cliActor, principalActor } from '../../src/elevation/actor.ts';
import { createAdminService, type RoleInput } from '../../src/elevation/admin-service.ts';
import { alerts } from '../../src/elevation/alert.sql.ts';
import type { AlertView } from '../../src/elevation/alert-repository.ts';
import { createAlertService, raiseAlerts, saveAlertSettings } from '../../src/elevation/alert-service.ts';
import { type AlertSettingsInput, alertSettingsSchema } from '../../src/elevation/alert-settings.ts';
import { MINUTE_MS } from '../../src/elevation/duration.ts';
import { notifications } from '../../src/elevation/notification.sql.ts';
import { ensurePrincipal, findPrincipalByEmail } from '../../src/elevation/principal-repository.ts';
import { reconcileFindings } from '../../src/elevation/reconcile.sql.ts';
import { createReconcileService } from '../../src/elevation/reconcile-service.ts';
import { findEligibility, getRoleByName } from '../../src/elevation/role-repository.ts';
import type { GrantProvider } from '../../src/grants/grant-provider.ts';
import { createProviderRegistry, PROVIDERS } from '../../src/grants/registry.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

const DAY = 1440;
const ADMIN = 'ana@example.com';

/**
 * A target that knows its holders by email (so reconciliation can list it), with a switch that
 * makes the next revokes fail.
 */
function createListingTarget() {
  const held = new Set<string>();
  let failRevokes = 0;
  const provider: GrantProvider = {
    type: 'listing',
    async grant(target) {
      held.add(target.principal.email);
    },
    async revoke(target) {
      if (failRevokes > 0) {
        failRevokes--;
        throw new Error('target unreachable');
      }
      held.delete(target.principal.accounts.listing ?? target.principal.email);
    },
    async check(target) {
      return held.has(target.principal.email);
    },
    async members() {
      return [...held];
    },
    async accountOf(_role, principal) {
      return principal.email;
    },
  };
  return { provider, held, failNextRevokes: (n: number) => (failRevokes = n) };
}

let n = 0;
/**
 * The core, reconciliation and alerts on the shared database (reconciliation also sees earlier
 * scenes' roles, so every check looks at this scene's role only), a clock the test moves, a fresh role. */
async function scene(settings: RoleInput['settings'] = {}, thresholds: AlertSettingsInput = {}) {
  n += 1;
  let now = new Date('2026-06-01T09:00:00Z');
  const clock = () => now;
  const target = createListingTarget();
  const providers = createProviderRegistry({
    env: {},
    definitions: [
      ...PROVIDERS,
      { type: 'listing', roleConfig: z.object({}).strict(), create: () => target.provider },
    ],
  });
  const activations = createActivationService({ db: database.db, providers, clock });
  const admin = createAdminService({ db: database.db, providers, clock, settle: activations.settle });
  const reconcile = createReconcileService({ db: database.db, providers, clock });
  const service = createAlertService({ db: database.db, providers, clock, reconcile });
  const cli = cliActor('test');
  await admin.setAdmins(cli, [ADMIN]);
  await admin.batch(cli, (ctx) => saveAlertSettings(ctx, alertSettingsSchema.parse(thresholds)));
  const role = `watched-${n}`;
  await admin.saveRole(cli, {
    name: role,
    provider: { type: 'listing' },
    settings: { requireJustification: false, maxDuration: 60, minDuration: 5, ...settings },
  });
  const person = async (email: string): Promise<Actor> =>
    principalActor(await ensurePrincipal(database.db, email));
  return {
    role,
    target,
    activations,
    admin,
    reconcile,
    alerts: service,
    cli,
    person,
    advance(minutes: number) {
      now = new Date(now.getTime() + minutes * MINUTE_MS);
    },
    /** Makes `email` eligible, activates the role for them and returns the activation id. */
    async activate(email: string) {
      await admin.assignEligibility(cli, { email, roleName: role, endAt: null });
      const view = await activations.requestActivation({ actor: await person(email), roleName: role });
      return view.activation.id;
    },
    /** This role's alerts, open ones unless `all`. */
    async mine(all = false): Promise<AlertView[]> {
      return (await service.list({ all })).filter((a) => a.role === role);
    },
    /** The admin notices about this role's alerts. */
    async notices() {
      const rows = await database.db
        .select()
        .from(notifications)
        .where(eq(notifications.kind, 'alert_raised'));
      return rows.filter((r) => r.data.role === role).map((r) => r.data);
    },
    /** This role's alert audit events. */
    async events() {
      const rows = await database.db
        .select({ action: auditEvents.action, actor: auditEvents.actor, data: auditEvents.data })
        .from(auditEvents)
        .where(eq(auditEvents.subjectId, role));
      return rows.filter((r) => r.action.startsWith('alert.'));
    },
  };
}

/** Activates and (after the minimum) deactivates, `times` times. */
async function useRole(s: Awaited<ReturnType<typeof scene>>, email: string, times: number) {
  for (let i = 0; i < times; i++) {
    const id = await s.activate(email);
    s.advance(6);
    await s.activations.deactivate({ actor: await s.person(email), activationId: id });
    s.advance(1);
  }
}

describe('frequent activation', () => {
  test('raised at the fifth activation in 24 h by one principal, once, and resolved when the window passes', async () => {
    const s = await scene();
    await useRole(s, `dee${n}@example.com`, 4);
    await useRole(s, `eve${n}@example.com`, 2);
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);

    await useRole(s, `dee${n}@example.com`, 1);
    await s.alerts.evaluate();
    await s.alerts.evaluate();
    const open = await s.mine();
    expect(open.map((a) => [a.kind, a.subject, a.details.activations])).toEqual([
      ['frequent_activation', `dee${n}@example.com`, 5],
    ]);
    expect(await s.notices()).toHaveLength(1);
    expect((await s.events()).map((e) => e.action)).toEqual(['alert.raised']);

    s.advance(DAY);
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
    const [closed] = await s.mine(true);
    expect(closed?.resolvedBy).toBe('system');
    expect((await s.events()).map((e) => e.action)).toEqual(['alert.raised', 'alert.resolved']);
  });

  test('the threshold comes from the settings', async () => {
    const s = await scene({}, { frequentActivation: { activations: 2, within: 60 } });
    await useRole(s, `dee${n}@example.com`, 2);
    await s.alerts.evaluate();
    expect((await s.mine()).map((a) => a.kind)).toEqual(['frequent_activation']);
  });
});

describe('sensitive role without approval and MFA', () => {
  test('raised for a sensitive role that needs neither, not for one that needs approval or one not sensitive', async () => {
    const s = await scene({ sensitive: true });
    const guarded = `${s.role}-guarded`;
    await s.admin.saveRole(s.cli, {
      name: guarded,
      provider: { type: 'listing' },
      settings: { sensitive: true, requireApproval: true },
    });
    const plain = `${s.role}-plain`;
    await s.admin.saveRole(s.cli, { name: plain, provider: { type: 'listing' } });
    await s.alerts.evaluate();
    const all = await s.alerts.list();
    expect(all.filter((a) => a.role.startsWith(s.role)).map((a) => [a.kind, a.role, a.subject])).toEqual([
      ['sensitive_role_unprotected', s.role, ''],
    ]);

    await s.admin.saveRole(s.cli, {
      name: s.role,
      provider: { type: 'listing' },
      settings: { sensitive: true, requireMfa: true },
    });
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
  });
});

describe('stale eligibility', () => {
  test('raised after 30 days without an activation, not for one used meanwhile; Remove eligibility is for admins only', async () => {
    const s = await scene();
    const dee = `dee${n}@example.com`;
    const eve = `eve${n}@example.com`;
    await s.admin.assignEligibility(s.cli, { email: dee, roleName: s.role, endAt: null });
    await s.admin.assignEligibility(s.cli, { email: eve, roleName: s.role, endAt: null });
    s.advance(29 * DAY);
    await useRole(s, eve, 1);
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
    s.advance(2 * DAY);
    await s.alerts.evaluate();
    const [alert, ...others] = await s.mine();
    expect(others).toEqual([]);
    expect([alert?.kind, alert?.subject]).toEqual(['stale_eligibility', dee]);
    const alertId = alert?.id ?? '';

    // A non-admin: refused, audited, nothing changed.
    const mallory = await s.person(`mallory${n}@example.com`);
    await expect(s.alerts.removeEligibility({ actor: mallory, alertId })).rejects.toMatchObject({
      code: 'forbidden',
    });
    const refused = (await s.events()).filter((e) => e.action === 'alert.action_refused');
    expect(refused.map((e) => e.actor)).toEqual([`mallory${n}@example.com`]);
    const role = await getRoleByName(database.db, s.role);
    const principal = await findPrincipalByEmail(database.db, dee);
    expect(await findEligibility(database.db, principal?.id ?? '', role.id)).toBeDefined();
    expect(await s.mine()).toHaveLength(1);
    // Another kind's action does not apply.
    await expect(s.alerts.revoke({ actor: await s.person(ADMIN), alertId })).rejects.toMatchObject({
      code: 'invalid',
    });

    // An admin: the eligibility goes through the core, the alert is resolved by them.
    const resolved = await s.alerts.removeEligibility({ actor: await s.person(ADMIN), alertId });
    expect(resolved.resolvedBy).toBe(ADMIN);
    expect(await findEligibility(database.db, principal?.id ?? '', role.id)).toBeUndefined();
    const told = await database.db
      .select()
      .from(notifications)
      .where(
        and(
          eq(notifications.kind, 'eligibility_removed'),
          eq(notifications.recipientId, principal?.id ?? ''),
        ),
      );
    expect(told).toHaveLength(1);
    await expect(s.alerts.removeEligibility({ actor: await s.person(ADMIN), alertId })).rejects.toMatchObject(
      {
        code: 'conflict',
      },
    );
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
  });
});

describe('too many holders and permanent active assignments', () => {
  test('more than 3 principals active at once raises one alert for the role, resolved when one ends', async () => {
    const s = await scene({ maxDuration: 240 });
    const ids: string[] = [];
    for (const who of ['a', 'b', 'c']) ids.push(await s.activate(`${who}${n}@example.com`));
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
    ids.push(await s.activate(`d${n}@example.com`));
    await s.alerts.evaluate();
    const [alert] = await s.mine();
    expect([alert?.kind, alert?.subject, (alert?.details.holders as string[] | undefined)?.length]).toEqual([
      'too_many_active',
      '',
      4,
    ]);
    s.advance(6);
    await s.activations.deactivate({
      actor: await s.person(`a${n}@example.com`),
      activationId: ids[0] ?? '',
    });
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
  });

  test('a permanent active assignment raises an alert, a time-bound one does not', async () => {
    const s = await scene({ allowPermanentActiveAssignment: true });
    await s.admin.assignActive(s.cli, {
      email: `bounded${n}@example.com`,
      roleName: s.role,
      endAt: new Date('2026-06-05T00:00:00Z'),
    });
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
    await s.admin.assignActive(s.cli, { email: `forever${n}@example.com`, roleName: s.role, endAt: null });
    await s.alerts.evaluate();
    expect((await s.mine()).map((a) => [a.kind, a.details.holders])).toEqual([
      ['permanent_active', [`forever${n}@example.com`]],
    ]);
    await s.admin.removeActive(s.cli, { email: `forever${n}@example.com`, roleName: s.role });
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
  });
});

describe('grant found in the target with no activation', () => {
  test('reconciliation raises it once as an alert; Revoke is for admins only and takes it back', async () => {
    const s = await scene();
    await s.activate(`dee${n}@example.com`);
    const mallory = `mallory${n}@example.com`;
    s.target.held.add(mallory);
    await s.reconcile.reconcileAll();
    s.advance(5);
    await s.reconcile.reconcileAll();
    await s.alerts.evaluate();
    const [alert, ...others] = await s.mine();
    expect(others).toEqual([]);
    expect([alert?.kind, alert?.subject]).toEqual(['unmanaged_grant', mallory]);
    expect(await s.notices()).toHaveLength(1);
    const alertId = alert?.id ?? '';

    await expect(
      s.alerts.revoke({ actor: await s.person(`dee${n}@example.com`), alertId }),
    ).rejects.toMatchObject({ code: 'forbidden' });
    expect(s.target.held.has(mallory)).toBe(true);
    expect((await s.events()).map((e) => e.action)).toContain('alert.action_refused');

    // The target refuses once: the alert stays open, the admin hears why.
    s.target.failNextRevokes(1);
    await expect(s.alerts.revoke({ actor: await s.person(ADMIN), alertId })).rejects.toThrow(
      /target unreachable/,
    );
    expect(await s.mine()).toHaveLength(1);

    const resolved = await s.alerts.revoke({ actor: await s.person(ADMIN), alertId });
    expect(resolved.resolvedBy).toBe(ADMIN);
    expect(s.target.held.has(mallory)).toBe(false);
    expect(s.target.held.has(`dee${n}@example.com`)).toBe(true);
    const findings = await database.db
      .select()
      .from(reconcileFindings)
      .where(eq(reconcileFindings.account, mallory));
    expect(findings.filter((f) => f.roleId === alert?.roleId)).toEqual([]);
    s.advance(5);
    await s.reconcile.reconcileAll();
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
    expect(await s.notices()).toHaveLength(1);
  });

  test('resolved by reconciliation when the holder goes away, and news again when they come back', async () => {
    const s = await scene();
    const mallory = `mallory${n}@example.com`;
    s.target.held.add(mallory);
    await s.reconcile.reconcileAll();
    expect(await s.mine()).toHaveLength(1);
    s.target.held.delete(mallory);
    s.advance(5);
    await s.reconcile.reconcileAll();
    expect(await s.mine()).toEqual([]);
    s.target.held.add(mallory);
    s.advance(5);
    await s.reconcile.reconcileAll();
    expect(await s.mine()).toHaveLength(1);
    expect(await s.notices()).toHaveLength(2);
  });
});

describe('revoke that keeps failing', () => {
  test('raised at the third failed attempt, resolved once the revoke goes through', async () => {
    const s = await scene();
    const dee = `dee${n}@example.com`;
    const id = await s.activate(dee);
    s.advance(6);
    s.target.failNextRevokes(3);
    await s.activations.deactivate({ actor: await s.person(dee), activationId: id });
    s.advance(1);
    await s.activations.retryDue();
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
    s.advance(1);
    await s.activations.retryDue();
    await s.alerts.evaluate();
    const [alert] = await s.mine();
    expect([alert?.kind, alert?.subject, alert?.details.attempts]).toEqual(['revoke_failing', dee, 3]);
    s.advance(1);
    await s.activations.retryDue();
    await s.alerts.evaluate();
    expect(await s.mine()).toEqual([]);
  });
});

describe('several evaluators', () => {
  test('two passes at once raise each alert once, with one notice', async () => {
    const s = await scene({ sensitive: true });
    const twin = createAlertService({
      db: database.db,
      providers: createProviderRegistry({ env: {} }),
      clock: () => new Date('2026-06-01T09:00:00Z'),
      reconcile: createReconcileService({
        db: database.db,
        providers: createProviderRegistry({ env: {} }),
        clock: () => new Date(),
      }),
    });
    await Promise.all([s.alerts.evaluate(), twin.evaluate(), s.alerts.evaluate(), twin.evaluate()]);
    const [open] = await s.mine();
    expect(await s.notices()).toHaveLength(1);
    const rows = await database.db
      .select()
      .from(alerts)
      .where(eq(alerts.roleId, open?.roleId ?? ''));
    expect(rows).toHaveLength(1);
  });

  test('without the lock, the open-alert index alone keeps concurrent raises to one alert and one notice', async () => {
    const s = await scene();
    const role = await getRoleByName(database.db, s.role);
    const condition = {
      kind: 'too_many_active' as const,
      roleId: role.id,
      role: s.role,
      subject: '',
      details: {},
    };
    const now = new Date('2026-06-01T09:00:00Z');
    await Promise.all(
      [1, 2, 3].map(() => database.db.transaction((tx) => raiseAlerts(tx, [condition], now))),
    );
    expect(await s.mine()).toHaveLength(1);
    expect(await s.notices()).toHaveLength(1);
  });
});
