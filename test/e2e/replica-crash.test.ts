import { afterAll, afterEach, beforeAll, expect, onTestFailed, test } from 'vitest';
import type { Actor } from '../../src/elevation/actor.ts';
import {
  activationFacts,
  POSTGRES,
  postedTo,
  type ReplicaSet,
  startReplicaSet,
  WEBHOOK_SECRET_VAR,
  waitUntil,
} from '../support/replicas.ts';

/**
 * Issue 6, crash safety and graceful shutdown, with real `elevate serve` processes on one
 * PostgreSQL database: `kill -9` while revokes and while grants are in flight at the target
 * (the webhook receiver holds them open), then a restarted replica finishes the work; and SIGTERM
 * while a batch of revokes is in hand. Each test has its own role and people.
 *
 * What must hold after a crash: nothing stays `revoking` or `activating`; each transition, audit
 * event and message to a requester happens once — only a provider call may repeat (providers are
 * idempotent). The replicas run with a 5 s in-flight lease (ELEVATE_IN_FLIGHT_LEASE), the time a
 * crashed replica's claims take to be taken over.
 */

const LEASE = '5s';
const ROLES = ['crash-revoke', 'crash-grant', 'drain'] as const;
const PEOPLE = 12;

let set: ReplicaSet;
const people = new Map<string, { slackId: string; actor: Actor }[]>();

beforeAll(async () => {
  if (!POSTGRES) return;
  set = await startReplicaSet({ ELEVATE_IN_FLIGHT_LEASE: LEASE });
  // The longest timeout a webhook allows: a call stays in flight at the target until the test ends it.
  const webhook = `{ type: webhook, url: "${set.webhook.url}", secret: env:${WEBHOOK_SECRET_VAR}, timeout: 30s }`;
  const emails = (role: string) =>
    Array.from({ length: PEOPLE }, (_, i) => ({
      slackId: `U${role.replace('-', '').toUpperCase()}${i}`,
      email: `${role}.${i}@example.com`,
    }));
  // Eligible since an hour ago: the seeding clock below may run behind real time.
  set.setClock(new Date(Date.now() - 60 * 60_000));
  await set.applyPolicy(`
admins: [ops@example.com]
roles:
${ROLES.map((role) => `  - { name: ${role}, scope: prod/db, provider: ${webhook}, settings: { minDuration: 1m, requireJustification: false } }`).join('\n')}
eligibility:
${ROLES.flatMap((role) => emails(role).map((p) => `  - { principal: ${p.email}, role: ${role} }`)).join('\n')}
`);
  set.setClock(undefined);
  for (const role of ROLES) {
    const list = [];
    for (const p of emails(role))
      list.push({ slackId: p.slackId, actor: await set.person(p.slackId, p.email) });
    people.set(role, list);
  }
}, 120_000);

// A failed test may leave replicas running; they must not do the next test's work.
afterEach(async () => {
  await set?.killAll();
});

afterAll(async () => {
  await set?.close();
});

const actorsOf = (role: string) => (people.get(role) ?? []).map((p) => p.actor);

/** Notices about this role's activations not yet delivered (or claimed by a delivery in flight). */
async function undelivered(role: string): Promise<number> {
  const [row] = await set.database.superuser<{ n: number }>(
    `select count(*)::int as n from notifications n join activations a on a.id = n.activation_id join roles r on r.id = a.role_id where r.name = '${role}' and n.status = 'pending'`,
  );
  return row?.n ?? -1;
}

/** Each of the role's requesters got exactly one DM matching `pattern`. */
function expectToldOnce(role: string, pattern: RegExp) {
  const told = postedTo(set.slack, pattern);
  for (const p of people.get(role) ?? []) expect(told.get(`D${p.slackId}`), p.slackId).toBe(1);
}

