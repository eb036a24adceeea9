import { afterAll, beforeAll, expect, test } from 'vitest';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(() => database?.close());

test('request, approve, grant, deactivate, revoke', async () => {
  const core = createCore(database.db);
  await core.admin.setAdmins(core.cli, ['ana@example.com']);
  await core.role('db-admin', { requireApproval: true, approvers: ['bo@example.com'] });
  await core.eligible('dee@example.com', 'db-admin');
  const dee = await core.person('dee@example.com');
  const bo = await core.person('bo@example.com');
  const requested = await core.activations.requestActivation({
    actor: dee,
    roleName: 'db-admin',
    justification: 'INC1 fix',
  });
  expect(requested.activation.status).toBe('pending_approval');
  const approved = await core.activations.approve({ actor: bo, activationId: requested.activation.id });
  expect(approved.view.activation.status).toBe('active');
  expect(core.recording.held.has('dee@example.com/db-admin')).toBe(true);
  core.advance(10);
  const ended = await core.activations.deactivate({ actor: dee, activationId: requested.activation.id });
  expect(ended.activation.status).toBe('ended');
  expect(core.recording.held.size).toBe(0);
});
