import { expect, test } from 'vitest';
import { alertsPage, scanText } from '../../../src/chat/admin-messages.ts';
import { type Action, alertCard, notificationMessage } from '../../../src/chat/messages.ts';
import type { AlertView } from '../../../src/elevation/alert-repository.ts';

const stale: AlertView = {
  id: '0b3c5e52-6f0e-4a57-9d43-3a1c1a6f1e10',
  kind: 'stale_eligibility',
  roleId: 'r',
  role: 'prod-db',
  subject: 'dee@example.com',
  details: { lastActivated: null, eligibleSince: '2026-01-01T00:00:00.000Z', after: '30d' },
  raisedAt: new Date('2026-06-01T09:00:00Z'),
  resolvedAt: null,
  resolvedBy: null,
  resolution: null,
};

test('the admin notice of a raised alert names it and says what was found', () => {
  const { id, raisedAt, resolvedAt, resolvedBy, resolution, roleId, ...data } = stale;
  const message = notificationMessage('alert_raised', { alertId: id, ...data }, undefined, raisedAt);
  expect(message.text).toBe(
    'Admin alert: Eligibility not used: dee@example.com has not activated prod-db for 30d or more (last: never)',
  );
  const unmanaged = notificationMessage(
    'alert_raised',
    { kind: 'unmanaged_grant', role: 'ops', subject: 'U0EVE', details: { revoking: true } },
    undefined,
    raisedAt,
  );
  expect(unmanaged.text).toBe(
    'Admin alert: Role assigned outside Elevate: U0EVE holds ops in the target with no activation in Elevate (the role revokes such grants)',
  );
});

const SCAN = { type: 'actions', actions: [{ name: 'adminAlertsScan', label: 'Scan now', value: 'scan' }] };

test('the alert list shows each open alert with when it was raised, or says there is none; Scan now on top', () => {
  const page = alertsPage([stale]);
  expect(page.title).toBe('Security alerts');
  expect(page.blocks).toEqual([
    SCAN,
    {
      type: 'text',
      text: '*Eligibility not used*: dee@example.com has not activated prod-db for 30d or more (last: never)\nraised 2026-06-01 09:00 UTC',
      actions: [
        { name: 'alertRemoveEligibility', label: 'Remove eligibility', value: stale.id, style: 'danger' },
      ],
    },
  ]);
  expect(alertsPage([]).blocks).toEqual([SCAN, { type: 'text', text: 'No open alerts.' }]);
  const scanned = scanText({
    reconciled: { roles: 2, found: 1 },
    raised: 1,
    resolved: 0,
    problem: 'role x: 503',
  });
  expect(alertsPage([], scanned).blocks[0]).toEqual({
    type: 'text',
    text: 'Scanned: 2 role(s) compared with their target, 1 new holder(s) found outside Elevate; 1 alert(s) raised, 0 resolved. Not every target could be read: role x: 503.',
  });
});

test('an alert card is the alert as it is now: open with its button, resolved with who, when and how', () => {
  expect(alertCard(stale)).toEqual({
    text: 'Admin alert: Eligibility not used: dee@example.com has not activated prod-db for 30d or more (last: never)',
    blocks: [
      {
        type: 'text',
        text: 'Admin alert: *Eligibility not used*: dee@example.com has not activated prod-db for 30d or more (last: never)',
        actions: [
          { name: 'alertRemoveEligibility', label: 'Remove eligibility', value: stale.id, style: 'danger' },
        ],
      },
    ],
  });
  const at = new Date('2026-06-02T10:30:00Z');
  const byAdmin = alertCard({
    ...stale,
    resolvedAt: at,
    resolvedBy: 'ana@example.com',
    resolution: 'eligibility removed',
  });
  expect(byAdmin.blocks).toEqual([
    {
      type: 'text',
      text: 'Resolved alert: *Eligibility not used*: dee@example.com has not activated prod-db for 30d or more (last: never)\nResolved by ana@example.com at 2026-06-02 10:30 UTC: eligibility removed.',
      actions: [],
    },
  ]);
  const byItself = alertCard({
    ...stale,
    resolvedAt: at,
    resolvedBy: 'system',
    resolution: 'the condition went away',
  });
  expect(byItself.text).toMatch(/Resolved by itself at 2026-06-02 10:30 UTC: the condition went away\.$/);
});

test('the notice offers the action ALERT_ACTIONS names, with the alert id, and none for the others', () => {
  const buttons = (kind: string, alertId = stale.id): Action[] =>
    notificationMessage(
      'alert_raised',
      { alertId, kind, role: 'ops', subject: 'x', details: {} },
      undefined,
      stale.raisedAt,
    ).blocks.flatMap((b) => (b.type === 'text' ? (b.actions ?? []) : []));
  expect(buttons('stale_eligibility')).toEqual([
    { name: 'alertRemoveEligibility', label: 'Remove eligibility', value: stale.id, style: 'danger' },
  ]);
  expect(buttons('unmanaged_grant')).toEqual([
    { name: 'alertRevoke', label: 'Revoke', value: stale.id, style: 'danger' },
  ]);
  expect(buttons('frequent_activation')).toEqual([]);
  expect(buttons('too_many_active')).toEqual([]);
});