test.skipIf(!POSTGRES)(
  'kill -9 in the middle of a revocation batch: a restarted replica finishes it, each end audited and told once (PostgreSQL only: PGlite is one process by design)',
  async () => {
    onTestFailed(() => console.error(set.logs()));
    const role = 'crash-revoke';
    // Expired a minute before the replica starts: its first tick claims the whole batch.
    const statuses = await set.activate(role, actorsOf(role), {
      at: new Date(Date.now() - 2 * 60_000),
      durationMinutes: 1,
    });
    expect(statuses).toEqual(Array(PEOPLE).fill('active'));
    set.webhook.hold('revoke');
    const first = await set.start('first');
    // Revokes in flight at the target, and no message to anyone half-sent: then the crash.
    await waitUntil(
      'revokes held at the target and the outbox idle',
      async () => set.webhook.held(role) > 0 && (await undelivered(role)) === 0,
      60_000,
    );
    first.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const inFlight = set.webhook.callsOf('revoke', role);
    expect(inFlight.length).toBeGreaterThan(0);
    expect(inFlight.filter((c) => c.answered)).toEqual([]); // none of them ever got an answer
    const crashed = await activationFacts(set.database, role);
    // Caught mid-batch: claimed and in flight, or not yet claimed; none revoked.
    expect(crashed.filter((f) => f.status === 'revoking').length).toBeGreaterThan(0);
    expect(crashed.filter((f) => f.status !== 'revoking' && f.status !== 'active')).toEqual([]);

    set.webhook.release();
    const second = await set.start('second');
    const facts = await waitUntil(
      'every activation ended and its requester told',
      async () => {
        const all = await activationFacts(set.database, role);
        return all.every((f) => f.status === 'ended' && f.notices['activation_ended:sent'] === 1) && all;
      },
      90_000,
      250,
    );
    for (const f of facts) {
      expect(f, f.email).toMatchObject({ status: 'ended', endReason: 'expired' });
      expect(f.actions, f.email).toEqual({
        'activation.requested': 1,
        'activation.granted': 1,
        'activation.expired': 1,
        'activation.ended': 1,
      });
      const calls = set.webhook.callsOf('revoke', role).filter((c) => c.activationId === f.id);
      // Asked again after the crash, maybe twice over (idempotent): at least one call went through.
      expect(calls.filter((c) => c.answered).length, f.email).toBeGreaterThan(0);
    }
    await waitUntil(
      'the ends posted to Slack',
      () => postedTo(set.slack, /crash-revoke\*? has ended/).size >= PEOPLE,
      30_000,
    );
    expectToldOnce(role, /crash-revoke\*? has ended/);

    second.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect((await set.cli('audit', 'verify')).code).toBe(0);
  },
  240_000,
);

test.skipIf(!POSTGRES)(
  'kill -9 while grants are in flight: a restarted replica grants them, each grant audited and told once (PostgreSQL only: PGlite is one process by design)',
  async () => {
    onTestFailed(() => console.error(set.logs()));
    const role = 'crash-grant';
    // Scheduled to start a minute before the replica runs: its first tick starts them all.
    const now = Date.now();
    const statuses = await set.activate(role, actorsOf(role), {
      at: new Date(now - 10 * 60_000),
      startAt: new Date(now - 60_000),
      durationMinutes: 60,
    });
    expect(statuses).toEqual(Array(PEOPLE).fill('approved'));
    set.webhook.hold('grant');
    const first = await set.start('first');
    await waitUntil(
      'grants held at the target and the outbox idle',
      async () => set.webhook.held(role) > 0 && (await undelivered(role)) === 0,
      60_000,
    );
    first.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(set.webhook.callsOf('grant', role).filter((c) => c.answered)).toEqual([]);
    const crashed = await activationFacts(set.database, role);
    // Caught mid-batch: claimed and in flight, or not yet started; none granted.
    expect(crashed.filter((f) => f.status === 'activating').length).toBeGreaterThan(0);
    expect(crashed.filter((f) => f.status !== 'activating' && f.status !== 'approved')).toEqual([]);

    set.webhook.release();
    const second = await set.start('second');
    const facts = await waitUntil(
      'every activation granted and its requester told',
      async () => {
        const all = await activationFacts(set.database, role);
        return all.every((f) => f.status === 'active' && f.notices['activation_active:sent'] === 1) && all;
      },
      90_000,
      250,
    );
    for (const f of facts) {
      expect(f.status, f.email).toBe('active');
      expect(f.actions, f.email).toEqual({
        'activation.requested': 1,
        'activation.starting': 1,
        'activation.granted': 1,
      });
      const calls = set.webhook.callsOf('grant', role).filter((c) => c.activationId === f.id);
      // Asked again after the crash, maybe twice over (idempotent): at least one call went through.
      expect(calls.filter((c) => c.answered).length, f.email).toBeGreaterThan(0);
    }
    await waitUntil(
      'the grants posted to Slack',
      () => postedTo(set.slack, /crash-grant\*? is active/).size >= PEOPLE,
      30_000,
    );
    expectToldOnce(role, /crash-grant\*? is active/);

    second.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect((await set.cli('audit', 'verify')).code).toBe(0);
  },
  240_000,
);

