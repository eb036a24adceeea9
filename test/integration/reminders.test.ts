import { afterAll, beforeAll, expect, test } from 'vitest';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { and, eq } from '../../src/db/drizzle.ts';
import { notifications } from '../../src/elevation/notification.sql.ts';
import { principals } from '../../src/elevation/principal.sql.ts';
import { createReminderService } from '../../src/elevation/reminder-service.ts';
import type { ElevateError } from '../../src/errors.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

let n = 0;
async function scene(settings = {}) {
  n += 1;
  const core = createCore(database.db);
  const reminders = createReminderService({
    db: database.db,
    clock: core.clock,
    settings: { expiryWarningMinutes: 10, reminderAfterMinutes: 60, maxReminders: 2 },
  });
  const role = `notice-${n}`;
  const email = `dee${n}@example.com`;
  await core.role(role, { requireJustification: false, ...settings });
  return { core, reminders, role, email };
}

/** The notices of `kind` each recipient got. */
async function notices(kind: string) {
  const rows = await database.db
    .select({ to: principals.email })
    .from(notifications)
    .innerJoin(principals, eq(principals.id, notifications.recipientId))
    .where(eq(notifications.kind, kind));
  return rows.map((r) => r.to).sort();
}

test('the requester is warned once before the end, and again after an extension moves it', async () => {
  const { core, reminders, role, email } = await scene({ maxDuration: 240 });
  await core.eligible(email, role);
  const dee = await core.person(email);
  const view = await core.activations.requestActivation({ actor: dee, roleName: role, durationMinutes: 60 });
  core.advance(49);
  expect(await reminders.warnExpiring()).toBe(0);
  core.advance(2);
  expect(await reminders.warnExpiring()).toBe(1);
  expect(await reminders.warnExpiring()).toBe(0);
  await core.activations.extend({ actor: dee, activationId: view.activation.id, durationMinutes: 60 });
  expect(await reminders.warnExpiring()).toBe(0);
  core.advance(55); // 14 minutes left of the new end
  expect(await reminders.warnExpiring()).toBe(0);
  core.advance(5);
  expect(await reminders.warnExpiring()).toBe(1);
  expect(await notices('expiry_warning')).toEqual([email, email]);
});

test('approvers are reminded of a waiting request, at most the configured number of times', async () => {
  n += 1;
  const bo = `bo${n}@example.com`;
  const { core, reminders, role, email } = await scene({ requireApproval: true, approvers: [bo] });
  await core.eligible(email, role);
  await core.activations.requestActivation({ actor: await core.person(email), roleName: role });
  core.advance(59);
  expect(await reminders.remindApprovers()).toBe(0);
  core.advance(2);
  expect(await reminders.remindApprovers()).toBe(1);
  core.advance(30);
  expect(await reminders.remindApprovers()).toBe(0);
  core.advance(31);
  expect(await reminders.remindApprovers()).toBe(1);
  core.advance(61);
  expect(await reminders.remindApprovers()).toBe(0);
  expect(await notices('approval_reminder')).toEqual([bo, bo]);
});

test('an eligibility warns 14 days and 1 day before it ends, then ends (audited, told)', async () => {
  const { core, reminders, role, email } = await scene();
  const day = 1440;
  await core.eligible(email, role, new Date(core.clock().getTime() + 20 * day * 60_000));
  expect(await reminders.warnEligibilities()).toBe(0);
  core.advance(7 * day);
  expect(await reminders.warnEligibilities()).toBe(1);
  expect(await reminders.warnEligibilities()).toBe(0);
  core.advance(12 * day + 1);
  expect(await reminders.warnEligibilities()).toBe(1);
  expect(await notices('eligibility_expiring')).toEqual([email, email]);

  // One first seen inside the last day gets the last warning only.
  const late = `late${n}@example.com`;
  await core.eligible(late, role, new Date(core.clock().getTime() + 600 * 60_000));
  expect(await reminders.warnEligibilities()).toBe(1);
  expect(await reminders.warnEligibilities()).toBe(0);

  core.advance(day);
  expect(await reminders.expireEligibilities()).toBe(2);
  const refused = await core.activations
    .requestActivation({ actor: await core.person(email), roleName: role })
    .catch((e: unknown) => e);
  expect((refused as ElevateError).message).toBe(`You are not eligible for the role ${role}.`);
  const audited = await database.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.action, 'eligibility.expired'), eq(auditEvents.subjectId, `${email}/${role}`)));
  expect(audited).toHaveLength(1);
  expect(await notices('eligibility_expired')).toEqual([email, late].sort());
});
