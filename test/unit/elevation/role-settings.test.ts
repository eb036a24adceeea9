import { expect, test } from 'vitest';
import { defaultRoleSettings, roleSettingsSchema } from '../../../src/elevation/role-settings.ts';

const problems = (input: unknown) => {
  const result = roleSettingsSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('the defaults are PIM’s', () => {
  expect(defaultRoleSettings()).toMatchObject({
    maxDuration: 480,
    minDuration: 30,
    defaultDuration: 60,
    requireJustification: true,
    requireTicket: false,
    requireApproval: false,
    approvalsRequired: 1,
    approvalTimeout: 1440,
    requireMfa: false,
    requireMfaToApprove: false,
    allowCustomStart: true,
    allowPermanentEligibility: true,
    maxEligibility: 365 * 1440,
    allowPermanentActiveAssignment: false,
    maxActiveAssignment: 15 * 1440,
    allowExtension: true,
    minActiveBeforeDeactivation: 5,
    revokeUnmanagedGrants: false,
    standingHolders: [],
  });
});

test('bounds between settings are checked', () => {
  expect(problems({ maxDuration: 1441 })).toEqual([
    'maxDuration: may be at most 24h (set allowLongActivation to allow up to 7d)',
  ]);
  expect(problems({ maxDuration: 7 * 1440, allowLongActivation: true })).toEqual([]);
  expect(problems({ minDuration: 120, maxDuration: 60 })).toEqual([
    'minDuration: may not be longer than maxDuration',
  ]);
  expect(problems({ defaultDuration: 600 })).toEqual([
    'defaultDuration: must lie between minDuration and maxDuration',
  ]);
  expect(problems({ approvers: ['a@example.com'], approvalsRequired: 2 })).toEqual([
    'approvalsRequired: is 2 but only 1 approver(s) are named',
  ]);
  expect(problems({ ticketPattern: '([' })).toEqual(['ticketPattern: is not a valid regular expression']);
});

test('the default duration follows the bounds when not given', () => {
  expect(roleSettingsSchema.parse({ maxDuration: 30 }).defaultDuration).toBe(30);
  expect(roleSettingsSchema.parse({ minDuration: 90 }).defaultDuration).toBe(90);
});

test('approver emails are compared lower-cased', () => {
  expect(roleSettingsSchema.parse({ approvers: ['Bo@Example.COM'] }).approvers).toEqual(['bo@example.com']);
});

test('an unknown setting is a problem, not silently dropped', () => {
  expect(roleSettingsSchema.safeParse({ maxDurationn: 60 }).success).toBe(false);
});