test.skipIf(!POSTGRES)(
  'SIGTERM with a batch of revokes in hand: it stops claiming, finishes the batch, exits 0 within 10 s (PostgreSQL only: the test seeds from a second process)',
  async () => {
    onTestFailed(() => console.error(set.logs()));
    const role = 'drain';
    const [batch, later] = [actorsOf(role).slice(0, 5), actorsOf(role).slice(5)];
    expect(
      await set.activate(role, batch, { at: new Date(Date.now() - 2 * 60_000), durationMinutes: 1 }),
    ).toEqual(Array(batch.length).fill('active'));
    // The target holds the batch's revokes until SIGTERM, then answers them 2 s later.
    set.webhook.hold('revoke');
    const replica = await set.start('draining');
    await waitUntil('the batch in flight at the target', () => set.webhook.held(role) > 0, 60_000, 20);
    // These fall due a second from now, while the batch is still in hand: a replica that stopped
    // claiming at SIGTERM leaves them to the next one. The seeding clock runs a minute behind, so
    // to the running replica a grant just started here looks like one whose lease ran out: it may
    // take it over and finish it (then it runs a minute from then); either way, granted once.
    const seeded = await set.activate(role, later, { at: new Date(Date.now() - 59_000), durationMinutes: 1 });
    expect(seeded.filter((status) => status !== 'active' && status !== 'activating')).toEqual([]);
    const isLater = (f: { email: string }) => later.some((a) => a.label === f.email);
    await waitUntil(
      'the later ones granted',
      async () =>
        (await activationFacts(set.database, role)).filter(isLater).every((f) => f.status === 'active'),
      30_000,
      50,
    );
    const signalled = Date.now();
    replica.kill('SIGTERM');
    set.webhook.hold('revoke', 2_000);
    setTimeout(() => set.webhook.release(), 2_000);
    const exit = await replica.exited;
    const tookMs = Date.now() - signalled;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(10_000);
    expect(replica.output()).toContain('"msg":"stopped"');

    // The batch in hand is finished. What fell due while it was in hand was not claimed after the
    // signal (a loop that took some before the signal finished them too): nothing stays `revoking`.
    const facts = await activationFacts(set.database, role);
    for (const f of facts.filter((f) => !isLater(f))) {
      expect(f.status, f.email).toBe('ended');
      expect(f.actions['activation.ended'], f.email).toBe(1);
    }
    for (const f of facts.filter(isLater)) {
      expect(['active', 'ended'], f.email).toContain(f.status);
      const revoked = set.webhook.callsOf('revoke', role).filter((c) => c.activationId === f.id);
      if (f.status === 'active') expect(revoked, f.email).toEqual([]);
    }

    // The next replica revokes the rest and delivers what was left; nobody is told twice.
    const next = await set.start('next');
    await waitUntil(
      'every activation ended and its requester told',
      async () =>
        (await activationFacts(set.database, role)).every(
          (f) => f.status === 'ended' && f.notices['activation_ended:sent'] === 1,
        ),
      90_000,
      250,
    );
    await waitUntil(
      'the ends posted to Slack',
      () => postedTo(set.slack, /drain\*? has ended/).size >= PEOPLE,
      30_000,
    );
    expectToldOnce(role, /drain\*? has ended/);
    for (const f of await activationFacts(set.database, role)) {
      expect(f.actions['activation.ended'], f.email).toBe(1);
      // A held revoke that outlasted the test's 5 s lease may have been asked twice; the rest once.
      const calls = set.webhook.callsOf('revoke', role).filter((c) => c.activationId === f.id);
      if (isLater(f)) expect(calls, f.email).toHaveLength(1);
      else expect(calls.filter((c) => c.answered).length, f.email).toBeGreaterThan(0);
    }
    next.kill('SIGTERM');
    expect(await next.exited).toEqual({ code: 0, signal: null });
    expect((await set.cli('audit', 'verify')).code).toBe(0);
  },
  240_000,
);
